"""Clips of the generalization sets (issue 15): what one role of an entry plays, and how it is read.

A ClipSpec is a pure description: a file under the data root, the frames [start, stop) taken from
it at its own frame rate, and whether the pelvis is held in place. ``clip_motion`` turns it into the
``core.runtime.RigMotion`` a stylizer is given:
- Bandai clips on ``canonical_rig()`` at their 30 fps, read from their BVH files. The feature cache
  is not used: its decode folds ``joint_Root`` into the pelvis and integrates float32 velocities, so
  its path drifts from the capture; the BVH's channels are the clip itself (only the pelvis offset
  differs from the canonical skeleton's, and every joint has translation channels, so the world
  poses are the file's exactly).
- Foreign clips on the rig ``rig_for_skeleton`` finds for them, with the up axis stored in the spec
  (``detect_up_axis`` at generation: the MakeHuman cycles are Z-up), at their own fps.

The analyses that choose the cuts live here too, so the generator and the tests share one rule:
``most_active_window`` (crops of long clips), ``best_cycle`` and ``cycle_seam`` (short loops).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from core.io.bvh import read_bvh
from core.motion.canonical import PELVIS, PLACEMENT_ROOT
from core.motion.motion import Motion
from core.ops.contacts import foot_contacts, joint_speeds
from core.ops.features import BODY_JOINTS, FEATURE_FPS
from core.ops.rotations import quat_conj, quat_rotate
from core.retarget.matching import rig_for_skeleton
from core.retarget.presets import canonical_rig
from core.runtime import RigMotion
from training.data.paths import data_root

BANDAI = "bandai"
CUTS = ("whole", "crop", "cycle")
PLANAR = [0, 2]  # the ground-plane axes of Y-up canonical motion

# Crops: a clip longer than this is cut to its most active window of this length (what a user
# stylizes at once is a shot, not a whole session; it keeps the generalization suite in budget).
MAX_CLIP_SECONDS = 10.0

# Gait cycles (DESIGN §7 contacts: ankle within 4 cm of its floor and slower than 30 cm/s).
CYCLE_FRAMES = (24, 40)  # a game loop's length at 30 fps, both ends included
MIN_SWING_FRAMES = 5  # a heel strike follows at least this many frames off the ground (contact flicker)
STRIKE_SLACK_FRAMES = 2  # the loop may end this many frames either side of the detected strike
# A loop closes when the jump from its last frame back to its first is about the typical frame step
# inside it: the pose at ``stop`` (the frame after the loop) is within this many median steps of the
# pose at ``start`` (one step, and a quarter for the cycle-to-cycle variation of a real capture).
SEAM_MAX_STEPS = 1.25


@dataclass(frozen=True)
class ClipSpec:
    """One role of an entry. ``path`` is relative to the data root; ``frames`` is [start, stop) at
    the file's own ``fps``; ``cut`` says why frames is not the whole clip; ``in_place`` holds the
    pelvis over its first frame's planar spot (hold_pelvis_in_place). Bandai clips carry their id
    and labels; foreign clips the up axis their rig is read with and what they show."""

    source: str
    path: str
    fps: float
    frames: tuple[int, int]
    cut: str = "whole"
    in_place: bool = False
    clip: str | None = None
    dataset: str | None = None
    content: str | None = None
    style: str | None = None
    up_axis: str | None = None
    description: str | None = None
    seam_steps: float | None = None  # cycles: the closing seam in median frame steps

    def __post_init__(self):
        object.__setattr__(self, "frames", tuple(self.frames))
        if self.cut not in CUTS:
            raise ValueError(f"cut must be one of {CUTS}, got {self.cut!r}")

    @property
    def num_frames(self) -> int:
        return self.frames[1] - self.frames[0]

    def frames_at_feature_rate(self) -> int:
        return frames_at_feature_rate(self.num_frames, self.fps)

    def to_json(self) -> dict:
        """The spec as a JSON object, leaving out the fields that do not apply."""
        return {k: list(v) if k == "frames" else v for k, v in asdict(self).items() if v not in (None, False)}


def frames_at_feature_rate(frames: int, fps: float) -> int:
    """Frames the stylizer works on: the span resampled to 30 fps, as core.ops.resample counts them."""
    return int(np.floor((frames - 1) / fps * FEATURE_FPS + 1e-6)) + 1


def read_rig_motion(path: str, source: str, up_axis: str | None = None) -> RigMotion:
    """A whole file under the data root on its rig: Bandai clips on canonical_rig(), others on the
    rig rig_for_skeleton finds with ``up_axis``."""
    motion = read_bvh(data_root() / path)
    if source != BANDAI:
        return RigMotion(rig_for_skeleton(motion.skeleton, up_axis=up_axis, name=path, motion=motion), motion)
    rig = canonical_rig()
    if motion.skeleton.names != rig.skeleton.names:
        raise ValueError(f"{path}: not on the Bandai skeleton")
    return RigMotion(rig, Motion(rig.skeleton, motion.rotations, motion.positions, motion.fps))


def clip_motion(spec: ClipSpec) -> RigMotion:
    """The clip a role plays: its frames of the file, with the pelvis held in place if asked."""
    whole = read_rig_motion(spec.path, spec.source, spec.up_axis)
    motion = whole.motion.slice(*spec.frames)
    if spec.in_place:
        motion = hold_pelvis_in_place(motion)
    return RigMotion(whole.rig, motion)


def hold_pelvis_in_place(motion: Motion) -> Motion:
    """Canonical motion with the planar motion of joint_Root and of the pelvis removed, the pelvis
    over its first frame's planar spot, height, heading and pose untouched: what game tools export
    as an "in place" clip. joint_Root (the placement joint, moving in a few dataset-1 takes) is held
    at its first frame's planar position; the pelvis's remaining planar drift is taken off its own
    translation, turned into joint_Root's frame."""
    skeleton = motion.skeleton
    root, pelvis = skeleton.index(PLACEMENT_ROOT), skeleton.index(PELVIS)
    if skeleton.parents[root] != -1 or skeleton.parents[pelvis] != root:
        raise ValueError("in-place clips need the canonical joint_Root -> Hips chain")
    positions = np.array(motion.positions, copy=True)
    positions[:, root, PLANAR] = positions[0, root, PLANAR]
    pelvis_path = motion.with_arrays(positions=positions).world_of([pelvis])[1][:, 0]
    drift = np.zeros_like(pelvis_path)
    drift[:, PLANAR] = pelvis_path[:, PLANAR] - pelvis_path[0, PLANAR]
    positions[:, pelvis] -= quat_rotate(quat_conj(motion.rotations[:, root]), drift)
    return motion.with_arrays(positions=positions)


def pelvis_planar_rms(motion: Motion) -> float:
    """RMS distance (cm) of the pelvis from its mean planar position: how far a clip travels."""
    path = motion.world_of([motion.skeleton.index(PELVIS)])[1][:, 0, PLANAR]
    return float(np.sqrt(((path - path.mean(axis=0)) ** 2).sum(axis=1).mean()))


def most_active_window(rig_motion: RigMotion, length: int) -> tuple[int, int]:
    """[start, stop) of the ``length`` frames where the rig's mapped bones move fastest on average
    (world speed, so travel, jumps and kicks all count); the earliest of equal windows."""
    motion = rig_motion.motion
    if motion.num_frames <= length:
        return 0, motion.num_frames
    bones = sorted(rig_motion.rig.bone(joint) for joint in rig_motion.rig.mapping)
    activity = joint_speeds(motion.world_of(bones)[1], motion.fps).mean(axis=1)
    totals = np.concatenate([[0.0], np.cumsum(activity)])
    windows = np.round(totals[length:] - totals[:-length], 6)  # rounded: the choice survives float noise
    start = int(np.argmax(windows))
    return start, start + length


def crop_frames(rig_motion: RigMotion) -> tuple[tuple[int, int], str]:
    """(frames, cut) of a clip: the whole clip, or its most active MAX_CLIP_SECONDS when longer."""
    motion = rig_motion.motion
    length = round(MAX_CLIP_SECONDS * motion.fps)
    if motion.num_frames <= length:
        return (0, motion.num_frames), "whole"
    return most_active_window(rig_motion, length), "crop"


def body_relative_positions(motion: Motion) -> np.ndarray:
    """(F, 21, 3) world positions of the canonical body joints with the pelvis's planar position
    taken off each frame: the pose a loop must repeat, whatever distance it travels. joint_Root is
    left out (it stays where it was placed, so it would count the travel back in)."""
    skeleton = motion.skeleton
    positions = motion.world_of([skeleton.index(j) for j in BODY_JOINTS])[1]
    pelvis = BODY_JOINTS.index(PELVIS)
    positions[..., PLANAR] -= positions[:, pelvis : pelvis + 1, PLANAR]
    return positions


def cycle_seam(relative: np.ndarray, start: int, stop: int) -> float:
    """The seam of the loop [start, stop) in median frame steps: the mean body-joint distance of
    the pose at ``stop`` (the frame the loop replaces by ``start``) from the pose at ``start``, over
    the median mean step between consecutive frames inside the loop."""
    seam = np.linalg.norm(relative[stop] - relative[start], axis=-1).mean()
    steps = np.linalg.norm(np.diff(relative[start : stop + 1], axis=0), axis=-1).mean(axis=1)
    return float(seam / np.median(steps))


def heel_strikes(contact: np.ndarray) -> list[int]:
    """Frames where a foot lands: contact begins after MIN_SWING_FRAMES frames off the ground."""
    return [
        f for f in range(MIN_SWING_FRAMES, len(contact)) if contact[f] and not contact[f - MIN_SWING_FRAMES : f].any()
    ]


def best_cycle(motion: Motion) -> tuple[int, int, float] | None:
    """(start, stop, seam) of the closing gait loop with the smallest seam, or None.

    A loop runs from a heel strike to the next strike of the same foot (one cycle; two when one is
    shorter than CYCLE_FRAMES[0]), ending within STRIKE_SLACK_FRAMES of that strike, and has
    CYCLE_FRAMES frames; it closes when its seam is at most SEAM_MAX_STEPS. Ties go to the earliest.
    """
    skeleton = motion.skeleton
    feet = [skeleton.index(f"Foot_{side}") for side in "LR"]
    contacts = foot_contacts(motion.world_of(feet)[1], range(len(feet)), motion.fps)
    relative = body_relative_positions(motion)
    shortest, longest = CYCLE_FRAMES
    candidates = []
    for foot in range(len(feet)):
        strikes = heel_strikes(contacts[:, foot])
        for i, start in enumerate(strikes[:-1]):
            cycles = 1 if strikes[i + 1] - start >= shortest else 2
            if i + cycles >= len(strikes):
                continue
            end = strikes[i + cycles]
            for stop in range(end - STRIKE_SLACK_FRAMES, end + STRIKE_SLACK_FRAMES + 1):
                if shortest <= stop - start <= longest and stop < motion.num_frames:
                    candidates.append((round(cycle_seam(relative, start, stop), 4), start, stop))
    closing = [c for c in candidates if c[0] <= SEAM_MAX_STEPS]
    if not closing:
        return None
    seam, start, stop = min(closing)
    return start, stop, seam
