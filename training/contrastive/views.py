"""The three input views of the contrastive encoders (CrosSCLR): joint, velocity, bone.

The implementation lives in core.models.encoders (the runtime's ``Encoders.encode`` builds the view
itself, and core never imports training); this module is the training side's name for it.

``make_view(features, view, stats=None)``: (B, T, 134) NORMALISED features -> (B, T, NUM_NODES=22, C=8)

- nodes 0..20 are BODY_JOINTS (Hips first), node 21 (ROOT_NODE) the root node;
- joint: 6D local rotation of each joint (channels 0..5, zeros in 6..7); the root node carries
  [height, planar vx, planar vz, heading velocity, heel L, toe L, heel R, toe R];
- velocity: temporal difference of the joint view (frame 0 repeats frame 1);
- bone: each joint's 6D orientation in the heading-free body frame (forward kinematics of the
  de-normalised local rotations: needs ``stats``, dict(mean, std) of the normalisation), root node as
  in the joint view. Equal to the joint view on Hips only.

Pure torch, no gradient needed (the views are inputs).
"""

from __future__ import annotations

from core.models.encoders import NODE_CHANNELS, NODE_NAMES, NUM_NODES, ROOT_NODE, VIEWS, make_view, view_channels

__all__ = ["NODE_CHANNELS", "NODE_NAMES", "NUM_NODES", "ROOT_NODE", "VIEWS", "make_view", "view_channels"]
