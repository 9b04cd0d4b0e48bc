"""Action <-> arrays for the add-on: read an armature's action into the runtime's rig convention and
write runtime arrays back as a NEW action. Imports only bpy, mathutils, numpy and the standard
library (never torch) and the bundled core's quaternion math; the Blender-convention math at the top
(Euler modes, axis-angle) runs without bpy too (tests load this file as a top-level module).

Runtime convention (``core/retarget/rig.py``): the zero pose is the armature's rest pose with every
rest frame aligned to armature space (Z up, armature units). With rest matrix B = bone.matrix_local
(rotation b, head h) and pose-bone basis (rotation r, location l), Blender composes
    P_j = P_parent @ (B_parent^-1 @ B_j) @ Basis_j
so the world rotation P_j b_j^-1 = W_parent (b_j r_j b_j^-1): the runtime's LOCAL rotation is the
rest-conjugated basis rotation  q_j = b_j r_j b_j^-1  and the local translation is
t_j = (h_j - h_parent) + b_j l_j. Both are per bone (no forward kinematics needed) and exactly
invertible: r_j = b_j^-1 q_j b_j, l_j = b_j^-1 (t_j - offset_j). Valid for bones that inherit
rotation and scale (the default) and carry no pose scale; others are listed in result["warnings"].

Animation moves in bulk: keyframe ``co`` arrays via foreach_get/foreach_set, keyframe_points.add(n),
interpolation via foreach_set, never key by key. Blender 4.4+ (slotted actions: layers, strips,
channelbags; ``action.fcurves`` is gone in 5.0) and 4.2/4.3 (legacy ``action.fcurves``) are both
handled by branching on ``bpy.app.version``.
"""

from __future__ import annotations

import numpy as np

try:  # the math below is usable (and tested) without Blender
    import bpy
except ImportError:  # pragma: no cover - outside Blender
    bpy = None

try:  # inside the installed add-on, core is its subpackage
    from .core.ops import rotations
except ImportError:  # loaded as a top-level module with the repository on sys.path (tests, benchmarks)
    from core.ops import rotations

quat_mul, quat_conj, quat_rotate = rotations.quat_mul, rotations.quat_conj, rotations.quat_rotate
quat_to_matrix, matrix_to_quat = rotations.quat_to_matrix, rotations.matrix_to_quat

LINEAR, CONSTANT_IPO = 1, 0  # Keyframe.interpolation enum values (CONSTANT=0, LINEAR=1, BEZIER=2)
EULER_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")
_AXIS = {"X": 0, "Y": 1, "Z": 2}
TRANSFORM_PROPS = ("location", "rotation_quaternion", "rotation_euler", "rotation_axis_angle")


# ---------------------------------------------------------------------------------------------------
# Blender's rotation conventions on top of core's quaternion math (w, x, y, z), float64, vectorised
# ---------------------------------------------------------------------------------------------------


def quat_normalize(q):
    """Unit quaternions; a zero quaternion is the identity, as Blender treats it."""
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    out = np.divide(q, n, out=np.zeros_like(q), where=n > 0)
    out[..., 0] = np.where(n[..., 0] > 0, out[..., 0], 1.0)
    return out


def quat_continuous(q, axis=0):
    """Flip signs along ``axis`` (time) so consecutive quaternions lie in one hemisphere."""
    q = np.moveaxis(np.array(q, dtype=np.float64), axis, 0)
    if len(q) > 1:
        dots = np.sum(q[1:] * q[:-1], axis=-1)
        flips = np.cumprod(np.where(dots < 0, -1.0, 1.0), axis=0)
        q[1:] *= flips[..., None]
    return np.moveaxis(q, 0, axis)


def axis_angle_to_quat(aa):
    """Blender rotation_axis_angle (angle, x, y, z) -> quaternion."""
    angle = aa[..., 0]
    axis = aa[..., 1:]
    n = np.linalg.norm(axis, axis=-1, keepdims=True)
    unit = np.divide(axis, n, out=np.zeros_like(axis), where=n > 0)
    unit[..., 1] = np.where(n[..., 0] > 0, unit[..., 1], 1.0)  # Blender's default axis is +Y
    return np.concatenate((np.cos(angle / 2)[..., None], np.sin(angle / 2)[..., None] * unit), -1)


def quat_to_axis_angle(q):
    q = quat_normalize(q)
    q = np.where(q[..., :1] < 0, -q, q)
    s = np.linalg.norm(q[..., 1:], axis=-1)
    angle = 2.0 * np.arctan2(s, q[..., 0])
    axis = np.divide(q[..., 1:], s[..., None], out=np.zeros_like(q[..., 1:]), where=s[..., None] > 1e-12)
    axis[..., 1] = np.where(s > 1e-12, axis[..., 1], 1.0)
    return np.concatenate((angle[..., None], axis), -1)


def _blender_order(order):
    """Blender's Euler mode "XYZ" (X applied first, R = Rz Ry Rx; angles stored as x, y, z) is core's
    extrinsic "xyz" with the angles taken in the mode's order: (index of each angle, core order)."""
    return [_AXIS[c] for c in order], order.lower()


def euler_to_quat(e, order):
    """Blender Euler angles (x, y, z) in rotation mode ``order`` -> quaternions."""
    index, seq = _blender_order(order)
    return rotations.euler_to_quat(np.asarray(e, dtype=np.float64)[..., index], seq)


def matrix_to_euler(m, order):
    """Rotation matrices (..., 3, 3) -> Blender Euler angles (x, y, z) for mode ``order``."""
    index, seq = _blender_order(order)
    angles = rotations.matrix_to_euler(np.asarray(m, dtype=np.float64), seq)
    out = np.empty_like(angles)
    out[..., index] = angles
    return out


def quat_to_euler(q, order, time_axis=0):
    """Quaternions -> Euler angles, made continuous along ``time_axis`` (the nearer of the two
    equivalent solutions, wrapped by 2 pi to the previous frame; the rotation itself is exact)."""
    e = matrix_to_euler(quat_to_matrix(quat_normalize(q)), order)
    e = np.moveaxis(e, time_axis, 0)
    if len(e) > 1:
        i, j, k = (_AXIS[c] for c in order)
        alt = e.copy()
        alt[..., i] += np.pi
        alt[..., j] = np.pi - alt[..., j]
        alt[..., k] += np.pi
        two_pi = 2.0 * np.pi
        for t in range(1, len(e)):
            prev = e[t - 1]
            cands = [c - two_pi * np.round((c - prev) / two_pi) for c in (e[t], alt[t])]
            d0 = np.abs(cands[0] - prev).sum(-1, keepdims=True)
            d1 = np.abs(cands[1] - prev).sum(-1, keepdims=True)
            e[t] = np.where(d1 < d0, cands[1], cands[0])
    return np.moveaxis(e, 0, time_axis)


# ---------------------------------------------------------------------------------------------------
# rest skeleton
# ---------------------------------------------------------------------------------------------------


def rest_skeleton(obj) -> dict:
    """The armature's rest skeleton in the runtime convention (armature space, Z up, armature units).

    Bones are ordered parents first (Blender's order where it already is). Returns bone_names,
    parents, offsets (J, 3) (head minus parent head; the root's from the armature origin),
    rest_quats (J, 4) (rotation of bone.matrix_local), heads (J, 3), tails (J, 3), connected (J,) bool.
    """
    bones = obj.data.bones
    names_in = [b.name for b in bones]
    parent_in = {b.name: (b.parent.name if b.parent else None) for b in bones}
    order, placed = [], set()
    pending = list(names_in)
    while pending:  # stable topological sort
        rest = []
        for n in pending:
            p = parent_in[n]
            if p is None or p in placed:
                order.append(n)
                placed.add(n)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError(f"armature {obj.name!r}: bone parents form a cycle")
        pending = rest
    index = {n: i for i, n in enumerate(order)}
    n = len(bones)
    mats = np.empty(len(names_in) * 16, dtype=np.float32)
    bones.foreach_get("matrix_local", mats)
    # foreach_get of a matrix property is column-major (Blender's storage): transpose to rows
    mats = mats.reshape(-1, 4, 4).transpose(0, 2, 1).astype(np.float64)
    perm = [names_in.index(b) for b in order]
    mats = mats[perm]
    rot = mats[:, :3, :3]
    rot = rot / np.linalg.norm(rot, axis=-2, keepdims=True)  # drop any rest scale (rare)
    rest_quats = matrix_to_quat(rot)
    heads = mats[:, :3, 3].copy()
    tails = np.empty(len(names_in) * 3, dtype=np.float32)
    bones.foreach_get("tail_local", tails)
    tails = tails.reshape(-1, 3)[perm].astype(np.float64)
    parents = np.array([index[parent_in[b]] if parent_in[b] is not None else -1 for b in order], dtype=np.int64)
    offsets = heads - np.where(parents[:, None] >= 0, heads[np.maximum(parents, 0)], 0.0)
    connected = np.array([bones[b].use_connect for b in order], dtype=bool)
    return {
        "bone_names": order,
        "parents": parents,
        "offsets": offsets,
        "rest_quats": rest_quats,
        "heads": heads,
        "tails": tails,
        "connected": connected,
        "num_bones": n,
    }


# ---------------------------------------------------------------------------------------------------
# action access (slotted 4.4+ / legacy)
# ---------------------------------------------------------------------------------------------------


def slotted() -> bool:
    return bpy.app.version >= (4, 4, 0)


def _slot_for(obj, action):
    ad = obj.animation_data
    if ad is not None and ad.action == action and ad.action_slot is not None:
        return ad.action_slot
    slots = [s for s in action.slots if getattr(s, "target_id_type", "OBJECT") in ("OBJECT", "UNSPECIFIED")]
    for s in slots:  # a slot named after the object first, then any object slot
        if s.name_display == obj.name:
            return s
    return slots[0] if slots else None


def action_fcurves(obj, action):
    """The F-curves of ``action`` that animate ``obj`` (its assigned slot, or the best object slot)."""
    if not slotted():
        return list(action.fcurves)
    slot = _slot_for(obj, action)
    if slot is None:
        return []
    from bpy_extras import anim_utils

    channelbag = anim_utils.action_get_channelbag_for_slot(action, slot)
    return list(channelbag.fcurves) if channelbag is not None else []


def _bone_path(name: str, prop: str) -> str:
    return f'pose.bones["{bpy.utils.escape_identifier(name)}"].{prop}'


def _sample_fcurve(fc, frames: np.ndarray):
    """Values of one F-curve at ``frames`` (float64). Bulk: keys on the sampled frames are read
    straight from ``co``; all-LINEAR curves go through np.interp; anything else (Bezier between
    keys, modifiers, linear extrapolation) falls back to fcurve.evaluate per frame."""
    kp = fc.keyframe_points
    n = len(kp)
    if n == 0:
        return None
    co = np.empty(2 * n, dtype=np.float32)
    kp.foreach_get("co", co)
    kx = co[0::2].astype(np.float64)
    ky = co[1::2].astype(np.float64)
    if n == len(frames) and np.array_equal(kx, frames) and len(fc.modifiers) == 0:
        return ky  # one key on every sampled frame (BVH imports, our own results): no evaluation
    if len(fc.modifiers) == 0 and fc.extrapolation == "CONSTANT":
        idx = np.clip(np.searchsorted(kx, frames), 0, n - 1)
        inside = (frames >= kx[0]) & (frames <= kx[-1])
        if np.all(~inside | (kx[idx] == frames)):
            return np.where(frames < kx[0], ky[0], np.where(frames > kx[-1], ky[-1], ky[idx]))
        ipo = np.empty(n, dtype=np.int32)
        kp.foreach_get("interpolation", ipo)
        if np.all(ipo[:-1] == LINEAR):
            return np.interp(frames, kx, ky)
    return np.array([fc.evaluate(float(f)) for f in frames], dtype=np.float64)


# ---------------------------------------------------------------------------------------------------
# read / write
# ---------------------------------------------------------------------------------------------------


def scene_fps(scene=None) -> float:
    scene = scene or bpy.context.scene
    return scene.render.fps / scene.render.fps_base


def _key_times(curves) -> tuple[np.ndarray, bool]:
    """Every key time of the curves (sorted, unique to 1e-4 frames) and whether all are LINEAR."""
    times, linear = [], True
    for fc in curves:
        kp = fc.keyframe_points
        if len(kp) == 0:
            continue
        co = np.empty(2 * len(kp), dtype=np.float32)
        kp.foreach_get("co", co)
        times.append(co[0::2].astype(np.float64))
        if len(kp) > 1:
            ipo = np.empty(len(kp), dtype=np.int32)
            kp.foreach_get("interpolation", ipo)
            linear = linear and bool(np.all(ipo[:-1] == LINEAR))
    if not times:
        return np.empty(0), linear
    return np.unique(np.round(np.concatenate(times), 4)), linear


def sample_times(curves, lo: float, hi: float) -> tuple[np.ndarray, float]:
    """(frames to read, frames between samples): the action's own key times when they form one
    regular grid (a BVH or FBX take at its capture rate, wherever the scene's rate put its keys),
    else every integer frame (keys set by hand, Bezier curves between sparse keys).

    Reading a 30 fps take keyed every 4 frames of a 120 fps scene at its keys keeps it a 30 fps
    take, and reading a 120 fps take at every frame keeps all its detail."""
    keys, linear = _key_times(curves)
    keys = keys[(keys >= lo - 1e-4) & (keys <= hi + 1e-4)]
    if len(keys) >= 2:
        steps = np.diff(keys)
        step = float(np.median(steps))
        if np.abs(steps - step).max() < 1e-3 and (linear or step <= 1.0 + 1e-6) and step > 1e-3:
            return keys, step
    return np.arange(round(lo), round(hi) + 1, dtype=np.float64), 1.0


def _runtime_from_basis(rest, basis_q, loc):
    """Runtime local arrays from pose-bone basis rotations and locations (see the module doc)."""
    bq = rest["rest_quats"]
    rotations = quat_mul(quat_mul(bq, basis_q), quat_conj(bq))
    translations = rest["offsets"] + quat_rotate(np.broadcast_to(bq, loc.shape[:-1] + (4,)), loc)
    # a connected bone's head is pinned to its parent's tail: Blender ignores its location
    translations[:, rest["connected"]] = rest["offsets"][rest["connected"]]
    return rotations, translations


def world_from_pose_matrices(rest, mats):
    """World rotations W = P b^-1 (F, J, 4) and heads (F, J, 3) of evaluated armature-space pose
    matrices (F, J, 4, 4): what Blender shows after constraints, IK and drivers."""
    rot = mats[..., :3, :3]
    rot = rot / np.linalg.norm(rot, axis=-2, keepdims=True)
    world = quat_mul(quat_normalize(matrix_to_quat(rot)), quat_conj(rest["rest_quats"]))  # scaled bones too
    return world, mats[..., :3, 3]


def local_from_world(parents, world, heads):
    """Runtime local arrays of world rotations and heads: local = W_parent^-1 W."""
    has_parent = parents >= 0
    p = np.maximum(parents, 0)
    parent_world = np.where(has_parent[:, None], world[:, p], np.array([1.0, 0.0, 0.0, 0.0]))
    rotations = quat_mul(quat_conj(parent_world), world)
    delta = heads - np.where(has_parent[:, None], heads[:, p], 0.0)
    translations = quat_rotate(quat_conj(parent_world), delta)
    return rotations, translations


def _frame_number(frame: float):
    """A frame as an int when it is a whole frame (as Blender's UI shows it), else the float."""
    return int(round(frame)) if abs(frame - round(frame)) < 1e-6 else float(frame)


def key_rate(obj, action) -> float:
    """The rate (fps) at which ``action`` is sampled: the scene's, divided by its key spacing."""
    lo, hi = action.frame_range
    return scene_fps() / sample_times(action_fcurves(obj, action), lo, hi)[1]


def has_constraints(obj) -> bool:
    """Whether any pose bone carries an active constraint (IK legs, copy-transforms of generated
    rigs): then the keyed values are not what Blender shows, and the pose is read evaluated."""
    return any(not c.mute and c.influence > 0 for pb in obj.pose.bones for c in pb.constraints)


def evaluate_pose(obj, action, frames, rest):
    """Pose matrices of every bone at ``frames`` with ``action`` playing (temporarily assigned when
    it is not the current one; the assignment, its slot and the current frame are restored)."""
    scene = bpy.context.scene
    ad = obj.animation_data or obj.animation_data_create()
    previous = (ad.action, ad.action_slot if slotted() else None)
    current = (scene.frame_current, scene.frame_subframe)
    names = rest["bone_names"]
    order = [obj.pose.bones.find(n) for n in names]
    mats = np.empty((len(frames), len(obj.pose.bones) * 16), dtype=np.float32)
    try:
        if ad.action != action:
            slot = _slot_for(obj, action) if slotted() else None
            ad.action = action
            if slot is not None:
                ad.action_slot = slot
        for i, f in enumerate(frames):
            whole = int(np.floor(f))
            scene.frame_set(whole, subframe=float(f - whole))
            obj.pose.bones.foreach_get("matrix", mats[i])
    finally:
        if ad.action != previous[0]:
            ad.action = previous[0]
            if previous[1] is not None:
                ad.action_slot = previous[1]
        scene.frame_set(current[0], subframe=current[1])
    mats = mats.reshape(len(frames), -1, 4, 4).transpose(0, 1, 3, 2).astype(np.float64)
    return mats[:, order]


def read_action(obj, action=None, frame_start=None, frame_end=None, stand_ins=None, evaluate=True) -> dict:
    """Sample ``action`` (default: the armature's assigned one) over [frame_start, frame_end]
    (default: the action's frame range) into runtime-convention arrays.

    Samples are the action's own key times when they form a regular grid, else every integer frame
    (sample_times); ``fps`` is the scene's rate divided by the spacing, so a take keeps its own rate.
    Armatures with constraints are read as Blender evaluates them (has_constraints); ``stand_ins``
    (bone -> bone of the same rest) reads a bone with another's evaluated pose: a control read as
    the bone it drives shows (rigify_limbs); ``evaluate`` False reads the keys alone, which never
    changes the scene's frame (safe while the panel draws).
    Returns bone_names, parents (J,), offsets (J, 3), rest_quats (J, 4), heads (J, 3), tails (J, 3),
    rotations (F, J, 4) local quaternions (w, x, y, z), translations (F, J, 3) local translations,
    rotation_modes, fps, frame_start, frame_end, frames (F,), up_axis "Z", slot_name, evaluated,
    keyed (the (rotations, translations) the keys alone give; the same arrays unless evaluated),
    warnings. The action is only read. Channels without an F-curve keep the pose bone's current
    value, as Blender would show them.
    """
    if action is None:
        action = obj.animation_data.action if obj.animation_data else None
        if action is None:
            raise ValueError(f"armature {obj.name!r} has no action")
    lo, hi = action.frame_range
    lo = lo if frame_start is None else float(frame_start)
    hi = hi if frame_end is None else float(frame_end)
    if hi < lo:
        raise ValueError(f"empty frame range {lo:g}..{hi:g}")
    fcurves = action_fcurves(obj, action)
    frames, step = sample_times(fcurves, lo, hi)
    F = len(frames)

    rest = rest_skeleton(obj)
    names = rest["bone_names"]
    J = len(names)
    curves = {(fc.data_path, fc.array_index): fc for fc in fcurves}
    warnings = []

    def channel(name, prop, size, default):
        path = _bone_path(name, prop)
        out = np.empty((F, size))
        for i in range(size):
            fc = curves.get((path, i))
            vals = _sample_fcurve(fc, frames) if fc is not None else None
            out[:, i] = default[i] if vals is None else vals
        return out

    evaluated = evaluate and has_constraints(obj)
    basis_q = np.empty((F, J, 4))
    loc = np.empty((F, J, 3))
    modes = []
    for j, name in enumerate(names):
        pb = obj.pose.bones[name]
        mode = pb.rotation_mode
        modes.append(mode)
        if mode == "QUATERNION":
            basis_q[:, j] = quat_normalize(channel(name, "rotation_quaternion", 4, tuple(pb.rotation_quaternion)))
        elif mode == "AXIS_ANGLE":
            basis_q[:, j] = axis_angle_to_quat(channel(name, "rotation_axis_angle", 4, tuple(pb.rotation_axis_angle)))
        else:
            basis_q[:, j] = euler_to_quat(channel(name, "rotation_euler", 3, tuple(pb.rotation_euler)), mode)
        loc[:, j] = channel(name, "location", 3, tuple(pb.location))
        scale = channel(name, "scale", 3, tuple(pb.scale))
        if np.abs(scale - 1.0).max() > 1e-6:
            warnings.append(f"bone {name!r} has pose scale; it is ignored")
        bone = obj.data.bones[name]
        if not bone.use_inherit_rotation or bone.inherit_scale != "FULL":
            warnings.append(f"bone {name!r} does not inherit rotation/scale fully; the convention assumes it does")

    keyed = _runtime_from_basis(rest, basis_q, loc)
    if evaluated:
        mats = evaluate_pose(obj, action, frames, rest)
        index = {n: i for i, n in enumerate(names)}
        for bone, shown_by in (stand_ins or {}).items():
            mats[:, index[bone]] = mats[:, index[shown_by]]
        rotations, translations = local_from_world(rest["parents"], *world_from_pose_matrices(rest, mats))
        warnings.append(
            f"armature {obj.name!r} has constraints: its pose was read as Blender shows it, and the result "
            "is keyed on the same bones (constraints such as IK still act on them)"
        )
    else:
        rotations, translations = keyed
    slot = _slot_for(obj, action) if slotted() else None
    return {
        **rest,
        "rotations": rotations,
        "translations": translations,
        "rotation_modes": modes,
        "fps": scene_fps() / step,
        "frame_start": _frame_number(frames[0]),
        "frame_end": _frame_number(frames[-1]),
        "frames": frames,
        "up_axis": "Z",
        "action_name": action.name,
        "slot_name": slot.name_display if slot is not None else None,
        "evaluated": evaluated,
        "keyed": keyed,
        "warnings": warnings,
    }


def _new_action_and_fcurve_factory(obj, name, slot_name=None):
    action = bpy.data.actions.new(name)
    if slotted():
        slot = action.slots.new(id_type="OBJECT", name=slot_name or obj.name)
        layer = action.layers.new("Layer")
        strip = layer.strips.new(type="KEYFRAME")
        channelbag = strip.channelbags.new(slot)
        groups = {}

        def new_fcurve(path, index, group):
            if bpy.app.version >= (5, 0, 0):
                return channelbag.fcurves.new(path, index=index, group_name=group)
            fc = channelbag.fcurves.new(path, index=index)  # 4.4/4.5: no group_name argument yet
            if group not in groups:
                groups[group] = channelbag.groups.new(group)
            fc.group = groups[group]
            return fc

        return action, slot, new_fcurve

    def new_fcurve_legacy(path, index, group):
        return action.fcurves.new(path, index=index, action_group=group)

    return action, None, new_fcurve_legacy


def _channels(obj, rest, bone_names, rotations, translations, locations, keep_locations=frozenset()):
    """The F-curve values that key runtime-convention arrays onto pose bones: a list of
    (data path, index, group, values (F,)) in each bone's rotation mode (see write_action);
    ``keep_locations``: bones whose location is keyed whatever ``locations`` says."""
    idx = {n: i for i, n in enumerate(rest["bone_names"])}
    missing = [n for n in bone_names if n not in idx]
    if missing:
        raise ValueError(f"armature {obj.name!r} has no bones {missing}")
    sel = np.array([idx[n] for n in bone_names], dtype=np.int64)
    bq = rest["rest_quats"][sel]
    connected = rest["connected"][sel]
    is_root = rest["parents"][sel] < 0

    basis_q = quat_mul(quat_mul(quat_conj(bq), rotations), bq)
    basis_q = quat_continuous(quat_normalize(basis_q), axis=0)
    loc = quat_rotate(np.broadcast_to(quat_conj(bq), translations.shape[:-1] + (4,)), translations - rest["offsets"][sel])

    modes = [obj.pose.bones[b].rotation_mode for b in bone_names]
    rotation_values = [None] * len(bone_names)
    for mode in set(modes):  # convert all bones of one rotation mode at once
        cols = [j for j, m in enumerate(modes) if m == mode]
        q = basis_q[:, cols]
        if mode == "QUATERNION":
            conv = ("rotation_quaternion", q)
        elif mode == "AXIS_ANGLE":
            conv = ("rotation_axis_angle", quat_to_axis_angle(q))
        else:
            conv = ("rotation_euler", quat_to_euler(q, mode))
        for c, j in enumerate(cols):
            rotation_values[j] = (conv[0], conv[1][:, c])
    out = []
    for j, bname in enumerate(bone_names):
        prop, vals = rotation_values[j]
        out += [(_bone_path(bname, prop), i, bname, vals[:, i]) for i in range(vals.shape[-1])]
        if connected[j]:
            continue
        if locations == "all" or is_root[j] or bname in keep_locations or np.abs(loc[:, j]).max() > 1e-7:
            out += [(_bone_path(bname, "location"), i, bname, loc[:, j, i]) for i in range(3)]
    return out


def _check_arrays(rotations, translations, bone_names):
    rotations = np.asarray(rotations, dtype=np.float64)
    translations = np.asarray(translations, dtype=np.float64)
    F, J = rotations.shape[:2]
    if rotations.shape != (F, J, 4) or translations.shape != (F, J, 3) or len(bone_names) != J:
        raise ValueError(f"arrays {rotations.shape}, {translations.shape} do not match {len(bone_names)} bones")
    return rotations, translations


_KEY_PROPS = (("co", 2, np.float32), ("interpolation", 1, np.int32), ("handle_left", 2, np.float32),
              ("handle_right", 2, np.float32), ("handle_left_type", 1, np.int32),
              ("handle_right_type", 1, np.int32), ("easing", 1, np.int32))


def _copy_keys(source_fc, target_fc):
    """Every key of one F-curve onto another, with its interpolation and handles, in bulk."""
    src, dst = source_fc.keyframe_points, target_fc.keyframe_points
    dst.add(len(src))
    for prop, size, dtype in _KEY_PROPS:
        buf = np.empty(len(src) * size, dtype=dtype)
        src.foreach_get(prop, buf)
        dst.foreach_set(prop, buf)
    target_fc.extrapolation = source_fc.extrapolation


def write_action(
    obj,
    name,
    rotations,
    translations,
    bone_names,
    frame_start,
    fps=None,
    *,
    frames=None,
    slot_name=None,
    locations="needed",
    assign=True,
    protect_previous=True,
    copy_from=None,
    properties=None,
):
    """Key runtime-convention arrays onto a NEW action and (by default) assign it to ``obj``.

    rotations (F, J, 4) local quaternions (w, x, y, z), translations (F, J, 3) local translations, in
    the convention of read_action, for the bones ``bone_names`` (J; any subset and order of the
    armature's bones; bones not listed get no curves). Frame i is keyed at ``frames[i]`` when given
    (the source's own key times), else at frame_start + i (scaled by scene fps / ``fps`` when
    ``fps`` is given and differs). ``slot_name``: the new action's slot (4.4+), by default the
    object's name; give the source action's slot name so that re-assigning the source plays it
    (Blender picks a slot by the name last used). Each bone gets curves in its own
    rotation mode and, for bones not connected to their parent, location curves: ``locations``
    "all" for every such bone, "needed" (default) only where the translation leaves the rest offset
    (the root always). Keys are LINEAR, inserted in bulk. ``copy_from``: an action of ``obj`` whose
    other curves (custom properties, scale, the object's own channels) are copied as they are, so
    the result plays with the same switches and extras as the source, and whose keyed locations
    are keyed on the result too; ``properties``: data path ->
    value keyed constant over the frames (replacing a copied curve). With ``assign``, the action
    becomes obj.animation_data.action (and action_slot on 4.4+); with ``protect_previous`` a
    previously assigned action that would lose its last user gets a fake user so it survives
    saving (its key data is never touched). Returns the new action.
    """
    rotations, translations = _check_arrays(rotations, translations, bone_names)
    F = len(rotations)
    source_curves = action_fcurves(obj, copy_from) if copy_from is not None else []
    # a location the source keys is keyed on the result too, even at rest: left unkeyed, it would
    # keep the source's last value when the result is played after it
    source_paths = {fc.data_path for fc in source_curves}
    keep = {n for n in bone_names if _bone_path(n, "location") in source_paths}
    channels = _channels(obj, rest_skeleton(obj), list(bone_names), rotations, translations, locations, keep)

    if frames is None:
        step = 1.0 if fps is None or abs(fps - scene_fps()) < 1e-9 else scene_fps() / float(fps)
        frames = float(frame_start) + step * np.arange(F)
    elif len(frames) != F:
        raise ValueError(f"{len(frames)} key times for {F} frames")
    co = np.empty((F, 2), dtype=np.float32)
    co[:, 0] = frames
    ipo = np.full(F, LINEAR, dtype=np.int32)

    action, slot, new_fcurve = _new_action_and_fcurve_factory(obj, name, slot_name)
    # no fcurve.update() (~6 ms per 360 curves): keys are sorted by construction and LINEAR, so
    # there are no Bezier handles to recompute
    for path, index, group, values in channels:
        kp = new_fcurve(path, index, group).keyframe_points
        kp.add(F)
        co[:, 1] = values
        kp.foreach_set("co", co.ravel())
        kp.foreach_set("interpolation", ipo)
    # the keyed bones' transforms come from the arrays alone (a rest location is left unkeyed)
    written = {_bone_path(b, prop) for b in bone_names for prop in TRANSFORM_PROPS} | set(properties or {})
    for fc in source_curves:
        if fc.data_path not in written:
            _copy_keys(fc, new_fcurve(fc.data_path, fc.array_index, fc.group.name if fc.group else "Extras"))
    for path, value in (properties or {}).items():
        kp = new_fcurve(path, 0, "Switches").keyframe_points
        kp.add(2)
        kp.foreach_set("co", np.array([frames[0], value, frames[-1], value], dtype=np.float32))
        kp.foreach_set("interpolation", np.full(2, CONSTANT_IPO, dtype=np.int32))

    if assign:
        if obj.animation_data is None:
            obj.animation_data_create()
        ad = obj.animation_data
        previous = ad.action
        if protect_previous and previous is not None and previous != action and previous.users <= 1:
            previous.use_fake_user = True
        ad.action = action
        if slot is not None:
            ad.action_slot = slot
    return action


def rekey(obj, action, bone_names, rotations, translations):
    """New values for the keys write_action gave ``bone_names`` on ``action`` (same frames; the
    bones' location curves must exist: write them with ``locations="all"``)."""
    rotations, translations = _check_arrays(rotations, translations, bone_names)
    curves = {(fc.data_path, fc.array_index): fc for fc in action_fcurves(obj, action)}
    channels = _channels(obj, rest_skeleton(obj), list(bone_names), rotations, translations, "all")
    for path, index, _, values in channels:
        fc = curves.get((path, index))
        if fc is None or len(fc.keyframe_points) != len(values):
            raise ValueError(f"action {action.name!r} has no {len(values)} keys on {path}[{index}] to rekey")
        co = np.empty(2 * len(values), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        co[1::2] = values
        fc.keyframe_points.foreach_set("co", co)

