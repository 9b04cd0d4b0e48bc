"""The judges' network and the one windowing path that training and inference share.

A judge reads the canonical features (core.ops.features) minus the foot-contact labels: pelvis
height, planar velocity, heading velocity and the 6D rotations of the 21 body joints (130 channels).
Contacts are left out: they are thresholded from positions the rotations already determine, and
a 0/1 channel mostly adds noise to a style cue.

Windows are ``length`` frames (60 = 2 s at 30 fps). ``sample_windows`` reads frames at
``start + speed * arange(length)`` with linear interpolation and clamps the frame index to the
clip, so a clip shorter than a window is padded by repeating its last frame (edge replication) and
speed 1 with an integer start is plain slicing. Training draws random starts and speeds through it;
inference calls it with speed 1 at ``window_starts`` (every ``stride`` frames plus one window flush
with the clip's end). A clip's logits are the mean of its windows' logits; its embedding is the
mean of its windows' pooled penultimate activations.

The network is the judges' own (never shared with the stylization encoders): four 1D convolutions
over time with batch norm and ReLU, two of them strided, global average pooling to ``embed_dim``
and a linear classifier. Normalisation statistics (training split only) are buffers of the module,
so they travel inside the safetensors file with the weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from core.ops.features import FEATURE_DIM, HEADING_VELOCITY, HEIGHT, PLANAR_VELOCITY, ROTATIONS

# The feature channels a judge reads, by name (kept in the JSON config) and as indices.
CHANNEL_GROUPS: dict[str, slice] = {
    "height": HEIGHT,
    "planar_velocity": PLANAR_VELOCITY,
    "heading_velocity": HEADING_VELOCITY,
    "rotations_6d": ROTATIONS,
}
VELOCITY_GROUPS = ("planar_velocity", "heading_velocity")  # scaled by the speed factor when resampling


def channel_indices(groups: Sequence[str]) -> np.ndarray:
    return np.concatenate([np.arange(FEATURE_DIM)[CHANNEL_GROUPS[g]] for g in groups])


def window_starts(num_frames: int, length: int, stride: int) -> np.ndarray:
    """Starts of the inference windows: every ``stride`` frames, plus one ending at the last frame.
    A clip shorter than a window has the single start 0 (and is padded)."""
    last = max(num_frames - length, 0)
    starts = np.arange(0, last + 1, stride)
    if starts[-1] != last:
        starts = np.append(starts, last)
    return starts


def sample_windows(
    features: np.ndarray,
    starts: np.ndarray,
    length: int,
    speeds: np.ndarray | None = None,
    velocity_columns: np.ndarray | None = None,
) -> np.ndarray:
    """Windows (len(starts), length, D) of one clip's features (F, D).

    Frame ``k`` of window ``w`` is read at time ``starts[w] + speeds[w] * k`` (linear interpolation,
    clamped to the clip: edge replication). With ``speeds`` the columns in ``velocity_columns`` (per
    frame quantities) are multiplied by the speed, since a clip played faster covers more per frame.
    """
    starts = np.asarray(starts, dtype=np.float64)
    num_frames = len(features)
    if speeds is None:
        index = np.clip(starts.astype(np.int64)[:, None] + np.arange(length), 0, num_frames - 1)
        return features[index]
    speeds = np.asarray(speeds, dtype=np.float64)
    times = np.clip(starts[:, None] + speeds[:, None] * np.arange(length), 0, num_frames - 1)
    low = np.floor(times).astype(np.int64)
    high = np.minimum(low + 1, num_frames - 1)
    frac = (times - low)[..., None].astype(features.dtype)
    windows = features[low] * (1 - frac) + features[high] * frac
    if velocity_columns is not None and len(velocity_columns):
        windows[..., velocity_columns] *= speeds[:, None, None].astype(features.dtype)
    return windows


class JudgeNet(nn.Module):
    """(B, T, C) features of the judge's channels -> (logits (B, classes), embedding (B, embed_dim))."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        width: int = 128,
        embed_dim: int = 64,
        kernel: int = 5,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_channels))
        self.register_buffer("std", torch.ones(in_channels))
        pad = kernel // 2

        def block(cin, cout, stride):
            return [
                nn.Conv1d(cin, cout, kernel, stride=stride, padding=pad, bias=False),
                nn.BatchNorm1d(cout),
                nn.ReLU(),
            ]

        self.body = nn.Sequential(
            *block(in_channels, width, 1),
            *block(width, width, 2),
            *block(width, width, 2),
            *block(width, embed_dim, 1),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, num_classes)

    def set_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - self.mean) / self.std
        h = self.body(x.transpose(1, 2))
        embedding = h.mean(dim=2)
        return self.head(self.dropout(embedding)), embedding
