"""Training outside Blender: datasets, contrastive encoders, diffusion, evaluation."""
