"""Bone mappings of the rigs people bring most often, recognised from bone names alone.

Presets are exact where fuzzy matching (core.retarget.matching) has to guess, and the Bandai preset
also carries the rig's rest pose (its zero pose has every bone along +X, so it cannot be aligned).
Rest skeletons of the rigs we ship for tests and defaults live in ``rigs/`` (see rigs/README.md).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..io.bvh import read_bvh
from ..motion.canonical import canonical_skeleton
from ..motion.skeleton import Skeleton, ancestors
from ..ops.rotations import axis_quat, identity_quat, matrix_to_quat, quat_conj, quat_mul
from .rig import BODY_JOINTS, UP_AXIS_TO_Y_UP, Rig, RigError

RIGS_DIR = Path(__file__).resolve().parent / "rigs"


def _limbs(names: dict[str, str], left: str, right: str) -> dict[str, str]:
    """Both sides of a limb mapping written once with a ``{side}`` placeholder."""
    out = {}
    for joint, bone in names.items():
        out[f"{joint}_L"] = bone.format(side=left)
        out[f"{joint}_R"] = bone.format(side=right)
    return out


_ANGLO_LIMBS = _limbs(  # Mixamo and CMU share these names
    {
        "Shoulder": "{side}Shoulder", "UpperArm": "{side}Arm", "LowerArm": "{side}ForeArm", "Hand": "{side}Hand",
        "UpperLeg": "{side}UpLeg", "LowerLeg": "{side}Leg", "Foot": "{side}Foot", "Toes": "{side}ToeBase",
    },
    "Left",
    "Right",
)
_METARIG = {
    "Hips": "spine", "Spine": "spine.001", "Chest": "spine.003", "Neck": "spine.004", "Head": "spine.006",
    **_limbs(
        {
            "Shoulder": "shoulder.{side}", "UpperArm": "upper_arm.{side}", "LowerArm": "forearm.{side}",
            "Hand": "hand.{side}", "UpperLeg": "thigh.{side}", "LowerLeg": "shin.{side}", "Foot": "foot.{side}",
            "Toes": "toe.{side}",
        },
        "L",
        "R",
    ),
}

_RIGIFY_CONTROLS = {  # the animator's controls of a generated Rigify rig, FK limbs
    "Hips": "torso", "Spine": "chest", "Neck": "neck", "Head": "head",
    **_limbs(
        {
            "Shoulder": "shoulder.{side}", "UpperArm": "upper_arm_fk.{side}", "LowerArm": "forearm_fk.{side}",
            "Hand": "hand_fk.{side}", "UpperLeg": "thigh_fk.{side}", "LowerLeg": "shin_fk.{side}",
            "Foot": "foot_fk.{side}",
        },
        "L",
        "R",
    ),
    **{f"Toes_{s}": (f"toe_fk.{s}", f"toe.{s}") for s in "LR"},  # Blender 3.x and later; older Rigify
}

# canonical joint -> bone name (or alternatives, the first present taken), without any prefix the
# rig's bones all share ("mixamorig:", "mixamorig_", "Character1_" and the like).
# Rigify: a generated rig keys its controls; its DEF and ORG bones follow them through constraints,
# so they come first only in rigs that have no controls (DEF or ORG bones exported on their own).
# Its "torso" control carries the whole body and "chest" the body above the torso pivot, so they
# play the pelvis and the spine; "hips" turns the pelvis alone and stays as the base animation has it.
# CMU: LowerBack and Neck sit on their parent's joint, so Spine and Neck1 are the bones whose
# segments match the canonical spine and neck; LHipJoint/RHipJoint stay with the pelvis.
PRESETS: dict[str, dict[str, str | tuple[str, ...]]] = {
    "rigify_controls": _RIGIFY_CONTROLS,
    "rigify_def": {joint: f"DEF-{bone}" for joint, bone in _METARIG.items()},
    "rigify_org": {joint: f"ORG-{bone}" for joint, bone in _METARIG.items()},
    "metarig": _METARIG,
    "mixamo": {"Hips": "Hips", "Spine": "Spine", "Chest": "Spine2", "Neck": "Neck", "Head": "Head", **_ANGLO_LIMBS},
    "cmu": {"Hips": "Hips", "Spine": "Spine", "Chest": "Spine1", "Neck": "Neck1", "Head": "Head", **_ANGLO_LIMBS},
    "bandai": {joint: joint for joint in BODY_JOINTS},
}
BUNDLED_RIGS = ("bandai", "mixamo", "rigify_def", "metarig")


def strip_namespace(bone: str) -> str:
    """``Armature|mixamorig1:Hips`` -> ``Hips``: exporters prefix names with object or file names."""
    return bone.rsplit("|", 1)[-1].rsplit(":", 1)[-1]


def _alternatives(bone: str | tuple[str, ...]) -> tuple[str, ...]:
    return (bone,) if isinstance(bone, str) else bone


def preset_bones(name: str, bone_names, parents=None) -> dict[str, str] | None:
    """Canonical joint -> bone of preset ``name`` on these bones, or None when some joint has none of
    its bones. The bones may share any prefix beyond a namespace (``mixamorig_Hips``), found from the
    pelvis bone. With ``parents`` (the skeleton's parent indices) a preset whose chest is not where
    both arms branch off is refused: Mixamo's names on a four-bone spine (LAFAN1: Spine..Spine3) would
    put the chest one bone low."""
    stripped = [strip_namespace(b) for b in bone_names]
    actual = dict(zip(stripped, bone_names))
    preset = PRESETS[name]
    for prefix in _shared_prefixes(stripped, _alternatives(preset["Hips"])):
        found = {}
        for joint, bones in preset.items():
            bone = next((prefix + b for b in _alternatives(bones) if prefix + b in actual), None)
            if bone is None:
                break
            found[joint] = actual[bone]
        else:
            if parents is None or _chest_fits(found, list(bone_names), parents):
                return found
    return None


def _shared_prefixes(names: list[str], pelvis: tuple[str, ...]) -> list[str]:
    """The prefixes before the preset's pelvis bone among the names, the empty one first."""
    found = {n[: len(n) - len(b)] for n in names for b in pelvis if n.endswith(b)}
    return sorted(found, key=len)


def _chest_fits(found: dict[str, str], names: list[str], parents) -> bool:
    """Whether the mapped chest is the arms' nearest common ancestor (True when it is unmapped)."""
    if "Chest" not in found:
        return True
    left, right = (
        ancestors(parents, names.index(found.get(f"Shoulder_{side}", found[f"UpperArm_{side}"])))[1:] for side in "LR"
    )
    meet = next(b for b in left if b in set(right))
    return names[meet] == found["Chest"]


def detect_preset(bone_names, parents=None) -> str | None:
    """The first preset whose every joint has a bone (see preset_bones), else None."""
    names = list(bone_names)
    return next((name for name in PRESETS if preset_bones(name, names, parents) is not None), None)


def preset_rig(name: str, skeleton: Skeleton, up_axis: str = "Y") -> Rig:
    """The preset's rig description on a skeleton that has its bones (any shared prefix)."""
    mapping = preset_bones(name, skeleton.names)
    if mapping is None:
        raise RigError(f"the bones of preset {name!r} are not all in the skeleton")
    rest = bandai_rest_rotations(skeleton, up_axis) if name == "bandai" else None
    return Rig(skeleton, mapping, rest_rotations=rest, up_axis=up_axis, name=name)


def bundled_rig(name: str) -> Rig:
    """A preset on the rest skeleton we ship: the canonical rig, or rigs/<name>.bvh."""
    skeleton = canonical_skeleton() if name == "bandai" else read_bvh(RIGS_DIR / f"{name}.bvh").skeleton
    return preset_rig(name, skeleton)


@functools.cache
def canonical_rig() -> Rig:
    """The canonical rig: one shared instance (every retarget asks for it), its arrays read-only."""
    rig = bundled_rig("bandai")
    rig.rest_rotations.setflags(write=False)
    rig.skeleton.offsets.setflags(write=False)
    return rig


# The Bandai rig's rest pose: a T-pose facing +Z (Y up, the character's left along +X). Each joint's
# world frame is given by where its local X, Y and Z axes point, read off standing frames of the
# dataset (their pelvis, spine and leg frames match these within a few degrees, and raising the
# hanging arms sideways gives the arm frames). Feet and toes are pitched down from horizontal by
# their median angle over foot-contact frames of dataset-2 normal walks (39.6 and 23.0 degrees),
# so flat toes on the ground count as neutral; the clavicles are swept back by their mean angle
# relative to the chest over the same walks (18.4 degrees), where this skeleton's neutral lies.
_U, _D, _L, _R, _F, _B = (0, 1, 0), (0, -1, 0), (1, 0, 0), (-1, 0, 0), (0, 0, 1), (0, 0, -1)
_FOOT_PITCH_DEG, _TOES_PITCH_DEG, _CLAVICLE_SWEEP_DEG = 39.6, 23.0, 18.4
_BANDAI_REST_AXES = {
    "joint_Root": (_L, _U, _F),
    "Hips": (_U, _R, _F),
    **{j: (_U, _F, _L) for j in ("Spine", "Chest", "Neck", "Head")},
    **{f"{j}_L": (_L, _U, _F) for j in ("Shoulder", "UpperArm", "LowerArm", "Hand")},
    **{f"{j}_R": (_L, _D, _B) for j in ("Shoulder", "UpperArm", "LowerArm", "Hand")},
    **{f"{j}_L": (_D, _L, _F) for j in ("UpperLeg", "LowerLeg", "Foot", "Toes")},
    **{f"{j}_R": (_U, _L, _B) for j in ("UpperLeg", "LowerLeg", "Foot", "Toes")},
}


def _bandai_rest_frame(name: str) -> np.ndarray:
    q = matrix_to_quat(np.array(_BANDAI_REST_AXES[name], dtype=np.float64).T)
    pitch = {"Foot": _FOOT_PITCH_DEG, "Toes": _TOES_PITCH_DEG}.get(name[:-2])
    if pitch is not None:  # from straight down the leg to `pitch` below forward, about the left axis
        q = quat_mul(axis_quat("x", np.radians(pitch - 90.0)), q)
    if name in ("Shoulder_L", "Shoulder_R"):  # backwards about the up axis
        sweep = _CLAVICLE_SWEEP_DEG if name == "Shoulder_L" else -_CLAVICLE_SWEEP_DEG
        q = quat_mul(axis_quat("y", np.radians(sweep)), q)
    return q


def bandai_rest_rotations(skeleton: Skeleton, up_axis: str = "Y") -> np.ndarray:
    """(J, 4) local rotations that put a skeleton with the Bandai joint names in its rest T-pose
    (any extra bone keeps its zero rotation relative to its parent). A skeleton stored with another
    up axis (a BVH imported into Blender: Z up) has every joint frame turned with its coordinates,
    so the rotations are the Y-up ones conjugated into its axes."""
    if up_axis != "Y":
        to_axes = quat_conj(UP_AXIS_TO_Y_UP[up_axis])
        local = bandai_rest_rotations(skeleton)
        turn = np.broadcast_to(to_axes, local.shape)
        return quat_mul(quat_mul(turn, local), quat_conj(turn))
    world = identity_quat((skeleton.num_joints,))
    local = identity_quat((skeleton.num_joints,))
    for j, (name, p) in enumerate(zip(skeleton.names, skeleton.parents)):
        if name in _BANDAI_REST_AXES:
            world[j] = _bandai_rest_frame(name)
            local[j] = world[j] if p < 0 else quat_mul(quat_conj(world[p]), world[j])
        elif p >= 0:
            world[j] = world[p]
    return local
