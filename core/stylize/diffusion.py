"""The learned stylizer (DESIGN §6): the frozen encoders' codes drive a diffusion model.

For a request, the denoiser reads the content clip itself (its features, with ``model.source``:
issue 16) and/or E_c's codes of it (what is done, and when), and E_s codes the content's own style
and every reference's (global and per body group). Every clip is first stood on the canonical floor
(``grounded_features``; the result goes back onto the content's). DDIM sampling (core.diffusion) starts
from the content noised to ``start`` of the schedule and runs ``steps`` network calls. Each call
evaluates the network once with the content's own style codes and once per distinct reference;
per body group g (feature channels M_g, core.models.denoiser.feature_group_masks) the estimate is

    x0 = x0(own) + sum_g w_g * guidance * M_g * (x0(style of g's reference) - x0(own))

(all estimates conditioned on the content; "own" = the content's own style codes)

so weight 0 keeps the content's own style, 1 is the full reference style (times ``guidance``, the
calibrated strength saved in the model config), and above 1 extrapolates away from the content's
style: classifier-free guidance per group, with the content's own style as the negative.

With ``residual`` (default off) the result is the content itself plus the final style change
(the mixed estimate minus the own-style one): closer to the source instance (contacts, skate, a
group styled by its own clip stays within ~0.05 rad) at the price of weaker style on this model;
reports/diffusion/ablation/sampling.md measures both.

After sampling:
- ``smooth``: a Gaussian low-pass of that many frames (sigma) on the motion channels: the x0
  estimates carry frame-to-frame noise that the jitter measure sees;
- ``keep_path`` (default on): the root keeps the content's heading turns and path direction, its
  planar speed scaled by one factor (the sampled mean speed over the content's, floored and capped
  as the statistics stylizer's ratios): the style may change the pace, never where the character goes;
- groups of weight 0 get the content's arrays back bit for bit (as in every stylizer).
Foot contacts are pinned afterwards by the pipeline's cleanup stage (core.runtime).

Long takes are sampled in overlapping windows of SAMPLE_WINDOW frames (content codes from each
window's own features, the noise one draw over the whole take, so overlaps agree), each window's
result weighted by a raised cosine over its overlaps and the weights normalised: time is linear in
length, the network's working memory bounded, and ``request.progress`` is called before every
network call. A take of at most SAMPLE_WINDOW frames is one window, sampled as a whole.

A loop (a clip whose last pose runs into its first, ``loop_order``) is sampled as a circle: its
ends wrapped around it by the denoiser's context, so the result closes as the source does.

Deterministic for a given ``seed`` option.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from ..diffusion import DDIMSampler, NoiseSchedule
from ..errors import RequestError
from ..models.denoiser import GROUP_NAMES, feature_group_masks, load_denoiser
from ..models.encoders import checkpoint_paths, load_encoders
from ..motion.motion import Motion
from ..ops.features import (
    CONTACTS,
    HEADING_VELOCITY,
    HEIGHT,
    PLANAR_VELOCITY,
    ROTATIONS,
    features_to_motion,
    motion_to_features,
)
from ..retarget.grounding import floor_offset
from .baselines import StatisticsStylizer, _ratio, take_groups
from .request import GROUPS, StyleRequest

STYLE_WINDOW = 60  # frames per style window: the length the encoders were trained on
STYLE_STRIDE = 30
STYLE_MAX_WINDOWS = 256  # a longer clip's style is the mean over this many windows spread evenly
STYLE_BATCH = 32  # windows through the encoders at once (their activations: about 1 MB a window)
# Sampling windows: the denoiser sees 8 blocks of two dilated kernel-5 convolutions (about 120
# frames either side), so the overlap leaves each seam's blend well inside both windows' context.
SAMPLE_WINDOW = 2048
SAMPLE_OVERLAP = 256
# Loops: a clip whose last pose runs into its first (within LOOP_SEAM_STEPS median frame steps: 52 of
# the 56 game loops of the generalization sets close within 2, all within 2.3) is
# sampled as a circle: LOOP_PAD frames of its other end on each side (the denoiser's context), so
# the result runs into its own first pose the way the source does.
LOOP_SEAM_STEPS = 2.5
LOOP_PAD = 128
LOOP_MIN_FRAMES = 8


def _check_unit(name: str, value, low: float, high: float, integer: bool = False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise RequestError(f"option {name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not (low <= v <= high) or (integer and v != int(v)):
        kind = "an integer" if integer else "a number"
        raise RequestError(f"option {name} must be {kind} in [{low:g}, {high:g}], got {value!r}")
    return int(v) if integer else v


def clip_style_codes(encoders, features: np.ndarray) -> dict[str, np.ndarray]:
    """Global (Ds,) and group (6, Dg) style codes of a whole clip: the mean over its 2 s windows
    (the length E_s was trained on). Training conditions on exactly these. Past
    STYLE_MAX_WINDOWS windows (about 2 minutes) an even spread of that many stands in for them
    all, so a long take's style costs what a 2 minute clip's does."""
    frames = len(features)
    starts = np.arange(0, frames - STYLE_WINDOW + 1, STYLE_STRIDE) if frames >= STYLE_WINDOW else np.zeros(1, int)
    if len(starts) > STYLE_MAX_WINDOWS:
        starts = starts[np.linspace(0, len(starts) - 1, STYLE_MAX_WINDOWS).round().astype(int)]
    windows = np.stack([features[s : s + STYLE_WINDOW] for s in starts])
    codes = encoders.encode(windows, batch_size=STYLE_BATCH)
    return {k: codes[k].mean(0) for k in ("style", "groups")}


@dataclass
class Sampled:
    """What ``DiffusionStylizer.sample`` leaves for ``finish``: the denoised features (F, D), the
    content's start placement and planar path channels (F, 3), the styled groups, the progress
    total (network calls: windows x steps) that ``stylize`` reports once more after decoding, and
    whether the content was sampled as a loop (``loop_order``; smoothing then wraps around too)."""

    features: np.ndarray
    start: np.ndarray
    path: np.ndarray
    styled: list[str]
    calls: int
    loop: bool = False


class DiffusionStylizer:
    name = "diffusion"
    SETTINGS = ("denoiser", "encoders", "steps", "start", "guidance", "seed", "keep_path", "smooth", "residual")

    def __init__(
        self,
        denoiser,
        meta: dict,
        encoders,
        steps=10,
        start=1.0,
        guidance=1.0,
        seed=0,
        keep_path=True,
        smooth=0.0,
        residual=False,
    ):
        self.denoiser = denoiser
        self.encoders = encoders
        self.meta = meta
        self.device = next(denoiser.parameters()).device
        self.schedule = NoiseSchedule(meta["schedule"]["num_steps"])
        self.mean = torch.tensor(meta["stats"]["mean"], dtype=torch.float32, device=self.device)
        self.std = torch.tensor(meta["stats"]["std"], dtype=torch.float32, device=self.device)
        self.masks = torch.from_numpy(feature_group_masks()).to(self.device)
        self.defaults = {
            "steps": steps,
            "start": start,
            "guidance": guidance,
            "seed": seed,
            "keep_path": keep_path,
            "smooth": smooth,
            "residual": residual,
        }
        self._settings(self.defaults)  # validates the config's values

    @classmethod
    def from_config(cls, settings: dict, tensors, device: str, folder: Path):
        """Settings: ``denoiser`` and ``encoders`` (checkpoint stems relative to the model config's
        folder) and the sampling defaults (steps, start, guidance, seed, keep_path)."""
        unknown = sorted(set(settings) - set(cls.SETTINGS))
        if unknown:
            raise ValueError(f"unknown settings {unknown}; the diffusion stylizer takes {list(cls.SETTINGS)}")
        if tensors is not None:
            raise ValueError("name the checkpoints in 'denoiser' and 'encoders', not in 'weights'")
        for key in ("denoiser", "encoders"):
            if not isinstance(settings.get(key), str):
                raise TypeError(f"needs '{key}': the checkpoint path stem, relative to the config's folder")
        encoders_stem = Path(folder) / settings["encoders"]
        if not checkpoint_paths(encoders_stem)[1].is_file():
            raise ValueError(f"the encoders checkpoint {encoders_stem}.json does not exist")
        denoiser, meta = load_denoiser(Path(folder) / settings["denoiser"], device)
        encoders = load_encoders(encoders_stem, device)
        sampling = {k: v for k, v in settings.items() if k not in ("denoiser", "encoders")}
        return cls(denoiser, meta, encoders, **sampling)

    def _settings(self, options: dict) -> dict:
        merged = {**self.defaults, **{k: v for k, v in options.items() if k in self.defaults}}
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise RequestError(f"unknown options {unknown}; the diffusion stylizer takes {sorted(self.defaults)}")
        for flag in ("keep_path", "residual"):
            if merged[flag] not in (0, 1) or isinstance(merged[flag], str):
                raise RequestError(f"option {flag} must be true or false, got {merged[flag]!r}")
        return {
            "steps": _check_unit("steps", merged["steps"], 1, self.schedule.num_steps, integer=True),
            "start": _check_unit("start", merged["start"], 0.01, 1.0),
            "guidance": _check_unit("guidance", merged["guidance"], 0.0, 10.0),
            "seed": _check_unit("seed", merged["seed"], 0, 2**31 - 1, integer=True),
            "keep_path": bool(merged["keep_path"]),
            "residual": bool(merged["residual"]),
            "smooth": _check_unit("smooth", merged["smooth"], 0.0, 10.0),
        }

    def _normalise(self, features: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(features, dtype=torch.float32, device=self.device)
        return (x - self.mean) / self.std

    def style_codes(self, features: np.ndarray) -> dict[str, torch.Tensor]:
        codes = clip_style_codes(self.encoders, features)
        return {k: torch.from_numpy(v[None]).to(self.device) for k, v in codes.items()}

    def stylize(self, request: StyleRequest) -> Motion:
        sampled = self.sample(request)
        if sampled is None:
            return request.content
        stylized = self.finish(request.content, sampled, request.options, True)
        if request.progress is not None:  # after the whole-take decoding too: a cancel is polled there
            request.progress(sampled.calls, sampled.calls)
        return stylized

    @torch.no_grad()
    def sample(self, request: StyleRequest) -> Sampled | None:
        """The model's part of ``stylize``: the window-blended denoised features, before smoothing
        and keep_path; None when no group is styled. Deterministic, so one sampling can be finished
        with different post-processes (the evaluation's raw and product runs)."""
        settings = self._settings(request.options)
        content = request.content
        styled = [g for g in GROUPS if request.weight(g) > 0]
        if not styled:
            return None
        sampler = DDIMSampler(self.schedule, settings["steps"])
        steps = len(sampler.timesteps(settings["start"]))

        def report(done: int) -> None:  # before each network call, and between the whole-take steps
            if request.progress is not None:
                request.progress(done, len(windows) * steps)

        features, start, lift = grounded_features(content)
        frames = len(features)
        order = loop_order(features)
        windows = sample_windows(frames if order is None else len(order))
        report(0)

        # pass 0: the content's own style; then one pass per distinct reference
        references: list[Motion] = []
        for g in styled:
            if not any(request.reference_for(g) is r for r in references):
                references.append(request.reference_for(g))
        codes = []
        for reference in [None, *references]:
            codes.append(self.style_codes(features if reference is None else grounded_features(reference)[0]))
            report(0)
        mix = torch.zeros(len(codes), features.shape[1], device=self.device)  # per-pass channel weights
        for g, name in enumerate(GROUP_NAMES):
            if name in styled:
                r = 1 + next(i for i, m in enumerate(references) if m is request.reference_for(name))
                mix[r] += request.weight(name) * settings["guidance"] * self.masks[g]
        # x0(own) + sum_r mix_r (x0_r - x0(own)) as one weighted sum over the passes, evaluating only
        # the passes it uses: at weight 1 everywhere the own pass drops out, halving the work
        mix[0] = 1.0 - mix[1:].sum(0)
        used = [p for p in range(len(codes)) if p == 0 and settings["residual"] or bool(mix[p].any())]
        mix = mix[used]
        style = torch.cat([codes[p]["style"] for p in used])
        groups = torch.cat([codes[p]["groups"] for p in used])
        passes = len(used)

        reads = self.denoiser.config

        def sample_window(part: np.ndarray, noise: torch.Tensor, on_step) -> torch.Tensor:
            source = self._normalise(part)[None]
            inputs = {}
            if reads.content_dim:
                inputs["content"] = torch.from_numpy(self.encoders.encode(part[None])["content"]).to(self.device)
            if reads.source:
                inputs["source"] = source
            batch = {k: v.expand(passes, -1, -1) for k, v in inputs.items()}
            change = {}

            def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                x0 = self.denoiser(
                    x_t.expand(passes, -1, -1),
                    t.expand(passes),
                    batch.get("content"),
                    style,
                    groups,
                    batch.get("source"),
                )
                mixed = (mix[:, None, :] * x0).sum(0, keepdim=True)
                change["style"] = mixed - x0[:1]  # used with residual, where pass 0 is the own one
                return mixed

            x0 = sampler.sample(denoise, source, settings["start"], on_step=on_step, noise=noise)
            return source + change["style"] if settings["residual"] else x0

        generator = torch.Generator().manual_seed(settings["seed"])
        noise = torch.randn((1, *features.shape), generator=generator, dtype=torch.float32)
        path = features[:, PLANAR_VELOCITY.start : HEADING_VELOCITY.stop].copy()
        if order is not None:  # a loop: sampled with its ends wrapped around
            features, noise = features[order], noise[:, order]
        out = np.zeros(features.shape)
        total = np.zeros(len(features))
        for w, (window, weight) in enumerate(windows):
            x0 = sample_window(features[window], noise[:, window], lambda i, _, done=w * steps: report(done + i))
            out[window] += weight[:, None] * (x0[0] * self.std + self.mean).double().cpu().numpy()
            total[window] += weight
        report(len(windows) * steps)
        del features, noise  # a long take's largest arrays, let go before the post-processes' copies
        out /= total[:, None]
        if order is not None:
            out = out[(len(order) - frames) // 2 :][:frames]
        out[:, CONTACTS] = np.clip(out[:, CONTACTS], 0.0, 1.0)
        out[:, HEIGHT] -= lift  # back onto the content's own floor
        return Sampled(out, start, path, styled, len(windows) * steps, order is not None)

    def finish(self, content: Motion, sampled: Sampled, options: dict, in_place: bool = False) -> Motion:
        """The motion of sampled features after the post-processes that ``options`` ask for
        (``smooth``, ``keep_path``); ``in_place`` lets them overwrite ``sampled`` (a long take's
        features are not copied) where it is not finished again."""
        settings = self._settings(options)
        out = sampled.features if in_place else sampled.features.copy()
        if settings["smooth"] > 0:
            motion = slice(0, CONTACTS.start)
            mode = "wrap" if sampled.loop else "nearest"
            out[:, motion] = gaussian_filter1d(out[:, motion], settings["smooth"], axis=0, mode=mode)
        if settings["keep_path"]:
            _keep_path(out, sampled.path)
        decoded = features_to_motion(out, sampled.start, content.skeleton)
        return take_groups(content, decoded, sampled.styled)


def grounded_features(motion: Motion) -> tuple[np.ndarray, np.ndarray, float]:
    """(features, start, lift) of a canonical motion standing on the canonical floor: its pelvis
    height raised by ``lift`` cm (core.retarget.grounding), as every training clip stands."""
    features, start = motion_to_features(motion)
    lift = floor_offset(motion)
    features[:, HEIGHT] += lift
    return features, start, lift


def loop_order(features: np.ndarray) -> np.ndarray | None:
    """Frame indices of a loop sampled as a circle (LOOP_PAD frames of the other end before and
    after it, wrapping as often as a short loop needs), or None when the clip does not close: its
    last pose is farther from its first than LOOP_SEAM_STEPS typical frame steps (pelvis height and
    joint rotations; a last frame that repeats the first counts as closing)."""
    frames = len(features)
    if frames < LOOP_MIN_FRAMES:
        return None
    pose = features[:, : ROTATIONS.stop].copy()
    pose[:, PLANAR_VELOCITY.start : HEADING_VELOCITY.stop] = 0.0  # where the pose is, not where it goes
    steps = np.linalg.norm(np.diff(pose, axis=0), axis=1)
    seam = np.linalg.norm(pose[-1] - pose[0])
    if seam > LOOP_SEAM_STEPS * max(float(np.median(steps)), 1e-6):
        return None
    return np.arange(-LOOP_PAD, frames + LOOP_PAD) % frames


def sample_windows(frames: int) -> list[tuple[slice, np.ndarray]]:
    """(frames, blend weight) of each sampling window of a take: SAMPLE_WINDOW frames apart by
    less SAMPLE_OVERLAP (the last one ending on the take's last frame), each weighted by a raised
    cosine over its overlaps with its neighbours (1 elsewhere, never 0): one window of weight 1
    when the take fits one."""
    if frames <= SAMPLE_WINDOW:
        return [(slice(0, frames), np.ones(frames))]
    hop = SAMPLE_WINDOW - SAMPLE_OVERLAP
    starts = list(range(0, frames - SAMPLE_WINDOW, hop)) + [frames - SAMPLE_WINDOW]
    t = np.arange(SAMPLE_WINDOW) + 0.5
    windows = []
    for k, start in enumerate(starts):
        left = t / SAMPLE_OVERLAP if k > 0 else np.inf
        right = (SAMPLE_WINDOW - t) / SAMPLE_OVERLAP if k + 1 < len(starts) else np.inf
        ramp = np.clip(np.minimum(left, right), 0.0, 1.0)
        windows.append((slice(start, start + SAMPLE_WINDOW), 0.5 - 0.5 * np.cos(np.pi * ramp)))
    return windows


def _keep_path(out: np.ndarray, path: np.ndarray) -> None:
    """Give ``out`` (in place: a long take's features are not copied) the source's turning and
    path direction, its planar speed scaled by one factor (the sampled mean speed over the
    source's). ``path``: the source's planar and heading velocity channels, (F, 3)."""
    planar, heading = path[:, :2], path[:, 2:]
    speed_out = np.linalg.norm(out[:, PLANAR_VELOCITY], axis=-1).mean()
    speed_src = np.linalg.norm(planar, axis=-1).mean()
    # floored and capped as the statistics stylizer's ratios: a source that barely moves (a wave in
    # place) keeps its small drift instead of having its noise multiplied into a shake
    scale = float(_ratio(speed_out, speed_src, StatisticsStylizer.SPEED_FLOOR_CM, StatisticsStylizer.MAX_RATIO))
    out[:, PLANAR_VELOCITY] = planar * scale
    out[:, HEADING_VELOCITY] = heading
