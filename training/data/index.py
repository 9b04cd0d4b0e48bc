"""An index of every Bandai Namco clip with its dataset, content and style labels and take number.

Labels come from the ``.json`` beside each clip (indices into the dataset's ``cfg`` label lists) and
are checked against the file name, so a mislabelled or renamed file fails loudly instead of
silently training the judges on wrong labels.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from training.data.paths import bandai_root, data_root

DATASETS = ("dataset-1", "dataset-2")
_NAME = re.compile(r"^(dataset-\d)_([a-z-]+)_([a-z-]+)_(\d+)\.bvh(\.gz)?$")


@dataclass(frozen=True)
class Clip:
    """One take. ``id`` is the file name without extension; ``path`` is relative to the data root."""

    id: str
    dataset: str
    content: str
    style: str
    take: int
    path: str


@lru_cache(maxsize=8)
def label_names(dataset: str, root: Path | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(content names, style names) of a dataset, in the order its ``.json`` indices refer to."""
    cfg = bandai_root(root) / dataset / "cfg"

    def read(name: str) -> tuple[str, ...]:
        lines = (cfg / name).read_text().split()
        return tuple(line.removeprefix(f"{dataset}_") for line in lines)

    return read("content_label.txt"), read("style_label.txt")


def _clip(path: Path, root: Path) -> Clip:
    match = _NAME.match(path.name)
    if match is None:
        raise ValueError(f"{path}: file name is not dataset-N_content_style_take.bvh[.gz]")
    dataset, content, style, take = match.group(1, 2, 3, 4)
    contents, styles = label_names(dataset, root)
    labels = json.loads(path.with_name(path.name.split(".")[0] + ".json").read_text())
    if (contents[labels["content"]], styles[labels["style"]]) != (content, style):
        raise ValueError(
            f"{path}: json labels {contents[labels['content']]}/{styles[labels['style']]} "
            f"disagree with the file name {content}/{style}"
        )
    return Clip(path.name.split(".")[0], dataset, content, style, int(take), path.relative_to(root).as_posix())


def load_index(root: Path | None = None) -> list[Clip]:
    """Every clip of both datasets, sorted by id."""
    root = Path(root or data_root())
    paths = []
    for dataset in DATASETS:
        folder = bandai_root(root) / dataset / "data"
        paths += [p for p in folder.iterdir() if p.name.endswith((".bvh", ".bvh.gz"))]
    if not paths:
        raise FileNotFoundError(f"no Bandai Namco clips under {bandai_root(root)}; set MST_DATA")
    return sorted((_clip(p, root) for p in paths), key=lambda c: c.id)
