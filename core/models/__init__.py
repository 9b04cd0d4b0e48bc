"""Learned models of the runtime (torch). The Blender add-on never imports this package."""

from .encoders import (
    GROUP_NAMES,
    NODE_NAMES,
    NUM_NODES,
    ROOT_NODE,
    VIEWS,
    ContentEncoder,
    EncoderConfig,
    Encoders,
    StyleEncoder,
    compute_stats,
    load_encoders,
    make_view,
    save_encoders,
    view_channels,
)

__all__ = [
    "GROUP_NAMES",
    "NODE_NAMES",
    "NUM_NODES",
    "ROOT_NODE",
    "VIEWS",
    "ContentEncoder",
    "EncoderConfig",
    "Encoders",
    "StyleEncoder",
    "compute_stats",
    "load_encoders",
    "make_view",
    "save_encoders",
    "view_channels",
]
