"""The rig description of an armature: its rest skeleton in the world frame plus the bones that play
the canonical joints.

The skeleton is taken in the armature object's world frame (core.retarget.object_transform), so a
rig imported turned or scaled (FBX, glTF) or parented to a rotated empty is read as it stands in the
viewport; its up axis is read off the rest pose (hips to head) and its floor off the lowest point of
its feet (bone heads and tails), so rigs without toe bones stand on their soles, not their ankles.
The mapping is detected from names and structure (core.retarget.matching) and every joint the user
set by hand on the armature (``armature.motion_style_mapping``) overrides the detected bone. The
panel shows the result and the request carries it (Rig.to_json), and the rig goes through the same
check the runtime makes (core.retarget.retarget.check_rig) before any request is sent, so what the
artist sees is what the runtime retargets with.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from . import action_io
from .core.motion.motion import Motion
from .core.motion.skeleton import Skeleton
from .core.ops.rotations import identity_quat
from .core.retarget.matching import detect_mapping
from .core.retarget.object_transform import ObjectTransformError, points_to_world, to_world
from .core.retarget.presets import preset_rig
from .core.retarget.retarget import check_rig, raised_legs, standing_rig
from .core.retarget.rig import BODY_JOINTS, REQUIRED_JOINTS, Rig, RigError, detect_up_axis, up_vector

WORLD_UP = "Z"  # Blender's world: the up axis of rigs whose rest pose carries its own rotations
FOOT_JOINTS = ("Foot_L", "Foot_R", "Toes_L", "Toes_R")


@dataclass
class RigSetup:
    """What the panel shows and the request sends for one armature.

    preset: the detected preset name, or None; mapping: joint -> bone (detected and set by hand);
    found_by: joint -> "preset" / "name" / "structure" / "hand"; manual: the joints set by hand;
    missing: required joints without a bone; bad: hand-set joints naming a bone the armature lacks;
    rig: the usable Rig, or None when something is wrong (error says what and how to fix it)."""

    preset: str | None
    mapping: dict[str, str]
    found_by: dict[str, str] = field(default_factory=dict)
    manual: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)
    bad: dict[str, str] = field(default_factory=dict)
    unmapped_bones: list[str] = field(default_factory=list)
    rig: Rig | None = None
    error: str = ""


def world_matrix(obj) -> np.ndarray:
    return np.array(obj.matrix_world, dtype=np.float64)


def armature_skeleton(obj, rest: dict | None = None) -> Skeleton:
    """The armature's rest skeleton in the world frame; ``rest``: action_io.rest_skeleton's (or
    read_action's) dict when the caller has it already."""
    rest = rest or action_io.rest_skeleton(obj)
    parents = rest["parents"]
    what = f"armature object {obj.name!r}"
    _, offsets = to_world(parents, identity_quat(parents.shape), rest["offsets"], world_matrix(obj), what)
    return Skeleton(tuple(rest["bone_names"]), tuple(int(p) for p in parents), offsets)


def feet_floor(obj, rest: dict, mapping: dict[str, str], up_axis: str) -> float | None:
    """Height of the lowest point of the mapped feet and toes (heads and tails) along the up axis."""
    index = {n: i for i, n in enumerate(rest["bone_names"])}
    feet = [index[mapping[j]] for j in FOOT_JOINTS if j in mapping]
    if not feet:
        return None
    points = points_to_world(np.concatenate([rest["heads"][feet], rest["tails"][feet]]), world_matrix(obj))
    return float((points @ up_vector(up_axis)).min())


def rig_setup(obj, rest: dict | None = None) -> RigSetup:
    """Detect and combine the mapping of armature ``obj``; never raises for a bad rig."""
    rest = rest or action_io.rest_skeleton(obj)
    try:
        skeleton = armature_skeleton(obj, rest)
    except ObjectTransformError as e:
        return RigSetup(None, {}, error=str(e))
    detected = detect_mapping(skeleton)
    mapping_props = getattr(obj.data, "motion_style_mapping", None)
    overrides = mapping_props.overrides() if mapping_props is not None else {}
    names = set(skeleton.names)
    bad = {j: b for j, b in overrides.items() if b not in names}
    manual = {j: b for j, b in overrides.items() if j not in bad}
    # a bone set by hand for one joint is no longer the detected bone of another
    mapping = {j: b for j, b in detected.mapping.items() if b not in manual.values()}
    mapping.update(manual)
    mapping = {j: mapping[j] for j in BODY_JOINTS if j in mapping}
    found_by = {j: ("hand" if j in manual else detected.found_by.get(j, "name")) for j in mapping}
    setup = RigSetup(detected.preset, mapping, found_by, set(manual), bad=bad)
    setup.missing = [j for j in REQUIRED_JOINTS if j not in mapping]
    used = set(mapping.values())
    setup.unmapped_bones = [n for n in skeleton.names if n not in used]
    if bad:
        setup.error = "; ".join(f"{j}: armature {obj.name!r} has no bone {b!r}" for j, b in sorted(bad.items()))
        return setup
    try:
        setup.rig = _checked_rig(obj, rest, skeleton, mapping, detected.preset)
    except RigError as e:
        setup.error = str(e)
    return setup


def _checked_rig(obj, rest, skeleton, mapping, preset) -> Rig:
    """The Rig of a complete mapping with its up axis and floor, through the runtime's own check."""
    name = preset or obj.name
    rest_rotations = None if preset is None else preset_rig(preset, skeleton, WORLD_UP).rest_rotations
    rig = Rig(skeleton, mapping, rest_rotations=rest_rotations, up_axis=WORLD_UP, name=name)
    if rest_rotations is None:  # a rest pose that is a pose: it shows where up is, and where the soles are
        up = detect_up_axis(skeleton, mapping)
        rig = _standing(replace(rig, up_axis=up, floor=feet_floor(obj, rest, mapping, up)), obj)
    check_rig(rig)
    return rig


def _standing(rig: Rig, obj) -> Rig:
    """The rig stood as the armature's action shows (core.retarget.retarget.standing_rig) when its
    legs point up at rest (a BVH imported with its zero pose as the rest pose, as Bandai's and
    Character Creator's are); as it is otherwise, or without an action (check_rig then says why).
    The soles measured at rest were in the air, so the stood rig's floor is its lowest foot joint
    (as for a BVH file's rig). The keys alone are read: the panel calls this while drawing."""
    action = obj.animation_data.action if obj.animation_data else None
    if action is None or not raised_legs(rig):
        return rig
    data = action_io.read_action(obj, action, evaluate=False)
    rotations, translations = to_world(data["parents"], data["rotations"], data["translations"], world_matrix(obj))
    return replace(standing_rig(rig, Motion(rig.skeleton, rotations, translations, data["fps"])), floor=None)


def require_rig(obj, rest: dict | None = None) -> Rig:
    """The armature's Rig, or a ValueError that says what is wrong and where to fix it."""
    setup = rig_setup(obj, rest)
    if setup.rig is None:
        raise ValueError(
            f"armature {obj.name!r} cannot be retargeted: {setup.error} "
            "(set the bones in the Motion Style tab > Bone Mapping)"
        )
    return setup.rig
