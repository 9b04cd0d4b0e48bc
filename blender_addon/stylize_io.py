"""Blender data <-> one stylize request: read the source and the references, build the request,
and write a finished job's result back as a new action. Shared by the operator and the batch API so
both behave the same; only ``apply_result`` changes the file, so the operator can run it as its
one finishing step (one undo step).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import action_io, constrained_keys, ik_poles, rigify_limbs
from .core import protocol
from .core.ops.kinematics import forward_kinematics
from .core.retarget.object_transform import from_world, to_world
from .rig_setup import require_rig, world_matrix

MAX_NAME = 63  # Blender's ID name length


@dataclass
class Take:
    """An action played by an armature: what a source or a reference is."""

    obj: object
    action: object

    @property
    def label(self) -> str:
        return self.action.name


@dataclass
class PreparedRequest:
    """A request ready to send plus what applying its result needs."""

    request: tuple
    source: Take
    reference: Take
    bone_names: list[str]
    parents: np.ndarray
    frames: np.ndarray
    slot_name: str | None
    result_name: str
    warnings: list[str] = field(default_factory=list)
    pole_anchors: dict[str, str] = field(default_factory=dict)
    source_world: tuple | None = None  # the source's (rotations, translations), world frame, for the poles
    source_sent: tuple | None = None  # of a constrained armature: the arrays sent (float32) ...
    source_keyed: tuple | None = None  # ... and those its keys alone give, for the bones left unchanged
    mapped_bones: list[str] = field(default_factory=list)  # the bones that play canonical joints
    switches: dict[str, float] = field(default_factory=dict)  # property path -> value keyed on the result

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def take_of(obj, action=None, what="source") -> Take:
    """``obj``'s ``action`` (default: its current one) with a clear error when there is none."""
    if obj is None or getattr(obj, "type", None) != "ARMATURE":
        raise ValueError(f"the {what} must be an armature object, got {getattr(obj, 'name', obj)!r}")
    if action is None:
        action = obj.animation_data.action if obj.animation_data else None
        if action is None:
            raise ValueError(f"the {what} armature {obj.name!r} has no action: pick one or assign one")
    return Take(obj, action)


def _wire_motion(take: Take, what: str, read: dict | None = None, frame_range=None):
    """(rig json, fps, rotations, translations) of a take in its armature's world frame, and its
    read_action data. ``read``: takes read before, by (object, action) name, so a batch reads its
    shared references once; ``frame_range``: (first, last) frame, default the action's range."""
    key = (take.obj.name, take.action.name, frame_range)
    if read is not None and key in read:
        return read[key]
    rig = require_rig(take.obj)  # before reading: a rig that cannot be used fails without work
    fk_controls = rigify_limbs.fk_controls(take.obj)
    stand_ins = {control: shown_by for control, (shown_by, _) in fk_controls.items()}
    data = action_io.read_action(take.obj, take.action, *(frame_range or (None, None)), stand_ins=stand_ins)
    data["mapped_bones"] = list(rig.mapping.values())
    # the IK/FK switches of the limbs whose FK controls the result keys
    data["switches"] = {path: rigify_limbs.FK for control, (_, path) in fk_controls.items() if control in rig.mapping.values()}
    if len(data["frames"]) < 2:
        raise ValueError(f"the {what} action {take.action.name!r} has fewer than 2 frames in its range")
    rotations, translations = to_world(data["parents"], data["rotations"], data["translations"], world_matrix(take.obj))
    data["world"] = rotations, translations
    wire = (rig.to_json(), data["fps"], rotations.astype(np.float32), translations.astype(np.float32))
    if data["evaluated"]:
        data["world_keyed"] = to_world(data["parents"], *data["keyed"], world_matrix(take.obj))
    if read is not None:
        read[key] = wire, data
    return wire, data


def cleanup_options(foot_cleanup: bool, contact_height=None, contact_speed=None) -> dict:
    """The request options of the foot-contact cleanup (thresholds left out use the runtime's)."""
    out = {"foot_cleanup": bool(foot_cleanup)}
    if contact_height is not None:
        out["contact_height"] = float(contact_height)
    if contact_speed is not None:
        out["contact_speed"] = float(contact_speed)
    return out


def result_name(source: Take, reference: Take) -> str:
    """``<source> [<style>]``, cut to Blender's name length keeping the style visible."""
    style = f" [{reference.label}]"
    return source.label[: max(8, MAX_NAME - len(style))] + style


def prepare(
    source: Take,
    reference: Take,
    group_references: dict | None = None,
    weights: dict | None = None,
    options: dict | None = None,
    name: str | None = None,
    read: dict | None = None,
    frame_range: tuple[float, float] | None = None,
) -> PreparedRequest:
    """Read every take (nothing is written) and build the request (core.protocol). ``read``: a
    dict shared by the requests of a batch, so takes they share are read once; ``frame_range``:
    the source's (first, last) frame, default its action's range."""
    content, data = _wire_motion(source, "source", read, frame_range)
    ref_wire, ref_data = _wire_motion(reference, "style reference", read)
    groups = {}
    warnings = list(data["warnings"]) + list(ref_data["warnings"])
    for group, take in (group_references or {}).items():
        groups[group], g_data = _wire_motion(take, f"{group} reference", read)
        warnings += g_data["warnings"]
    request = protocol.stylize_request(None, content, ref_wire, groups, weights or {}, options or {})
    anchors = ik_poles.pole_anchors(source.obj)
    switches = data["switches"]
    if switches:
        warnings.append(
            f"armature {source.obj.name!r} is a generated Rigify rig: the result keys its limbs' FK controls "
            f"and holds {rigify_limbs.SWITCH_PROPERTY} at {rigify_limbs.FK:g} (FK) on {len(switches)} limbs"
        )
    return PreparedRequest(
        request=request,
        source=source,
        reference=reference,
        bone_names=list(data["bone_names"]),
        parents=np.asarray(data["parents"]),
        frames=np.asarray(data["frames"]),
        slot_name=data["slot_name"],
        result_name=name or result_name(source, reference),
        warnings=sorted(set(warnings)),
        pole_anchors=anchors,
        source_world=data["world"] if anchors else None,
        source_sent=content[2:] if data["evaluated"] else None,
        source_keyed=data.get("world_keyed"),
        mapped_bones=data["mapped_bones"],
        switches=switches,
    )


def apply_result(prepared: PreparedRequest, result: dict, push_to_nla: bool = False, assign: bool = True):
    """Key the job's result onto a NEW action for the source armature, on the source's own key
    times and in its slot (the source action is only protected with a fake user when it would lose
    its last user); returns the new action."""
    rotations = np.asarray(result["rotations"], dtype=np.float64)
    translations = np.asarray(result["translations"], dtype=np.float64)
    expected = (prepared.num_frames, len(prepared.bone_names))
    if rotations.shape[:2] != expected:
        raise ValueError(f"the runtime returned {rotations.shape[:2]} frames x bones, expected {expected}")
    obj = prepared.source.obj
    if prepared.pole_anchors:  # evaluated poses on both sides, before any bone gets its keys back
        rotations, translations = ik_poles.follow_anchors(
            prepared.parents, prepared.bone_names, prepared.pole_anchors, prepared.source_world, (rotations, translations)
        )
    solve = []
    if prepared.source_keyed is not None:  # constrained: some mapped bones may hang from helpers
        rest = action_io.rest_skeleton(obj)
        solve = constrained_keys.keyable_bones(obj, rest, prepared.mapped_bones)
    if solve:  # where each bone must end up, whatever its constrained parents do
        targets = forward_kinematics(prepared.parents, *from_world(prepared.parents, rotations, translations, world_matrix(obj)))
    if prepared.source_keyed is not None:
        rotations, translations = _unchanged_bones_keyed(prepared, rotations, translations)
    rotations, translations = from_world(prepared.parents, rotations, translations, world_matrix(obj))
    action = action_io.write_action(
        obj,
        prepared.result_name,
        rotations,
        translations,
        prepared.bone_names,
        prepared.frames[0],
        frames=prepared.frames,
        slot_name=prepared.slot_name,
        locations="all" if solve else "needed",
        assign=assign,
        copy_from=prepared.source.action,
        properties=prepared.switches,
    )
    if solve:
        report = constrained_keys.key_to_targets(obj, action, rest, prepared.frames, targets, solve)
        if report.unresolved:
            prepared.warnings.insert(
                0,
                f"{len(report.unresolved)} bones of {obj.name!r} miss their stylized pose by up to "
                f"{report.position_error:.2%} of the rig's height / {report.angle_error:.3f} rad after "
                f"{report.passes} passes: their constraints override keys ({', '.join(report.unresolved[:4])})",
            )
    if not assign:
        action.use_fake_user = True  # else an unassigned result is dropped when the file is saved
    if push_to_nla:
        push_nla_track(obj, action)
    return action


def _unchanged_bones_keyed(prepared: PreparedRequest, rotations, translations):
    """A constrained armature's bones that the runtime returned exactly as sent (unmapped, weight 0)
    get the source's keyed values back: keying their evaluated pose instead would let IK solve once
    more on top of its own solution, and the weight-0 guarantee would hold only to the solver's
    tolerance."""
    sent_rot, sent_trans = prepared.source_sent
    same = np.all(rotations == sent_rot, axis=(0, 2)) & np.all(translations == sent_trans, axis=(0, 2))
    rotations, translations = rotations.copy(), translations.copy()
    rotations[:, same], translations[:, same] = prepared.source_keyed[0][:, same], prepared.source_keyed[1][:, same]
    return rotations, translations


def push_nla_track(obj, action):
    """A new muted NLA track holding ``action`` from its first frame (the active action stays)."""
    ad = obj.animation_data or obj.animation_data_create()
    track = ad.nla_tracks.new()
    track.name = action.name
    strip = track.strips.new(action.name, int(action.frame_range[0]), action)
    if action_io.slotted() and hasattr(strip, "action_slot") and len(action.slots):
        strip.action_slot = action.slots[0]
    track.mute = True
    return track
