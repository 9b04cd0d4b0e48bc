"""Motion representation, retargeting, models and the stylization runtime (no Blender imports)."""
