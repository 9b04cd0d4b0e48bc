"""Resampling to another frame rate: slerp for rotations, linear for translations."""

from __future__ import annotations

import numpy as np

from core.motion.motion import Motion
from core.ops.rotations import quat_slerp


def resample(motion: Motion, fps: float) -> Motion:
    """The motion sampled at ``fps``, over the same time span (the last sample never overshoots).

    Frame times that fall on an original frame reproduce it exactly, so 30 -> 120 -> 30 fps is
    lossless up to float error.
    """
    if fps <= 0:
        raise ValueError(f"target fps must be positive, got {fps}")
    if abs(fps - motion.fps) < 1e-9:
        return motion
    duration = (motion.num_frames - 1) / motion.fps
    count = int(np.floor(duration * fps + 1e-6)) + 1
    source_index = np.arange(count) * (motion.fps / fps)
    lower = np.clip(np.floor(source_index + 1e-9).astype(int), 0, motion.num_frames - 1)
    upper = np.minimum(lower + 1, motion.num_frames - 1)
    t = np.clip(source_index - lower, 0.0, 1.0)
    rotations = quat_slerp(motion.rotations[lower], motion.rotations[upper], t[:, None])
    positions = motion.positions[lower] + (motion.positions[upper] - motion.positions[lower]) * t[:, None, None]
    return motion.with_arrays(rotations, positions, fps)
