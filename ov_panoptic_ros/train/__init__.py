"""Training code: each module trains one model (teacher.py: the 2D vision-language teacher)."""
