"""The batch API for Blender's Python console and scripts.

    import motion_style_transfer as mst            # the add-on's package (see the README)
    walk = bpy.data.objects["Armature"]
    old = bpy.data.objects["old_man_walk"]          # an armature playing the style reference
    new = mst.stylize(walk, reference=old, weights={"left_leg": 0, "right_leg": 0})
    many = mst.stylize_many(walk, [a for a in bpy.data.actions if a.name.startswith("walk")], old)

Every call blocks until its result is keyed, shares the session's runtime server with the
operator (started once), never changes a source action, and raises ``StylizeError`` (kind,
message, server log tail) when the runtime fails; bad arguments raise ValueError.
"""

from __future__ import annotations

import bpy

from . import session, stylize_io
from .action_io import action_fcurves
from .client import ServerError
from .job import DONE, StylizeJob
from .preferences import addon_prefs
from .settings import GROUP_NAMES


class StylizeError(RuntimeError):
    """The runtime could not stylize: ``kind`` (e.g. died, timeout, bad_request, cancelled) and the
    message with the server's log tail."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _take(value, what: str) -> stylize_io.Take:
    """An armature object (its current action), an (armature, action) pair, or an action that some
    armature in the file plays."""
    if isinstance(value, tuple) and len(value) == 2:
        return stylize_io.take_of(value[0], value[1], what)
    if isinstance(value, bpy.types.Object):
        return stylize_io.take_of(value, None, what)
    if isinstance(value, bpy.types.Action):
        for obj in bpy.data.objects:
            if obj.type == "ARMATURE" and _plays(obj, value):
                return stylize_io.take_of(obj, value, what)
        raise ValueError(
            f"no armature in the file plays the {what} action {value.name!r}: pass (armature, action) instead"
        )
    raise ValueError(f"the {what} must be an armature object, an action or (armature, action); got {value!r}")


def _plays(obj, action) -> bool:
    """Whether ``action`` animates bones of armature ``obj`` (its F-curves name them)."""
    bones = obj.data.bones
    for fc in action_fcurves(obj, action):
        path = fc.data_path
        if path.startswith('pose.bones["'):
            return path[12:].split('"]', 1)[0] in bones
    return False


def _check_groups(groups) -> None:
    unknown = sorted(set(groups) - set(GROUP_NAMES))
    if unknown:
        raise ValueError(f"unknown body groups {unknown}; groups are {list(GROUP_NAMES)}")


def stylize(
    obj,
    source=None,
    reference=None,
    weights=None,
    group_references=None,
    *,
    foot_cleanup=True,
    contact_height=None,
    contact_speed=None,
    name=None,
    assign=True,
    push_to_nla=False,
    options=None,
    frame_range=None,
):
    """Stylize one action of armature ``obj`` and return the new action.

    source: an action ``obj`` plays (default: its current action); reference: the style, as an
    armature object (its current action), (armature, action) or an action some armature plays;
    weights: {group: weight} (groups root, torso, left_arm, right_arm, left_leg, right_leg; missing
    ones are 1); group_references: {group: reference} for groups that take their own style;
    name: the new action's name (default "<source> [<style>]"); assign: make it the armature's
    action; push_to_nla: also put it on a new muted NLA track; frame_range: (first, last) frame of
    the source to stylize (default its action's range)."""
    results = stylize_many(
        obj,
        [source],
        reference,
        weights,
        group_references,
        foot_cleanup=foot_cleanup,
        contact_height=contact_height,
        contact_speed=contact_speed,
        names=None if name is None else [name],
        assign=assign,
        push_to_nla=push_to_nla,
        options=options,
        frame_range=frame_range,
    )
    return results[0]


def stylize_many(
    obj,
    sources,
    reference,
    weights=None,
    group_references=None,
    *,
    foot_cleanup=True,
    contact_height=None,
    contact_speed=None,
    names=None,
    assign=False,
    push_to_nla=False,
    options=None,
    on_progress=None,
    frame_range=None,
):
    """Stylize several actions of ``obj`` with one reference through one runtime server; returns
    the new actions in order. All inputs are checked and read before the first request, so a bad
    one fails before any work. ``assign`` (default False here) assigns the last result; results
    left unassigned get a fake user so that saving keeps them. ``on_progress(index, job)`` is
    called while each one runs; ``frame_range``: (first, last) frame of every source."""
    if obj is None or getattr(obj, "type", None) != "ARMATURE":
        raise ValueError(f"stylize needs an armature object, got {getattr(obj, 'name', obj)!r}")
    sources = list(sources)
    if not sources:
        raise ValueError("no source actions given")
    if names is not None and len(names) != len(sources):
        raise ValueError(f"{len(names)} names for {len(sources)} sources")
    ref = _take(reference, "style reference")
    groups = {g: _take(r, f"{g} reference") for g, r in (group_references or {}).items()}
    _check_groups(groups)
    weights = dict(weights or {})
    _check_groups(weights)
    weights = {g: float(w) for g, w in weights.items()}
    opts = {**stylize_io.cleanup_options(foot_cleanup, contact_height, contact_speed), **(options or {})}
    read = {}  # the reference and group references are read once for the whole batch
    prepared = [
        stylize_io.prepare(
            stylize_io.take_of(obj, action, "source"),
            ref,
            groups,
            weights,
            opts,
            None if names is None else names[i],
            read,
            None if frame_range is None else (float(frame_range[0]), float(frame_range[1])),
        )
        for i, action in enumerate(sources)
    ]
    try:
        client = session.client(addon_prefs())
    except ServerError as e:
        raise StylizeError(e.kind, str(e)) from None
    results = []
    for i, request in enumerate(prepared):
        job = StylizeJob()
        job.start(client, request.request)
        while not job.finished:
            job.wait(timeout=0.25)
            if on_progress is not None:
                on_progress(i, job)
        if job.state != DONE:
            raise StylizeError(job.error["kind"] if job.error else job.state, job.describe_error() or job.state)
        last = i == len(prepared) - 1
        results.append(stylize_io.apply_result(request, job.result, push_to_nla, assign=assign and last))
    return results
