"""Training of the diffusion stylizer's denoiser on the frozen encoders (DESIGN §6, issues 7 and 16).

Training clips (``training_selection``): the dataset-2 train split, dataset-1's trainable takes, the
unlabelled non-Bandai clips the data README allows for training, every one also mirrored. Every step
draws windows of one length between ``data.min_window`` and ``data.window`` frames (short crops),
some played faster or slower and some held in place (training/diffusion/augment.py), cells balanced
(content x style drawn uniformly, then a clip, then a window; an unlabelled clip is a cell of its own):

- **reconstruction**: a window is noised to a random step and the denoiser predicts it back
  (``loss.diffusion``, x0 MSE) from its style codes and, as the model config says, its source
  features (``model.source``) and/or E_c content codes. The source is the window itself with its
  style statistics swapped toward another-style clip's (``data.style_strip``), so the style it must
  put back can only come from the style codes. With probability ``data.swap_style`` the style codes
  come from ANOTHER clip with the same style label and, where one exists, another content (style
  labels used as extra supervision, stated here). Content codes get Gaussian noise
  (``data.content_noise``) for the same reason.
- **cross-clip**: content window A (noised to a random step, as sampling does; its own source) with
  the style codes of a reference clip B of another style (of A's content where one exists, with
  ``data.cross_same_content``). There is no ground truth, so the output is scored by the frozen
  encoders and the source: ``style`` (cosine of E_s(output) to B's global and group codes),
  ``content`` (E_c(output) vs A's codes), ``contact`` (output contact channels vs A's), ``ccp``
  (temporal coherence: InfoNCE matching each output frame-to-frame change to A's change at the same
  time among all times), and ``limits`` (6D channels outside the range of the training data, on
  both halves).

The denoiser normalises features by its own statistics over every training frame (``feature_stats``).
Reproducible and resumable like the contrastive trainer: every draw of a step comes from
generators seeded by (seed, step); ``checkpoint.safetensors`` + ``checkpoint.json`` (model, AdamW
state, step; never pickle) every ``train.checkpoint_every`` steps; ``--resume`` continues. The run
folder gets config.toml, metrics.csv, losses.png/validation.png, and the exported ``denoiser``
checkpoint pair (core.models.denoiser.save_denoiser) carrying its config, normalisation, encoders,
training command, commit and split.

    python -m training.diffusion train --config training/configs/diffusion.toml [--out DIR] [--resume]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from core.diffusion import DDIMSampler, NoiseSchedule
from core.io.atomic import replacing, write_text
from core.models.denoiser import Denoiser, DenoiserConfig, save_denoiser
from core.models.encoders import load_encoders
from core.ops.features import CONTACTS, ROTATIONS
from core.stylize.diffusion import clip_style_codes
from training.contrastive.augment import mirror_features, speed_change
from training.data.cache import FeatureCache, load_cache
from training.data.paths import REPO_ROOT
from training.data.split import SPLIT_FILE, dataset1_trainable_takes, load_split, training_takes
from training.diffusion.augment import hold_in_place, swap_style_statistics
from training.runs import (
    add_train_arguments,
    append_metrics,
    check_resume,
    optimizer_state,
    optimizer_tensors,
    plot_metrics,
    restart_metrics,
    run_config,
    run_device,
    step_seed,
    to_toml,
)

DEFAULT_CONFIG = REPO_ROOT / "training" / "configs" / "diffusion.toml"
LOSS_TERMS = ("diffusion", "style", "content", "contact", "ccp", "limits")
VAL_FIELDS = ("val_recon", "val_style_transfer", "val_style_cos", "val_content_cos")
LOSS_NAMES = ("loss", *(f"loss_{t}" for t in LOSS_TERMS))
METRIC_FIELDS = ("step", *LOSS_NAMES, "lr", "seconds", *VAL_FIELDS)
CHECKPOINT = "checkpoint"
MIN_STD = 0.01  # feature units (cm, radians, 6D components): a channel that barely moves is not amplified


class Clips:
    """Training clips (canonical features) with their style and content labels and the frozen
    encoder's style codes, drawn cell-balanced (content x style drawn uniformly, then a clip).

    The style codes are computed once, as the stylizer computes them at inference: the clip's style
    codes averaged over its 2 s windows (core.stylize.diffusion.clip_style_codes). Unlabelled clips
    (non-Bandai motion) are a cell each, their style label their own id, so a "same style" draw
    finds the clip itself and a "another style" draw any other clip.
    """

    def __init__(self, ids, features: list[np.ndarray], styles, contents, encoders, progress: bool = False):
        self.ids = list(ids)
        self.features = features
        self.style = np.asarray(styles)
        self.content = np.asarray(contents)
        style, groups = [], []
        for f in tqdm(self.features, desc="encoding clips", unit="clip", disable=not progress):
            codes = clip_style_codes(encoders, f)
            style.append(codes["style"])
            groups.append(codes["groups"])
        self.style_codes, self.group_codes = np.stack(style), np.stack(groups)
        self.cells: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, cell in enumerate(zip(self.content, self.style)):
            self.cells[cell].append(i)
        self.cell_keys = sorted(self.cells)

    def __len__(self) -> int:
        return len(self.features)

    def balanced(self, rng: np.random.Generator, n: int) -> np.ndarray:
        cells = rng.integers(0, len(self.cell_keys), n)
        return np.array([rng.choice(self.cells[self.cell_keys[c]]) for c in cells])

    def other(self, rng: np.random.Generator, clip: int, same_style: bool, same_content: bool = False) -> int:
        """A clip of the same style label and another content (same_style), or of another style and
        another content (of the same content with ``same_content``); falls back to any other clip of
        that style / any clip of another style."""
        style, content = self.style[clip], self.content[clip]
        if same_style:
            pick = np.flatnonzero((self.style == style) & (self.content != content))
            pick = pick if len(pick) else np.flatnonzero(self.style == style)
        else:
            contents = self.content == content if same_content else self.content != content
            pick = np.flatnonzero((self.style != style) & contents)
            pick = pick if len(pick) else np.flatnonzero(self.style != style)
        return int(rng.choice(pick))

    def windows(self, rng: np.random.Generator, clips, length: int, augment: dict | None = None) -> np.ndarray:
        """(n, length, 134) random windows of ``clips``; ``augment`` (the config's data table) plays
        some faster or slower and holds some in place (training/diffusion/augment.py)."""
        out = np.empty((len(clips), length, self.features[0].shape[1]), np.float32)
        low, high = (augment or {}).get("speed", (1.0, 1.0))
        for k, c in enumerate(clips):
            f = self.features[c]
            change = augment is not None and rng.random() < augment["speed_change"]
            factor = float(np.exp(rng.uniform(np.log(low), np.log(high)))) if change else 1.0
            factor = min(factor, (len(f) - 1) / max(1, length - 1))  # a short clip cannot be sped up past its end
            span = factor * (length - 1)
            start = (
                rng.uniform(0, max(0.0, len(f) - 1 - span)) if factor != 1.0 else rng.integers(0, len(f) - length + 1)
            )
            if factor == 1.0:
                out[k] = f[start : start + length]
            else:
                out[k] = speed_change(torch.from_numpy(f)[None], factor, start, length)[0].numpy()
            if augment is not None and rng.random() < augment["in_place"]:
                out[k] = hold_in_place(out[k])
        return out


def _labelled(cache: FeatureCache, ids, window: int, prefix: str = "") -> tuple[list, list, list, list]:
    """(ids, features, style labels, content labels) of the cache's clips ``ids`` at least ``window``
    frames long, labels prefixed (dataset-1's kept apart from dataset-2's)."""
    position = {c.id: i for i, c in enumerate(cache.clips)}
    rows = [position[i] for i in sorted(ids) if cache.clip_features(position[i]).shape[0] >= window]
    return (
        [cache.clips[r].id for r in rows],
        [np.asarray(cache.clip_features(r), dtype=np.float32) for r in rows],
        [prefix + cache.clips[r].style for r in rows],
        [prefix + cache.clips[r].content for r in rows],
    )


def training_selection(cache: FeatureCache, config: dict, progress: bool = False) -> tuple[list, list, list, list]:
    """(ids, features, style labels, content labels) of the training clips: the dataset-2 train
    split; as the config's data table says, dataset-1's trainable takes, the unlabelled non-Bandai
    clips allowed for training (training/data/unlabelled.py; each its own style and content) and
    every clip mirrored (id suffix ``#mirrored``, same labels). ``max_train_clips`` caps each source."""
    d = config["data"]
    window, limit = d["window"], d["max_train_clips"]
    train_ids, _ = training_takes(cache.clips, load_split(), limit, d["max_val_clips"])
    ids, features, styles, contents = _labelled(cache, train_ids, window)
    if d["dataset1"]:
        more = _labelled(cache, dataset1_trainable_takes(limit), window, prefix="dataset-1:")
        ids, features, styles, contents = (a + b for a, b in zip((ids, features, styles, contents), more))
    if d["unlabelled"]:
        from training.data.unlabelled import load_unlabelled_cache

        names, unlabelled = load_unlabelled_cache(progress=progress)
        keep = [k for k, f in enumerate(unlabelled) if len(f) >= window][: limit or None]
        ids += [names[k] for k in keep]
        features += [unlabelled[k] for k in keep]
        styles += [f"unlabelled:{names[k]}" for k in keep]
        contents += [f"unlabelled:{names[k]}" for k in keep]
    if d["mirror"]:
        ids = ids + [f"{i}#mirrored" for i in ids]
        features = features + [mirror_features(f) for f in features]
        styles, contents = styles * 2, contents * 2
    return ids, features, styles, contents


def training_clips(cache: FeatureCache, config: dict, encoders, progress: bool) -> tuple[Clips, Clips]:
    """(train, val) Clips: ``training_selection`` and the dataset-2 val split takes."""
    d = config["data"]
    _, val_ids = training_takes(cache.clips, load_split(), d["max_train_clips"], d["max_val_clips"])
    train = Clips(*training_selection(cache, config, progress), encoders, progress)
    return train, Clips(*_labelled(cache, val_ids, d["window"]), encoders, progress)


def denoiser_config(config: dict) -> DenoiserConfig:
    fields = {k: v for k, v in config["model"].items() if k != "schedule_steps"}
    return DenoiserConfig.from_dict(fields)


def ccp_loss(output: torch.Tensor, source: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE over time: each output frame-to-frame change must match the source's at the same time."""
    d_out = F.normalize(output[:, 1:] - output[:, :-1], dim=-1)
    d_src = F.normalize(source[:, 1:] - source[:, :-1], dim=-1)
    logits = torch.einsum("btc,bsc->bts", d_out, d_src) / temperature
    target = torch.arange(logits.shape[1], device=logits.device).expand(logits.shape[0], -1)
    return F.cross_entropy(logits.flatten(0, 1), target.flatten())


def feature_stats(features: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-channel mean and spread of every training frame, the spread floored at MIN_STD: the
    denoiser's own normalisation. The encoders' (Bandai frames only) would put motion from other
    captures dozens of spreads out (a Bandai pelvis height varies by 2 cm, a CMU one by 90)."""
    frames = np.concatenate(features).astype(np.float64)
    return {"mean": frames.mean(0).astype(np.float32), "std": np.maximum(frames.std(0), MIN_STD).astype(np.float32)}


class Trainer:
    def __init__(self, config: dict, out: Path, command: str = "", cache: FeatureCache | None = None, log=print):
        self.config, self.out, self.command, self.log = config, Path(out), command, log
        torch.manual_seed(config["seed"])
        torch.set_num_threads(config["threads"])
        self.device = run_device(config)
        cache = cache or load_cache(progress=False)
        self.encoders = load_encoders(REPO_ROOT / config["encoders"], self.device)
        for module in (self.encoders.content, self.encoders.style):
            module.eval().requires_grad_(False)
        self.train, self.val = training_clips(cache, config, self.encoders, config["train"]["progress"])
        self.stats = feature_stats(self.train.features)
        self.mean = torch.as_tensor(self.stats["mean"], device=self.device)
        self.std = torch.as_tensor(self.stats["std"], device=self.device)
        frames = (np.concatenate(self.train.features) - self.stats["mean"]) / self.stats["std"]
        self.low = torch.as_tensor(frames.min(0), device=self.device)
        self.high = torch.as_tensor(frames.max(0), device=self.device)
        self.schedule = NoiseSchedule(config["model"]["schedule_steps"])
        self.model = Denoiser(denoiser_config(config), self.schedule.num_steps).to(self.device)
        t = config["train"]
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=t["lr"], weight_decay=t["weight_decay"])
        self.step, self.seconds = 0, 0.0
        # loss sums of the steps since the last metrics row (saved with a checkpoint, so a resumed
        # run averages the same steps into its next row as an uninterrupted one)
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0
        self.stride = self.encoders.config.content_stride
        self.content_std = self._content_std()

    def _content_std(self) -> float:
        """The spread of E_c's codes over the training clips (the content-noise and content-loss scale)."""
        sample = [f[: self.config["data"]["window"]] for f in self.train.features[:: max(1, len(self.train) // 64)]]
        codes = self.encoders.encode(np.stack(sample))["content"]
        return float(codes.std())

    def content_codes(self, raw: torch.Tensor, generator: torch.Generator) -> torch.Tensor | None:
        """E_c's codes of raw windows with the training noise, or None when the denoiser reads none."""
        if not self.model.config.content_dim:
            return None
        with torch.no_grad():
            codes = self.encoders.codes(raw)["content"]
        scale = self.config["data"]["content_noise"] * self.content_std
        return codes + scale * torch.randn(codes.shape, generator=generator).to(self.device)

    def normalise(self, raw: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(raw).to(self.device) - self.mean) / self.std

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    def lr_at(self, step: int) -> float:
        t = self.config["train"]
        warm = min(1.0, (step + 1) / max(1, t["warmup_steps"]))
        progress = step / max(1, t["max_steps"])
        return t["lr"] * warm * 0.5 * (1 + np.cos(np.pi * progress))

    def batch(self, step: int) -> dict[str, np.ndarray]:
        """The step's draw, all windows of one length (short crops: a multiple of E_c's stride from
        ``data.min_window`` to ``data.window``): reconstruction windows x with the style codes of the
        clip itself or of a same-style clip, the windows of another-style clips their sources' style
        statistics are swapped toward (``strip``, by ``amount``, 0 for an unswapped source), and
        cross-clip windows a with the style codes of a reference clip."""
        rng = np.random.default_rng(step_seed(self.config["seed"], step))
        d = self.config["data"]
        n, data = self.config["train"]["batch_size"], self.train
        length = self.stride * int(rng.integers(d["min_window"] // self.stride, d["window"] // self.stride + 1))
        clips = data.balanced(rng, n)
        swap = rng.random(n) < d["swap_style"]
        style_clips = [data.other(rng, c, same_style=True) if s else c for c, s in zip(clips, swap)]
        sources = data.balanced(rng, max(1, n // 2))
        same_content = bool(d["cross_same_content"])
        references = [data.other(rng, c, same_style=False, same_content=same_content) for c in sources]
        strip = [data.other(rng, c, same_style=False) for c in clips]
        amount = np.where(rng.random(n) < d["style_strip"], rng.uniform(0.5, 1.0, n), 0.0).astype(np.float32)
        windows = data.windows(rng, np.concatenate([clips, sources]), length, augment=d)
        styles = np.concatenate([style_clips, references])
        return {
            "x": windows[:n],
            "a": windows[n:],
            "strip": data.windows(rng, strip, length),
            "amount": amount,
            "style": data.style_codes[styles],
            "groups": data.group_codes[styles],
        }

    def losses(self, batch: dict[str, np.ndarray], generator: torch.Generator) -> dict[str, torch.Tensor]:
        w = self.config["loss"]
        n = batch["x"].shape[0]
        steps = self.schedule.num_steps
        x, a = self.normalise(batch["x"]), self.normalise(batch["a"])
        style, groups = (torch.from_numpy(batch[k]).to(self.device) for k in ("style", "groups"))
        clean = torch.cat([x, a])
        content = self.content_codes(self.raw(clean), generator)
        source = None
        if self.model.config.source:
            stripped = swap_style_statistics(x, self.normalise(batch["strip"]), torch.from_numpy(batch["amount"]))
            source = torch.cat([stripped, a])
        t = torch.randint(0, steps, (len(clean),), generator=generator).to(self.device)
        noise = torch.randn(clean.shape, generator=generator).to(self.device)
        x0 = self.model(self.schedule.add_noise(clean, noise, t), t, content, style, groups, source)
        rec, cross = x0[:n], x0[n:]
        out = {"diffusion": F.mse_loss(rec, x)}
        rot = slice(ROTATIONS.start, ROTATIONS.stop)
        out["limits"] = (F.relu(x0[..., rot] - self.high[rot]) + F.relu(self.low[rot] - x0[..., rot])).square().mean()
        zero = x0.new_zeros(())
        if w["style"] or w["content"]:
            codes = self.encoders.codes(self.raw(cross))
            with torch.no_grad():
                source_content = self.encoders.codes(torch.from_numpy(batch["a"]).to(self.device))["content"]
            style_loss = 1 - F.cosine_similarity(codes["style"], style[n:], dim=-1).mean()
            group_loss = 1 - F.cosine_similarity(codes["groups"], groups[n:], dim=-1).mean()
            out["style"] = 0.5 * (style_loss + group_loss)
            out["content"] = F.mse_loss(codes["content"], source_content) / self.content_std**2
        else:
            out["style"] = out["content"] = zero
        out["contact"] = F.mse_loss(cross[..., CONTACTS], a[..., CONTACTS]) if w["contact"] else zero
        out["ccp"] = ccp_loss(cross[..., rot], a[..., rot], w["ccp_temperature"]) if w["ccp"] else zero
        out["loss"] = sum(w[k] * out[k] for k in LOSS_TERMS)
        return out

    def train_step(self) -> dict[str, float]:
        self.model.train()
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        generator = torch.Generator().manual_seed(step_seed(self.config["seed"], self.step, 1))
        values = self.losses(self.batch(self.step), generator)
        self.optimizer.zero_grad(set_to_none=True)
        values["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config["train"]["grad_clip"])
        self.optimizer.step()
        self.step += 1
        named = {(k if k == "loss" else f"loss_{k}"): float(v.detach()) for k, v in values.items()}
        return {**named, "lr": lr}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """On fixed val-split cross-clip pairs, sampled as the product samples (DDIM from noise):
        share of outputs whose E_s code is nearer the reference's than the source's, the mean cosines,
        and the x0 reconstruction error of the val windows at a mid noise level."""
        self.model.eval()
        v = self.config["val"]
        rng = np.random.default_rng([self.config["seed"], 12345])
        sources = self.val.balanced(rng, v["pairs"])
        references = [self.val.other(rng, c, same_style=False) for c in sources]
        a_raw = self.val.windows(rng, sources, self.config["data"]["window"])
        a = self.normalise(a_raw)
        codes_a = self.encoders.codes(torch.from_numpy(a_raw).to(self.device))
        style_b = torch.from_numpy(self.val.style_codes[references]).to(self.device)
        groups_b = torch.from_numpy(self.val.group_codes[references]).to(self.device)
        content = codes_a["content"] if self.model.config.content_dim else None
        source = a if self.model.config.source else None
        sampler = DDIMSampler(self.schedule, v["steps"])
        generator = torch.Generator().manual_seed(0)

        def denoise(x_t, t):
            return self.model(x_t, t, content, style_b, groups_b, source)

        out = self.encoders.codes(self.raw(sampler.sample(denoise, a, 1.0, generator)))
        style_a = torch.from_numpy(self.val.style_codes[sources]).to(self.device)
        groups_a = torch.from_numpy(self.val.group_codes[sources]).to(self.device)
        to_b = F.cosine_similarity(out["style"], style_b, dim=-1)
        to_a = F.cosine_similarity(out["style"], style_a, dim=-1)
        t = torch.full((len(a),), self.schedule.num_steps // 2, dtype=torch.long)
        noisy = self.schedule.add_noise(a, torch.randn(a.shape, generator=generator), t)
        rec = self.model(noisy, t, content, style_a, groups_a, source)
        return {
            "val_recon": float(F.mse_loss(rec, a)),
            "val_style_transfer": float((to_b > to_a).float().mean()),
            "val_style_cos": float(to_b.mean()),
            "val_content_cos": float(F.cosine_similarity(out["content"], codes_a["content"], dim=-1).mean()),
        }

    # ---- checkpoints
    def save_checkpoint(self) -> None:
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        tensors.update(optimizer_tensors(self.optimizer))
        with replacing(self.out / f"{CHECKPOINT}.safetensors") as temp:
            save_file(tensors, temp)
        meta = {"step": self.step, "seconds": self.seconds, "config": self.config}
        meta["pending"] = {"count": self.count, "sums": dict(self.sums)}
        write_text(self.out / f"{CHECKPOINT}.json", json.dumps(meta, indent=1) + "\n")

    def load_checkpoint(self) -> None:
        meta = json.loads((self.out / f"{CHECKPOINT}.json").read_text())
        tensors = load_file(self.out / f"{CHECKPOINT}.safetensors")
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        groups = self.optimizer.state_dict()["param_groups"]
        self.optimizer.load_state_dict({"state": optimizer_state(tensors), "param_groups": groups})
        self.step, self.seconds = meta["step"], meta["seconds"]
        pending = meta.get("pending", {})
        self.sums, self.count = defaultdict(float, pending.get("sums", {})), pending.get("count", 0)

    def run(self, resume: bool = False, stop_after: int | None = None) -> Path:
        t = self.config["train"]
        self.out.mkdir(parents=True, exist_ok=True)
        metrics = self.out / "metrics.csv"
        if resume:
            self.load_checkpoint()
        else:
            write_text(self.out / "config.toml", to_toml(self.config))
        restart_metrics(metrics, METRIC_FIELDS, self.step if resume else None)
        end = t["max_steps"] if stop_after is None else min(t["max_steps"], stop_after)
        bar = tqdm(total=end, initial=self.step, desc="diffusion", unit="step", disable=not t["progress"])
        started = time.perf_counter() - self.seconds
        while self.step < end:
            values = self.train_step()
            for key, value in values.items():
                self.sums[key] += value
            self.count += 1
            self.seconds = time.perf_counter() - started
            bar.update(1)
            bar.set_postfix(loss=f"{values['loss']:.3f}")
            if self.step % t["log_every"] == 0 or self.step == t["max_steps"]:
                row = {"step": self.step, **{k: v / self.count for k, v in self.sums.items()}}
                row["seconds"] = self.seconds
                row["lr"] = values["lr"]
                if self.step % t["val_every"] == 0 or self.step == t["max_steps"]:
                    row.update(self.validate())
                    self.log(f"step {self.step}: " + ", ".join(f"{k} {row[k]:.3f}" for k in VAL_FIELDS))
                self.sums, self.count = defaultdict(float), 0
                append_metrics(metrics, METRIC_FIELDS, row, digits=6)
            if self.step % t["checkpoint_every"] == 0 or self.step == end:
                self.save_checkpoint()
        bar.close()
        if self.step >= t["max_steps"]:
            self.export()
            plot_metrics(
                metrics, self.out, LOSS_NAMES, VAL_FIELDS, "validation (val-split cross-clip pairs)", log_loss=True
            )
        return self.out

    def export(self) -> Path:
        from training.runs import file_sha256, git_commit

        training = {
            "command": self.command,
            "git_commit": git_commit(),
            "config": self.config,
            "encoders": self.config["encoders"],
            "supervised_style_swap": self.config["data"]["swap_style"] > 0,
            "steps": self.step,
            "train_seconds": round(self.seconds, 1),
            "split_file": SPLIT_FILE.relative_to(REPO_ROOT).as_posix(),
            "split_sha256": file_sha256(SPLIT_FILE),
            "train_clips": len(self.train),
            "train_sources": dict(Counter(i.split("#")[0].split("_")[0] for i in self.train.ids)),
            "normalisation": "every frame of the training clips (feature_stats)",
            "torch": torch.__version__,
        }
        save_denoiser(self.out / "denoiser", self.model, self.stats, {"training": training})
        return self.out / "denoiser"


def train(
    config: dict, out: Path, resume: bool = False, stop_after: int | None = None, command: str = "", cache=None
) -> Path:
    out = Path(out)
    if resume:
        check_resume(config, out)
    threads = torch.get_num_threads()
    try:
        return Trainer(config, out, command=command, cache=cache).run(resume=resume, stop_after=stop_after)
    finally:
        torch.set_num_threads(threads)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.diffusion", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train the denoiser on the frozen encoders")
    add_train_arguments(p, DEFAULT_CONFIG, "diffusion")
    args = parser.parse_args(argv)
    command = " ".join(["python -m training.diffusion", *(argv if argv is not None else sys.argv[1:])])
    config = run_config(parser, args, DEFAULT_CONFIG)
    out = args.out or REPO_ROOT / "out" / "diffusion" / config["name"]
    train(config, out, resume=args.resume, stop_after=args.stop_after, command=command)
    return 0
