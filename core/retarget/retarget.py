"""Motion from one rig onto another (DESIGN §4): rest poses aligned by world bone directions,
world-space rotations carried over, the root path scaled by leg length.

For each canonical joint mapped on both rigs, an alignment frame F is built in each rig's rest pose
(Y-up world): its first axis along the bone (towards the next mapped joint of the canonical chain),
its second a body axis made orthogonal to it (see _AIMS). The bone's rest world rotation R carries F
as the fixed attachment A = R^-1 F, so a pose moves F with the bone, and the target is posed so that
both rigs' frames agree in world space:  G_target = G_source A_source A_target^-1.
Going back multiplies by A_target A_source^-1, so rig -> rig' -> rig returns every mapped joint's
world rotation exactly. Target bones with no counterpart keep their local rotation from
``target_base`` (or their rest pose) and follow their parents.

Game rigs often parent a mapped bone elsewhere than below its canonical parent (an IK foot under
the root or a control bone, not under the shin). Such a "detached" bone is placed where its
canonical parent's bone carries it (detached_bones), so it sits at the end of the shin exactly as
on a regular rig, and leg lengths are measured along the canonical chain, not the hierarchy.
"""

from __future__ import annotations

import numpy as np

from ..motion.canonical import CONTACT_JOINTS as FOOT_JOINTS
from ..motion.canonical import JOINT_NAMES, canonical_skeleton, mirror_name
from ..motion.motion import Motion
from ..ops.rotations import matrix_to_quat, quat_conj, quat_mul, quat_rotate
from .rig import BODY_JOINTS, UP_AXIS_TO_Y_UP, Rig, RigError, mapping_hint

# (primary, secondary) direction of each joint's alignment frame. A direction is a body axis of the
# rig at rest ("up", "left", "forward"), or (start, target, ...): from the start joint to the first
# target mapped on both rigs, where a body axis in that list is the fallback. Secondaries are axes
# no bone of a standing rest pose points along: "left" for the torso and legs, "forward" for arms.
# Pelvis and chest are aimed across the hips/shoulders, because rigs agree on where those are but
# not on where spine joints sit; clavicles take the chest's frame (they carry rotation deltas),
# because one rig's clavicle starts at the sternum and another's at the spine; hands continue the
# forearm; the head stands up and the toes lie flat at rest.
_LEFT_AIMS = {
    "Shoulder_L": (("UpperArm_R", "UpperArm_L"), "up"),
    "UpperArm_L": (("UpperArm_L", "LowerArm_L"), "forward"),
    "LowerArm_L": (("LowerArm_L", "Hand_L"), "forward"),
    "Hand_L": (("LowerArm_L", "Hand_L"), "forward"),
    "UpperLeg_L": (("UpperLeg_L", "LowerLeg_L"), "left"),
    "LowerLeg_L": (("LowerLeg_L", "Foot_L"), "left"),
    "Foot_L": (("Foot_L", "Toes_L", "forward"), "left"),
    "Toes_L": ("forward", "left"),
}
_AIMS = {
    "Hips": (("UpperLeg_R", "UpperLeg_L"), "up"),
    "Spine": (("Spine", "Chest", "Neck", "Head"), "left"),
    "Chest": (("UpperArm_R", "UpperArm_L"), "up"),
    "Neck": (("Neck", "Head"), "left"),
    "Head": ("up", "left"),
    **_LEFT_AIMS,
    **{
        mirror_name(j): tuple(a if isinstance(a, str) else tuple(mirror_name(n) for n in a) for a in aims)
        for j, aims in _LEFT_AIMS.items()
    },
}


_CANONICAL_PARENT = {JOINT_NAMES[j]: JOINT_NAMES[p] for j, p in enumerate(canonical_skeleton().parents) if p >= 0}
_LEG_CHAIN = ("UpperLeg", "LowerLeg", "Foot")


def _rest_y_up(rig: Rig) -> tuple[np.ndarray, np.ndarray]:
    """Rest world rotations and positions of the rig, turned to Y-up (read-only)."""

    def compute(rig: Rig) -> tuple[np.ndarray, np.ndarray]:
        rot, pos = rig.rest_world()
        c = np.broadcast_to(UP_AXIS_TO_Y_UP[rig.up_axis], rot.shape)
        return quat_mul(c, rot), quat_rotate(c, pos)

    return rig.derived("rest_y_up", compute)


def _unit(v: np.ndarray, what: str, joint: str) -> np.ndarray:
    n = np.linalg.norm(v)
    if n < 1e-9:
        raise RigError(f"cannot align {what}: the direction has zero length in the rest pose; {mapping_hint(joint)}")
    return v / n


def attachments(rig: Rig, joints) -> np.ndarray:
    """(len(joints), 4): each joint's alignment frame in its bone's local axes, A = R^-1 F (read-only)."""
    joints = tuple(joints)
    return rig.derived(f"attachments {joints}", lambda r: _attachments(r, joints))


def _body_axes(rig: Rig) -> dict[str, np.ndarray]:
    """The rig's "up", "left" and "forward" at rest (Y-up): left across the hip joints, level."""
    _, pos = _rest_y_up(rig)
    up = np.array([0.0, 1.0, 0.0])
    across = pos[rig.bone("UpperLeg_L")] - pos[rig.bone("UpperLeg_R")]
    hips = f"UpperLeg_L (bone {rig.mapping['UpperLeg_L']!r}) and UpperLeg_R (bone {rig.mapping['UpperLeg_R']!r})"
    left = _unit(across - across.dot(up) * up, f"rig {rig.name!r}: the hips, {hips} at one place", "UpperLeg_L")
    return {"up": up, "left": left, "forward": np.cross(left, up)}


def _attachments(rig: Rig, joints: tuple[str, ...]) -> np.ndarray:
    rot, pos = _rest_y_up(rig)
    axes = _body_axes(rig)

    def direction(spec):  # every chain ends in a required joint or a body axis, so one target is found
        if isinstance(spec, str):
            return axes[spec]
        start, *targets = spec
        t = next(t for t in targets if t in axes or t in joints)
        return axes[t] if t in axes else pos[rig.bone(t)] - pos[rig.bone(start)]

    frames = []
    for j in joints:
        primary, secondary = (direction(a) for a in _AIMS[j])
        what = f"rig {rig.name!r} joint {j} (bone {rig.mapping[j]!r})"
        a = _unit(primary, what, j)
        b = _unit(secondary - secondary.dot(a) * a, what + ", whose bone points along its reference axis", j)
        frames.append(np.stack([a, b, np.cross(a, b)], -1))
    bones = [rig.bone(j) for j in joints]
    return quat_mul(quat_conj(rot[bones]), matrix_to_quat(np.array(frames)))


def raised_legs(rig: Rig) -> list[str]:
    """The sides ("L", "R") whose ankle is above its hip joint in the rig's rest pose."""
    _, pos = _rest_y_up(rig)
    return [s for s in "LR" if pos[rig.bone(f"Foot_{s}"), 1] > pos[rig.bone(f"UpperLeg_{s}"), 1]]


def standing_rig(rig: Rig, motion: Motion) -> Rig:
    """The rig with a rest pose in which every leg raised at rest (raised_legs) hangs down, turned
    by the half turn under which its knee bends forward in ``motion`` (a Motion on the rig's
    skeleton); the rig itself when no leg is raised.

    Why: a BVH exported with every bone along its own axis (Character Creator's CC_Base skeleton)
    has a zero pose that is not a pose: the legs point up from the hips. Alignment reads each leg
    bone's roll from the body's left axis at rest, but a raised leg comes down by a half turn about
    either the forward axis (which turns its left to the body's right: Character Creator's legs)
    or the left axis, and the rest pose cannot tell which. Reading the wrong one rolls thigh, shin
    and foot half a turn, so the canonical knee bends about -Y, backwards. The motion tells: a knee
    bends forward, a positive turn about the body's left axis. Bones below the thigh keep their
    rest rotations and come down with it."""
    sides = raised_legs(rig)
    if not sides:
        return rig
    rest = np.array(rig.rest_pose(), copy=True)
    for side in sides:
        thigh = rig.bone(f"UpperLeg_{side}")
        rest[thigh] = quat_mul(rest[thigh], _half_turn_down(rig, motion, side))
    return Rig(rig.skeleton, rig.mapping, rest, rig.up_axis, rig.name, rig.floor)


def _half_turn_down(rig: Rig, motion: Motion, side: str) -> np.ndarray:
    """The half turn, in the thigh's local axes at rest, that brings one raised leg down with its
    knee bending forward: about the body's left axis when the motion's knee turns the positive way
    about that axis as the rest pose carries it into the thigh, else about the forward axis."""
    thigh, shin = rig.bone(f"UpperLeg_{side}"), rig.bone(f"LowerLeg_{side}")
    rot, _ = _rest_y_up(rig)
    axes = _body_axes(rig)
    world, _ = motion.world_of([thigh, shin])
    knee = quat_mul(quat_conj(world[:, 0]), world[:, 1])
    left_in_thigh = quat_rotate(quat_conj(rot[thigh]), axes["left"])
    bend = float((np.sign(knee[:, 0]) * (knee[:, 1:] @ left_in_thigh)).sum())
    axis = axes["left"] if bend >= 0 else axes["forward"]
    return np.concatenate([[0.0], quat_rotate(quat_conj(rot[thigh]), axis)])


def leg_length(rig: Rig) -> float:
    """Mean hip-to-ankle length of both legs (thigh, then shin: the distances between the mapped
    bones' rest heads), in the rig's units. Measured along the canonical chain, not the hierarchy,
    so a foot parented to the root (an IK foot) counts like one below the shin."""
    _, pos = rig.rest_world()
    lengths = []
    for side in "LR":
        heads = pos[[rig.bone(f"{j}_{side}") for j in _LEG_CHAIN]]
        lengths.append(np.linalg.norm(np.diff(heads, axis=0), axis=-1).sum())
    return float(np.mean(lengths))


def canonical_parent(rig: Rig, joint: str) -> str | None:
    """The nearest joint above ``joint`` in the canonical skeleton that the rig maps (Head's Neck,
    else Chest, else Spine); None for the Hips."""
    parent = _CANONICAL_PARENT.get(joint)
    while parent is not None and parent not in rig.mapping:
        parent = _CANONICAL_PARENT.get(parent)
    return parent


def detached_bones(rig: Rig) -> dict[int, tuple[int, np.ndarray]]:
    """Mapped bone -> (its canonical parent's bone, the rest offset from that bone's head to its
    own in that bone's rest frame), for every mapped bone whose canonical parent is mapped but is
    not one of its skeleton ancestors (a game rig's foot under the root). Retargeting places such a
    bone where its canonical parent carries it, as the hierarchy would if it were below it."""
    rot, pos = rig.rest_world()
    detached = {}
    for joint in rig.mapping:
        above = canonical_parent(rig, joint)
        bone = rig.bone(joint)
        if above is not None and rig.bone(above) not in rig.skeleton.ancestors(bone)[1:]:
            anchor = rig.bone(above)
            detached[bone] = (anchor, quat_rotate(quat_conj(rot[anchor]), pos[bone] - pos[anchor]))
    return detached


def _pose_order(rig: Rig, detached: dict) -> list[int]:
    """The bones in an order where each comes after its parent and a detached bone after the bone
    it is placed from (a foot under the root may come before the shin in the skeleton)."""
    parents = rig.skeleton.parents
    needs = [({p} if p >= 0 else set()) | ({detached[k][0]} if k in detached else set()) for k, p in enumerate(parents)]
    order, done = [], set()
    while len(order) < len(parents):
        ready = [k for k, need in enumerate(needs) if k not in done and need <= done]
        if not ready:
            joint = next(j for j in rig.mapping if rig.bone(j) in detached and rig.bone(j) not in done)
            above = canonical_parent(rig, joint)
            raise RigError(
                f"rig {rig.name!r}: {joint} (bone {rig.mapping[joint]!r}) would follow {above} (bone "
                f"{rig.mapping[above]!r}), which hangs below it in the hierarchy; {mapping_hint(joint)}"
            )
        order += ready
        done.update(ready)
    return order


def check_rig(rig: Rig) -> None:
    """Every check retargeting will make for this rig, made at once: an alignment frame for every
    mapped joint (which also gives both legs a length), the hips apart across the body, legs that
    hang down at rest (raised_legs: a raised leg's roll is unknown without a motion), a bone
    order that places detached bones, and a standing height. The runtime calls it on every rig at
    "retarget in" and the add-on before any request, so a rig is refused up front with a RigError
    naming the joint, the bone and the fix, never halfway through a retarget."""
    attachments(rig, [j for j in BODY_JOINTS if j in rig.mapping])
    raised = raised_legs(rig)
    if raised:
        bone = rig.mapping[f"UpperLeg_{raised[0]}"]
        raise RigError(
            f"rig {rig.name!r}: at rest the legs point up from the hips (UpperLeg_{raised[0]}, bone {bone!r}), so "
            "which way each leg comes down is unknown; give the armature a rest pose with the legs down or an action "
            "(the add-on stands it as the action shows), or read a BVH file's rig with its motion "
            "(core.retarget.matching.rig_for_skeleton)"
        )
    height = standing_pelvis_height(rig)
    if not (np.isfinite(height) and height > 0):
        raise RigError(
            f"rig {rig.name!r}: standing, the Hips (bone {rig.mapping['Hips']!r}) would not be above the floor "
            f"(height {height:.4g}); check the legs' bones: {mapping_hint('Hips')}, or to the legs' joints"
        )


def _base_arrays(target: Rig, base: Motion | None, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    skeleton = target.skeleton
    if base is None:
        rot = np.broadcast_to(target.rest_pose(), (num_frames, skeleton.num_joints, 4)).copy()
        return rot, np.broadcast_to(skeleton.offsets, (num_frames, skeleton.num_joints, 3)).copy()
    if base.skeleton.names != skeleton.names or base.num_frames != num_frames:
        raise ValueError(
            f"target_base must be on the target rig's skeleton with {num_frames} frames; "
            f"got {base.skeleton.num_joints} joints and {base.num_frames} frames"
        )
    return base.rotations.copy(), base.positions.copy()


def retarget(motion: Motion, source: Rig, target: Rig, target_base: Motion | None = None) -> Motion:
    """The motion (on ``source``'s skeleton) carried onto ``target``'s skeleton.

    Bones mapped on both rigs get the source's world rotations through the alignment frames; the
    pelvis gets the source pelvis's path scaled by the ratio of leg lengths, with the floors matched
    (see standing_pelvis_height); a root or placement bone above it keeps its base animation, so the
    trajectory lands on the pelvis; a mapped bone parented away from its canonical parent (an IK
    foot, detached_bones) is placed where that parent carries it, whatever its base translation;
    every other target bone keeps its local rotation and translation
    from ``target_base`` (a Motion on the target skeleton with as many frames) or, without one, from
    the target's rest pose.
    """
    if motion.skeleton.names != source.skeleton.names:
        raise ValueError(f"motion is not on the source rig's skeleton ({source.name!r})")
    src_rot, src_pos = motion.world()
    goal = _goal_rotations(src_rot, source, target)
    path = _pelvis_path(src_pos[:, source.bone("Hips")], source, target)
    rotations, positions = _base_arrays(target, target_base, motion.num_frames)
    return _pose(target, goal, path, rotations, positions, motion.fps)


def _goal_rotations(source_world: np.ndarray, source: Rig, target: Rig) -> dict[int, np.ndarray]:
    """Target bone index -> (F, 4) world rotation, for every joint mapped on both rigs."""
    joints = [j for j in BODY_JOINTS if j in source.mapping and j in target.mapping]
    carry = quat_mul(attachments(source, joints), quat_conj(attachments(target, joints)))
    turn = quat_mul(quat_conj(UP_AXIS_TO_Y_UP[target.up_axis]), UP_AXIS_TO_Y_UP[source.up_axis])
    turn = np.broadcast_to(turn, (source_world.shape[0], 4))
    return {
        target.bone(j): quat_mul(quat_mul(turn, source_world[:, source.bone(j)]), carry[i])
        for i, j in enumerate(joints)
    }


def place_detached(rig: Rig, motion: Motion) -> Motion:
    """The motion (on the rig's skeleton) with its detached bones put where their canonical parents
    carry them, as retargeting places them; the motion itself on rigs without any. The runtime
    applies a style change to local arrays at the content's own frame rate, where interpolated
    translations would let an IK foot drift off the end of the shin between 30 fps frames."""
    if not detached_bones(rig):
        return motion
    pelvis_path = motion.world()[1][:, rig.bone("Hips")]
    return _pose(rig, {}, pelvis_path, motion.rotations.copy(), motion.positions.copy(), motion.fps)


def _pose(target: Rig, goal, pelvis_path, rotations, positions, fps) -> Motion:
    """Local arrays that give the mapped bones their goal world rotations, the pelvis its path and
    detached bones their place at their canonical parent; other bones keep the given local
    rotations and translations and follow their parents."""
    parents = target.skeleton.parents
    pelvis = target.bone("Hips")
    detached = detached_bones(target)
    world_rot = np.empty_like(rotations)
    world_pos = np.empty_like(positions)

    def place(k: int, p: int, at: np.ndarray) -> None:  # a world position, expressed under the parent
        world_pos[:, k] = at
        positions[:, k] = at if p < 0 else quat_rotate(quat_conj(world_rot[:, p]), at - world_pos[:, p])

    for k in _pose_order(target, detached):
        p = parents[k]
        if k in goal:
            world_rot[:, k] = goal[k]
            rotations[:, k] = goal[k] if p < 0 else quat_mul(quat_conj(world_rot[:, p]), goal[k])
        else:
            world_rot[:, k] = rotations[:, k] if p < 0 else quat_mul(world_rot[:, p], rotations[:, k])
        if k == pelvis:  # the path goes on the pelvis, expressed under whatever root bone sits above it
            place(k, p, pelvis_path)
        elif k in detached:
            anchor, reach = detached[k]
            reach = np.broadcast_to(reach, world_pos[:, k].shape)
            place(k, p, world_pos[:, anchor] + quat_rotate(world_rot[:, anchor], reach))
        elif p < 0:
            world_pos[:, k] = positions[:, k]
        else:
            world_pos[:, k] = world_pos[:, p] + quat_rotate(world_rot[:, p], positions[:, k])
    return Motion(target.skeleton, rotations, positions, fps)


def standing_pelvis_height(rig: Rig) -> float:
    """Pelvis height (Y-up, rig units) at which the rig, posed in the canonical stance (the Bandai
    rest pose carried onto it), has its lowest foot joint as high above the floor as at rest.

    Rigs differ in more than leg length (pelvis-to-hip offsets, knees bent at rest, feet pitched
    differently), so scaling the path alone leaves feet floating or sunk; matching standing heights
    maps the source's floor onto the target's. The floor is the rig's ``floor`` when it has one (the
    add-on measures the soles, so a rig without toe bones stands on them, not on its ankles); else
    at rest a rig stands on y = 0 (Blender and Mixamo rigs do), unless its feet are below it (a BVH
    rig with its root at the origin, as CMU's rest skeleton): then its lowest foot joint marks it.
    """
    from .presets import canonical_rig

    canonical = canonical_rig()
    stance_world, _ = canonical.rest_world()
    goal = _goal_rotations(stance_world[None], canonical, rig)
    rotations, positions = _base_arrays(rig, None, 1)
    posed = _pose(rig, goal, np.zeros((1, 3)), rotations, positions, 30.0)
    to_y_up = np.broadcast_to(UP_AXIS_TO_Y_UP[rig.up_axis], (rig.skeleton.num_joints, 4))
    posed_height = quat_rotate(to_y_up, posed.world()[1][0])[:, 1]
    _, rest = _rest_y_up(rig)
    feet = [rig.bone(j) for j in FOOT_JOINTS if j in rig.mapping]
    rest_lowest = rest[feet, 1].min()
    floor = min(0.0, rest_lowest) if rig.floor is None else rig.floor
    return float(rest_lowest - floor - posed_height[feet].min())


def _pelvis_path(source_pelvis: np.ndarray, source: Rig, target: Rig) -> np.ndarray:
    """The target pelvis path in target axes: y_t = k (y_s - S_s) + S_t vertically (S the standing
    pelvis heights) and k x_s across the floor, k the leg-length ratio. Exactly invertible."""
    scale = leg_length(target) / leg_length(source)
    to_y_up = np.broadcast_to(UP_AXIS_TO_Y_UP[source.up_axis], source_pelvis.shape[:-1] + (4,))
    path = quat_rotate(to_y_up, source_pelvis) * scale
    path[:, 1] += standing_pelvis_height(target) - scale * standing_pelvis_height(source)
    from_y_up = np.broadcast_to(quat_conj(UP_AXIS_TO_Y_UP[target.up_axis]), path.shape[:-1] + (4,))
    return quat_rotate(from_y_up, path)
