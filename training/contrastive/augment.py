"""Augmentations of RAW (unnormalised) feature windows for the contrastive encoders, in torch, batched.

Input: a (B, L, 134) float tensor of raw features (core.ops.features layout); output (B, T, 134) with
T = ``config["length"]`` (default L). Every random draw comes from the ``torch.Generator`` passed to
``Augmenter.__call__``, in a fixed order that does not depend on which augmentations are on, so a run
is reproducible and switching one augmentation off leaves the others' draws unchanged.

Order and definitions:

1. **time warp** = speed change and crop, composed into ONE linear-interpolation resampling. Output
   frame k reads source time ``start + step * k``; 6D rotations of interpolated frames are projected
   back onto rotations (Gram-Schmidt), contacts are thresholded at 0.5, and the per-frame velocities
   (planar and heading) are multiplied by ``step``, since a clip played ``step`` times faster covers
   that much more per frame (as in training.judges.model.sample_windows). Frames read at integer
   times are copied bit-exactly.
   - speed: factor s log-uniform in ``speed_range``; the window covers s * (T - 1) source frames at a
     uniformly random start. A speed-up needs a source longer than the output: with L == T every
     s > 1 is clipped to 1 (only slow-downs remain); pass windows of ceil(T * max(speed_range)) frames
     with ``length = T`` for the full range. Without speed change (or s == 1) the window is an
     integer-start slice.
   - crop: with probability ``crop_prob`` a random sub-window of r * (T - 1) + 1 frames, r uniform in
     ``crop_range``, resized to T frames (step r, i.e. also a slow-down by r; r = 1 is the identity).
2. **heading rotation**: the features are heading-invariant (the pelvis rotation has its heading
   removed, velocities are in the heading frame), so rotating the whole clip by a constant heading
   changes nothing and is not implemented. A slowly varying turn does change them: it adds a turn
   rate to the heading velocity channel, ramping linearly over the window from r0 to r1 (each uniform
   in +-``heading_max_rate`` rad/frame), i.e. the same performance walked along a curved path. Planar
   velocity (heading frame) and joint rotations stay as they are.
3. **mirror** (probability ``mirror_prob``): ``mirror_features``, the exact feature-space image of
   core.ops.mirror (left/right twins swapped, 6D reflected by MIRROR_REFLECTIONS, lateral velocity and
   heading velocity negated, contacts swapped). Content labels change: ``mirror_content_indices``.
4. **noise**: Gaussian noise (std ``noise_std``) on every 6D entry; not re-projected onto rotations.
5. **joint masking**: each of the 21 joints is masked with probability ``joint_mask_prob``
   (per sample, for the whole window): its 6D becomes zeros (``mask_value = "zero"``; a zero 6D is no
   rotation, an out-of-distribution marker the encoder learns to ignore; in the bone view forward
   kinematics through the zero matrix zeroes the joint's whole subtree, still finite) or the identity
   rotation (``"identity"``: a valid rotation, the rest pose of that joint).

Every augmentation has an on/off switch (``speed_change``, ``crop``, ``heading_rotation``, ``mirror``,
``joint_mask``, ``noise``) and its strength keys; ``DEFAULTS`` lists them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from core.motion.canonical import MIRROR_REFLECTIONS, mirror_name
from core.ops.features import (
    BODY_JOINTS,
    CONTACTS,
    FEATURE_DIM,
    HEADING_VELOCITY,
    NUM_BODY_JOINTS,
    PLANAR_VELOCITY,
    ROTATIONS,
)
from core.ops.mirror import WORLD_REFLECTION
from core.ops.rotations import matrix_to_sixd, sixd_to_matrix
from training.data.labels import mirror_content_label

DEFAULTS: dict = {
    "length": None,  # output frames (None: the input length)
    "speed_change": True,
    "speed_range": [0.8, 1.25],  # log-uniform speed factor
    "crop": True,
    "crop_prob": 0.5,
    "crop_range": [0.8, 1.0],  # kept fraction of the window
    "heading_rotation": True,
    "heading_max_rate": 0.01,  # rad/frame added turn rate (0.01 = 17 deg/s)
    "mirror": True,
    "mirror_prob": 0.5,
    "joint_mask": True,
    "joint_mask_prob": 0.1,  # per joint
    "mask_value": "zero",  # "zero" | "identity"
    "noise": True,
    "noise_std": 0.01,  # on the 6D entries
}

IDENTITY_SIXD = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
_VELOCITY_COLUMNS = np.concatenate([np.arange(FEATURE_DIM)[PLANAR_VELOCITY], np.arange(FEATURE_DIM)[HEADING_VELOCITY]])


# ------------------------------------------------------------------------------------------ mirroring


def _mirror_tables() -> tuple[np.ndarray, np.ndarray]:
    """(source channel, sign) of every output channel of the feature-space mirror.

    core.ops.mirror gives joint i the rotation D_parent(i) R_twin(i) D_i (D: reflection diagonals). For
    Hips (feature rotation = heading-removed pelvis world rotation) the parent reflection is the
    world's X -> -X; the mirrored heading is -yaw and W Ry(-yaw) = Ry(yaw) W, so the same formula
    holds. A 6D holds matrix columns 0 and 1: entry (column c, row r) gets sign P[r] * D[c]. The
    heading-frame step mirrors to W step (x negated), the heading velocity to its negative.
    """
    source = np.arange(FEATURE_DIM)
    sign = np.ones(FEATURE_DIM)
    sign[PLANAR_VELOCITY.start] = -1.0  # lateral (x) step
    sign[HEADING_VELOCITY.start] = -1.0
    from core.motion.canonical import canonical_skeleton

    skeleton = canonical_skeleton()
    diag = {n: np.array(MIRROR_REFLECTIONS[n], dtype=float) for n in BODY_JOINTS}
    for i, name in enumerate(BODY_JOINTS):
        parent = skeleton.parents[skeleton.index(name)]
        pname = skeleton.names[parent]
        p = np.array(WORLD_REFLECTION, dtype=float) if pname not in diag else diag[pname]
        d = diag[name]
        twin = BODY_JOINTS.index(mirror_name(name))
        for c in range(2):
            for r in range(3):
                out = ROTATIONS.start + 6 * i + 3 * c + r
                source[out] = ROTATIONS.start + 6 * twin + 3 * c + r
                sign[out] = p[r] * d[c]
    contacts = np.arange(FEATURE_DIM)[CONTACTS]  # heel L, toe L, heel R, toe R
    source[contacts] = contacts[[2, 3, 0, 1]]
    return source, sign


MIRROR_SOURCE, MIRROR_SIGN = _mirror_tables()


def mirror_features(features):
    """Features (..., 134) of the mirrored motion, numpy or torch: equals
    ``motion_to_features(core.ops.mirror.mirror(motion))`` for ``motion_to_features(motion)``
    (up to contacts of frames at the detection threshold: the rig's left and right bone lengths
    differ by up to 0.04 cm). An involution."""
    if torch.is_tensor(features):
        source = torch.as_tensor(MIRROR_SOURCE, device=features.device)
        sign = torch.as_tensor(MIRROR_SIGN, dtype=features.dtype, device=features.device)
        return features[..., source] * sign
    return features[..., MIRROR_SOURCE] * MIRROR_SIGN.astype(np.asarray(features).dtype)


def mirror_label_map(content_names: Sequence[str]) -> np.ndarray:
    """Index map of content labels under mirroring: ``map[i]`` is the index of the mirrored label of
    ``content_names[i]`` (itself for symmetric contents or a twin missing from ``content_names``)."""
    names = list(content_names)
    return np.array([names.index(m) if (m := mirror_content_label(n)) in names else i for i, n in enumerate(names)])


def mirror_content_indices(labels, mirrored, content_names: Sequence[str]):
    """Content label indices after mirroring the samples where ``mirrored`` is true (numpy or torch)."""
    table = mirror_label_map(content_names)
    if torch.is_tensor(labels):
        swapped = torch.as_tensor(table, device=labels.device)[labels]
        return torch.where(torch.as_tensor(mirrored, device=labels.device), swapped, labels)
    labels = np.asarray(labels)
    return np.where(np.asarray(mirrored, dtype=bool), table[labels], labels)


# --------------------------------------------------------------------------------------- primitives


def time_warp(features: torch.Tensor, start: torch.Tensor, step: torch.Tensor, length: int) -> torch.Tensor:
    """(B, L, 134) -> (B, length, 134): frame k of sample b read at ``start[b] + step[b] * k`` (clamped to
    the window) by linear interpolation; see the module docstring for rotations, contacts, velocities."""
    b, src_len, dim = features.shape
    times = start.double()[:, None] + step.double()[:, None] * torch.arange(length, dtype=torch.float64)
    times = times.clamp(0, src_len - 1)
    low = times.floor().long()
    high = (low + 1).clamp(max=src_len - 1)
    frac = (times - low).to(features.dtype)[..., None]
    take = lambda idx: features.gather(1, idx[..., None].expand(-1, -1, dim))
    x_low = take(low)
    out = x_low * (1 - frac) + take(high) * frac
    rot = out[..., ROTATIONS].reshape(b, length, NUM_BODY_JOINTS, 6)
    projected = matrix_to_sixd(sixd_to_matrix(rot)).reshape(b, length, -1)
    out[..., ROTATIONS] = torch.where(frac > 0, projected, x_low[..., ROTATIONS])
    out[..., CONTACTS] = (out[..., CONTACTS] >= 0.5).to(features.dtype)
    vel = torch.as_tensor(_VELOCITY_COLUMNS)
    out[..., vel] = out[..., vel] * step.to(features.dtype)[:, None, None]
    return out


def speed_change(features: torch.Tensor, factor, start=None, length: int | None = None) -> torch.Tensor:
    """Play the window ``factor`` times faster (per sample), from source frame ``start`` (default 0),
    ``length`` output frames (default the input length); factor * (length - 1) must fit the window."""
    b = features.shape[0]
    factor = torch.as_tensor(factor, dtype=torch.float64).expand(b)
    start = torch.zeros(b, dtype=torch.float64) if start is None else torch.as_tensor(start).double().expand(b)
    return time_warp(features, start, factor, length or features.shape[1])


def crop_resize(features: torch.Tensor, fraction, start=None) -> torch.Tensor:
    """The sub-window of fraction * (T - 1) + 1 frames from ``start`` (default 0), resized to T frames."""
    return speed_change(features, fraction, start)


def mask_joints(features: torch.Tensor, joint_mask: torch.Tensor, value: str = "zero") -> torch.Tensor:
    """Replace the 6D of the joints where ``joint_mask`` (B, 21) is true, in every frame."""
    if value not in ("zero", "identity"):
        raise ValueError(f"mask_value must be 'zero' or 'identity'; got {value!r}")
    b, t, _ = features.shape
    rot = features[..., ROTATIONS].reshape(b, t, NUM_BODY_JOINTS, 6)
    fill = torch.zeros(6, dtype=features.dtype)
    if value == "identity":
        fill = torch.tensor(IDENTITY_SIXD, dtype=features.dtype)
    rot = torch.where(joint_mask[:, None, :, None], fill.to(features.device), rot)
    out = features.clone()
    out[..., ROTATIONS] = rot.reshape(b, t, -1)
    return out


def add_turn(features: torch.Tensor, rate_start: torch.Tensor, rate_end: torch.Tensor) -> torch.Tensor:
    """Add a turn rate (rad/frame) ramping linearly from ``rate_start`` to ``rate_end`` per sample."""
    t = features.shape[1]
    ramp = torch.linspace(0, 1, t, dtype=features.dtype) if t > 1 else torch.zeros(1, dtype=features.dtype)
    rate = rate_start.to(features.dtype)[:, None] + (rate_end - rate_start).to(features.dtype)[:, None] * ramp
    out = features.clone()
    out[..., HEADING_VELOCITY.start] += rate
    return out


# ---------------------------------------------------------------------------------------- augmenter


class Augmenter:
    """``Augmenter(config)(features (B, L, 134) raw, generator) -> (B, T, 134)``; see the module docstring.

    ``config`` overrides DEFAULTS (unknown keys raise). With ``return_info=True`` the call returns
    ``(features, info)``: info has ``speed`` (B,), ``crop`` (B,) (1 = no crop), ``start`` (B,) (source
    frame of output frame 0), ``turn`` (B, 2), ``mirrored`` (B,) bool (swap the content labels of those:
    ``mirror_content_indices``), ``masked`` (B, 21) bool.
    """

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        unknown = set(config) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown augmentation keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        self.config = {**DEFAULTS, **config}
        c = self.config
        lo, hi = c["speed_range"]
        if not 0 < lo <= hi:
            raise ValueError(f"speed_range must be 0 < lo <= hi; got {c['speed_range']}")
        lo, hi = c["crop_range"]
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_range must be 0 < lo <= hi <= 1; got {c['crop_range']}")
        if c["mask_value"] not in ("zero", "identity"):
            raise ValueError(f"mask_value must be 'zero' or 'identity'; got {c['mask_value']!r}")

    def __call__(self, features, generator: torch.Generator, return_info: bool = False):
        c = self.config
        x = torch.as_tensor(features)
        if x.dim() != 3 or x.shape[2] != FEATURE_DIM:
            raise ValueError(f"features must be (B, L, {FEATURE_DIM}); got {tuple(x.shape)}")
        b, src_len, _ = x.shape
        length = c["length"] or src_len
        if length > src_len:
            raise ValueError(f"output length {length} exceeds the input windows ({src_len} frames)")
        g = generator

        def uniform(*shape):
            return torch.rand(*shape, generator=g, dtype=torch.float64)

        # every draw happens whatever is switched on (fixed order, reproducible)
        u_speed, u_start, u_crop_on, u_crop, u_crop_start = (uniform(b) for _ in range(5))
        u_turn = uniform(b, 2)
        u_mirror = uniform(b)
        u_mask = uniform(b, NUM_BODY_JOINTS)
        noise = torch.randn(b, length, NUM_BODY_JOINTS * 6, generator=g, dtype=torch.float64)

        span = max(length - 1, 1)
        if c["speed_change"]:
            lo, hi = (math.log(v) for v in c["speed_range"])
            speed = torch.exp(lo + (hi - lo) * u_speed).clamp(max=(src_len - 1) / span)
        else:
            speed = torch.ones(b, dtype=torch.float64)
        slack = (src_len - 1) - speed * span
        start = torch.where(speed == 1, torch.floor(u_start * (src_len - length + 1)), u_start * slack)
        start = torch.minimum(start, slack.clamp(min=0))
        if c["crop"]:
            lo, hi = c["crop_range"]
            crop = torch.where(u_crop_on < c["crop_prob"], lo + (hi - lo) * u_crop, torch.ones(b, dtype=torch.float64))
        else:
            crop = torch.ones(b, dtype=torch.float64)
        start = start + speed * (1 - crop) * span * u_crop_start
        step = speed * crop
        if bool((step == 1).all()) and bool((start == start.floor()).all()):
            index = start.long()[:, None] + torch.arange(length)
            out = x.gather(1, index[..., None].expand(-1, -1, FEATURE_DIM))
        else:
            out = time_warp(x, start, step, length)

        turn = torch.zeros(b, 2, dtype=torch.float64)
        if c["heading_rotation"] and c["heading_max_rate"] > 0:
            turn = (2 * u_turn - 1) * c["heading_max_rate"]
            out = add_turn(out, turn[:, 0], turn[:, 1])

        mirrored = (u_mirror < c["mirror_prob"]) if c["mirror"] else torch.zeros(b, dtype=torch.bool)
        if bool(mirrored.any()):
            out = torch.where(mirrored[:, None, None], mirror_features(out), out)

        if c["noise"] and c["noise_std"] > 0:
            out = out.clone()
            out[..., ROTATIONS] += (c["noise_std"] * noise).to(out.dtype)

        masked = (
            (u_mask < c["joint_mask_prob"]) if c["joint_mask"] else torch.zeros(b, NUM_BODY_JOINTS, dtype=torch.bool)
        )
        if bool(masked.any()):
            out = mask_joints(out, masked, c["mask_value"])

        if not return_info:
            return out
        info = {"speed": speed, "crop": crop, "start": start, "turn": turn, "mirrored": mirrored, "masked": masked}
        return out, info
