"""The fixed take-level train/val/test split (DESIGN §7), written to training/splits/bandai_split.json.

Splitting by take, never by window, keeps overlapping windows of one take out of two splits. Each
dataset-2 content×style cell is split on its own (about 80/10/10, at least one take in val and in
test), so every split has every cell. dataset-1 (15 styles, mostly one take each) stays whole as the
unseen-style set. Takes are ordered by a seeded SHA-256 of their id rather than a numpy RNG, so the
file regenerates byte for byte on any numpy version.

Regenerate: ``python -m training.data.split`` (``--check`` only compares with the committed file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

from core.io.atomic import write_text
from training.data.index import Clip, load_index
from training.data.paths import REPO_ROOT

SEED = 20240603
SPLIT_FILE = REPO_ROOT / "training" / "splits" / "bandai_split.json"
# dataset-1's partition into unseen styles, unseen contents and trainable takes (issue 15; written by
# training.evaluation.generalization_sets): a trainer reads only "trainable"
DATASET1_STYLES_FILE = REPO_ROOT / "training" / "splits" / "dataset1_styles.json"
SPLITS = ("train", "val", "test", "unseen_style")
HELD_OUT_SHARE = 0.1  # of each cell, for val and again for test


def _order(clip_id: str) -> str:
    return hashlib.sha256(f"{SEED}:{clip_id}".encode()).hexdigest()


def training_takes(clips, split: dict, max_train: int = 0, max_val: int = 0) -> tuple[list[str], list[str]]:
    """(train ids, val ids): the dataset-2 takes a trainer reads, ``max_*`` of each spread over the
    sorted ids (0 = all). One rule for every trainer, so none can reach a test take
    (tests/test_sealed_split.py)."""
    from training.runs import spread_subset

    dataset2 = {c.id for c in clips if c.dataset == "dataset-2"}
    train = spread_subset([c for c in split["train"] if c in dataset2], max_train)
    return train, spread_subset([c for c in split["val"] if c in dataset2], max_val)


def dataset1_trainable_takes(max_takes: int = 0) -> list[str]:
    """The dataset-1 takes a trainer may read (neither an unseen style nor an unseen content),
    ``max_takes`` of them spread over the sorted ids (0 = all)."""
    from training.runs import spread_subset

    partition = json.loads(DATASET1_STYLES_FILE.read_text())["clips"]
    return spread_subset(partition["trainable"], max_takes)


def make_split(clips: list[Clip]) -> dict:
    """The split as a JSON-ready dict: seed, rule and the sorted clip ids of each split."""
    cells: dict[tuple[str, str], list[str]] = defaultdict(list)
    splits: dict[str, list[str]] = {name: [] for name in SPLITS}
    for clip in clips:
        if clip.dataset == "dataset-1":
            splits["unseen_style"].append(clip.id)
        else:
            cells[clip.content, clip.style].append(clip.id)
    for ids in cells.values():
        if len(ids) < 3:
            raise ValueError(f"a cell needs 3 takes to appear in every split; got {ids}")
        ids = sorted(ids, key=_order)
        held = max(1, round(HELD_OUT_SHARE * len(ids)))
        splits["val"] += ids[:held]
        splits["test"] += ids[held : 2 * held]
        splits["train"] += ids[2 * held :]
    return {
        "seed": SEED,
        "rule": "dataset-2: per content x style cell, takes ordered by sha256(seed:id); "
        f"first max(1, round({HELD_OUT_SHARE} n)) to val, the next as many to test, the rest to train. "
        "dataset-1: all takes to unseen_style.",
        "counts": {name: len(ids) for name, ids in splits.items()},
        "splits": {name: sorted(ids) for name, ids in splits.items()},
    }


def to_json(split: dict) -> str:
    return json.dumps(split, indent=1) + "\n"


def load_split(path: Path = SPLIT_FILE) -> dict[str, list[str]]:
    """Split name -> clip ids, from the committed file."""
    return json.loads(Path(path).read_text())["splits"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    parser.add_argument("--output", type=Path, default=SPLIT_FILE)
    args = parser.parse_args(argv)
    text = to_json(make_split(load_index()))
    if args.check:
        same = args.output.is_file() and args.output.read_text() == text
        print(f"{args.output}: {'up to date' if same else 'differs from the regenerated split'}")
        return 0 if same else 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.output, text)
    print(f"wrote {args.output}: {json.loads(text)['counts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
