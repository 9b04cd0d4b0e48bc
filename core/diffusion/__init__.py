"""The noise schedule and the sampler, kept apart from the denoising network (as in diffusers):
any network that maps (noisy features, step) to a clean-feature estimate plugs into either."""

from .sampler import DDIMSampler
from .schedule import NoiseSchedule

__all__ = ["DDIMSampler", "NoiseSchedule"]
