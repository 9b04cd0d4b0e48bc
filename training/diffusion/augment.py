"""Augmentations of the denoiser's training windows that the contrastive encoders' do not have
(issue 16). Users bring clips the Bandai takes never show: held in place and in any style. The
speed changes and mirroring the denoiser's training also uses are the contrastive ones
(training.contrastive.augment: ``speed_change``, ``mirror_features``).

- ``hold_in_place``: the pelvis does not travel (planar velocity zero; heading turns kept), as a
  game loop's root motion is baked out;
- ``swap_style_statistics``: the per-channel mean and spread of a pose over time replaced by those
  of a window of another clip (another style). This is how the denoiser's source input loses its
  style in training: the network is asked for the original back from the swapped source and the
  original's style codes, so the style it puts back can only come from the codes, never the source.
"""

from __future__ import annotations

import numpy as np
import torch

from core.ops.features import HEIGHT, PLANAR_VELOCITY, ROTATIONS

POSE_CHANNELS = [HEIGHT.start, *range(ROTATIONS.start, ROTATIONS.stop)]
STD_FLOOR = 0.05  # normalised units: a channel that barely moves in a window is not amplified from noise


def hold_in_place(window: np.ndarray) -> np.ndarray:
    """The window with its pelvis held over one spot (planar velocity zeroed, a copy)."""
    out = window.copy()
    out[:, PLANAR_VELOCITY] = 0.0
    return out


def swap_style_statistics(x: torch.Tensor, reference: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """x (B, T, D) normalised windows with each pose channel's mean and spread over time (pelvis
    height, joint rotations) moved ``amount`` (B,) of the way to the reference windows' (B, T', D).
    The path (planar and heading velocity) and the contacts are the source's own: where the
    character goes is content, and a held-in-place window must stay in place."""
    channels = POSE_CHANNELS
    xs, rs = x[..., channels], reference[..., channels]
    mean_x, std_x = xs.mean(1, keepdim=True), xs.std(1, keepdim=True).clamp(min=STD_FLOOR)
    mean_r, std_r = rs.mean(1, keepdim=True), rs.std(1, keepdim=True).clamp(min=STD_FLOOR)
    a = amount[:, None, None]
    mean = (1 - a) * mean_x + a * mean_r
    std = (1 - a) * std_x + a * std_r
    out = x.clone()
    out[..., channels] = (xs - mean_x) / std_x * std + mean
    return out
