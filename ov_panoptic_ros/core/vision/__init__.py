"""Frozen vision-language encoders: dense CLIP image features and text embeddings."""
