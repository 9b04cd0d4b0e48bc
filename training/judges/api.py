"""Loading and using a trained judge: ``load_judge(kind)``.

    judge = load_judge("style")              # weights/judges/style.safetensors + style.json
    judge.labels                             # ('active', 'elderly', ...)
    judge.predict_proba([f1, f2])            # (2, 7): softmax of the mean window logits
    judge.predict([f1, f2])                  # ['elderly', 'normal']
    judge.embed([f1, f2])                    # (2, 64): mean pooled penultimate activations (FMD)

Inputs are canonical feature arrays (F, 134) at 30 fps (core.ops.features.motion_to_features),
any length: clips shorter than the 60-frame window are padded by edge replication. All windows
of all clips go through the network together, in chunks, so a few hundred clips take about a second.
Weights are safetensors (never pickle); the JSON beside them holds the architecture, channels,
windowing, label names and provenance.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from core.io.atomic import replacing, write_text
from training.data.paths import REPO_ROOT
from training.judges.model import JudgeNet, channel_indices, sample_windows, window_starts

WEIGHTS_DIR = REPO_ROOT / "weights" / "judges"
FORMAT = "mst-judge/1"


class Judge:
    """A trained judge in eval mode. ``labels`` are the class names in logit order."""

    def __init__(self, net: JudgeNet, config: dict):
        self.net = net.eval()
        self.config = config
        self.kind: str = config["kind"]
        self.labels: tuple[str, ...] = tuple(config["labels"])
        self.window: int = config["windowing"]["length"]
        self.stride: int = config["windowing"]["eval_stride"]
        self.columns = channel_indices(config["channels"])
        self.embed_dim: int = config["architecture"]["embed_dim"]

    # -- the shared clip -> windows -> clip path -------------------------------------------------
    def clip_outputs(self, clips: Sequence[np.ndarray], chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """(mean window logits (N, C), mean window embeddings (N, D)) of feature arrays (F, 134)."""
        return clip_outputs(self.net, clips, self.columns, self.window, self.stride, chunk)

    def predict_proba(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        logits, _ = self.clip_outputs(clips)
        return _softmax(logits)

    def predict_index(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        logits, _ = self.clip_outputs(clips)
        return logits.argmax(axis=1)

    def predict(self, clips: Sequence[np.ndarray]) -> list[str]:
        return [self.labels[i] for i in self.predict_index(clips)]

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        _, embeddings = self.clip_outputs(clips)
        return embeddings

    def __repr__(self) -> str:
        return f"Judge({self.kind!r}, {len(self.labels)} classes, window {self.window}, stride {self.stride})"


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def checked_clips(clips: Sequence[np.ndarray], channels: int) -> list[np.ndarray]:
    """The clips as arrays, refused unless each is (frames >= 1, at least ``channels``)."""
    clips = [np.asarray(c) for c in clips]
    for c in clips:
        if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < channels:
            raise ValueError(f"a judge needs (frames >= 1, 134) feature arrays; got shape {c.shape}")
    return clips


def clip_outputs(
    net: nn.Module,
    clips: Sequence[np.ndarray],
    columns: np.ndarray,
    window: int,
    stride: int,
    chunk: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean window logits and embeddings per clip; the network (a JudgeNet or any module with its
    interface: windows (B, T, C) -> (logits, embedding), a ``head`` Linear) is run as it is (call ``eval()``)."""
    clips = checked_clips(clips, columns.max() + 1)
    if not clips:
        return np.zeros((0, net.head.out_features), np.float32), np.zeros((0, net.head.in_features), np.float32)
    windows, owner = [], []
    for i, c in enumerate(clips):
        starts = window_starts(len(c), window, stride)
        windows.append(sample_windows(c[:, columns].astype(np.float32, copy=False), starts, window))
        owner.append(np.full(len(starts), i))
    windows, owner = np.concatenate(windows), np.concatenate(owner)
    logits, embeddings = [], []
    with torch.inference_mode():
        for begin in range(0, len(windows), chunk):
            lo, em = net(torch.from_numpy(np.ascontiguousarray(windows[begin : begin + chunk])))
            logits.append(lo.numpy())
            embeddings.append(em.numpy())
    logits, embeddings = np.concatenate(logits), np.concatenate(embeddings)
    counts = np.bincount(owner, minlength=len(clips)).astype(np.float64)[:, None]
    clip_logits = np.zeros((len(clips), logits.shape[1]))
    clip_embeddings = np.zeros((len(clips), embeddings.shape[1]))
    np.add.at(clip_logits, owner, logits)
    np.add.at(clip_embeddings, owner, embeddings)
    return (clip_logits / counts).astype(np.float32), (clip_embeddings / counts).astype(np.float32)


def build_net(config: dict) -> JudgeNet:
    arch = config["architecture"]
    return JudgeNet(
        in_channels=arch["in_channels"],
        num_classes=len(config["labels"]),
        width=arch["width"],
        embed_dim=arch["embed_dim"],
        kernel=arch["kernel"],
        dropout=arch["dropout"],
    )


def save_judge(state: dict[str, torch.Tensor], config: dict, path: Path) -> tuple[Path, Path]:
    """Write the tensors to ``<path>.safetensors`` and the config to ``<path>.json`` (``path``
    without extension), each atomically; the file's metadata names the config's format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights, meta = path.with_suffix(".safetensors"), path.with_suffix(".json")
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with replacing(weights) as temp:
        save_file(state, temp, metadata={"format": config["format"], "kind": config["kind"]})
    write_text(meta, json.dumps(config, indent=1) + "\n")
    return weights, meta


def read_judge(kind: str, weights_dir: Path | str | None, expected_format: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, JSON config) of a saved judge, refused unless its format is ``expected_format``:
    a file of one judge family is never read as another's."""
    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    meta, weights = folder / f"{kind}.json", folder / f"{kind}.safetensors"
    if not meta.is_file() or not weights.is_file():
        raise FileNotFoundError(
            f"no judge {kind!r} in {folder}; train it with `python -m training.judges --kinds {kind}`"
        )
    config = json.loads(meta.read_text())
    if config.get("format") != expected_format:
        raise ValueError(f"{meta}: format {config.get('format')!r}, expected {expected_format!r}")
    return load_file(weights), config


def load_judge(kind: str, weights_dir: Path | str | None = None) -> Judge:
    """The CNN judge ``kind`` ("style", "content", "style_dataset1") from ``weights_dir``
    (default ``weights/judges``), ready for inference on CPU. ``training.judges.load_judge``
    also loads the other families."""
    state, config = read_judge(kind, weights_dir, FORMAT)
    net = build_net(config)
    net.load_state_dict(state)
    return Judge(net, config)
