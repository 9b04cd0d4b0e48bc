"""The dataset layer: clip index, take-level splits, feature cache and window sampler."""
