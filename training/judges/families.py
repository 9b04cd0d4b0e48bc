"""What the judge families beside the CNN (knn.py, sequence.py) share.

Each family judges the same two dataset-2 targets as the CNN judges of those names ("style": 7
classes, "content": 10), on the same clips (the CNN's ``select_clips``: train split to fit, val to
choose, test reported) and with the same left/right mirrored training copies (content labels
swapped). A judge of another family that agrees with the CNN judge on a stylized output makes the
recognition figures harder to game than one network alone.

Weights are saved and read as the CNN judges' are (``api.save_judge``, ``api.read_judge``):
tensors in a safetensors file, a JSON config beside it whose format names the family.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.data.cache import FeatureCache
from training.judges import train
from training.judges.config import default_config

TARGETS = ("style", "content")  # the dataset-2 label a family judge predicts; also its CNN twin's kind
CLIPS = {"train": "split 'train' (+ mirrored copies)", "val": "split 'val'", "test": "split 'test'"}


def target_of(kind: str) -> str:
    """The target of a family kind named ``<family>_<target>`` (``knn_style`` -> ``style``)."""
    target = kind.split("_", 1)[-1]
    if target not in TARGETS:
        raise ValueError(f"judge kind {kind!r} names no target of {TARGETS}")
    return target


def target_labels(target: str) -> tuple[str, ...]:
    return train.judge_labels(default_config(target))


def target_clips(target: str, cache: FeatureCache, split: dict) -> dict[str, list[int]]:
    """Cache indices of the train / val / test clips: those of the CNN judge of the same target."""
    return train.select_clips(default_config(target), cache, split)


def labelled_clips(
    cache: FeatureCache, indices: Sequence[int], target: str, mirrored: bool = False
) -> tuple[list[np.ndarray], np.ndarray]:
    """(feature arrays (F, 134), label indices) of some clips, or of their mirrored copies."""
    return train.labelled_clips(cache, indices, target, target_labels(target), mirrored)


class ClipJudge:
    """The call interface of ``api.Judge`` (less ``embed``): ``labels`` in probability order,
    ``predict_proba`` over a list of canonical feature arrays (F >= 1, 134) and ``predict``."""

    def __init__(self, config: dict):
        self.config = config
        self.kind: str = config["kind"]
        self.labels: tuple[str, ...] = tuple(config["labels"])

    def predict_proba(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def predict_index(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_proba(clips).argmax(axis=1)

    def predict(self, clips: Sequence[np.ndarray]) -> list[str]:
        return [self.labels[i] for i in self.predict_index(clips)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind!r}, {len(self.labels)} classes)"


def evaluate_held_out(judge: ClipJudge, cache: FeatureCache, indices: Sequence[int], target: str) -> dict:
    """Test-split figures of a fitted judge through its own ``predict_proba``: plain, and on the same
    takes mirrored (a robustness figure, as the CNN judges report it)."""
    test_x, test_y = labelled_clips(cache, indices, target)
    metrics = train.held_out_metrics(judge.predict_index(test_x), test_y, judge.labels)
    mirror_x, mirror_y = labelled_clips(cache, indices, target, mirrored=True)
    metrics["test_accuracy_mirrored"] = float(np.mean(judge.predict_index(mirror_x) == mirror_y))
    return metrics
