"""Resampling in time: to another frame rate, to another frame count, or at any fractional frames.

Rotations are slerped between neighbouring frames and translations interpolated linearly; a sample
that falls on an original frame reproduces it exactly, so 30 -> 120 -> 30 fps is lossless up to
float error.
"""

from __future__ import annotations

import numpy as np

from ..motion.motion import Motion
from .rotations import quat_slerp


def sample_frames(motion: Motion, source_index: np.ndarray) -> Motion:
    """The motion at fractional frame indices (clamped to the clip); the fps is unchanged."""
    last = motion.num_frames - 1
    source_index = np.clip(np.asarray(source_index, dtype=np.float64), 0.0, last)
    lower = np.clip(np.floor(source_index + 1e-9).astype(int), 0, last)
    upper = np.minimum(lower + 1, last)
    t = np.clip(source_index - lower, 0.0, 1.0)
    rotations = quat_slerp(motion.rotations[lower], motion.rotations[upper], t[:, None])
    positions = motion.positions[lower] + (motion.positions[upper] - motion.positions[lower]) * t[:, None, None]
    return motion.with_arrays(rotations, positions)


def resample(motion: Motion, fps: float) -> Motion:
    """The motion sampled at ``fps`` over the same time span (the last sample never overshoots)."""
    if fps <= 0:
        raise ValueError(f"target fps must be positive, got {fps}")
    if abs(fps - motion.fps) < 1e-9:
        return motion
    duration = (motion.num_frames - 1) / motion.fps
    count = int(np.floor(duration * fps + 1e-6)) + 1
    return sample_frames(motion, np.arange(count) * (motion.fps / fps)).with_arrays(fps=fps)


def time_stretch(motion: Motion, num_frames: int) -> Motion:
    """The motion resampled to ``num_frames`` frames over its whole span (first and last frames
    kept); the fps is unchanged, so the clip plays faster or slower."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if num_frames == motion.num_frames:
        return motion
    source = np.linspace(0.0, motion.num_frames - 1, num_frames) if num_frames > 1 else np.zeros(1)
    return sample_frames(motion, source)
