"""The forward (noising) process: a cosine schedule of ``num_steps`` discrete steps.

Cosine (Nichol & Dhariwal 2021) rather than linear because few-step DDIM sampling loses less on it:
the signal-to-noise ratio falls evenly over the steps instead of collapsing in the first ones.
Step 0 is the cleanest noisy level and ``num_steps - 1`` the noisiest; ``alpha_bar[t]`` is the
share of signal variance left at step t.
"""

from __future__ import annotations

import math

import torch


class NoiseSchedule:
    """alpha_bar over ``num_steps`` steps; ``add_noise`` draws x_t given x_0."""

    def __init__(self, num_steps: int = 100, offset: float = 0.008):
        if num_steps < 2:
            raise ValueError(f"a noise schedule needs at least 2 steps, got {num_steps}")
        self.num_steps = int(num_steps)
        s = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
        f = torch.cos((s + offset) / (1 + offset) * math.pi / 2) ** 2
        alpha_bar = (f[1:] / f[0]).clamp(min=1e-5, max=1.0)
        self.alpha_bar = alpha_bar.float()

    def to_dict(self) -> dict:
        return {"num_steps": self.num_steps}

    def _at(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        a = self.alpha_bar.to(like.device)[t]
        return a.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, per batch item's step t."""
        a = self._at(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def noise_from(self, x_t: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The noise that takes x_0 to x_t at step t (what DDIM re-uses between steps)."""
        a = self._at(t, x_t)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt().clamp(min=1e-4)
