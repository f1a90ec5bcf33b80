"""The trainable 3D network: voxels, sparse UNet backbone, fusion, query head, merge, losses, checkpoints."""
