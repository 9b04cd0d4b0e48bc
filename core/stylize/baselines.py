"""Stylizers that need no training: the baselines of DESIGN §7 and the first shipped stylizer.

- ``IdentityStylizer`` returns the content untouched (perfect fidelity, no style).
- ``ReferenceCopyStylizer`` returns the reference time-stretched to the content's frame count: the
  cheap trick that scores a high style accuracy by throwing the source away.
- ``StatisticsStylizer`` imposes the reference's per-joint rotation statistics on the content, per
  body group and with group weights: the stylizer the product ships until a learned one exists.

How every method here sees a canonical motion (``_Parts``), which is also what "a group's motion"
means for weights and per-group references (DESIGN §5):

- ``root``: the pelvis trajectory: its world position (height and planar path) and its heading
  (yaw about +Y, taken from the pelvis's lateral axis as in the features of core.ops.features);
- ``torso``: the pelvis rotation with its heading removed (the "upright" rotation) and the local
  rotations of Spine, Chest, Neck, Head;
- the four limbs: the local rotations of their joints.

A group with weight 0 gets the content's arrays for that group copied bit for bit, so with every
weight 0 the output equals the content exactly. The placement joint (joint_Root) always keeps the
content's transform; the pelvis is re-expressed under it whenever root or torso changed.

Numpy only, deterministic, no training-side imports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RequestError
from ..motion.canonical import BODY_GROUPS, JOINT_NAMES, PELVIS, PLACEMENT_ROOT
from ..motion.motion import Motion
from ..ops.features import heading_angles, pelvis_left_axis, wrap_angle
from ..ops.kinematics import forward_kinematics
from ..ops.resample import time_stretch
from ..ops.rotations import (
    axis_angle_to_quat,
    identity_quat,
    quat_canonical,
    quat_conj,
    quat_mul,
    quat_normalize,
    quat_rotate,
    quat_slerp,
    quat_to_axis_angle,
    yaw_quat,
)
from .request import GROUPS, StyleRequest

_PELVIS = JOINT_NAMES.index(PELVIS)
_PLACEMENT = JOINT_NAMES.index(PLACEMENT_ROOT)
# Joints whose *local* rotation belongs to each group; the pelvis is handled through its upright
# rotation (torso) and its heading and position (root).
GROUP_LOCAL_JOINTS: dict[str, tuple[int, ...]] = {
    group: tuple(JOINT_NAMES.index(n) for n in names if n != PELVIS) for group, names in BODY_GROUPS.items()
}


@dataclass
class _Parts:
    """A canonical motion as the body groups see it (see the module doc)."""

    local: np.ndarray  # (F, J, 4) local rotations (the pelvis's entry is ignored on compose)
    upright: np.ndarray  # (F, 4) pelvis world rotation with its heading removed
    heading: np.ndarray  # (F,) pelvis yaw, radians
    pelvis: np.ndarray  # (F, 3) pelvis world position, cm

    @classmethod
    def of(cls, motion: Motion) -> _Parts:
        # forward kinematics down to the pelvis only (joints come after their parents): a long
        # take's other world arrays are never needed here
        upto = _PELVIS + 1
        world_rot, world_pos = forward_kinematics(
            motion.skeleton.parents[:upto], motion.rotations[:, :upto], motion.positions[:, :upto]
        )
        pelvis_rot = world_rot[:, _PELVIS]
        heading = heading_angles(pelvis_rot, pelvis_left_axis(motion.skeleton))
        upright = quat_mul(yaw_quat(-heading), pelvis_rot)
        local = motion.rotations.view()
        local.flags.writeable = False  # the motion's own array: copy() the parts to change them
        return cls(local, upright, heading, world_pos[:, _PELVIS].copy())

    def copy(self) -> _Parts:
        return _Parts(self.local.copy(), self.upright.copy(), self.heading.copy(), self.pelvis.copy())


def _compose(content: Motion, parts: _Parts, pelvis_changed: bool) -> Motion:
    """The motion that ``parts`` (a copy, used up: its arrays become the result's) describe,
    under the content's placement joint."""
    rotations = parts.local
    positions = content.positions.copy()
    if pelvis_changed:
        pelvis_world = quat_mul(yaw_quat(parts.heading), parts.upright)
        placement_rot = content.rotations[:, _PLACEMENT]
        placement_pos = content.positions[:, _PLACEMENT]
        unplace = quat_conj(placement_rot)
        rotations[:, _PELVIS] = quat_normalize(quat_mul(unplace, pelvis_world))
        positions[:, _PELVIS] = quat_rotate(unplace, parts.pelvis - placement_pos)
    else:
        rotations[:, _PELVIS] = content.rotations[:, _PELVIS]
    return content.with_arrays(rotations, positions)


def _take_group(out: _Parts, source: _Parts, group: str) -> None:
    """Overwrite ``out``'s arrays of ``group`` with ``source``'s (same frame count)."""
    joints = list(GROUP_LOCAL_JOINTS[group])
    if joints:
        out.local[:, joints] = source.local[:, joints]
    if group == "torso":
        out.upright = source.upright.copy()
    if group == "root":
        out.heading = source.heading.copy()
        out.pelvis = source.pelvis.copy()


def take_groups(content: Motion, styled: Motion, groups) -> Motion:
    """``content`` with the arrays of body ``groups`` taken from ``styled`` (same frame count):
    every other group keeps the content's arrays bit for bit."""
    parts, source = _Parts.of(content).copy(), _Parts.of(styled)
    for group in groups:
        _take_group(parts, source, group)
    return _compose(content, parts, pelvis_changed=bool({"root", "torso"} & set(groups)))


class IdentityStylizer:
    """The content, untouched: perfect fidelity, no style at all."""

    name = "identity"

    def stylize(self, request: StyleRequest) -> Motion:
        return request.content


class ReferenceCopyStylizer:
    """Each group's reference, time-stretched to the content's frame count, replaces that group.

    With a single reference and every weight above 0 the output is the reference itself (its poses
    and its own root trajectory, in its own place), stretched in time: the source is thrown away.
    Groups with weight 0 keep the content's motion exactly; any weight above 0 copies fully (a copy
    has no notion of partial style). Per-group references are honoured the same way.
    """

    name = "copy"

    def stylize(self, request: StyleRequest) -> Motion:
        content = request.content
        frames = content.num_frames
        out = _Parts.of(content).copy()
        stretched: dict[int, _Parts] = {}
        pelvis_changed = False
        for group in GROUPS:
            if request.weight(group) == 0:
                continue
            reference = request.reference_for(group)
            if id(reference) not in stretched:
                stretched[id(reference)] = _Parts.of(time_stretch(reference, frames))
            _take_group(out, stretched[id(reference)], group)
            pelvis_changed |= group in ("root", "torso")
        return _compose(content, out, pelvis_changed)


# --- statistics transfer ----------------------------------------------------------------------


def rotation_mean(q: np.ndarray) -> np.ndarray:
    """Chordal L2 mean of unit quaternions over the first axis: (F, ..., 4) -> (..., 4), w >= 0.

    The eigenvector of the largest eigenvalue of sum(q q^T) (Markley et al. 2007), which is
    insensitive to the q / -q ambiguity.
    """
    m = np.einsum("f...i,f...j->...ij", q, q)
    _, vectors = np.linalg.eigh(m)
    return quat_canonical(quat_normalize(vectors[..., :, -1]))


@dataclass(frozen=True)
class RotationStats:
    """Per-joint statistics of a rotation track (F, n, 4): mean rotation and the RMS angle (rad)
    of the frames' deviation from it."""

    mean: np.ndarray  # (n, 4)
    spread: np.ndarray  # (n,)

    @classmethod
    def of(cls, q: np.ndarray) -> RotationStats:
        mean = rotation_mean(q)
        deviation = quat_to_axis_angle(quat_mul(quat_conj(mean)[None], q))
        spread = np.sqrt((deviation**2).sum(-1).mean(0))
        return cls(mean, spread)


@dataclass(frozen=True)
class RootStats:
    """Pelvis trajectory statistics: mean height (cm), mean planar speed (cm per frame) and mean
    absolute heading velocity (radians per frame)."""

    height: float
    speed: float
    turn: float

    @classmethod
    def of(cls, parts: _Parts) -> RootStats:
        step = np.diff(parts.pelvis[:, [0, 2]], axis=0)
        speed = float(np.linalg.norm(step, axis=-1).mean()) if len(step) else 0.0
        turn = float(np.abs(wrap_angle(np.diff(parts.heading))).mean()) if len(step) else 0.0
        return cls(float(parts.pelvis[:, 1].mean()), speed, turn)


def _ratio(reference, content, floor: float, max_ratio: float):
    """(reference + floor) / (content + floor), clipped to [1 / max_ratio, max_ratio]."""
    ratio = (np.asarray(reference) + floor) / (np.asarray(content) + floor)
    return np.clip(ratio, 1.0 / max_ratio, max_ratio)


def transfer_rotations(content: np.ndarray, reference: np.ndarray, weight: float, max_ratio: float, floor: float):
    """Rotation tracks (F, n, 4) of the content with the reference's statistics imposed at ``weight``.

    offset = mean_ref * mean_content^-1, taken to the power ``weight`` by slerp from the identity;
    the deviation from the content's mean (a rotation vector in the mean's frame) is scaled by
    (spread_ref / spread_content) ** weight, the ratio floored and clipped as in ``_ratio``:
        out(t) = offset^w * mean_c * exp(ratio^w * log(mean_c^-1 * q(t)))
    Weight 0 gives the content (up to float error; callers copy exactly instead), 1 the reference's
    mean and spread, above 1 extrapolates both.
    """
    c, r = RotationStats.of(content), RotationStats.of(reference)
    offset = quat_mul(r.mean, quat_conj(c.mean))
    offset = quat_slerp(identity_quat(offset.shape[:-1]), offset, weight)
    scale = _ratio(r.spread, c.spread, floor, max_ratio) ** weight
    deviation = quat_to_axis_angle(quat_mul(quat_conj(c.mean)[None], content))
    moved = quat_mul((quat_mul(offset, c.mean))[None], axis_angle_to_quat(deviation * scale[None, :, None]))
    return quat_normalize(moved)


class StatisticsStylizer:
    """Statistics transfer per body group: the reference's mean joint rotations and motion range,
    and its root speed, turning rate and pelvis height, imposed on the content with group weights.

    For each group with weight w > 0 and its reference (``request.reference_for(group)``):
    - every joint's rotation track goes through ``transfer_rotations`` (for the torso the pelvis's
      upright rotation is one of the tracks; its heading is removed again afterwards, so the torso
      never turns the root's heading);
    - root: the pelvis's planar steps (in the heading frame) are scaled by the speed ratio ** w, the
      heading velocity by the turning ratio ** w, and w * (mean height difference) is added to the
      pelvis height; the path is re-integrated from the content's first frame.

    Ratios are (reference + floor) / (content + floor), clipped to [1 / max_ratio, max_ratio] before
    the power, so a near-static content joint (an arm hanging in a walk) is not blown up. Options
    (``request.options``): ``max_ratio`` (default 2.0). Weight 0 copies the content's arrays
    exactly; with all weights 0 the output is the content. Deterministic.

    Known weakness (by design a baseline): statistics are of whole clips, so across contents they
    mix content into style (a wave's raised-arm mean imposed on a walk's arm), and the timing and
    shape of the content's motion never change.
    """

    name = "statistics"
    ROTATION_FLOOR_RAD = 0.02
    SPEED_FLOOR_CM = 1.0  # per frame: 30 cm/s
    TURN_FLOOR_RAD = 0.01  # per frame: about 17 degrees/s
    MAX_RATIO = 2.0

    def stylize(self, request: StyleRequest) -> Motion:
        content = request.content
        try:
            max_ratio = float(request.options.get("max_ratio", self.MAX_RATIO))
        except (TypeError, ValueError):
            max_ratio = None
        if max_ratio is None or not max_ratio >= 1.0:
            raise RequestError(f"option max_ratio must be a number >= 1, got {request.options['max_ratio']!r}")
        source = _Parts.of(content)
        out = source.copy()
        references: dict[int, _Parts] = {}
        pelvis_changed = False
        for group in GROUPS:
            w = request.weight(group)
            if w == 0:
                continue
            reference = request.reference_for(group)
            if id(reference) not in references:
                references[id(reference)] = _Parts.of(reference)
            ref = references[id(reference)]
            if group == "root":
                self._root(source, ref, out, w, max_ratio)
                pelvis_changed = True
                continue
            joints = list(GROUP_LOCAL_JOINTS[group])
            tracks_c = source.local[:, joints]
            tracks_r = ref.local[:, joints]
            if group == "torso":
                tracks_c = np.concatenate([source.upright[:, None], tracks_c], axis=1)
                tracks_r = np.concatenate([ref.upright[:, None], tracks_r], axis=1)
            moved = transfer_rotations(tracks_c, tracks_r, w, max_ratio, self.ROTATION_FLOOR_RAD)
            if group == "torso":
                upright, moved = moved[:, 0], moved[:, 1:]
                out.upright = quat_mul(yaw_quat(-heading_angles(upright, pelvis_left_axis(content.skeleton))), upright)
                pelvis_changed = True
            out.local[:, joints] = moved
        return _compose(content, out, pelvis_changed)

    def _root(self, source: _Parts, ref: _Parts, out: _Parts, w: float, max_ratio: float) -> None:
        c, r = RootStats.of(source), RootStats.of(ref)
        speed = float(_ratio(r.speed, c.speed, self.SPEED_FLOOR_CM, max_ratio)) ** w
        turn = float(_ratio(r.turn, c.turn, self.TURN_FLOOR_RAD, max_ratio)) ** w
        heading = source.heading[0] + np.concatenate([[0.0], np.cumsum(turn * wrap_angle(np.diff(source.heading)))])
        step = np.diff(source.pelvis, axis=0) * np.array([1.0, 0.0, 1.0])
        local_step = quat_rotate(yaw_quat(-source.heading[:-1]), step)
        new_step = quat_rotate(yaw_quat(heading[:-1]), speed * local_step)
        pelvis = source.pelvis[0] + np.concatenate([np.zeros((1, 3)), np.cumsum(new_step, axis=0)])
        pelvis[:, 1] = source.pelvis[:, 1] + w * (r.height - c.height)
        out.heading = heading
        out.pelvis = pelvis


STYLIZERS = {cls.name: cls for cls in (IdentityStylizer, ReferenceCopyStylizer, StatisticsStylizer)}
