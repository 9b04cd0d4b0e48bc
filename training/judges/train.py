"""Training one judge: data selection, normalisation, the training loop, test evaluation, saving.
The windowed training loop (``fit``), the test figures and the provenance are shared with the
sequence judges (sequence.py), whose inputs are joint positions instead of feature channels.

Reproducible: torch and numpy are seeded from the config's seed (numpy per epoch with
``default_rng([seed, epoch])``), torch runs deterministic algorithms on 2 threads, and the
windows of an epoch are drawn in a fixed order. Training windows go through the same
``sample_windows`` as inference (random start and speed, edge padding for short clips); the
validation and test figures go through ``api.clip_outputs``, the exact path ``load_judge`` uses.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.io.atomic import write_text
from core.ops.features import FEATURE_VERSION, features_to_motion, motion_to_features
from core.ops.mirror import mirror
from training.data.cache import FeatureCache
from training.data.index import label_names
from training.data.labels import mirror_content_label
from training.data.paths import REPO_ROOT
from training.data.split import SPLIT_FILE
from training.evaluation.measures import confusion_matrix
from training.judges.api import FORMAT, clip_outputs, save_judge
from training.judges.config import JudgeConfig
from training.judges.model import VELOCITY_GROUPS, JudgeNet, channel_indices, sample_windows
from training.runs import WEIGHTS_LICENSE, file_sha256, git_commit

HISTORY_FIELDS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


def judge_labels(config: JudgeConfig) -> tuple[str, ...]:
    """Class names in the dataset's own label order, minus labels whose contents are excluded."""
    contents, styles = label_names(config.dataset)
    if config.target == "style":
        return styles
    return tuple(c for c in contents if c not in config.exclude_contents)


def select_clips(config: JudgeConfig, cache: FeatureCache, split: dict[str, list[str]]) -> dict[str, list[int]]:
    """Cache indices of the train / val / test clips of a judge."""
    position = {clip.id: i for i, clip in enumerate(cache.clips)}
    if config.dataset == "dataset-2":
        out = {}
        for name in ("train", "val", "test"):
            ids = [c for c in split[name] if cache.clips[position[c]].dataset == "dataset-2"]
            out[name] = sorted(position[c] for c in ids)
        return out
    pool = [position[c] for c in split["unseen_style"] if cache.clips[position[c]].dataset == config.dataset]
    pool = [i for i in pool if cache.clips[i].content not in config.exclude_contents]
    test = sorted(i for i in pool if cache.clips[i].content in config.test_contents)
    train = sorted(i for i in pool if cache.clips[i].content not in config.test_contents)
    return {"train": train, "val": [], "test": test}


def mirrored_features(features: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Canonical features (F, 134) of the left/right mirrored clip (core.ops.mirror)."""
    motion = features_to_motion(np.asarray(features, dtype=np.float64), start)
    return motion_to_features(mirror(motion))[0].astype(np.float32)


def normalisation(features: Sequence[np.ndarray], floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over every frame of the given (training) clips."""
    frames = np.concatenate(features).astype(np.float64)
    return frames.mean(axis=0).astype(np.float32), np.maximum(frames.std(axis=0), floor).astype(np.float32)


class _EpochWindows:
    """Draws one epoch of training windows (clip, start, speed) from a seeded generator."""

    def __init__(
        self, features: list[np.ndarray], labels: np.ndarray, config: JudgeConfig, num_classes: int, copies: int = 1
    ):
        self.features, self.labels, self.config = features, labels, config
        lengths = np.array([len(f) for f in features])
        self.lengths = lengths
        per_clip = np.maximum(1, (lengths - config.window) // config.train_stride + 1).astype(np.float64)
        # with mirrored copies in ``features`` an epoch keeps the size of one copy
        self.size = int(max(per_clip.sum() / copies, config.min_windows_per_epoch))
        if config.balance:
            class_total = np.bincount(labels, weights=per_clip, minlength=num_classes)
            weights = per_clip / class_total[labels]
        else:
            weights = per_clip
        self.p = weights / weights.sum()

    def draw(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.config.seed, epoch])
        clips = rng.choice(len(self.features), size=self.size, p=self.p)
        lo, hi = self.config.speed_range
        speeds = np.exp(rng.uniform(math.log(lo), math.log(hi), size=self.size))
        span = np.maximum(self.lengths[clips] - 1 - speeds * (self.config.window - 1), 0.0)
        starts = rng.uniform(0.0, 1.0, size=self.size) * span
        return clips, starts, speeds


def _evaluate(
    net: JudgeNet, features, labels, config: JudgeConfig, columns_in_window
) -> tuple[float, float, np.ndarray]:
    """(clip-level loss, accuracy, predicted indices) through the inference path."""
    net.eval()
    logits, _ = clip_outputs(net, features, columns_in_window, config.window, config.eval_stride)
    loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item())
    predicted = logits.argmax(axis=1)
    return loss, float((predicted == labels).mean()), predicted


@contextlib.contextmanager
def deterministic_training():
    """Torch on 2 threads with deterministic algorithms (a rerun writes identical tensors); the
    caller's settings are restored afterwards."""
    threads, was_deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)


def labelled_clips(
    cache: FeatureCache, indices: Sequence[int], target: str, labels: Sequence[str], mirrored: bool = False
) -> tuple[list[np.ndarray], np.ndarray]:
    """(feature arrays (F, 134), indices into ``labels`` of their ``target`` label) of some clips, or
    of their left/right mirrored copies (a mirrored left-hand wave is a right-hand wave; styles stay)."""
    features, classes = [], []
    for i in indices:
        clip_features, label = cache.clip_features(i), getattr(cache.clips[i], target)
        if mirrored:
            clip_features = mirrored_features(clip_features, cache.starts[i])
            label = mirror_content_label(label) if target == "content" else label
        features.append(clip_features)
        classes.append(labels.index(label))
    return features, np.array(classes, dtype=np.int64)


def warmup_cosine(step: int, total: int, peak: float) -> float:
    """Learning rate: linear warm-up over 5% of the steps (at most 100), then a cosine to 0."""
    warmup = max(1, min(100, total // 20))
    if step < warmup:
        return peak * (step + 1) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def held_out_metrics(predicted: np.ndarray, truth: np.ndarray, labels: Sequence[str]) -> dict:
    """Test accuracy, per-class accuracy, support and confusion matrix (rows true) of label indices."""
    matrix, _ = confusion_matrix(predicted, truth, labels=range(len(labels)))
    support = matrix.sum(axis=1)
    return {
        "test_accuracy": float(np.mean(predicted == truth)),
        "test_clips": len(truth),
        "per_class_test_accuracy": {
            name: (float(matrix[k, k] / support[k]) if support[k] else None) for k, name in enumerate(labels)
        },
        "test_support": {name: int(support[k]) for k, name in enumerate(labels)},
        "test_confusion": matrix.tolist(),
    }


def provenance(command: str, clips: dict[str, str]) -> dict:
    """Which command, split (``clips``: what each of train / val / test was) and code made a judge,
    and the licence its weights inherit from the data."""
    return {
        "command": command,
        "license": WEIGHTS_LICENSE,
        "split_file": SPLIT_FILE.relative_to(REPO_ROOT).as_posix(),
        "split_sha256": file_sha256(SPLIT_FILE),
        "clips": clips,
        "git_commit": git_commit(),
    }


def fit(
    net: nn.Module,
    train: tuple[list[np.ndarray], np.ndarray],
    val: tuple[list[np.ndarray], np.ndarray],
    config,
    num_classes: int,
    copies: int = 1,
    velocity_columns: np.ndarray | None = None,
    max_steps: int | None = None,
    log=print,
    started: float | None = None,
) -> tuple[list[dict], int]:
    """Train ``net`` on random windows of the training arrays (the judge's inputs, (F, D) each) and
    keep the epoch with the best clip-level val accuracy (ties to the lower val loss); without val
    clips the last epoch. ``config`` is a JudgeConfig or any config with its training fields;
    ``copies``: how many copies of each clip (mirrored ones) the training arrays hold. Returns (the
    per-epoch history, epoch 0 the untrained net; the kept epoch)."""
    started = time.perf_counter() if started is None else started
    (train_x, train_y), (val_x, val_y) = train, val
    in_window = np.arange(train_x[0].shape[1])
    velocity_columns = np.array([], dtype=np.int64) if velocity_columns is None else velocity_columns
    sampler = _EpochWindows(train_x, train_y, config, num_classes, copies)
    steps_per_epoch = math.ceil(sampler.size / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    total_steps = total_steps if max_steps is None else min(max_steps, total_steps)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    history: list[dict] = []
    has_val = len(val_x) > 0

    def record(epoch, train_loss, train_acc, seconds, lr):
        val_loss, val_acc = (float("nan"), float("nan"))
        if has_val:
            val_loss, val_acc, _ = _evaluate(net, val_x, val_y, config, in_window)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "lr": lr,
            "seconds": seconds,
        }
        history.append(row)
        log(
            f"[{config.kind}] epoch {epoch:3d}  train loss {train_loss:.4f} acc {train_acc:.3f}  "
            f"val loss {val_loss:.4f} acc {val_acc:.3f}  ({seconds:.0f} s)"
        )
        return row

    record(0, float("nan"), float("nan"), time.perf_counter() - started, 0.0)
    best = (-1.0, float("inf"))
    best_state, best_epoch, stale, step = copy.deepcopy(net.state_dict()), 0, 0, 0
    for epoch in range(1, config.epochs + 1):
        net.train()
        clip_ids, starts, speeds = sampler.draw(epoch)
        losses, correct, seen = [], 0, 0
        for begin in range(0, sampler.size, config.batch_size):
            if step >= total_steps:
                break
            sl = slice(begin, begin + config.batch_size)
            batch = np.stack(
                [
                    sample_windows(train_x[c], [s], config.window, [v], velocity_columns)[0]
                    for c, s, v in zip(clip_ids[sl], starts[sl], speeds[sl])
                ]
            )
            x = torch.from_numpy(batch)
            if config.noise_std > 0:
                x = x + config.noise_std * net.std * torch.randn_like(x)
            y = torch.from_numpy(train_y[clip_ids[sl]])
            for group in optimiser.param_groups:
                group["lr"] = warmup_cosine(step, total_steps, config.lr)
            logits, _ = net(x)
            loss = loss_fn(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            step += 1
        row = record(
            epoch,
            float(np.mean(losses)),
            correct / max(seen, 1),
            time.perf_counter() - started,
            warmup_cosine(step - 1, total_steps, config.lr),
        )
        if has_val:
            score = (row["val_accuracy"], row["val_loss"])
            if score[0] > best[0] or (score[0] == best[0] and score[1] < best[1]):
                best, best_state, best_epoch, stale = score, copy.deepcopy(net.state_dict()), epoch, 0
            else:
                stale += 1
                if stale >= config.patience:
                    log(f"[{config.kind}] no val improvement for {stale} epochs: stopping")
                    break
        else:
            best_state, best_epoch = copy.deepcopy(net.state_dict()), epoch
        if step >= total_steps:
            break
    net.load_state_dict(best_state)
    return history, best_epoch


def train_judge(
    config: JudgeConfig,
    cache: FeatureCache,
    split: dict[str, list[str]],
    weights_dir: Path,
    metrics_csv: Path | None = None,
    clips: dict[str, list[int]] | None = None,
    max_steps: int | None = None,
    command: str = "",
    log=print,
) -> dict:
    """Train, select on val, test, save ``<weights_dir>/<kind>.safetensors`` + ``.json``.

    ``clips`` overrides the train/val/test cache indices (tests use a handful of clips); with no
    val clips the last epoch is kept. Returns the saved JSON config (with metrics and history).
    """
    started = time.perf_counter()
    with deterministic_training():
        return _train(config, cache, split, weights_dir, metrics_csv, clips, max_steps, command, log, started)


def _train(config, cache, split, weights_dir, metrics_csv, clips, max_steps, command, log, started) -> dict:
    torch.manual_seed(config.seed)

    labels_names = judge_labels(config)
    clips = clips or select_clips(config, cache, split)
    columns = channel_indices(config.channels)
    num_classes = len(labels_names)

    def gather(indices, mirrored=False):
        features, classes = labelled_clips(cache, indices, config.target, labels_names, mirrored)
        return [np.ascontiguousarray(f[:, columns]) for f in features], classes

    train_x, train_y = gather(clips["train"])
    val_x, val_y = gather(clips["val"])
    test_x, test_y = gather(clips["test"])
    mean, std = normalisation(train_x, config.std_floor)
    copies = 1
    if config.mirror:
        mirror_x, mirror_y = gather(clips["train"], mirrored=True)
        train_x, train_y, copies = train_x + mirror_x, np.concatenate([train_y, mirror_y]), 2
        log(f"[{config.kind}] mirrored {len(mirror_x)} training clips ({time.perf_counter() - started:.0f} s)")

    net = JudgeNet(len(columns), num_classes, config.width, config.embed_dim, config.kernel, config.dropout)
    net.set_normalisation(mean, std)
    in_window = np.arange(len(columns))  # the gathered arrays already hold only the judge's channels
    velocity_columns = np.concatenate(
        [np.flatnonzero(np.isin(columns, channel_indices([g]))) for g in VELOCITY_GROUPS if g in config.channels]
    )
    history, best_epoch = fit(
        net, (train_x, train_y), (val_x, val_y), config, num_classes, copies, velocity_columns, max_steps, log, started
    )
    train_seconds = time.perf_counter() - started

    metrics: dict = {
        "selected_epoch": best_epoch,
        "epochs_run": history[-1]["epoch"],
        "train_seconds": round(train_seconds, 1),
    }
    if len(val_x):
        metrics["val_loss"], metrics["val_accuracy"], _ = _evaluate(net, val_x, val_y, config, in_window)
    if len(test_x):
        test_loss, _, predicted = _evaluate(net, test_x, test_y, config, in_window)
        metrics["test_loss"] = test_loss
        metrics.update(held_out_metrics(predicted, test_y, labels_names))
        if config.dataset == "dataset-2":
            # robustness: the same test takes mirrored (content labels swapped); not used for selection
            mirror_x, mirror_y = gather(clips["test"], mirrored=True)
            metrics["test_accuracy_mirrored"] = _evaluate(net, mirror_x, mirror_y, config, in_window)[1]
    metrics["train_clips"], metrics["val_clips"] = len(clips["train"]), len(val_x)

    saved = {
        "format": FORMAT,
        "kind": config.kind,
        "dataset": config.dataset,
        "target": config.target,
        "labels": list(labels_names),
        "channels": list(config.channels),
        "feature_version": FEATURE_VERSION,
        "architecture": {
            "name": "JudgeNet (training/judges/model.py): 4 x [Conv1d, BatchNorm1d, ReLU], strides 1-2-2-1, "
            "global mean pool, dropout, linear",
            "in_channels": len(columns),
            "width": config.width,
            "embed_dim": config.embed_dim,
            "kernel": config.kernel,
            "dropout": config.dropout,
            "parameters": int(sum(p.numel() for p in net.parameters())),
        },
        "normalisation": "buffers 'mean' and 'std' (per input channel) in the safetensors file, "
        "computed on every frame of the training clips",
        "windowing": {
            "length": config.window,
            "eval_stride": config.eval_stride,
            "fps": 30,
            "padding": "edge replication (last frame repeated) for clips shorter than a window",
            "clip_prediction": "mean of window logits; embedding = mean of window pooled penultimate activations",
        },
        "training": {
            **provenance(
                command,
                {
                    "train": "split 'train'"
                    if config.dataset == "dataset-2"
                    else "split 'unseen_style', contents not in test_contents",
                    "val": "split 'val'" if config.dataset == "dataset-2" else "none (fixed epochs, last kept)",
                    "test": "split 'test'"
                    if config.dataset == "dataset-2"
                    else f"split 'unseen_style', contents {list(config.test_contents)}",
                },
            ),
            "config": config.to_dict(),
            "seed": config.seed,
            "torch": torch.__version__,
        },
        "metrics": metrics,
    }
    save_judge(net.state_dict(), saved, Path(weights_dir) / config.kind)
    if metrics_csv is not None:
        write_history(history, metrics_csv)
    saved["history"] = history
    return saved


def write_history(history: list[dict], path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=HISTORY_FIELDS)
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(path, text.getvalue())
