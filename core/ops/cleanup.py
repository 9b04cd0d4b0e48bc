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
- moves the ankle to its goal with an analytic two-bone IK (UpperLeg - LowerLeg - Foot) in which
  the knee is a hinge: the knee only turns about its hinge axis (the thigh's local Y, the axis
  training.evaluation.label_free measures off-hinge rotation about), on the side this motion's knee
  bends, so the lower leg keeps the off-hinge part of its rotation exactly and gets none added; the
  thigh then swings by the smallest rotation that points the leg at the goal, keeping its twist. A
  pin out of reach is pulled back along the hip-pin line to just short of the hinge's full
  extension (or to the leg's own extension where that is straighter) before the blend (never
  stretched, never NaN, and a leg dragged straight bends back smoothly);
- turns the foot about the ankle so the toe points at its own goal where the toe is pinned (an
  ankle rotation, capped at ``MAX_TOE_TURN_RAD``); where only the toe is pinned (toe-off) the ankle
  goal is the toe's correction applied to the whole foot, so the foot keeps its own rotation.

A clip exported in place (``in_place_ground``) has no still ground: its planted foot slides back
under the body like a treadmill's. There the contacts are read, and the pins held, on the ground as
it moves under the clip (core.ops.contacts.ground_drift of the source): a planted foot slides with
that ground, as the source's does, instead of being held still or left to skate.

Only the local rotations of UpperLeg, LowerLeg and Foot of a cleaned leg change, and only on frames
with a non-zero pin weight; every other value (the pelvis and its trajectory, the torso, the arms,
the toes' local rotation, every translation and so every bone length) is returned bit for bit.

Numpy only, deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..motion.canonical import CONTACT_JOINTS, PELVIS
from ..motion.motion import Motion
from .contacts import (
    CONTACT_HEIGHT_MARGIN_CM,
    CONTACT_SPEED_CM_PER_S,
    FLOOR_PERCENTILE,
    SKATE_HEIGHT_CM,
    foot_contacts,
    foot_skate,
    ground_drift,
)
from .rotations import axis_quat, quat_between, quat_conj, quat_mul, quat_normalize, quat_rotate, quat_slerp

# The cleanup stage's default speed threshold for "this foot is planted" (cm/s): the labelling
# threshold of the features. Chosen on the validation split's cross pairs for issue 16's model: the
# highest contact F1 whose foot skate stays at or below the source's (0.956 cm/frame): 30 cm/s F1
# 0.992, skate 0.947; 45: 0.988, 0.932; 60: 0.965, 0.918. Issue 7's model needed 60 (at 30 its skate
# was 1.00); pinning the slow ends of steps too held feet down longer than the source does (contacts
# a clip restyled by itself lost: product contact F1 0.60 on foreign clips at 60, 1.00 at 30).
CLEANUP_CONTACT_SPEED_CM_PER_S = CONTACT_SPEED_CM_PER_S

UP_AXIS = 1
PLANAR_AXES = (0, 2)
IN_PLACE_EXTENT_CM = 25.0  # a pelvis that never strays farther than this from its median spot stays in place
TREADMILL_SPEED_CM_S = 20.0  # ground under an in-place clip moving slower than this on average stands still
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


def in_place_ground(motion: Motion) -> np.ndarray | None:
    """(F, 3) ground drift (core.ops.contacts.ground_drift) of a clip whose pelvis stays within
    IN_PLACE_EXTENT_CM of its median spot on the floor while its planted feet slide back at
    TREADMILL_SPEED_CM_S or more on average (a walk or run exported in place); None for a clip that
    travels or stands still (a wave, a turn on the spot), whose ground stands still."""
    _, positions = motion.world_of([motion.skeleton.index(n) for n in (PELVIS, *CONTACT_JOINTS)])
    pelvis = positions[:, 0][:, PLANAR_AXES]
    if np.linalg.norm(pelvis - np.median(pelvis, axis=0), axis=1).max() >= IN_PLACE_EXTENT_CM:
        return None
    drift = ground_drift(positions[:, 1:], UP_AXIS)
    seconds = max(motion.num_frames - 1, 1) / motion.fps
    return drift if np.linalg.norm(drift[-1] - drift[0]) / seconds >= TREADMILL_SPEED_CM_S else None


def detect_contacts(
    motion: Motion,
    height_margin: float = CONTACT_HEIGHT_MARGIN_CM,
    speed_threshold: float = CONTACT_SPEED_CM_PER_S,
    ground: np.ndarray | None = None,
) -> np.ndarray:
    """Contact labels (F, 4) of CONTACT_JOINTS (heel and toe, left then right) of a motion in cm,
    Y up: core.ops.contacts.foot_contacts with these thresholds, on the ground ``ground`` (F, 3)
    has moved to (in_place_ground; None: still ground)."""
    _, positions = motion.world()
    feet = positions[:, [motion.skeleton.index(n) for n in CONTACT_JOINTS]]
    if ground is not None:
        feet = feet - ground[:, None]
    return foot_contacts(feet, range(len(CONTACT_JOINTS)), motion.fps, height_margin, speed_threshold, up_axis=UP_AXIS)


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


def _pins_on_ground(positions, spans, blend_frames, ground) -> tuple[np.ndarray, np.ndarray]:
    """pin_goals held still on a moving ground (F, 3) and carried along with it; None: still ground."""
    if ground is None:
        return pin_goals(positions, spans, blend_frames)
    weight, goal = pin_goals(positions - ground, spans, blend_frames)
    return weight, goal + ground


def _unit(v: np.ndarray, eps: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1)
    return v / np.maximum(n, eps)[..., None], n


def leg_bones(
    upper_world: np.ndarray, positions: np.ndarray, joints: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(thigh, shin) (n, 3): hip to knee and knee to ankle in the upper leg's frame, for upper leg
    world rotations (n, 4), world positions (n, J, 3) and the (upper leg, lower leg, foot) joints."""
    hip, knee, ankle = (positions[:, j] for j in joints)
    to_thigh = quat_conj(upper_world)
    return quat_rotate(to_thigh, knee - hip), quat_rotate(to_thigh, ankle - knee)


def _across_hinge(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(angle about the hinge axis (local Y), length) (n,) of the part of v (n, 3) across the axis:
    a turn about Y by t adds t to the angle."""
    return np.arctan2(v[:, 0], v[:, 2]), np.hypot(v[:, 0], v[:, 2])


def knee_bend(thigh: np.ndarray, shin: np.ndarray) -> np.ndarray:
    """Signed bend (n,) of the knee about its hinge (rad, in (-pi, pi]): the turn about the thigh's
    local Y from the thigh bone's direction to the shin's, both in the thigh's frame; 0 is straight."""
    bend = _across_hinge(shin)[0] - _across_hinge(thigh)[0]
    return np.mod(bend + np.pi, 2.0 * np.pi) - np.pi


def bend_side(thigh: np.ndarray, shin: np.ndarray) -> float:
    """The side (+1 or -1) this leg's knee bends to about its hinge, over all its frames: rigs differ
    (a thigh rolled half a turn bends about -Y), and a frame's own sign flips as the leg straightens."""
    return -1.0 if np.sin(knee_bend(thigh, shin)).sum() < 0 else 1.0


def _hinge_terms(thigh: np.ndarray, shin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(base, across) (n,): with the knee turned about its hinge to a bend b (``knee_bend``), the
    squared hip-ankle distance is base + across * cos(b) (the shin's part along the axis stays)."""
    across = 2.0 * _across_hinge(thigh)[1] * _across_hinge(shin)[1]
    return (thigh * thigh).sum(-1) + (shin * shin).sum(-1) + 2.0 * thigh[:, 1] * shin[:, 1], across


def hinge_reach(thigh: np.ndarray, shin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(farthest, nearest) (n,) hip-ankle distances the knee's hinge allows these bones: fully
    straight and fully folded about Y (a shin off the hinge's plane never quite straightens)."""
    base, across = _hinge_terms(thigh, shin)
    return np.sqrt(np.maximum(base + across, 0.0)), np.sqrt(np.maximum(base - across, 0.0))


def hinge_leg_ik(upper_world, lower_local, hip, thigh, shin, goal, side, far):
    """Analytic two-bone IK with the knee a hinge, batched over frames: (upper leg world rotation
    (n, 4), lower leg local rotation (n, 4), reached ankle (n, 3), clamped (n,)).

    ``thigh``, ``shin``: the bones in the upper leg's frame (``leg_bones``). The knee bends about its
    hinge axis (local Y) on ``side`` (``bend_side``) to the angle that puts the ankle at the goal's
    distance from the hip: the new lower leg rotation is a turn about Y before ``lower_local``, so
    its off-hinge part stays the given one. The thigh then takes the smallest rotation that points
    the hip-ankle line at the goal, so its twist about the leg stays. A goal farther than ``far``
    (n,) from the hip, or nearer than full flexion, is moved along the hip-goal line to it
    (``clamped`` says which were farther); a goal on the hip keeps the leg's direction.
    """
    axis, d = _unit(goal - hip)
    degenerate = d < 1e-9
    if degenerate.any():  # the goal on the hip: keep the leg's own direction
        axis[degenerate] = _unit(quat_rotate(upper_world[degenerate], (thigh + shin)[degenerate]))[0]
    clamped = d > far
    d = np.clip(d, hinge_reach(thigh, shin)[1] + 1e-6, far)
    base, across = _hinge_terms(thigh, shin)
    bend = side * np.arccos(np.clip((d * d - base) / np.maximum(across, 1e-12), -1.0, 1.0))
    turn = axis_quat("y", bend - knee_bend(thigh, shin))
    leg = thigh + quat_rotate(turn, shin)
    upper = quat_normalize(quat_mul(quat_between(quat_rotate(upper_world, leg), axis), upper_world))
    return upper, quat_normalize(quat_mul(turn, lower_local)), hip + quat_rotate(upper, leg), clamped


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


def _pin_leg(motion, world_rot, world_pos, rotations, f, foot, goals, side) -> int:
    """Write into ``rotations`` the leg rotations of ``foot`` on frames ``f`` that reach its pins
    (``goals``: heel weight (n, 1), heel goal (n, 3), toe weight, toe goal, on those frames) with
    the knee bent to ``side`` of its hinge; the number of those frames whose pin was out of reach."""
    skeleton = motion.skeleton
    upper, lower, ankle_j, toe_j = (skeleton.index(n) for n in LEGS[foot])
    hips = skeleton.parents[upper]
    wh, heel_goal, wt, toe_goal = goals
    a, o, hip_p = world_pos[f, ankle_j], world_pos[f, toe_j], world_pos[f, upper]
    thigh, shin = leg_bones(world_rot[f, upper], world_pos[f], (upper, lower, ankle_j))
    # The reach: just short of the hinge's full extension, where the knee's bend would swing fast
    # for a small move of the goal; a leg already straighter than that is not bent to it.
    far = np.maximum(REACH * hinge_reach(thigh, shin)[0], np.linalg.norm(a - hip_p, axis=-1))
    # The ankle follows its own pin; where the heel is free it carries the toe's correction,
    # so a toe-only contact (toe-off) moves the foot rigidly.
    # Both pins are pulled within reach first: the goal is then a convex mix of reachable
    # points (reach is a ball about the hip), so a leg dragged straight by a pin it cannot
    # hold bends back smoothly over the blend instead of snapping when the weight falls.
    heel_pin, heel_far = _within_reach(hip_p, heel_goal, far)
    toe_pin, toe_far = _within_reach(hip_p, a + (toe_goal - o), far)
    ankle_goal = a + wh * (heel_pin - a) + (1.0 - wh) * wt * (toe_pin - a)
    upper_world, lower_local, reached, clamped = hinge_leg_ik(
        world_rot[f, upper], motion.rotations[f, lower], hip_p, thigh, shin, ankle_goal, side, far
    )
    lower_world = quat_normalize(quat_mul(upper_world, lower_local))
    # The toe: carried rigidly by the ankle's move, then turned towards its own pin.
    toe_carried = o + (reached - a)
    toe_target = toe_carried + wt * (toe_goal - toe_carried)
    q3 = quat_between(o - a, toe_target - reached)
    q3 = _cap_angle(q3, MAX_TOE_TURN_RAD)
    foot_world = quat_normalize(quat_mul(q3, world_rot[f, ankle_j]))
    new_local = {
        upper: quat_mul(quat_conj(world_rot[f, hips]), upper_world),
        lower: lower_local,
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
    ground: np.ndarray | None = None,
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
    ground: (F, 3) where the ground has moved to by each frame (in_place_ground of the source of an
    in-place clip): pins hold still on that ground; None: on still ground.
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
    if ground is not None and np.shape(ground) != (frames, 3):
        raise ValueError(f"ground must be ({frames}, 3), got {np.shape(ground)}")
    if contacts is None:
        labels = detect_contacts(motion, height_margin, speed_threshold, ground)
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
        w_heel, heel_goal = _pins_on_ground(world_pos[:, ankle_j], heel_spans, int(blend_frames), ground)
        w_toe, toe_goal = _pins_on_ground(world_pos[:, toe_j], toe_spans, int(blend_frames), ground)
        active = (w_heel > 0) | (w_toe > 0)
        # The side the knee bends to, over the whole motion: a frame's own flips as the leg straightens.
        side = bend_side(*leg_bones(world_rot[:, upper], world_pos, (upper, lower, ankle_j))) if active.any() else 1.0
        for start in chunks:
            f = start + np.flatnonzero(active[start : start + CHUNK_FRAMES])
            if len(f):
                goals = (w_heel[f, None], heel_goal[f], w_toe[f, None], toe_goal[f])
                report.clamped_frames[foot] += _pin_leg(motion, world_rot, world_pos, rotations, f, foot, goals, side)
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
