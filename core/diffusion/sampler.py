"""DDIM sampling (Song et al. 2021) with a configurable number of steps.

The network predicts the clean features x_0 (as in MDM), so geometric losses apply to its output
directly during training; the sampler turns each x_0 estimate into the next, less noisy x_t along
the deterministic DDIM path (eta = 0 by default). Sampling may start from pure noise or, as in
SDEdit, from the source motion noised to an intermediate step (``start``: a share of the schedule),
which keeps the source's timing while the network restyles it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .schedule import NoiseSchedule

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> x_0 estimate


class DDIMSampler:
    def __init__(self, schedule: NoiseSchedule, steps: int = 10, eta: float = 0.0):
        if not 1 <= steps <= schedule.num_steps:
            raise ValueError(f"sampler steps must be in 1..{schedule.num_steps}, got {steps}")
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        self.schedule = schedule
        self.steps = int(steps)
        self.eta = float(eta)

    def timesteps(self, start: float = 1.0) -> list[int]:
        """Descending schedule steps visited, from ``start`` (share of the schedule, (0, 1]) to 0."""
        if not 0.0 < start <= 1.0:
            raise ValueError(f"start must be in (0, 1], got {start}")
        top = max(0, round(start * self.schedule.num_steps) - 1)
        count = min(self.steps, top + 1)
        ts = torch.linspace(top, 0, count).round().long().tolist()
        return sorted(set(ts), reverse=True)

    @torch.no_grad()
    def sample(
        self,
        denoise: Denoise,
        x_init: torch.Tensor,
        start: float = 1.0,
        generator: torch.Generator | None = None,
        on_step: Callable[[int, int], None] | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x_0 from ``x_init``: pure noise when start == 1, else the clean source (noised here to
        the ``start`` level). ``noise``: that noise (x_init's shape; default drawn from
        ``generator``), given when windows of one take must share it. ``on_step(i, n)`` runs
        before each network call (progress, cancel)."""
        ts = self.timesteps(start)
        if noise is None:
            noise = torch.randn(x_init.shape, generator=generator, dtype=x_init.dtype)
        noise = noise.to(x_init.device)
        first = torch.full((x_init.shape[0],), ts[0], dtype=torch.long, device=x_init.device)
        x = noise if start >= 1.0 else self.schedule.add_noise(x_init, noise, first)
        alpha_bar = self.schedule.alpha_bar.to(x.device)
        x0 = x
        for i, t in enumerate(ts):
            if on_step is not None:
                on_step(i, len(ts))
            tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
            x0 = denoise(x, tt)
            if i + 1 == len(ts):
                break
            a_t, a_next = alpha_bar[t], alpha_bar[ts[i + 1]]
            eps = self.schedule.noise_from(x, x0, tt)
            sigma = self.eta * ((1 - a_next) / (1 - a_t) * (1 - a_t / a_next)).clamp(min=0).sqrt()
            direction = (1 - a_next - sigma**2).clamp(min=0).sqrt() * eps
            x = a_next.sqrt() * x0 + direction
            if self.eta > 0:
                x = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return x0
