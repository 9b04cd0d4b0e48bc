"""Contrastive content and style encoders (DESIGN §6, issue 6): views, augmentations, losses, MoCo
training and evaluation. The encoder networks themselves live in core.models.encoders."""
