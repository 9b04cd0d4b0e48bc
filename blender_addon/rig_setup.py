"""The rig description of an armature: its rest skeleton plus the bones that play the canonical joints.

The mapping is detected from the bone names (a preset such as Mixamo or Rigify, else a fuzzy match,
core.retarget.matching) and every joint the user set by hand on the armature
(``armature.motion_style_mapping``) overrides the detected bone. The panel shows the result and the
request carries it (Rig.to_json), so what the artist sees is what the runtime retargets with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import action_io
from .core.motion.skeleton import Skeleton
from .core.retarget.matching import match_bones
from .core.retarget.presets import detect_preset, preset_rig
from .core.retarget.rig import BODY_JOINTS, REQUIRED_JOINTS, Rig, RigError

UP_AXIS = "Z"  # action_io reads in armature space: Z up


@dataclass
class RigSetup:
    """What the panel shows and the request sends for one armature.

    preset: the detected preset name, or None for a fuzzy match; mapping: joint -> bone (detected
    and set by hand); manual: the joints set by hand; missing: required joints without a bone;
    bad: hand-set joints naming a bone the armature lacks; rig: the usable Rig, or None when
    something is missing (error says what)."""

    preset: str | None
    mapping: dict[str, str]
    manual: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)
    bad: dict[str, str] = field(default_factory=dict)
    unmapped_bones: list[str] = field(default_factory=list)
    rig: Rig | None = None
    error: str = ""


def armature_skeleton(obj, rest: dict | None = None) -> Skeleton:
    """The armature's rest skeleton; ``rest``: action_io.rest_skeleton's (or read_action's) dict when
    the caller has it already."""
    rest = rest or action_io.rest_skeleton(obj)
    return Skeleton(tuple(rest["bone_names"]), tuple(int(p) for p in rest["parents"]), rest["offsets"])


def rig_setup(obj, rest: dict | None = None) -> RigSetup:
    """Detect and combine the mapping of armature ``obj``; never raises for a bad mapping."""
    skeleton = armature_skeleton(obj, rest)
    preset = detect_preset(skeleton.names)
    rest_rotations = None
    if preset is not None:
        detected_rig = preset_rig(preset, skeleton, UP_AXIS)
        detected, rest_rotations = dict(detected_rig.mapping), detected_rig.rest_rotations
    else:
        detected, _ = match_bones(skeleton)
    mapping_props = getattr(obj.data, "motion_style_mapping", None)
    overrides = mapping_props.overrides() if mapping_props is not None else {}
    names = set(skeleton.names)
    bad = {j: b for j, b in overrides.items() if b not in names}
    manual = {j: b for j, b in overrides.items() if j not in bad}
    # a bone set by hand for one joint is no longer the detected bone of another
    mapping = {j: b for j, b in detected.items() if b not in manual.values()}
    mapping.update(manual)
    mapping = {j: mapping[j] for j in BODY_JOINTS if j in mapping}
    setup = RigSetup(preset, mapping, set(manual), bad=bad)
    setup.missing = [j for j in REQUIRED_JOINTS if j not in mapping]
    used = set(mapping.values())
    setup.unmapped_bones = [n for n in skeleton.names if n not in used]
    if bad:
        setup.error = "; ".join(f"{j}: armature {obj.name!r} has no bone {b!r}" for j, b in sorted(bad.items()))
        return setup
    try:
        setup.rig = Rig(skeleton, mapping, rest_rotations=rest_rotations, up_axis=UP_AXIS, name=preset or obj.name)
    except RigError as e:
        setup.error = str(e)
    return setup


def require_rig(obj, rest: dict | None = None) -> Rig:
    """The armature's Rig, or a ValueError that says which joints to map by hand and where."""
    setup = rig_setup(obj, rest)
    if setup.rig is None:
        raise ValueError(
            f"armature {obj.name!r} cannot be retargeted: {setup.error} "
            "(set the bones in the Motion Style tab > Bone Mapping)"
        )
    return setup.rig
