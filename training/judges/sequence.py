"""A judge family over joint positions: a small GRU over 2 s windows of the body's pose in space.

    judge = load_sequence_judge("seq_content")   # weights/judges/seq_content.safetensors + .json
    judge.predict([f1, f2])                      # ['walk', 'run']

Where the CNN judges read joint rotations, this one reads where the joints are: a clip's features
are decoded to a motion (core.ops.features.features_to_motion), and each frame gives the 20 body
joints' world positions relative to the pelvis, turned into the pelvis's heading frame of that
frame, in leg lengths, with their per-frame change, plus the pelvis height, planar velocity (leg
lengths per frame) and heading velocity (124 channels). Nothing of it depends on where the clip
stands or faces, nor on the placement joint.

The network is the mean of every ``frame_pool`` frames of a window, a linear projection, one GRU
layer, a mean over its steps and a linear classifier; per-channel normalisation (training clips
only) is a buffer of the module. Windows (clips shorter than one are edge-padded, as for the CNN),
clip logits (mean of window logits), class balancing, random crops, speed changes, the mirrored
training copies, epoch selection on val and the seeded, deterministic loop are the CNN judges'
own (model.py, train.py ``fit``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.ops.features import (
    BODY_JOINTS,
    FEATURE_DIM,
    FEATURE_VERSION,
    HEADING_VELOCITY,
    HEIGHT,
    PLANAR_VELOCITY,
    features_to_motion,
)
from core.retarget.presets import canonical_rig
from core.retarget.retarget import leg_length
from training.data.cache import FeatureCache
from training.judges.api import checked_clips, clip_outputs, read_judge, save_judge
from training.judges.families import (
    CLIPS,
    ClipJudge,
    evaluate_held_out,
    labelled_clips,
    target_clips,
    target_labels,
    target_of,
)
from training.judges.train import _evaluate, deterministic_training, fit, normalisation, provenance, write_history

FORMAT = "mst-judge-seq/1"
KINDS = ("seq_style", "seq_content")
ROOT_CHANNELS = 4  # pelvis height, planar velocity (2), heading velocity
RELATIVE_JOINTS = len(BODY_JOINTS) - 1  # the pelvis (BODY_JOINTS[0]) is the origin of the others
SEQUENCE_CHANNELS = ROOT_CHANNELS + 2 * 3 * RELATIVE_JOINTS  # positions and their per-frame change
# Per-frame quantities, scaled by the speed factor when a training window is resampled.
VELOCITY_CHANNELS = np.concatenate([[1, 2, 3], np.arange(ROOT_CHANNELS + 3 * RELATIVE_JOINTS, SEQUENCE_CHANNELS)])


@dataclass(frozen=True)
class SequenceConfig:
    """Training fields carry JudgeConfig's names and meanings: train.fit reads them."""

    kind: str
    window: int = 60  # frames (2 s at 30 fps), as the CNN judges
    eval_stride: int = 15
    train_stride: int = 30  # one training window per stride of each clip and epoch
    min_windows_per_epoch: int = 0
    # The GRU steps through means of 4 frames (7.5 steps a second, 15 a window): a recurrent step is
    # sequential, so this sets the cost; a gait cycle (about 1 s) still spans 7 steps.
    frame_pool: int = 4
    hidden: int = 96
    dropout: float = 0.2
    seed: int = 0
    # An epoch takes seconds on 2 cores (about a minute while another job shares them); val accuracy
    # reaches 1.0 after 2 (style) and 4 (content) epochs, and the cosine schedule ends with the last.
    epochs: int = 8
    patience: int = 4  # epochs without val improvement before stopping
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.05
    noise_std: float = 0.05  # Gaussian noise, in normalised units
    speed_range: tuple[float, float] = (0.92, 1.08)  # kept small for style: pace is itself a style cue
    balance: bool = True  # draw windows so every class is equally likely
    std_floor: float = 1e-2


DEFAULT_CONFIGS = {
    "seq_style": SequenceConfig(kind="seq_style"),
    "seq_content": SequenceConfig(kind="seq_content", speed_range=(0.8, 1.25)),
}


def default_sequence_config(kind: str, **overrides) -> SequenceConfig:
    if kind not in DEFAULT_CONFIGS:
        raise ValueError(f"unknown sequence judge kind {kind!r}; expected one of {KINDS}")
    return replace(DEFAULT_CONFIGS[kind], **overrides)


@functools.cache
def canonical_leg_length() -> float:
    """Hip-to-ankle length of the canonical skeleton the features decode onto (cm)."""
    return leg_length(canonical_rig())


def joint_position_sequence(features: np.ndarray) -> np.ndarray:
    """(F, SEQUENCE_CHANNELS) float32 per-frame inputs of a canonical feature array (F, 134).

    Decoded with the planar and heading velocities zeroed, the pelvis stays over the origin facing
    +Z in every frame, so the joints' positions minus the pelvis's are already in its heading frame."""
    features = np.asarray(features, dtype=np.float64)
    in_place = features.copy()
    in_place[:, PLANAR_VELOCITY.start : HEADING_VELOCITY.stop] = 0.0
    # decoding integrates velocities between frames and needs two; a single still frame is its own pair
    motion = features_to_motion(in_place if len(in_place) > 1 else np.repeat(in_place, 2, axis=0)).slice(
        0, len(in_place)
    )
    world = motion.world_of([motion.skeleton.index(j) for j in BODY_JOINTS])[1]
    scale = canonical_leg_length()
    relative = (world[:, 1:] - world[:, :1]).reshape(len(features), -1) / scale
    change = np.diff(relative, axis=0, prepend=relative[:1])
    root = [features[:, HEIGHT] / scale, features[:, PLANAR_VELOCITY] / scale, features[:, HEADING_VELOCITY]]
    return np.concatenate([*root, relative, change], axis=1).astype(np.float32)


class SequenceNet(nn.Module):
    """(B, T, SEQUENCE_CHANNELS) -> (logits (B, classes), embedding (B, hidden)), the interface
    api.clip_outputs runs."""

    def __init__(self, num_classes: int, hidden: int, frame_pool: int, dropout: float):
        super().__init__()
        self.register_buffer("mean", torch.zeros(SEQUENCE_CHANNELS))
        self.register_buffer("std", torch.ones(SEQUENCE_CHANNELS))
        self.frame_pool = frame_pool
        self.project = nn.Linear(SEQUENCE_CHANNELS, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def set_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = nn.functional.avg_pool1d(((x - self.mean) / self.std).transpose(1, 2), self.frame_pool).transpose(1, 2)
        steps, _ = self.gru(torch.relu(self.project(x)))
        embedding = steps.mean(dim=1)
        return self.head(self.dropout(embedding)), embedding


class SequenceJudge(ClipJudge):
    """A trained sequence judge in eval mode: softmax of the mean window logits."""

    def __init__(self, net: SequenceNet, config: dict):
        super().__init__(config)
        self.net = net.eval()
        self.window: int = config["windowing"]["length"]
        self.stride: int = config["windowing"]["eval_stride"]

    def predict_proba(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        sequences = [joint_position_sequence(c) for c in checked_clips(clips, FEATURE_DIM)]
        logits, _ = clip_outputs(self.net, sequences, np.arange(SEQUENCE_CHANNELS), self.window, self.stride)
        return torch.softmax(torch.from_numpy(logits), dim=1).numpy()


def build_net(config: dict) -> SequenceNet:
    arch = config["architecture"]
    return SequenceNet(len(config["labels"]), arch["hidden"], arch["frame_pool"], arch["dropout"])


def load_sequence_judge(kind: str, weights_dir: Path | str | None = None) -> SequenceJudge:
    """The sequence judge ``kind`` (``seq_style``, ``seq_content``) from ``weights_dir`` (default weights/judges)."""
    state, config = read_judge(kind, weights_dir, FORMAT)
    net = build_net(config)
    net.load_state_dict(state)
    return SequenceJudge(net, config)


def labelled_sequences(cache: FeatureCache, indices, target: str, mirrored: bool = False):
    features, labels = labelled_clips(cache, indices, target, mirrored)
    return [joint_position_sequence(f) for f in features], labels


def train_sequence(
    config: SequenceConfig,
    cache: FeatureCache,
    split: dict,
    weights_dir: Path,
    command: str = "",
    metrics_csv: Path | None = None,
    max_steps: int | None = None,
    log=print,
) -> dict:
    """Train, select the epoch on val, test, save ``<weights_dir>/<kind>.safetensors`` + ``.json``
    (and the per-epoch history to ``metrics_csv``); returns the saved JSON config with the history.
    ``max_steps`` cuts training short."""
    started = time.perf_counter()
    with deterministic_training():
        torch.manual_seed(config.seed)
        target = target_of(config.kind)
        labels = target_labels(target)
        clips = target_clips(target, cache, split)
        train_x, train_y = labelled_sequences(cache, clips["train"], target)
        mean, std = normalisation(train_x, config.std_floor)
        mirror_x, mirror_y = labelled_sequences(cache, clips["train"], target, mirrored=True)
        val_x, val_y = labelled_sequences(cache, clips["val"], target)
        log(f"[{config.kind}] {len(train_x)} training clips + mirrored ({time.perf_counter() - started:.0f} s)")

        net = SequenceNet(len(labels), config.hidden, config.frame_pool, config.dropout)
        net.set_normalisation(mean, std)
        training = (train_x + mirror_x, np.concatenate([train_y, mirror_y]))
        history, best_epoch = fit(
            net, training, (val_x, val_y), config, len(labels), 2, VELOCITY_CHANNELS, max_steps, log, started
        )
        saved = describe(config, labels, net, command)
        val_loss, val_accuracy, _ = _evaluate(net, val_x, val_y, config, np.arange(SEQUENCE_CHANNELS))
        metrics = {"selected_epoch": best_epoch, "epochs_run": history[-1]["epoch"]}
        metrics["train_seconds"] = round(time.perf_counter() - started, 1)
        metrics.update(val_loss=val_loss, val_accuracy=val_accuracy, val_clips=len(val_y), train_clips=len(train_y))
        metrics.update(evaluate_held_out(SequenceJudge(net, saved), cache, clips["test"], target))
        saved["metrics"] = metrics
        save_judge(net.state_dict(), saved, Path(weights_dir) / config.kind)
    if metrics_csv is not None:
        write_history(history, metrics_csv)
    return {**saved, "history": history}


def describe(config: SequenceConfig, labels: Sequence[str], net: SequenceNet, command: str) -> dict:
    """The JSON config saved beside the weights (metrics are added after testing)."""
    return {
        "format": FORMAT,
        "kind": config.kind,
        "family": "sequence",
        "dataset": "dataset-2",
        "target": target_of(config.kind),
        "labels": list(labels),
        "feature_version": FEATURE_VERSION,
        "inputs": (
            "features decoded to a motion; per frame: pelvis height, planar velocity (leg lengths, per frame), "
            "heading velocity (rad per frame), the 20 body joints' positions relative to the pelvis in its heading "
            "frame (leg lengths) and their per-frame change"
        ),
        "leg_length_cm": canonical_leg_length(),
        "architecture": {
            "name": "SequenceNet (training/judges/sequence.py): mean of every frame_pool frames, linear, ReLU, "
            "GRU, mean over steps, dropout, linear",
            "in_channels": SEQUENCE_CHANNELS,
            "hidden": config.hidden,
            "frame_pool": config.frame_pool,
            "dropout": config.dropout,
            "parameters": int(sum(p.numel() for p in net.parameters())),
        },
        "normalisation": "buffers 'mean' and 'std' (per input channel): every frame of the training clips (unmirrored)",
        "windowing": {
            "length": config.window,
            "eval_stride": config.eval_stride,
            "fps": 30,
            "padding": "edge replication (last frame repeated) for clips shorter than a window",
            "clip_prediction": "mean of window logits",
        },
        "training": {
            **provenance(command, CLIPS),
            "config": asdict(config),
            "seed": config.seed,
            "torch": torch.__version__,
        },
    }
