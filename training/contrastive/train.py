"""Self-supervised training of the content and style encoders (DESIGN §6, issue 6).

Objective, per view (joint / velocity / bone; each view has its own E_c and E_s, CrosSCLR style):

- **content**: MoCo InfoNCE on the time-pooled E_c code (through a projection head). Pooled rather
  than per time step: positives are another window of the same clip (``pair_mode = "clip"``) or a
  second augmentation that changes speed and crops (``pair_mode = "augment"``), so the two code
  sequences are not aligned in time and a per-step contrast would need an alignment we do not have.
- **style**: MoCo InfoNCE on the global E_s code (projection head), same positives.
- **body part**: per body group, InfoNCE over E_s's group codes; a group's code from the positive
  window is its positive, the same group of the queued (other) windows its negatives.
- **cross-view** (CrosSCLR): from step ``moco.crossview_start`` on, the ``crossview_topk`` queue
  entries most similar to a sample's key in each OTHER view are extra positives in this view
  (content and style contrasts).
- **orthogonality**: mean squared cross-correlation between the batch-standardised pooled content
  code and style code (``losses.orthogonality``), over the global batch.
- **supervised style** (off by default; ``loss.supervised_style``): SupCon on the style projection,
  queue entries with the window's style label are extra positives. Stated in every run's config.

What keeps style out of E_c and content out of E_s on this data (10 contents x 7 styles, every clip one
cell): a same-clip positive shares both, so identity contrast alone would let both encoders code both.
Three choices push them apart: (1) E_c's two inputs go through the ``augment.content`` augmenter, which
perturbs the cues that carry style on this data (wide speed change: pace is the strongest style cue;
per-joint noise and joint masking: posture amplitude) while keeping what is done, so clip identity
through style is unreliable for E_c; E_s's inputs go through ``augment.style``, which keeps speed
nearly unchanged and so keeps pace; (2) with ``pair_mode = "clip"`` E_s must match windows at different
times of the clip, i.e. different phases of the content, so phase-specific content does not help it;
(3) the orthogonality term removes linear correlation between the two codes. An adversarial term was
not added: it needs labels or a second min-max loop, and the decorrelation already has a gradient that
acts on both codes. The leakage kNNs in metrics.csv (style from E_c, content from E_s) measure the
result on validation windows.

Batches: ``train.batch_size`` anchor windows per step in the WindowSampler's balanced epoch order
(every content x style cell equally likely), from the dataset-2 ``train`` split only; windows are cut
``source_window`` frames long (room for the content augmenter's speed-ups) and augmented to
``data.window`` frames. Normalisation statistics come from every frame of those training clips and are
saved in the run folder and in the exported encoders. The key encoder runs in eval mode (moco.py).

Distributed (``torchrun --nproc_per_node=N -m training.contrastive train ...``): DDP, gloo on CPU and
nccl on CUDA. Every rank draws the same global batch and keeps the slice ``rank``; the queue takes the
all-gathered keys in rank order; BatchNorm uses global-batch statistics (moco.GlobalBatchNorm); the
orthogonality loss sees the gathered batch. So N processes optimise what one process does with the
whole batch, up to the order of float sums.

Reproducibility: every random draw of a step (which windows, the partner window, the augmentations,
dropout) comes from generators seeded by (seed, step), so a resumed run repeats an uninterrupted one
and every DDP rank draws the same global batch, augments it identically and keeps its own slice. The
checkpoint (``checkpoint.safetensors``: model, key model, queues, AdamW state, RNG states;
``checkpoint.json``: step, seconds, config, optimizer hyper-parameters, RNG states; never pickle) is
written every ``train.checkpoint_every`` steps and at the end; ``--resume`` continues from it and
repeats the uninterrupted run's metrics and weights (tests/test_contrastive_train.py). Dropout masks
differ between a DDP rank's half batch and the one-process batch, so DDP matches one process exactly
only without dropout (the smoke config).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from core.io.atomic import replacing, write_text
from core.models.encoders import EncoderConfig, make_view, save_encoders
from training.contrastive.augment import Augmenter, mirror_content_indices
from training.contrastive.losses import group_info_nce, mined_positives, multi_positive_nce, orthogonality
from training.contrastive.moco import (
    ContrastiveModel,
    Queues,
    all_mean,
    convert_global_batchnorm,
    gather_batch,
    key_copy,
    momentum_update,
    world,
)
from training.data.cache import FeatureCache, load_cache
from training.data.paths import REPO_ROOT
from training.data.split import SPLIT_FILE, load_split, training_takes
from training.data.windows import WindowSampler
from training.evaluation.probes import knn_accuracy
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

CONFIG_DIR = REPO_ROOT / "training" / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "contrastive.toml"
LOSS_TERMS = ("content", "style", "bodypart", "orthogonality", "supervised", "supervised_content", "adversary")
VAL_FIELDS = ("knn_style_from_style", "knn_content_from_content", "leak_style_from_content", "leak_content_from_style")
LOSS_NAMES = ("loss", *(f"loss_{t}" for t in LOSS_TERMS))
METRIC_FIELDS = ("step", *LOSS_NAMES, "lr", "seconds", *VAL_FIELDS)
CHECKPOINT = "checkpoint"


# -------------------------------------------------------------------------------------------- data


def _window_clips(sampler: WindowSampler, chunk: int = 1024) -> np.ndarray:
    """Cache clip index of every window of a sampler (through the public ``get``)."""
    out = [sampler.get(np.arange(i, min(i + chunk, len(sampler))))["clip"] for i in range(0, len(sampler), chunk)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


class Data:
    """Training windows (train split only), normalisation stats, partner windows, fixed kNN sets."""

    def __init__(self, config: dict, cache: FeatureCache, split: dict[str, list[str]]):
        d, seed = config["data"], config["seed"]
        train_ids, val_ids = training_takes(cache.clips, split, d["max_train_clips"], d["max_val_clips"])
        balance = d["balance"] or None
        # training windows are cut longer than the encoders' window so the augmenters can speed them
        # up (training.contrastive.augment: a speed-up needs a longer source)
        self.source_window = source_window(config)
        self.train = WindowSampler(cache, train_ids, self.source_window, d["stride"], seed=seed, balance=balance)
        names = {"style_names": self.train.style_names, "content_names": self.train.content_names}
        self.val = WindowSampler(cache, val_ids, d["window"], d["eval_stride"], **names)
        self.bank = WindowSampler(cache, train_ids, d["window"], d["eval_stride"], **names)
        position = {clip.id: i for i, clip in enumerate(cache.clips)}
        frames = np.concatenate([cache.clip_features(position[c]) for c in train_ids]).astype(np.float64)
        self.mean = frames.mean(axis=0).astype(np.float32)
        self.std = np.maximum(frames.std(axis=0), d["std_floor"]).astype(np.float32)
        self.train_ids, self.val_ids = train_ids, val_ids

        clips = _window_clips(self.train)
        order = np.argsort(clips, kind="stable")
        by_clip = clips[order]
        bounds = np.searchsorted(by_clip, clips, side="left"), np.searchsorted(by_clip, clips, side="right")
        self._sorted, self._lo, self._hi = order, bounds[0], bounds[1]
        self._position = np.empty_like(order)
        self._position[order] = np.arange(len(order))
        self.pair_mode = d["pair_mode"]
        if self.pair_mode not in ("clip", "augment"):
            raise ValueError(f"data.pair_mode must be 'clip' or 'augment'; got {self.pair_mode!r}")
        rng = np.random.default_rng([seed, 7])
        self.val_index = np.sort(rng.permutation(len(self.val))[: d["val_windows"]])
        self.bank_index = np.sort(rng.permutation(len(self.bank))[: d["bank_windows"]])
        self._epoch, self._order = -1, None

    def global_batch(self, step: int, batch_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(anchor, partner) window indices of a step: anchors in the sampler's (balanced) epoch order;
        the partner is another window of the anchor's clip (pair_mode "clip", the anchor itself when
        the clip has one window) or the anchor (pair_mode "augment")."""
        per_epoch = max(1, len(self.train) // batch_size)
        epoch, position = divmod(step, per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, self.train.order(epoch)
        anchors = self._order[position * batch_size : (position + 1) * batch_size]
        if self.pair_mode == "augment":
            return anchors, anchors
        rng = np.random.default_rng([seed, step, 1])
        lo, hi, own = self._lo[anchors], self._hi[anchors], self._position[anchors]
        count = hi - lo
        # uniform among the clip's other windows (sorted positions lo..hi-1 without the anchor's own)
        pick = rng.integers(0, np.maximum(count - 1, 1))
        position = lo + pick + (lo + pick >= own)
        partners = np.where(count > 1, self._sorted[np.minimum(position, hi - 1)], anchors)
        return anchors, partners


# ------------------------------------------------------------------------------------------ trainer


def source_window(config: dict) -> int:
    """Frames cut per training window: enough for the fastest speed change of either augmenter."""
    window = config["data"]["window"]
    fastest = max(max(config["augment"][kind].get("speed_range", [1.0, 1.25])) for kind in ("content", "style"))
    return max(window, math.ceil((window - 1) * max(1.0, fastest)) + 1)


def init_distributed(device: torch.device) -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend)


def encoder_configs(config: dict) -> dict[str, EncoderConfig]:
    m = config["model"]
    fields = {k: v for k, v in m.items() if k not in ("views", "projection_dim")}
    return {view: EncoderConfig.from_dict({**fields, "view": view}) for view in m["views"]}


class Trainer:
    def __init__(self, config: dict, out: Path, command: str = "", cache: FeatureCache | None = None, log=print):
        self.config, self.out, self.command, self.log = config, Path(out), command, log
        t = config["train"]
        self.device = run_device(config)
        init_distributed(self.device)
        self.rank, self.world = world()
        if t["batch_size"] % self.world:
            raise ValueError(f"batch_size {t['batch_size']} is not divisible by the {self.world} processes")
        torch.set_num_threads(max(1, config["threads"] // self.world))
        torch.use_deterministic_algorithms(True, warn_only=True)
        random.seed(config["seed"])
        np.random.seed(config["seed"] % 2**32)
        torch.manual_seed(config["seed"])

        cache = cache if cache is not None else load_cache(progress=self.rank == 0)
        self.data = Data(config, cache, load_split())
        if self.rank == 0:
            d = self.data
            log(
                f"[contrastive] {len(d.train_ids)} train clips -> {len(d.train)} windows of {d.source_window} frames "
                f"({len(d.train.skipped)} clips shorter, skipped); {len(d.val_index)} val / {len(d.bank_index)} "
                f"bank windows for the kNN proxies; device {self.device}, {self.world} process(es)"
            )
        self.mean = torch.from_numpy(self.data.mean).to(self.device)
        self.std = torch.from_numpy(self.data.std).to(self.device)
        self.views = list(config["model"]["views"])
        self.encoder_configs = encoder_configs(config)
        labels = {
            "styles": len(self.data.train.style_names),
            "contents": len(self.data.train.content_names),
            "supervised_content": config["loss"]["supervised_content"] > 0,
            "adversary": config["loss"]["adversary"] > 0,
        }
        self.model = ContrastiveModel(self.encoder_configs, config["model"]["projection_dim"], labels).to(self.device)
        self.key = key_copy(self.model).eval()
        if self.world > 1:
            convert_global_batchnorm(self.model)
        queue_size = config["moco"]["queue_size"]
        group_dim = next(iter(self.encoder_configs.values())).group_dim
        generator = torch.Generator().manual_seed(step_seed(config["seed"], 3))
        self.queues = Queues(
            self.views, max(queue_size, 1), config["model"]["projection_dim"], group_dim, generator
        ).to(self.device)
        # under torchrun: DDP (nccl on CUDA, gloo on CPU) averages the per-rank gradients in backward
        self.ddp_wrapped = self.world > 1
        device_ids = [self.device] if self.device.type == "cuda" else None
        self.ddp = DistributedDataParallel(self.model, device_ids=device_ids) if self.ddp_wrapped else self.model
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=t["lr"], weight_decay=t["weight_decay"])
        window = config["data"]["window"]
        self.augment = {kind: Augmenter({**config["augment"][kind], "length": window}) for kind in ("content", "style")}
        self.step, self.seconds = 0, 0.0

    # ---- schedule
    def lr_at(self, step: int) -> float:
        t = self.config["train"]
        warmup, total, peak = t["warmup_steps"], t["max_steps"], t["lr"]
        if step < warmup:
            return peak * (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        floor = peak * t["min_lr_ratio"]
        return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))

    # ---- inputs
    def _augmented(self, features: np.ndarray, kind: str, stream: int) -> tuple[torch.Tensor, np.ndarray]:
        """The augmented windows and which of them were mirrored (their content label swaps)."""
        generator = torch.Generator().manual_seed(step_seed(self.config["seed"], self.step, stream))
        out, info = self.augment[kind](torch.from_numpy(features), generator, return_info=True)
        return out, np.asarray(info["mirrored"], dtype=bool)

    def _views(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (raw.to(self.device, torch.float32) - self.mean) / self.std
        stats = {"mean": self.mean, "std": self.std}
        return {view: make_view(x, view, stats) for view in self.views}

    def inputs(self):
        """This rank's slice of the step's global batch: query and key inputs per view, labels."""
        batch_size = self.config["train"]["batch_size"]
        anchors, partners = self.data.global_batch(self.step, batch_size, self.config["seed"])
        a = self.data.train.get(anchors)
        b = self.data.train.get(partners)
        local = slice(self.rank * batch_size // self.world, (self.rank + 1) * batch_size // self.world)
        # every rank augments the whole global batch with the same generators, then keeps its slice
        augmented = {
            "content_q": self._augmented(a["features"], "content", 10),
            "content_k": self._augmented(b["features"], "content", 11),
            "style_q": self._augmented(a["features"], "style", 12),
            "style_k": self._augmented(b["features"], "style", 13),
        }
        views = {name: self._views(x[local]) for name, (x, _) in augmented.items()}
        query = {v: (views["content_q"][v], views["style_q"][v]) for v in self.views}
        key = {v: (views["content_k"][v], views["style_k"][v]) for v in self.views}
        labels = torch.from_numpy(a["style"]).to(self.device)
        names = self.data.train.content_names
        # content labels of what each query encoder saw: a mirrored wave-left-hand is a wave-right-hand
        contents = {
            kind: torch.from_numpy(mirror_content_indices(a["content"], augmented[f"{kind}_q"][1], names)[local])
            .long()
            .to(self.device)
            for kind in ("content", "style")
        }
        return query, key, labels, labels[local], contents

    # ---- one optimisation step
    def losses(
        self, q, k, keys_global, labels_local, contents
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(total to backpropagate, total as logged (without the DDP scaling), each term)."""
        cfg, moco = self.config["loss"], self.config["moco"]
        temperature = moco["temperature"]
        crossview = 0 <= moco["crossview_start"] <= self.step and len(self.views) > 1
        batch = len(labels_local)
        if moco["queue_size"] > 0:
            banks = {v: self.queues.bank(v) for v in self.views}
            exclude = None
        else:  # in-batch negatives: the global batch's keys, minus the query's own
            banks = {v: keys_global[v] for v in self.views}
            total = len(keys_global["labels"])
            own = torch.arange(batch, device=self.device) + self.rank * batch
            exclude = torch.zeros(batch, total, dtype=torch.bool, device=self.device)
            exclude[torch.arange(batch), own] = True
        terms = {t: torch.zeros((), device=self.device) for t in LOSS_TERMS}
        for v in self.views:
            bank = banks[v]
            for kind in ("content", "style"):
                positives = torch.zeros(batch, bank[kind].shape[0], dtype=torch.bool, device=self.device)
                if crossview:
                    for u in self.views:
                        if u != v:
                            positives |= mined_positives(k[u][kind], banks[u][kind], moco["crossview_topk"], exclude)
                terms[kind] = terms[kind] + multi_positive_nce(
                    q[v][kind], k[v][kind], bank[kind], positives, temperature, exclude
                ) / len(self.views)
            if cfg["bodypart"] > 0:
                terms["bodypart"] = terms["bodypart"] + group_info_nce(
                    q[v]["groups"], k[v]["groups"], bank["groups"], temperature, exclude
                ) / len(self.views)
            if cfg["orthogonality"] > 0:
                content, style = gather_batch(q[v]["content_pooled"]), gather_batch(q[v]["style_code"])
                terms["orthogonality"] = terms["orthogonality"] + orthogonality(content, style) / len(self.views)
            if cfg["supervised_style"]:
                same = bank["labels"][None, :] == labels_local[:, None]
                terms["supervised"] = terms["supervised"] + multi_positive_nce(
                    q[v]["style"], k[v]["style"], bank["style"], same, moco["supervised_temperature"], exclude
                ) / len(self.views)
            if cfg["supervised_content"] > 0:
                terms["supervised_content"] = terms["supervised_content"] + F.cross_entropy(
                    q[v]["content_logits"], contents["content"]
                ) / len(self.views)
            if cfg["adversary"] > 0:
                terms["adversary"] = terms["adversary"] + (
                    F.cross_entropy(q[v]["style_from_content"], labels_local)
                    + F.cross_entropy(q[v]["content_from_style"], contents["style"])
                ) / len(self.views)
        weights = {
            "content": cfg["content"],
            "style": cfg["style"],
            "bodypart": cfg["bodypart"],
            # the orthogonality loss is over the gathered global batch: scaled by the world size so
            # that DDP's gradient averaging gives the one-process gradient (see moco.gather_batch)
            "orthogonality": cfg["orthogonality"] * self.world,
            "supervised": cfg["supervised_weight"] if cfg["supervised_style"] else 0.0,
            "supervised_content": cfg["supervised_content"],
            "adversary": cfg["adversary"],
        }
        total = sum(weights[t] * terms[t] for t in LOSS_TERMS)
        logged = sum((weights[t] / (self.world if t == "orthogonality" else 1)) * terms[t].detach() for t in LOSS_TERMS)
        return total, logged, terms

    def train_step(self) -> dict[str, float]:
        t = self.config["train"]
        torch.manual_seed(step_seed(self.config["seed"], self.step, 100 + self.rank))  # dropout
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        query_in, key_in, labels_global, labels_local, contents = self.inputs()
        q = self.ddp(query_in)
        with torch.no_grad():
            k = self.key(key_in)
            keys_global = {v: {kind: _gather_nograd(k[v][kind]) for kind in ("content", "style")} for v in self.views}
            for v in self.views:
                keys_global[v]["groups"] = _gather_nograd(k[v]["groups"]).transpose(0, 1)
                keys_global[v]["labels"] = labels_global
            keys_global["labels"] = labels_global
        total, logged, terms = self.losses(q, k, keys_global, labels_local, contents)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if t["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), t["grad_clip"])
        self.optimizer.step()
        momentum_update(self.key, self.model, self.config["moco"]["momentum"])
        if self.config["moco"]["queue_size"] > 0:
            enqueue = {v: {**keys_global[v], "groups": keys_global[v]["groups"].transpose(0, 1)} for v in self.views}
            self.queues.enqueue(enqueue, labels_global)
        # logged values: the global-batch means (per-sample terms averaged over ranks)
        values = torch.stack([logged] + [terms[t].detach() for t in LOSS_TERMS])
        values = all_mean(values).cpu().tolist()
        self.step += 1
        return {"loss": values[0], **{f"loss_{t}": v for t, v in zip(LOSS_TERMS, values[1:], strict=True)}, "lr": lr}

    # ---- validation: kNN on fixed val windows against fixed train windows, first view
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        view = self.views[0]
        encoders = self.model.views[view]
        encoders.eval()

        def encode(sampler, index):
            content, style, styles, contents = [], [], [], []
            for i in range(0, len(index), 256):
                w = sampler.get(index[i : i + 256])
                x = self._views(torch.from_numpy(w["features"]))[view]
                content.append(encoders.content(x).mean(dim=1).cpu().numpy())
                style.append(encoders.style(x)["style"].cpu().numpy())
                styles.append(w["style"])
                contents.append(w["content"])
            return [np.concatenate(a) for a in (content, style, styles, contents)]

        bc, bs, bstyle, bcontent = encode(self.data.bank, self.data.bank_index)
        vc, vs, vstyle, vcontent = encode(self.data.val, self.data.val_index)
        k = self.config["data"]["knn_k"]
        self.model.train()
        return {
            "knn_style_from_style": knn_accuracy(bs, bstyle, vs, vstyle, k),
            "knn_content_from_content": knn_accuracy(bc, bcontent, vc, vcontent, k),
            "leak_style_from_content": knn_accuracy(bc, bstyle, vc, vstyle, k),
            "leak_content_from_style": knn_accuracy(bs, bcontent, vs, vcontent, k),
        }

    # ---- checkpoints
    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {}
        for prefix, module in (("model", self.model), ("key", self.key), ("queue", self.queues)):
            for name, value in module.state_dict().items():
                tensors[f"{prefix}.{name}"] = value.detach().cpu().clone().contiguous()
        tensors.update(optimizer_tensors(self.optimizer))
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.numpy"] = torch.from_numpy(np.random.get_state()[1].astype(np.int64))
        return tensors

    def save_checkpoint(self) -> None:
        if self.rank != 0:
            return
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.state_dict()["param_groups"]]
        np_state = np.random.get_state()
        py_state = random.getstate()
        meta = {
            "step": self.step,
            "seconds": self.seconds,
            "config": self.config,
            "optimizer": {"type": "AdamW", "param_groups": groups},
            "rng": {"python": [py_state[0], list(py_state[1]), py_state[2]], "numpy": list(np_state[2:])},
            "world_size": self.world,
        }
        with replacing(self.out / f"{CHECKPOINT}.safetensors") as temp:
            save_file(self.state_tensors(), temp)
        write_text(self.out / f"{CHECKPOINT}.json", json.dumps(meta, indent=1) + "\n")

    def load_checkpoint(self) -> None:
        meta = json.loads((self.out / f"{CHECKPOINT}.json").read_text())
        tensors = load_file(self.out / f"{CHECKPOINT}.safetensors")
        for prefix, module in (("model", self.model), ("key", self.key), ("queue", self.queues)):
            state = {n[len(prefix) + 1 :]: v for n, v in tensors.items() if n.startswith(prefix + ".")}
            module.load_state_dict(state)
        groups = meta["optimizer"]["param_groups"]
        params = iter(range(sum(1 for _ in self.model.parameters())))
        for group, live in zip(groups, self.optimizer.param_groups, strict=True):
            group["params"] = [next(params) for _ in live["params"]]
            if "betas" in group:
                group["betas"] = tuple(group["betas"])
        self.optimizer.load_state_dict({"state": optimizer_state(tensors), "param_groups": groups})
        torch.set_rng_state(tensors["rng.torch"])
        numpy_state = meta["rng"]["numpy"]
        np.random.set_state(("MT19937", tensors["rng.numpy"].numpy().astype(np.uint32), *numpy_state))
        python = meta["rng"]["python"]
        random.setstate((python[0], tuple(python[1]), python[2]))
        self.step, self.seconds = meta["step"], meta["seconds"]

    # ---- the loop
    def run(self, resume: bool = False, stop_after: int | None = None) -> Path:
        t = self.config["train"]
        self.out.mkdir(parents=True, exist_ok=True)
        metrics_path = self.out / "metrics.csv"
        if resume:
            self.load_checkpoint()
        elif self.rank == 0:
            write_text(self.out / "config.toml", to_toml(self.config))
            self.save_stats()
        if self.rank == 0:
            restart_metrics(metrics_path, METRIC_FIELDS, self.step if resume else None)
        end = t["max_steps"] if stop_after is None else min(t["max_steps"], stop_after)
        sums: dict[str, float] = {}
        count = 0
        bar = tqdm(
            total=end, initial=self.step, desc="contrastive", unit="step", disable=self.rank != 0 or not t["progress"]
        )
        started = time.perf_counter() - self.seconds
        while self.step < end:
            values = self.train_step()
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
            self.seconds = time.perf_counter() - started
            bar.update(1)
            bar.set_postfix(loss=f"{values['loss']:.3f}")
            last = self.step == end
            # rows at multiples of log_every (and the final step) only, so a run stopped and resumed at a
            # checkpoint writes the rows of an uninterrupted run
            if self.step % t["log_every"] == 0 or self.step == t["max_steps"]:
                row = {"step": self.step, **{k: v / count for k, v in sums.items()}, "seconds": self.seconds}
                row["lr"] = values["lr"]
                if self.rank == 0 and (self.step % t["val_every"] == 0 or self.step == t["max_steps"]):
                    row.update(self.validate())
                sums, count = {}, 0
                if self.rank == 0:
                    append_metrics(metrics_path, METRIC_FIELDS, row, digits=8)
            if self.step % t["checkpoint_every"] == 0 or last:
                self.save_checkpoint()
        bar.close()
        if self.step >= t["max_steps"] and self.rank == 0:
            self.export()
            plot_metrics(
                metrics_path, self.out, LOSS_NAMES, VAL_FIELDS, "codes: kNN recognition and leakage (val windows)"
            )
        if self.world > 1:
            dist.barrier()
        return self.out

    # ---- outputs
    def save_stats(self) -> None:
        with replacing(self.out / "normalisation.safetensors") as temp:
            save_file(
                {"mean": torch.from_numpy(self.data.mean), "std": torch.from_numpy(self.data.std)},
                temp,
                metadata={"computed_on": "every frame of the training clips (split 'train', dataset-2)"},
            )

    def export(self) -> None:
        from training.runs import file_sha256, git_commit

        training = {
            "command": self.command,
            "git_commit": git_commit(),
            "config": self.config,
            "supervised_style": bool(self.config["loss"]["supervised_style"]),
            "supervised_content": self.config["loss"]["supervised_content"] > 0,
            "adversary": self.config["loss"]["adversary"] > 0,
            "steps": self.step,
            "train_seconds": round(self.seconds, 1),
            "split_file": SPLIT_FILE.relative_to(REPO_ROOT).as_posix(),
            "split_sha256": file_sha256(SPLIT_FILE),
            "train_clips": len(self.data.train_ids),
            "normalisation": "computed on every frame of the training clips",
            "torch": torch.__version__,
        }
        stats = {"mean": self.data.mean, "std": self.data.std}
        for view in self.views:
            encoders = self.model.views[view]
            config = {**self.encoder_configs[view].to_dict(), "training": training}
            stems = [self.out / f"encoders_{view}"] + ([self.out / "encoders"] if view == self.views[0] else [])
            for stem in stems:
                save_encoders(stem, encoders.content, encoders.style, config, stats)


def _gather_nograd(x: torch.Tensor) -> torch.Tensor:
    _, size = world()
    if size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def train(
    config: dict,
    out: Path,
    resume: bool = False,
    stop_after: int | None = None,
    command: str = "",
    cache: FeatureCache | None = None,
) -> Path:
    """Train (or resume) into ``out``; returns ``out``. On resume the run folder's config must be the
    given one."""
    out = Path(out)
    if resume:
        check_resume(config, out)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        return Trainer(config, out, command=command, cache=cache).run(resume=resume, stop_after=stop_after)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.contrastive", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train the content and style encoders")
    add_train_arguments(p, DEFAULT_CONFIG, "contrastive")
    e = sub.add_parser("erase", help="fit the leakage erasers of trained encoders (training/contrastive/erase.py)")
    e.add_argument("--encoders", required=True, help="exported encoders (path stem)")
    e.add_argument("--out", required=True, help="where to write the encoders with their erasers (path stem)")
    e.add_argument("--window", type=int, default=60)
    e.add_argument("--stride", type=int, default=30)
    args = parser.parse_args(argv)
    command = " ".join(["python -m training.contrastive", *(argv if argv is not None else sys.argv[1:])])
    if args.command == "erase":
        from training.contrastive.erase import run

        run(args.encoders, args.out, args.window, args.stride, command)
        return 0
    config = run_config(parser, args, DEFAULT_CONFIG)
    out = args.out or REPO_ROOT / "out" / "contrastive" / config["name"]
    train(config, out, resume=args.resume, stop_after=args.stop_after, command=command)
    if world()[0] == 0:
        print(f"wrote {out}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0
