"""The two fixed evaluation sets of DESIGN §7: (source, reference) pairs of dataset-2 test-split takes.

- ``cross``: the reference differs from the source in content AND style (the headline SRA/CRA: a
  copy of the reference cannot keep the source's content here).
- ``same``: the reference has the source's content and another style (a tired walk as reference for
  a plain walk: the everyday use, judged mostly on fidelity and FMD).

Each set has 140 pairs: for every target style (7) x source content (10), two pairs with different
source styles (and, in ``cross``, different reference contents), so every style and every content
appears equally often as target and as source content. Choices are balanced greedily (least used
first: source style within the content, reference content within the style, each take within its
cell) with ties broken by a seeded SHA-256 of the candidate, never a numpy RNG, so the files
regenerate byte for byte anywhere.

28 pairs of each set (4 per target style, every content 2-3 times) carry body-group settings; their
``variant`` says which (all others are ``full``):
- ``upper_body``: weights root, left_leg, right_leg = 0 (torso and arms styled);
- ``arms_only``: weights root, torso, left_leg, right_leg = 0;
- ``mixed_references``: torso and arms from the reference, legs and root from a second reference of
  a third style (``group_references``; in ``cross`` its content also differs from the source's, in
  ``same`` it is the source's);
- ``mixed_references_no_torso``: as ``mixed_references`` with torso weight 0.
``group_styles`` gives the style each group is asked for (None for weight 0); ``target_style`` is
always the main reference's style.

Regenerate: ``python -m training.evaluation.pairs`` (``--check`` only compares with the committed files).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.motion.motion import Motion
from core.stylize.request import GROUPS, StyleRequest
from training.data.index import Clip, load_index
from training.data.paths import REPO_ROOT
from training.data.split import load_split
from training.runs import write_or_check

SEED = 20240607
SETS = ("cross", "same")
SETS_DIR = REPO_ROOT / "training" / "evaluation" / "sets"
PAIRS_PER_CELL = 2  # per target style x source content
GROUP_VARIANTS_PER_STYLE = 4
VARIANTS = ("full", "upper_body", "arms_only", "mixed_references", "mixed_references_no_torso")
_LEGS_AND_ROOT = ("root", "left_leg", "right_leg")


@dataclass(frozen=True)
class Pair:
    """One evaluation case. Ids are clip ids (file names without extension)."""

    id: str
    source: str
    reference: str
    source_content: str
    source_style: str
    reference_content: str
    target_style: str
    variant: str = "full"
    weights: dict[str, float] = field(default_factory=dict)
    group_references: dict[str, str] = field(default_factory=dict)
    group_styles: dict[str, str | None] = field(default_factory=dict)

    def style_of(self, group: str) -> str | None:
        """The style asked of ``group`` (None when its weight is 0)."""
        if self.group_styles:
            return self.group_styles[group]
        return None if self.weights.get(group, 1.0) == 0 else self.target_style

    def clip_ids(self) -> list[str]:
        """Every clip the pair needs: source, reference, then per-group references."""
        return list(dict.fromkeys([self.source, self.reference, *self.group_references.values()]))

    def request(self, motion: Callable[[str], Motion], **options) -> StyleRequest:
        """The StyleRequest of this pair; ``motion(clip_id)`` supplies canonical 30 fps motion.

        Options carry the labels the retrieval baseline needs (``content_label``, ``style_label``,
        ``group_style_labels``); a stylizer under evaluation must not use them otherwise.
        """
        group_styles = {g: self.style_of(g) for g in self.group_references}
        options = {
            "content_label": self.source_content,
            "style_label": self.target_style,
            "group_style_labels": group_styles,
            **options,
        }
        return StyleRequest(
            content=motion(self.source),
            reference=motion(self.reference),
            group_references={g: motion(c) for g, c in self.group_references.items()},
            weights=dict(self.weights),
            options=options,
        )


def _rank(*parts: str) -> str:
    return hashlib.sha256(":".join((str(SEED), *parts)).encode()).hexdigest()


class _Chooser:
    """Least-used-first choice with a seeded hash tie-break; usage is counted per scope."""

    def __init__(self):
        self.used: Counter = Counter()

    def pick(self, scope: str, candidates, salt: str, exclude=()) -> str:
        options = [c for c in candidates if c not in exclude]
        if not options:
            raise ValueError(f"no candidate left in {scope} ({salt}); candidates {list(candidates)}")
        best = min(options, key=lambda c: (self.used[scope, c], _rank(scope, salt, c)))
        self.used[scope, best] += 1
        return best


def split_test_cells(clips: list[Clip], split: dict[str, list[str]]) -> dict[tuple[str, str], list[str]]:
    """(content, style) -> sorted test-split dataset-2 clip ids."""
    test = set(split["test"])
    cells: dict[tuple[str, str], list[str]] = defaultdict(list)
    for clip in clips:
        if clip.dataset == "dataset-2" and clip.id in test:
            cells[clip.content, clip.style].append(clip.id)
    return {cell: sorted(ids) for cell, ids in sorted(cells.items())}


def make_set(name: str, clips: list[Clip], split: dict[str, list[str]]) -> dict:
    """The evaluation set ``name`` ("cross" or "same") as a JSON-ready dict."""
    if name not in SETS:
        raise ValueError(f"unknown set {name!r}; sets are {SETS}")
    cells = split_test_cells(clips, split)
    contents = sorted({c for c, _ in cells})
    styles = sorted({s for _, s in cells})
    missing = [(c, s) for c in contents for s in styles if not cells.get((c, s))]
    if missing:
        raise ValueError(f"test split lacks cells {missing}")
    choose = _Chooser()
    pairs: list[Pair] = []
    for style in styles:
        for content in contents:
            source_styles: list[str] = []
            reference_contents: list[str] = []
            for k in range(PAIRS_PER_CELL):
                salt = f"{name}:{style}:{content}:{k}"
                source_style = choose.pick(
                    f"source-style:{name}:{content}", [s for s in styles if s != style], salt, source_styles
                )
                source_styles.append(source_style)
                if name == "cross":
                    others = [c for c in contents if c != content]
                    ref_content = choose.pick(f"ref-content:{name}:{style}", others, salt, reference_contents)
                    reference_contents.append(ref_content)
                else:
                    ref_content = content
                source = choose.pick(f"clip:{name}:source", cells[content, source_style], salt)
                reference = choose.pick(f"clip:{name}:reference", cells[ref_content, style], salt)
                pairs.append(
                    Pair(f"{name}-{len(pairs):03d}", source, reference, content, source_style, ref_content, style)
                )
    pairs = _add_group_variants(name, pairs, cells, contents, styles, choose)
    variants = Counter(p.variant for p in pairs)
    return {
        "set": name,
        "seed": SEED,
        "rule": (
            "dataset-2 test split; for each target style x source content, "
            f"{PAIRS_PER_CELL} pairs with different source styles"
            + (
                " and different reference contents (reference content != source content)"
                if name == "cross"
                else " (reference content == source content)"
            )
            + "; least-used-first choices, ties by sha256(seed:scope:salt:candidate). "
            f"{GROUP_VARIANTS_PER_STYLE} pairs per target style carry body-group variants "
            "(see training/evaluation/pairs.py)."
        ),
        "counts": {"pairs": len(pairs), "variants": {v: variants[v] for v in VARIANTS}},
        "pairs": [_entry(p) for p in pairs],
    }


def _add_group_variants(name, pairs, cells, contents, styles, choose) -> list[Pair]:
    """Turn GROUP_VARIANTS_PER_STYLE pairs of each target style into body-group variants.

    Style i takes contents (4 i + m) mod 10 for m = 0..3 (every content 2 or 3 times over the set),
    alternating the first and second pair of the cell; m picks the variant.
    """
    by_cell = {(p.target_style, p.source_content, i % PAIRS_PER_CELL): i for i, p in enumerate(pairs)}
    pairs = list(pairs)
    for i, style in enumerate(styles):
        for m in range(GROUP_VARIANTS_PER_STYLE):
            content = contents[(GROUP_VARIANTS_PER_STYLE * i + m) % len(contents)]
            index = by_cell[style, content, m % PAIRS_PER_CELL]
            pair = pairs[index]
            variant = VARIANTS[1 + m]
            weights: dict[str, float] = {}
            group_references: dict[str, str] = {}
            group_styles: dict[str, str | None] = {g: style for g in GROUPS}
            if variant == "upper_body":
                weights = {g: 0.0 for g in _LEGS_AND_ROOT}
            elif variant == "arms_only":
                weights = {g: 0.0 for g in ("root", "torso", "left_leg", "right_leg")}
            else:
                salt = f"{name}:{pair.id}:second"
                second_style = choose.pick(
                    f"second-style:{name}", [s for s in styles if s not in (style, pair.source_style)], salt
                )
                if name == "cross":
                    second_content = choose.pick(
                        f"second-content:{name}", [c for c in contents if c != pair.source_content], salt
                    )
                else:
                    second_content = pair.source_content
                second = choose.pick(f"clip:{name}:second", cells[second_content, second_style], salt)
                group_references = {g: second for g in _LEGS_AND_ROOT}
                group_styles.update({g: second_style for g in _LEGS_AND_ROOT})
                if variant == "mixed_references_no_torso":
                    weights = {"torso": 0.0}
            for g, w in weights.items():
                if w == 0:
                    group_styles[g] = None
            pairs[index] = Pair(
                pair.id, pair.source, pair.reference, pair.source_content, pair.source_style,
                pair.reference_content, pair.target_style, variant, weights, group_references, group_styles,
            )  # fmt: skip
    return pairs


def _entry(pair: Pair) -> dict:
    entry = asdict(pair)
    for key in ("weights", "group_references", "group_styles"):
        if not entry[key]:
            del entry[key]
    return entry


def to_json(pair_set: dict) -> str:
    return json.dumps(pair_set, indent=1) + "\n"


def set_path(name: str, folder: Path = SETS_DIR) -> Path:
    return Path(folder) / f"{name}.json"


def load_pairs(name: str, folder: Path = SETS_DIR) -> list[Pair]:
    """The committed pairs of set ``name`` ("cross" or "same")."""
    if name not in SETS:
        raise ValueError(f"unknown set {name!r}; sets are {SETS}")
    data = json.loads(set_path(name, folder).read_text())
    return [Pair(**entry) for entry in data["pairs"]]


def clip_motions(ids, cache=None) -> dict[str, Motion]:
    """Canonical 30 fps motions of the given clip ids, decoded from the feature cache (in place)."""
    from core.ops.features import features_to_motion
    from training.data.cache import load_cache

    cache = cache or load_cache(progress=False)
    row = {clip.id: i for i, clip in enumerate(cache.clips)}
    return {i: features_to_motion(cache.clip_features(row[i]), cache.starts[row[i]]) for i in dict.fromkeys(ids)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write (or --check) the fixed evaluation sets.")
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    parser.add_argument("--output", type=Path, default=SETS_DIR, help="folder of cross.json and same.json")
    args = parser.parse_args(argv)
    clips, split = load_index(), load_split()
    texts = {set_path(name, args.output): to_json(make_set(name, clips, split)) for name in SETS}
    return write_or_check(texts, args.check)


if __name__ == "__main__":
    sys.exit(main())
