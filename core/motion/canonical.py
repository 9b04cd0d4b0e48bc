"""The canonical skeleton: the 22-joint Bandai Namco rig that the model always sees.

Any other rig reaches the model through retargeting (core.retarget). Offsets are the dataset's
(centimetres, Y-up, bone-local axes along +X on the left side and -X on the right).
"""

from __future__ import annotations

import numpy as np

from .skeleton import ROOT_CHANNELS, Skeleton

_JOINTS = (
    ("joint_Root", -1, (0.0, 0.0, 0.0)),
    ("Hips", 0, (0.0, 93.3139, 0.0)),
    ("Spine", 1, (15.7357, 0.0, 0.0)),
    ("Chest", 2, (8.9846, -0.4062, 0.0)),
    ("Neck", 3, (16.3773, 0.0, 0.0)),
    ("Head", 4, (6.4567, 0.0, 0.0)),
    ("Shoulder_L", 3, (12.9942, -0.2427, 4.9804)),
    ("UpperArm_L", 6, (5.3481, 0.0, 0.0)),
    ("LowerArm_L", 7, (24.3286, 0.0, 0.0)),
    ("Hand_L", 8, (22.2916, 0.0, 0.0)),
    ("Shoulder_R", 3, (12.9945, -0.2427, -4.9804)),
    ("UpperArm_R", 10, (-5.3481, 0.0, 0.0)),
    ("LowerArm_R", 11, (-24.3289, 0.0003, 0.0)),
    ("Hand_R", 12, (-22.2915, -0.0001, 0.0)),
    ("UpperLeg_L", 1, (-2.1925, -6.4694, 0.0)),
    ("LowerLeg_L", 14, (39.0811, 0.0, 0.0)),
    ("Foot_L", 15, (40.9854, 0.0, 0.0)),
    ("Toes_L", 16, (11.7543, 0.0, 0.0)),
    ("UpperLeg_R", 1, (-2.1925, 6.4694, 0.0)),
    ("LowerLeg_R", 18, (-39.0811, -0.0023, -0.0402)),
    ("Foot_R", 19, (-40.9854, 0.0, 0.0)),
    ("Toes_R", 20, (-11.7543, 0.0, 0.0)),
)

JOINT_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _JOINTS)
PLACEMENT_ROOT = "joint_Root"  # a ground-level placement joint; the body's root is the pelvis
PELVIS = "Hips"

# DESIGN §5: the six body groups that each take a style weight and may take their own reference.
BODY_GROUPS: dict[str, tuple[str, ...]] = {
    "root": (),  # the root trajectory: height, planar velocity and heading of the pelvis
    "torso": ("Hips", "Spine", "Chest", "Neck", "Head"),
    "left_arm": ("Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L"),
    "right_arm": ("Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R"),
    "left_leg": ("UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L"),
    "right_leg": ("UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R"),
}

# Joints whose ground contact is labelled: heel (ankle) and toe of each foot, in feature order.
CONTACT_JOINTS: tuple[str, ...] = ("Foot_L", "Toes_L", "Foot_R", "Toes_R")
HIP_JOINTS = ("UpperLeg_L", "UpperLeg_R")
SHOULDER_JOINTS = ("UpperArm_L", "UpperArm_R")

# Mirroring across the sagittal plane (world X -> -X) swaps each _L joint with its _R twin. In local
# space it is R'_twin = T_parent R_joint T_joint with these reflections: the torso's lateral axis is
# local Z (the pelvis's is local Y), and the limbs' local frames are full inversions of each other.
# Fitted once on dataset-2 walk takes (the choice that makes a mirrored left limb's mean rotation
# match the right limb's); each also satisfies T @ offset(child twin) == offset(child) exactly.
MIRROR_REFLECTIONS: dict[str, tuple[int, int, int]] = {
    "Hips": (1, -1, 1),
    **{name: (1, 1, -1) for name in ("Spine", "Chest", "Neck", "Head")},
    **{name: (-1, -1, -1) for group in ("left_arm", "right_arm", "left_leg", "right_leg") for name in BODY_GROUPS[group]},
}


def mirror_name(name: str) -> str:
    """The name of the joint's left/right twin (itself for centre joints)."""
    if name.endswith("_L"):
        return name[:-2] + "_R"
    if name.endswith("_R"):
        return name[:-2] + "_L"
    return name


def canonical_skeleton() -> Skeleton:
    """The canonical rig, with the Bandai files' channel layout (6 channels on every joint)."""
    return Skeleton(
        names=JOINT_NAMES,
        parents=tuple(p for _, p, _ in _JOINTS),
        offsets=np.array([o for _, _, o in _JOINTS]),
        channels=tuple(ROOT_CHANNELS for _ in _JOINTS),
        end_sites={JOINT_NAMES.index(n): np.zeros(3) for n in ("Head", "Hand_L", "Hand_R", "Toes_L", "Toes_R")},
    )
