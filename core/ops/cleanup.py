"""Foot-contact cleanup: feet pinned while in contact, by analytic two-bone leg IK (DESIGN §6).

A stylizer (the statistics baseline today, a diffusion model later) moves the pelvis and the leg
rotations independently, so feet that should be planted slide. ``clean_foot_contacts`` takes a
canonical motion (Y up, cm) and per-frame contact labels of the heel (ankle, ``Foot_*``) and toe
(``Toes_*``) joints, and for every contact span of each joint:

- pins the joint to one world position, the mean of its positions over the span in the motion
  itself (so the floor stays where this motion has it; the mean is the fixed point nearest to all
  of the span's frames);
- blends in and out over ``blend_frames`` frames outside the span (a raised-cosine weight), so the
  foot leaves and reaches its pinned place without a pop; neighbouring spans that share blend
  frames are mixed by weight, so the goal stays continuous;
- moves the ankle to its goal with an analytic two-bone IK (UpperLeg - LowerLeg - Foot): the knee
  stays in the plane through the hip, the goal and the original knee's bend direction (the knee's
  hinge, fixed in the thigh and measured on the motion, turned with the original thigh), and a pin
  out of reach is pulled back along the hip-pin line to just short of full extension before the
  blend (never stretched, never NaN, and a leg dragged straight bends back smoothly);
- turns the foot about the ankle so the toe points at its own goal where the toe is pinned (an
  ankle rotation, capped at ``MAX_TOE_TURN_RAD``); where only the toe is pinned (toe-off) the ankle
  goal is the toe's correction applied to the whole foot, so the foot keeps its own rotation.

Only the local rotations of UpperLeg, LowerLeg and Foot of a cleaned leg change, and only on frames
with a non-zero pin weight; every other value (the pelvis and its trajectory, the torso, the arms,
the toes' local rotation, every translation and so every bone length) is returned bit for bit.

Numpy only, deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..motion.canonical import CONTACT_JOINTS
from ..motion.motion import Motion
from .contacts import (
    CONTACT_HEIGHT_MARGIN_CM,
    CONTACT_SPEED_CM_PER_S,
    FLOOR_PERCENTILE,
    SKATE_HEIGHT_CM,
    foot_contacts,
    foot_skate,
)
from .rotations import quat_between, quat_conj, quat_mul, quat_normalize, quat_rotate, quat_slerp

# The cleanup stage's default speed threshold for "this foot is planted" (cm/s): twice the labelling
# threshold of the features, so the slow end of a step (heel strike, toe-off) is pinned too. Chosen
# on the validation split: foot skate 1.00 -> 0.94 cm/frame for the diffusion stylizer, contact F1
# 0.97 -> 0.93 (reports/diffusion/ablation/sampling.md has the other settings).
CLEANUP_CONTACT_SPEED_CM_PER_S = 2 * CONTACT_SPEED_CM_PER_S

UP_AXIS = 1
PLANAR_AXES = (0, 2)
BLEND_FRAMES = 4  # at 30 fps: about 0.13 s in and out
MERGE_GAP_FRAMES = 2  # contact gaps this short are label flicker on a planted foot: pinned through
REACH = 0.999  # a goal farther than this share of the leg's length is pulled back to it
MAX_TOE_TURN_RAD = np.deg2rad(30.0)
CHUNK_FRAMES = 8192  # frames of IK between two progress calls: a long take stays cancellable


# (upper leg, lower leg, foot, toe) of each foot; CONTACT_JOINTS holds (heel, toe) per foot.
LEGS: dict[str, tuple[str, str, str, str]] = {
    "left": ("UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L"),
    "right": ("UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R"),
}
_CONTACT_COLUMNS = {"left": (0, 1), "right": (2, 3)}  # (heel, toe) columns of CONTACT_JOINTS
assert tuple(n for foot in LEGS.values() for n in foot[2:]) == CONTACT_JOINTS


@dataclass
class CleanupReport:
    """What the cleanup did, per foot ("left", "right").

    skate_before / skate_after: DESIGN §7 foot skate (core.ops.contacts.foot_skate: mean horizontal
    step, cm per frame, of the heel and toe joints over the frames where each is within 5 cm of its
    floor), the floors being the input's (a low percentile of each joint's height) for both;
    contact_skate_before / _after: mean horizontal step (cm per frame) of the heel and toe over the
    frames they are labelled in contact (the slide of feet that should be planted);
    contact_frames: frames in which the heel or the toe is pinned (after merging flicker gaps);
    clamped_frames: frames with a non-zero pin weight whose heel pin (or toe pin, carried to the
    ankle) was out of the leg's reach and was pulled back: there the foot still slides;
    max_non_leg_change: the largest absolute change of any value outside the cleaned legs' joint
    rotations (every translation, every other joint): 0 by construction.
    """

    skate_before: dict[str, float] = field(default_factory=dict)
    skate_after: dict[str, float] = field(default_factory=dict)
    contact_skate_before: dict[str, float] = field(default_factory=dict)
    contact_skate_after: dict[str, float] = field(default_factory=dict)
    contact_frames: dict[str, int] = field(default_factory=dict)
    clamped_frames: dict[str, int] = field(default_factory=dict)
    max_non_leg_change: float = 0.0

    def to_dict(self) -> dict:
        return {
            "skate_before": dict(self.skate_before),
            "skate_after": dict(self.skate_after),
            "contact_skate_before": dict(self.contact_skate_before),
            "contact_skate_after": dict(self.contact_skate_after),
            "contact_frames": dict(self.contact_frames),
            "clamped_frames": dict(self.clamped_frames),
            "max_non_leg_change": self.max_non_leg_change,
        }


def detect_contacts(
    motion: Motion, height_margin: float = CONTACT_HEIGHT_MARGIN_CM, speed_threshold: float = CONTACT_SPEED_CM_PER_S
) -> np.ndarray:
    """Contact labels (F, 4) of CONTACT_JOINTS (heel and toe, left then right) of a motion in cm,
    Y up: core.ops.contacts.foot_contacts with these thresholds."""
    _, positions = motion.world()
    joints = [motion.skeleton.index(n) for n in CONTACT_JOINTS]
    return foot_contacts(positions, joints, motion.fps, height_margin, speed_threshold, up_axis=UP_AXIS)


def contact_spans(mask: np.ndarray, merge_gap: int = MERGE_GAP_FRAMES) -> list[tuple[int, int]]:
    """[start, stop) runs of True in a boolean track; runs separated by at most ``merge_gap``
    False frames are merged into one."""
    mask = np.asarray(mask, dtype=bool)
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    spans: list[tuple[int, int]] = []
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        if spans and start - spans[-1][1] <= merge_gap:
            spans[-1] = (spans[-1][0], stop)
        else:
            spans.append((start, stop))
    return spans


def pin_goals(positions: np.ndarray, spans: list[tuple[int, int]], blend_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight (F,), goal (F, 3)) of one joint track (F, 3) pinned over ``spans``.

    Inside a span the weight is 1 and the goal the span's mean position; on the ``blend_frames``
    frames either side (outside every span) each span contributes a raised-cosine weight and the
    goal is the weighted mix of the pins. Frames of weight 0 have the joint's own position as goal.
    Each span touches only its own frames and their blends, so the cost is linear in the length.
    """
    frames = positions.shape[0]
    inside = np.zeros(frames, dtype=bool)
    for start, stop in spans:
        inside[start:stop] = True
    total = np.zeros(frames)
    weighted = np.zeros((frames, 3))
    for start, stop in spans:
        near = slice(max(start - blend_frames, 0), min(stop + blend_frames, frames))
        t = np.arange(near.start, near.stop)
        pin = positions[start:stop].mean(axis=0)
        distance = np.maximum(start - t, t - (stop - 1))  # 0 inside, k frames outside
        w = np.where(distance <= 0, 1.0, 0.0)
        if blend_frames > 0:
            ramp = 0.5 * (1.0 + np.cos(np.pi * distance / (blend_frames + 1)))
            w = np.where((distance > 0) & (distance <= blend_frames) & ~inside[near], ramp, w)
        total[near] += w
        weighted[near] += w[:, None] * pin
    goal = positions.copy()
    active = total > 0
    goal[active] = weighted[active] / total[active, None]
    return np.minimum(total, 1.0), goal


def _unit(v: np.ndarray, eps: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1)
    return v / np.maximum(n, eps)[..., None], n


def _knee_bend_direction(upper_world, world_pos, upper, lower, ankle) -> np.ndarray:
    """The direction (3,) in the upper leg's frame in which this motion's knee sticks out of the
    hip-ankle line: the knee's bend direction, fixed in the thigh (a hinge), averaged over frames
    weighted by how far the knee is bent; (0, 0, 0) if it never bends."""
    hip, knee, ankle = world_pos[:, upper], world_pos[:, lower], world_pos[:, ankle]
    axis = _unit(ankle - hip)[0]
    out = knee - hip
    out = out - (out * axis).sum(-1)[:, None] * axis
    local = quat_rotate(quat_conj(upper_world), out).sum(axis=0)
    n = np.linalg.norm(local)
    return local / n if n > 1e-9 else np.zeros(3)


def two_bone_ik(hip, knee, ankle, goal, forward, reach: float = REACH, pole=None):
    """Analytic two-bone IK, batched over frames: (new knee (n, 3), reached ankle (n, 3), clamped (n,)).

    Bone lengths are those of the given hip-knee and knee-ankle; the knee stays in the plane
    through the hip and the goal that holds ``pole`` (a direction from the hip; default the given
    knee's offset), on its side; ``forward`` (e.g. the foot's direction) stands in where the pole
    lies on the hip-goal line. A goal beyond ``reach`` times the leg's length
    (or nearer than the lengths' difference) is moved along the hip-goal line to that distance.
    """
    l1 = np.linalg.norm(knee - hip, axis=-1)
    l2 = np.linalg.norm(ankle - knee, axis=-1)
    axis, d = _unit(goal - hip)
    degenerate = d < 1e-9
    if degenerate.any():  # the goal on the hip: keep the leg's own direction
        axis[degenerate] = _unit(ankle - hip)[0][degenerate]
    far, near = reach * (l1 + l2), np.abs(l1 - l2) + 1e-6
    clamped = d > far
    d = np.clip(d, near, np.maximum(far, near))
    reached = hip + axis * d[:, None]
    along = (l1 * l1 - l2 * l2 + d * d) / (2.0 * d)
    height = np.sqrt(np.clip(l1 * l1 - along * along, 0.0, None))
    pole = knee - hip if pole is None else np.asarray(pole, dtype=np.float64)
    pole = pole - (pole * axis).sum(-1)[:, None] * axis
    pole, pole_norm = _unit(pole)
    weak = pole_norm < 1e-6
    if weak.any():
        fallback = forward - (forward * axis).sum(-1)[:, None] * axis
        fallback, fallback_norm = _unit(fallback)
        pole[weak] = fallback[weak]
        still = weak & (fallback_norm < 1e-6)
        if still.any():
            other = np.cross(axis[still], np.array([1.0, 0.0, 0.0]))
            other = np.where(
                (np.linalg.norm(other, axis=-1) < 1e-6)[:, None], np.cross(axis[still], [0.0, 0.0, 1.0]), other
            )
            pole[still] = _unit(other)[0]
    new_knee = hip + axis * along[:, None] + pole * height[:, None]
    return new_knee, reached, clamped


def _within_reach(hip: np.ndarray, goal: np.ndarray, reach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(goals (n, 3) moved along the hip-goal line to at most ``reach`` (n,) from the hip, which
    goals were moved (n,))."""
    offset = goal - hip
    d = np.linalg.norm(offset, axis=-1)
    far = d > reach
    scale = np.where(far, reach / np.maximum(d, 1e-12), 1.0)
    return hip + offset * scale[:, None], far


def _cap_angle(q: np.ndarray, max_angle: float) -> np.ndarray:
    """Rotations q (n, 4) with their angle capped at ``max_angle`` (slerp towards the identity)."""
    q = np.where(q[:, :1] < 0, -q, q)
    angle = 2.0 * np.arctan2(np.linalg.norm(q[:, 1:], axis=-1), q[:, 0])
    t = np.where(angle > max_angle, max_angle / np.maximum(angle, 1e-12), 1.0)
    identity = np.zeros_like(q)
    identity[:, 0] = 1.0
    return quat_slerp(identity, q, t)


def _same_hemisphere(q: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.where(((q * reference).sum(-1) < 0)[..., None], -q, q)


def _skate(positions: np.ndarray, floor: np.ndarray) -> float:
    feet = positions.copy()
    feet[..., UP_AXIS] -= floor
    return foot_skate(feet, range(feet.shape[1]), 0.0, SKATE_HEIGHT_CM, UP_AXIS)


def _contact_skate(positions: np.ndarray, labels: np.ndarray) -> float:
    if positions.shape[0] < 2:
        return 0.0
    step = np.linalg.norm(np.diff(positions[..., list(PLANAR_AXES)], axis=0), axis=-1)
    down = labels[:-1]
    return float(step[down].mean()) if down.any() else 0.0


def _pin_leg(motion, world_rot, world_pos, rotations, f, foot, goals, bend) -> int:
    """Write into ``rotations`` the leg rotations of ``foot`` on frames ``f`` that reach its pins
    (``goals``: heel weight (n, 1), heel goal (n, 3), toe weight, toe goal, on those frames) with
    the knee bent towards ``bend``; the number of those frames whose pin was out of reach."""
    skeleton = motion.skeleton
    upper, lower, ankle_j, toe_j = (skeleton.index(n) for n in LEGS[foot])
    hips = skeleton.parents[upper]
    wh, heel_goal, wt, toe_goal = goals
    a, o = world_pos[f, ankle_j], world_pos[f, toe_j]
    # The ankle follows its own pin; where the heel is free it carries the toe's correction,
    # so a toe-only contact (toe-off) moves the foot rigidly.
    # Both pins are pulled within reach first: the goal is then a convex mix of reachable
    # points (reach is a ball about the hip), so a leg dragged straight by a pin it cannot
    # hold bends back smoothly over the blend instead of snapping when the weight falls.
    hip_p, knee_p = world_pos[f, upper], world_pos[f, lower]
    length = np.linalg.norm(knee_p - hip_p, axis=-1) + np.linalg.norm(a - knee_p, axis=-1)
    heel_pin, heel_far = _within_reach(hip_p, heel_goal, REACH * length)
    toe_pin, toe_far = _within_reach(hip_p, a + (toe_goal - o), REACH * length)
    ankle_goal = a + wh * (heel_pin - a) + (1.0 - wh) * wt * (toe_pin - a)
    pole = quat_rotate(world_rot[f, upper], np.broadcast_to(bend, a.shape)) if bend.any() else None
    new_knee, reached, clamped = two_bone_ik(hip_p, knee_p, a, ankle_goal, o - a, pole=pole)
    q1 = quat_between(knee_p - hip_p, new_knee - hip_p)
    upper_world = quat_normalize(quat_mul(q1, world_rot[f, upper]))
    shin = quat_rotate(q1, a - knee_p)
    q2 = quat_between(shin, reached - new_knee)
    lower_world = quat_normalize(quat_mul(q2, quat_mul(q1, world_rot[f, lower])))
    # The toe: carried rigidly by the ankle's move, then turned towards its own pin.
    toe_carried = o + (reached - a)
    toe_target = toe_carried + wt * (toe_goal - toe_carried)
    q3 = quat_between(o - a, toe_target - reached)
    q3 = _cap_angle(q3, MAX_TOE_TURN_RAD)
    foot_world = quat_normalize(quat_mul(q3, world_rot[f, ankle_j]))
    new_local = {
        upper: quat_mul(quat_conj(world_rot[f, hips]), upper_world),
        lower: quat_mul(quat_conj(upper_world), lower_world),
        ankle_j: quat_mul(quat_conj(lower_world), foot_world),
    }
    for j, q in new_local.items():
        rotations[f, j] = _same_hemisphere(quat_normalize(q), motion.rotations[f, j])
    return int((clamped | (heel_far & (wh[:, 0] > 0)) | (toe_far & (wt[:, 0] > 0))).sum())


def clean_foot_contacts(
    motion: Motion,
    contacts=None,
    height_margin: float = CONTACT_HEIGHT_MARGIN_CM,
    speed_threshold: float = CONTACT_SPEED_CM_PER_S,
    blend_frames: int = BLEND_FRAMES,
    feet=("left", "right"),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Motion, CleanupReport]:
    """The motion with its feet pinned during contact (see the module doc) and a report.

    motion: on a skeleton with the canonical leg joints (names of core.motion.canonical), Y up, cm.
    contacts: (F, 4) booleans (or values > 0.5) for CONTACT_JOINTS (heel and toe, left then right),
    e.g. those of the source the motion was stylized from; None detects them on ``motion`` itself
    with ``height_margin`` (cm above each joint's floor) and ``speed_threshold`` (cm/s).
    blend_frames: frames of raised-cosine blend either side of each contact span (0: none).
    feet: which legs to clean ("left", "right"); the others are left exactly as they are.
    progress: called as ``progress(done, count)`` after each CHUNK_FRAMES frames of each leg's
    IK (a long take's cleanup reports and can be cancelled as it goes; it may raise).
    """
    if not (np.isfinite(height_margin) and height_margin > 0):
        raise ValueError(f"contact height margin must be a positive number of cm, got {height_margin}")
    if not (np.isfinite(speed_threshold) and speed_threshold > 0):
        raise ValueError(f"contact speed threshold must be a positive number of cm/s, got {speed_threshold}")
    if int(blend_frames) != blend_frames or blend_frames < 0:
        raise ValueError(f"blend_frames must be a non-negative integer, got {blend_frames}")
    unknown = sorted(set(feet) - set(LEGS))
    if unknown:
        raise ValueError(f"unknown feet {unknown}; feet are {list(LEGS)}")
    skeleton = motion.skeleton
    frames = motion.num_frames
    if contacts is None:
        labels = detect_contacts(motion, height_margin, speed_threshold)
    else:
        labels = np.asarray(contacts)
        labels = labels > 0.5 if labels.dtype != bool else labels
        if labels.shape != (frames, len(CONTACT_JOINTS)):
            raise ValueError(
                f"contacts must be ({frames}, {len(CONTACT_JOINTS)}) (frames, heel/toe left/right), got {labels.shape}"
            )
    world_rot, world_pos = motion.world()
    rotations = motion.rotations.copy()
    report = CleanupReport()
    contact_idx = [skeleton.index(n) for n in CONTACT_JOINTS]
    floor = np.percentile(world_pos[:, contact_idx, UP_AXIS], FLOOR_PERCENTILE, axis=0)

    chunks, done = range(0, frames, CHUNK_FRAMES), 0
    for foot in feet:
        upper, lower, ankle_j, toe_j = (skeleton.index(n) for n in LEGS[foot])
        heel_col, toe_col = _CONTACT_COLUMNS[foot]
        heel_spans = contact_spans(labels[:, heel_col])
        toe_spans = contact_spans(labels[:, toe_col])
        pinned = np.zeros(frames, dtype=bool)
        for start, stop in heel_spans + toe_spans:
            pinned[start:stop] = True
        report.contact_frames[foot] = int(pinned.sum())
        report.clamped_frames[foot] = 0
        w_heel, heel_goal = pin_goals(world_pos[:, ankle_j], heel_spans, int(blend_frames))
        w_toe, toe_goal = pin_goals(world_pos[:, toe_j], toe_spans, int(blend_frames))
        active = (w_heel > 0) | (w_toe > 0)
        # The knee's plane: the knee's own bend direction, fixed in the thigh (a hinge) and turned
        # with the original thigh. The original knee's offset from the hip-ankle line gives the
        # same plane on a bent knee but turns to noise (and flips) as the original leg straightens.
        bend = _knee_bend_direction(world_rot[:, upper], world_pos, upper, lower, ankle_j) if active.any() else None
        for start in chunks:
            f = start + np.flatnonzero(active[start : start + CHUNK_FRAMES])
            if len(f):
                goals = (w_heel[f, None], heel_goal[f], w_toe[f, None], toe_goal[f])
                report.clamped_frames[foot] += _pin_leg(motion, world_rot, world_pos, rotations, f, foot, goals, bend)
            done += 1
            if progress is not None:
                progress(done, len(chunks) * len(feet))

    out = motion.with_arrays(rotations)
    del world_rot
    # the contact joints' positions only, a piece at a time: a long take's whole world arrays
    # would double the stage's memory for four joints' figures
    out_pos = np.concatenate([out.slice(a, a + CHUNK_FRAMES).world()[1][:, contact_idx] for a in chunks])
    changed = np.zeros(rotations.shape[1], dtype=bool)
    for foot in feet:
        changed[[skeleton.index(n) for n in LEGS[foot][:3]]] = True
    report.max_non_leg_change = max(  # the positions are the input's own arrays
        (
            float(np.abs(rotations[s][:, ~changed] - motion.rotations[s][:, ~changed]).max(initial=0.0))
            for s in (slice(a, a + CHUNK_FRAMES) for a in chunks)
        ),
        default=0.0,
    )
    for foot in LEGS:
        cols = list(_CONTACT_COLUMNS[foot])
        joints = [contact_idx[c] for c in cols]
        report.skate_before[foot] = _skate(world_pos[:, joints], floor[cols])
        report.skate_after[foot] = _skate(out_pos[:, cols], floor[cols])
        report.contact_skate_before[foot] = _contact_skate(world_pos[:, joints], labels[:, cols])
        report.contact_skate_after[foot] = _contact_skate(out_pos[:, cols], labels[:, cols])
        report.contact_frames.setdefault(foot, 0)
        report.clamped_frames.setdefault(foot, 0)
    return out, report
