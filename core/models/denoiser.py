"""The denoising network of the diffusion stylizer (DESIGN §6): x_t -> x_0 estimate.

Conditioning:
- with ``source`` (issue 16): the source motion's own normalised features, concatenated to the
  noisy features frame by frame, and the output is a residual over them. Motion outside the training
  contents (a jump, a fight, a game loop) then reaches the output whatever E_c learned; the style
  still comes only from the style codes, because training hands the network sources whose style was
  swapped for another clip's (training/diffusion/augment.py);
- the content code sequence (B, T // stride, Dc) of E_c (``content_dim`` > 0), interpolated to the
  frame rate and concatenated the same way: what is done, and when, as a code;
- the style codes of E_s, global (B, Ds) and per body group (B, 6, Dg), with the diffusion step,
  through one MLP into a FiLM scale and shift for every residual block: they carry how.

A stack of residual blocks of dilated temporal convolutions (no attention), so any clip length
runs in one pass and the cost is linear in frames. Input and output are NORMALISED features
(the stats saved with the checkpoint). ``FEATURE_GROUPS`` says which feature channels belong to
which body group; the stylizer mixes per-group guidance with it.

Checkpoints: ``<stem>.safetensors`` (tensors) and ``<stem>.json`` (DenoiserConfig, schedule,
normalisation stats, encoders used, training command, commit, split); never pickle.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..motion.canonical import BODY_GROUPS, CONTACT_JOINTS
from ..ops.features import (
    BODY_JOINTS,
    CONTACTS,
    FEATURE_DIM,
    FEATURE_VERSION,
    HEADING_VELOCITY,
    HEIGHT,
    PLANAR_VELOCITY,
    ROTATIONS,
)
from .encoders import checkpoint_paths

CHECKPOINT_FORMAT = "mst-denoiser"
CHECKPOINT_VERSION = 1
GROUP_NAMES: tuple[str, ...] = tuple(BODY_GROUPS)


def feature_group_masks() -> np.ndarray:
    """(6, FEATURE_DIM) 0/1: the feature channels of each body group (GROUP_NAMES order).

    root: pelvis height, planar and heading velocity; torso: the pelvis's upright rotation and the
    spine-to-head joints; limbs: their joints' rotations, and for the legs their foot contacts.
    Every channel belongs to exactly one group.
    """
    masks = np.zeros((len(GROUP_NAMES), FEATURE_DIM), dtype=np.float32)
    for g, group in enumerate(GROUP_NAMES):
        if group == "root":
            for s in (HEIGHT, PLANAR_VELOCITY, HEADING_VELOCITY):
                masks[g, s] = 1.0
        for name in BODY_GROUPS[group]:
            j = BODY_JOINTS.index(name)
            masks[g, ROTATIONS.start + 6 * j : ROTATIONS.start + 6 * j + 6] = 1.0
        for c, name in enumerate(CONTACT_JOINTS):
            if name in BODY_GROUPS[group]:
                masks[g, CONTACTS.start + c] = 1.0
    return masks


@dataclass
class DenoiserConfig:
    hidden: int = 128
    blocks: int = 8
    kernel: int = 5
    dilations: tuple[int, ...] = (1, 2, 4, 8)  # cycled over the blocks
    content_dim: int = 64
    style_dim: int = 128
    group_dim: int = 32
    condition_dim: int = 256
    dropout: float = 0.0
    source: bool = False  # the source features as an input, the output a residual over them

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DenoiserConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown denoiser settings {unknown}")
        if "dilations" in known:
            known["dilations"] = tuple(int(v) for v in known["dilations"])
        return cls(**known)


def step_embedding(t: torch.Tensor, dim: int, num_steps: int) -> torch.Tensor:
    """Sinusoidal embedding of the diffusion step, scaled to [0, 1000) whatever the schedule length."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angle = (t.float() * (1000.0 / num_steps))[:, None] * freqs[None]
    return torch.cat([angle.sin(), angle.cos()], dim=-1)


class ResidualBlock(nn.Module):
    """GroupNorm, FiLM from the condition, SiLU, dilated conv, twice; plus the input."""

    def __init__(self, channels: int, kernel: int, dilation: int, condition_dim: int, dropout: float):
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.norm1 = nn.GroupNorm(8, channels)
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding=pad, dilation=dilation, padding_mode="replicate")
        self.norm2 = nn.GroupNorm(8, channels)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=pad, dilation=dilation, padding_mode="replicate")
        self.film = nn.Linear(condition_dim, 4 * channels)
        self.dropout = nn.Dropout(dropout)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, h: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        s1, b1, s2, b2 = self.film(condition)[..., None].chunk(4, dim=1)
        x = self.conv1(F.silu(self.norm1(h) * (1 + s1) + b1))
        x = self.conv2(self.dropout(F.silu(self.norm2(x) * (1 + s2) + b2)))
        return h + x


class Denoiser(nn.Module):
    def __init__(self, config: DenoiserConfig, num_steps: int):
        super().__init__()
        self.config = config
        self.num_steps = int(num_steps)
        c = config
        self.step_dim = 128
        self.condition = nn.Sequential(
            nn.Linear(self.step_dim + c.style_dim + len(GROUP_NAMES) * c.group_dim, c.condition_dim),
            nn.SiLU(),
            nn.Linear(c.condition_dim, c.condition_dim),
            nn.SiLU(),
        )
        inputs = FEATURE_DIM + c.content_dim + (FEATURE_DIM if c.source else 0)
        self.inp = nn.Conv1d(inputs, c.hidden, 3, padding=1, padding_mode="replicate")
        self.blocks = nn.ModuleList(
            ResidualBlock(c.hidden, c.kernel, c.dilations[i % len(c.dilations)], c.condition_dim, c.dropout)
            for i in range(c.blocks)
        )
        self.out_norm = nn.GroupNorm(8, c.hidden)
        self.out = nn.Conv1d(c.hidden, FEATURE_DIM, 3, padding=1, padding_mode="replicate")

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        content: torch.Tensor | None,
        style: torch.Tensor,
        groups: torch.Tensor,
        source: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x_t (B, T, FEATURE_DIM) normalised, t (B,) steps, content (B, T', Dc) or None when the
        config reads no content codes, style (B, Ds), groups (B, 6, Dg), source (B, T, FEATURE_DIM)
        normalised, given when the config reads it -> x_0 estimate (B, T, FEATURE_DIM), normalised."""
        c = self.config
        if (source is not None) != c.source or (content is not None) != (c.content_dim > 0):
            raise ValueError(
                f"this denoiser reads {'a source' if c.source else 'no source'} and "
                f"{'content codes' if c.content_dim else 'no content codes'}"
            )
        frames = x_t.shape[1]
        inputs = [x_t.transpose(1, 2)]
        if content is not None:
            inputs.append(F.interpolate(content.transpose(1, 2), size=frames, mode="linear", align_corners=False))
        if source is not None:
            inputs.append(source.transpose(1, 2))
        h = self.inp(torch.cat(inputs, dim=1))
        cond = self.condition(
            torch.cat([step_embedding(t, self.step_dim, self.num_steps), style, groups.flatten(1)], dim=-1)
        )
        for block in self.blocks:
            h = block(h, cond)
        out = self.out(F.silu(self.out_norm(h))).transpose(1, 2)
        return out if source is None else source + out


def save_denoiser(stem, denoiser: Denoiser, stats: dict, extra: dict | None = None) -> tuple[Path, Path]:
    """Write the checkpoint pair; ``extra`` (training command, commit, split, losses...) goes in the JSON."""
    from safetensors.torch import save_file

    from ..io.atomic import replacing, write_text

    weights, meta_path = checkpoint_paths(stem)
    meta = dict(extra or {})
    meta.update(
        format=CHECKPOINT_FORMAT,
        format_version=CHECKPOINT_VERSION,
        denoiser=denoiser.config.to_dict(),
        schedule={"num_steps": denoiser.num_steps},
        feature_version=FEATURE_VERSION,
        feature_dim=FEATURE_DIM,
        stats={k: [float(v) for v in np.asarray(stats[k]).reshape(-1)] for k in ("mean", "std")},
        weights=weights.name,
    )
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in denoiser.state_dict().items()}
    with replacing(weights) as temporary:
        save_file(tensors, str(temporary), metadata={"format": CHECKPOINT_FORMAT, "config": json.dumps(meta)})
    write_text(meta_path, json.dumps(meta, indent=1))
    return weights, meta_path


def load_denoiser(stem, device="cpu") -> tuple[Denoiser, dict]:
    """(Denoiser in eval mode on ``device``, its checkpoint JSON); ValueError names a bad file."""
    from safetensors.torch import load_file

    weights, meta_path = checkpoint_paths(stem)
    for path in (meta_path, weights):
        if not path.is_file():
            raise ValueError(f"denoiser checkpoint file {path} does not exist")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{meta_path}: not a readable JSON file: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        meta = meta if isinstance(meta, dict) else {}
        raise ValueError(f"{meta_path} is not a denoiser checkpoint (format {meta.get('format')!r})")
    if meta.get("feature_version") != FEATURE_VERSION:
        raise ValueError(
            f"{meta_path}: trained on feature version {meta.get('feature_version')}, this code computes {FEATURE_VERSION}"
        )
    denoiser = Denoiser(DenoiserConfig.from_dict(meta["denoiser"]), meta["schedule"]["num_steps"])
    try:
        tensors = load_file(str(weights))
    except Exception as e:  # noqa: BLE001  safetensors raises its own error types for a corrupt file
        raise ValueError(f"{weights}: not a readable safetensors file: {e}") from None
    try:
        denoiser.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{weights}: weights do not match the denoiser config: {e}") from e
    return denoiser.to(device).eval(), meta
