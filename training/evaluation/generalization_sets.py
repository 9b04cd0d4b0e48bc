"""The generalization sets of issue 15: what users will stylize, beyond held-out takes of trained cells.

Each set is a committed JSON file under ``training/evaluation/sets/generalization/``; each entry
names a content and a reference clip (generalization_clips.ClipSpec: file, frames, in-place flag)
and the role, ``subject``, that holds the clip the set is about. Every clip is a dataset-2 TEST take,
a dataset-1 clip of the kind the set needs, or a foreign clip the data README reserves for
evaluation; never a dataset-2 train or val take.
- ``in_place``: test walks, turns and runs, and two contents that hardly travel (controls), with
  the planar motion of joint_Root and the pelvis removed (hold_pelvis_in_place), as game tools export
  clips. Every source style once per content; the reference is an unchanged test take of that
  content in another style.
- ``short_cycles``: 24-40-frame gait loops (best_cycle: heel strike to the next same-foot strike,
  two cycles where one is under 24 frames, closing to within 1.25 median frame steps), two test
  takes per walk/run x style; each loop once as captured and once in place, with the same
  reference (an unchanged test take of that content in another style).
- ``unseen_contents``: dataset-1 contents that dataset-2 lacks, from clips whose style is not in the
  unseen-style half; every content x each of the 7 dataset-2 styles as reference (a test take of a
  rotating content). The content clip avoids the target style's dataset-1 counterpart where the
  content has another clip (the extra contents exist in ``normal`` only).
- ``unseen_styles``: dataset-1 clips of the unseen-style half as references on test content: two
  pairs per unseen style x dataset-2 content, source styles and reference clips rotating.
- ``foreign``: every CMU clip in EVALUATION.txt and every MakeHuman animation (the three one-frame
  poses are not motion), on their own rig and fps; three pairs as content (references of three
  styles) and three as reference (on three test contents) each.

Any clip longer than MAX_CLIP_SECONDS is cropped to its most active window (most_active_window).
Choices are least used first with ties by a seeded SHA-256 (pairs._Chooser), never a numpy RNG.

Self-reference (stylize(x, reference=x)) runs on each set's subjects: self_reference_entries gives
one entry per distinct subject clip. Each file's ``counts`` gives the frames the stylizer works on
(30 fps) for the pairs and the self-reference runs.

``training/splits/dataset1_styles.json`` decides once which of dataset-1's eight styles with no
dataset-2 counterpart are trained on and which stay unseen, and partitions dataset-1's clips:
``unseen_style`` (every clip of the unseen half), ``unseen_content`` (every clip of a content
dataset-2 lacks in another style: the pool unseen_contents draws from, reserved whole so those
contents stay unseen) and ``trainable`` (the rest). A trainer reading dataset-1 reads ``trainable``.

Regenerate: ``python -m training.evaluation.generalization_sets`` (``--check`` only compares).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from core.io.bvh import read_bvh
from core.retarget.matching import rig_for_skeleton
from core.runtime import MIN_FRAMES, RigMotion
from training.data.index import Clip, load_index
from training.data.paths import data_root
from training.data.split import DATASET1_STYLES_FILE, load_split
from training.evaluation.generalization_clips import (
    BANDAI,
    MAX_CLIP_SECONDS,
    ClipSpec,
    best_cycle,
    clip_motion,
    crop_frames,
    frames_at_feature_rate,
    read_rig_motion,
)
from training.evaluation.pairs import SEED, SETS_DIR, _Chooser, _rank, split_test_cells
from training.runs import write_or_check

SETS = ("in_place", "short_cycles", "unseen_contents", "unseen_styles", "foreign")
GENERALIZATION_DIR = SETS_DIR / "generalization"
STYLES_FILE = DATASET1_STYLES_FILE

# dataset-1 style -> the dataset-2 style it names; the other eight have no counterpart.
COUNTERPARTS = {
    "active": "active", "childish": "youthful", "feminine": "feminine", "masculinity": "masculine",
    "normal": "normal", "old": "elderly", "tired": "exhausted",
}  # fmt: skip
UNSEEN_HALF = 4  # of the eight styles without a counterpart

IN_PLACE_TRAVELLING = ("walk", "walk-turn-left", "walk-turn-right", "run")
IN_PLACE_STILL = ("raise-up-both-hands", "wave-both-hands")  # controls: little to remove
CYCLE_CONTENTS = ("walk", "run")
CYCLES_PER_CELL = 2  # test takes per content x style
UNSEEN_STYLE_PAIRS_PER_CELL = 2  # per unseen style x dataset-2 content
FOREIGN_PAIRS_PER_ROLE = 3  # per foreign clip, as content and again as reference

CMU = "cmu_iclone_ccbase"
MAKEHUMAN = "makehuman_cc0"
MAKEHUMAN_DESCRIPTION = "keyframed cycle"

# Stylizer work of the whole suite (every pair and self-reference run, 30 fps frames): at about
# 300 frames a second that is 400 s, leaving a third of 10 minutes for reading and measuring.
BUDGET_FRAMES = 120_000


@dataclass(frozen=True)
class Entry:
    """One case: stylize ``content`` with ``reference``; ``subject`` ("content" or "reference") is
    the role holding the clip the set is about (the one self-reference runs on)."""

    id: str
    subject: str
    content: ClipSpec
    reference: ClipSpec

    def subject_clip(self) -> ClipSpec:
        return self.content if self.subject == "content" else self.reference

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "subject": self.subject,
            "content": self.content.to_json(),
            "reference": self.reference.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict) -> Entry:
        return cls(data["id"], data["subject"], ClipSpec(**data["content"]), ClipSpec(**data["reference"]))


def entry_motions(entry: Entry) -> tuple[RigMotion, RigMotion]:
    """(content, reference) of an entry on their rigs, cut and held in place as it says."""
    content = clip_motion(entry.content)
    return content, content if entry.reference == entry.content else clip_motion(entry.reference)


def self_reference_entries(entries: list[Entry]) -> list[Entry]:
    """stylize(x, reference=x) for each distinct subject clip of a set, in order of first use."""
    out: dict[ClipSpec, Entry] = {}
    for entry in entries:
        clip = entry.subject_clip()
        if clip not in out:
            out[clip] = Entry(f"{entry.id}-self", "content", clip, clip)
    return list(out.values())


def set_path(name: str, folder: Path = GENERALIZATION_DIR) -> Path:
    return Path(folder) / f"{name}.json"


def load_generalization_set(name: str, folder: Path = GENERALIZATION_DIR) -> list[Entry]:
    """The committed entries of set ``name``."""
    if name not in SETS:
        raise ValueError(f"unknown set {name!r}; sets are {SETS}")
    return [Entry.from_json(e) for e in json.loads(set_path(name, folder).read_text())["entries"]]


def load_styles(path: Path = STYLES_FILE) -> dict:
    """The committed dataset-1 style halves and clip partition."""
    return json.loads(Path(path).read_text())


def make_styles(clips: list[Clip]) -> dict:
    """The dataset-1 decision as a JSON-ready dict (see the module docstring)."""
    dataset1 = [c for c in clips if c.dataset == "dataset-1"]
    dataset2_contents = {c.content for c in clips if c.dataset == "dataset-2"}
    lacking = sorted({c.content for c in dataset1} - dataset2_contents)
    no_counterpart = sorted({c.style for c in dataset1} - set(COUNTERPARTS))
    if len(no_counterpart) != 2 * UNSEEN_HALF:
        raise ValueError(f"expected {2 * UNSEEN_HALF} dataset-1 styles without a counterpart, got {no_counterpart}")
    ordered = sorted(no_counterpart, key=lambda style: _rank("style-half", style))
    unseen = sorted(ordered[:UNSEEN_HALF])
    parts: dict[str, list[str]] = {"unseen_style": [], "unseen_content": [], "trainable": []}
    for clip in dataset1:
        if clip.style in unseen:
            parts["unseen_style"].append(clip.id)
        elif clip.content in lacking:
            parts["unseen_content"].append(clip.id)
        else:
            parts["trainable"].append(clip.id)
    return {
        "seed": SEED,
        "rule": (
            "the dataset-1 styles without a dataset-2 counterpart, ordered by sha256(seed:style-half:style): "
            f"the first {UNSEEN_HALF} are the unseen half, the rest the training half. Clips: unseen_style = every "
            "clip of an unseen-half style; unseen_content = every other clip whose content dataset-2 lacks; "
            "trainable = the rest."
        ),
        "counterparts": COUNTERPARTS,
        "training_half": sorted(ordered[UNSEEN_HALF:]),
        "unseen_half": unseen,
        "unseen_contents": lacking,
        "counts": {name: len(ids) for name, ids in parts.items()},
        "clips": parts,
    }


class _Library:
    """The clips a generation run reads, each file read once."""

    def __init__(self, clips: list[Clip], split: dict[str, list[str]]):
        self.clips = {c.id: c for c in clips}
        self.cells = split_test_cells(clips, split)
        self.styles = sorted({s for _, s in self.cells})
        self.contents = sorted({c for c, _ in self.cells})
        self._motions: dict[str, RigMotion] = {}

    def motion(self, path: str) -> RigMotion:
        """A Bandai file on canonical_rig()."""
        if path not in self._motions:
            self._motions[path] = read_rig_motion(path, BANDAI)
        return self._motions[path]

    def spec(self, clip_id: str) -> ClipSpec:
        """A Bandai clip, whole or cropped (crop_frames)."""
        clip = self.clips[clip_id]
        motion = self.motion(clip.path)
        frames, cut = crop_frames(motion)
        labels = {"clip": clip.id, "dataset": clip.dataset, "content": clip.content, "style": clip.style}
        return ClipSpec(BANDAI, clip.path, motion.motion.fps, frames, cut, **labels)

    def test_take(self, choose: _Chooser, content: str, style: str, salt: str) -> ClipSpec:
        return self.spec(choose.pick("clip", self.cells[content, style], salt))


def _in_place(lib: _Library) -> list[Entry]:
    choose, entries = _Chooser(), []
    for content in IN_PLACE_TRAVELLING + IN_PLACE_STILL:
        for style in lib.styles:
            salt = f"in_place:{content}:{style}"
            target = choose.pick(f"target-style:{content}", [s for s in lib.styles if s != style], salt)
            source = lib.test_take(choose, content, style, salt)
            reference = lib.test_take(choose, content, target, salt)
            entries.append(Entry(f"in_place-{len(entries):03d}", "content", replace(source, in_place=True), reference))
    return entries


def _short_cycles(lib: _Library) -> list[Entry]:
    choose, entries = _Chooser(), []
    for content in CYCLE_CONTENTS:
        for style in lib.styles:
            cycles = {}
            for clip_id in lib.cells[content, style]:
                found = best_cycle(lib.motion(lib.clips[clip_id].path).motion)
                if found is not None:
                    start, stop, seam = found
                    cycles[clip_id] = replace(lib.spec(clip_id), frames=(start, stop), cut="cycle", seam_steps=seam)
            if len(cycles) < CYCLES_PER_CELL:
                raise ValueError(f"only {len(cycles)} closing cycles among the {content}/{style} test takes")
            for clip_id in sorted(cycles, key=lambda c: _rank("short_cycles", c))[:CYCLES_PER_CELL]:
                salt = f"short_cycles:{clip_id}"
                target = choose.pick(f"target-style:{content}", [s for s in lib.styles if s != style], salt)
                reference = lib.test_take(choose, content, target, salt)
                for in_place in (False, True):
                    cycle = replace(cycles[clip_id], in_place=in_place)
                    entries.append(Entry(f"short_cycles-{len(entries):03d}", "content", cycle, reference))
    return entries


def _by_label(lib: _Library, clip_ids, label: str) -> dict[str, list[str]]:
    """Clip ids grouped by their ``label`` ("content" or "style"), in the given order."""
    groups: dict[str, list[str]] = defaultdict(list)
    for clip_id in clip_ids:
        groups[getattr(lib.clips[clip_id], label)].append(clip_id)
    return groups


def _unseen_contents(lib: _Library, styles: dict) -> list[Entry]:
    pool = _by_label(lib, styles["clips"]["unseen_content"], "content")
    choose, entries = _Chooser(), []
    for content in styles["unseen_contents"]:
        for target in lib.styles:
            salt = f"unseen_contents:{content}:{target}"
            other = [c for c in pool[content] if COUNTERPARTS.get(lib.clips[c].style) != target]
            source = lib.spec(choose.pick(f"clip:{content}", other or pool[content], salt))
            reference_content = choose.pick(f"reference-content:{target}", lib.contents, salt)
            reference = lib.test_take(choose, reference_content, target, salt)
            entries.append(Entry(f"unseen_contents-{len(entries):03d}", "content", source, reference))
    return entries


def _unseen_styles(lib: _Library, styles: dict) -> list[Entry]:
    references = _by_label(lib, styles["clips"]["unseen_style"], "style")
    choose, entries = _Chooser(), []
    for style in styles["unseen_half"]:
        for content in lib.contents:
            source_styles: list[str] = []
            for k in range(UNSEEN_STYLE_PAIRS_PER_CELL):
                salt = f"unseen_styles:{style}:{content}:{k}"
                source_style = choose.pick(f"source-style:{content}", lib.styles, salt, source_styles)
                source_styles.append(source_style)
                source = lib.test_take(choose, content, source_style, salt)
                reference = lib.spec(choose.pick(f"clip:{style}", references[style], salt))
                entries.append(Entry(f"unseen_styles-{len(entries):03d}", "reference", source, reference))
    return entries


def foreign_paths(root: Path) -> list[str]:
    """The README's non-Bandai evaluation clips, relative to the data root: the CMU files listed in
    EVALUATION.txt and every MakeHuman animation long enough for the stylizer (the others are
    one-frame poses)."""
    cmu = root / "motion" / CMU
    listed = [line.strip() for line in (cmu / "EVALUATION.txt").read_text().splitlines()]
    paths = [f"motion/{CMU}/{name}" for name in listed if name and not name.startswith("#")]
    for path in sorted((root / "motion" / MAKEHUMAN).glob("*.bvh")):
        motion = read_bvh(path)
        if frames_at_feature_rate(motion.num_frames, motion.fps) >= MIN_FRAMES:
            paths.append(path.relative_to(root).as_posix())
    return paths


def _cmu_descriptions(root: Path) -> dict[str, str]:
    """CMU file name stem (``002_05``) -> the clip's description in CMU_data.csv."""
    with open(root / "motion" / CMU / "CMU_data.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {f"{int(r['Subject']):03d}_{int(r['Trial #']):02d}": r["Motion Description"] for r in rows}


def foreign_spec(root: Path, path: str, descriptions: dict[str, str]) -> ClipSpec:
    """A foreign clip on its detected rig and up axis, whole or cropped."""
    motion = read_bvh(root / path)
    rig_motion = RigMotion(rig_for_skeleton(motion.skeleton, name=path, motion=motion), motion)
    up_axis = rig_motion.rig.up_axis
    frames, cut = crop_frames(rig_motion)
    source = path.split("/")[1]
    stem = Path(path).name.split(".")[0]
    description = descriptions[stem] if source == CMU else MAKEHUMAN_DESCRIPTION
    return ClipSpec(source, path, motion.fps, frames, cut, up_axis=up_axis, description=description)


def _foreign(lib: _Library, root: Path) -> list[Entry]:
    descriptions = _cmu_descriptions(root)
    choose, entries = _Chooser(), []
    for path in foreign_paths(root):
        spec = foreign_spec(root, path, descriptions)
        targets: list[str] = []
        for k in range(FOREIGN_PAIRS_PER_ROLE):
            salt = f"foreign:{path}:content:{k}"
            target = choose.pick("target-style", lib.styles, salt, targets)
            targets.append(target)
            reference_content = choose.pick(f"reference-content:{target}", lib.contents, salt)
            reference = lib.test_take(choose, reference_content, target, salt)
            entries.append(Entry(f"foreign-{len(entries):03d}", "content", spec, reference))
        contents: list[str] = []
        for k in range(FOREIGN_PAIRS_PER_ROLE):
            salt = f"foreign:{path}:reference:{k}"
            content = choose.pick("source-content", lib.contents, salt, contents)
            contents.append(content)
            source_style = choose.pick(f"source-style:{content}", lib.styles, salt)
            source = lib.test_take(choose, content, source_style, salt)
            entries.append(Entry(f"foreign-{len(entries):03d}", "reference", source, spec))
    return entries


RULES = {
    "in_place": (
        f"dataset-2 test takes of {', '.join(IN_PLACE_TRAVELLING + IN_PLACE_STILL)}, one per source style, planar "
        "motion of joint_Root and Hips removed (pelvis held over its first frame's spot); reference: a test take "
        "of the same content in another style, unchanged"
    ),
    "short_cycles": (
        f"{CYCLES_PER_CELL} dataset-2 test takes per {'/'.join(CYCLE_CONTENTS)} x style, each cut to its "
        "best closing gait loop (generalization_clips.best_cycle), once as captured and once in place; "
        "reference: a test take of the same content in another style"
    ),
    "unseen_contents": (
        "every dataset-1 content dataset-2 lacks x every dataset-2 style as reference; content clips from "
        "dataset1_styles.json unseen_content, avoiding the target's counterpart style where possible; reference: "
        "a test take of a rotating content"
    ),
    "unseen_styles": (
        f"{UNSEEN_STYLE_PAIRS_PER_CELL} pairs per unseen-half style x dataset-2 content: reference a dataset-1 clip of "
        "that style, content a test take of rotating source styles"
    ),
    "foreign": (
        f"every README evaluation clip outside bandai-namco on its own rig and fps, {FOREIGN_PAIRS_PER_ROLE} pairs as "
        f"content (reference styles differ) and {FOREIGN_PAIRS_PER_ROLE} as reference (test takes of different "
        "contents)"
    ),
}


def set_counts(entries: list[Entry]) -> dict:
    """Pairs, self-reference runs and the 30 fps frames the stylizer works on for each."""
    selves = self_reference_entries(entries)
    content = sum(e.content.frames_at_feature_rate() for e in entries)
    self_reference = sum(e.content.frames_at_feature_rate() for e in selves)
    return {
        "pairs": len(entries),
        "self_reference": len(selves),
        "content_frames_30fps": content,
        "reference_frames_30fps": sum(e.reference.frames_at_feature_rate() for e in entries),
        "self_reference_frames_30fps": self_reference,
        "stylized_frames_30fps": content + self_reference,
    }


def make_sets(clips: list[Clip], split: dict[str, list[str]], styles: dict, root: Path) -> dict[str, dict]:
    """Every generalization set as a JSON-ready dict, by name."""
    lib = _Library(clips, split)
    built = {
        "in_place": _in_place(lib),
        "short_cycles": _short_cycles(lib),
        "unseen_contents": _unseen_contents(lib, styles),
        "unseen_styles": _unseen_styles(lib, styles),
        "foreign": _foreign(lib, root),
    }
    return {
        name: {
            "set": name,
            "seed": SEED,
            "rule": RULES[name] + f"; clips over {MAX_CLIP_SECONDS:g} s cropped to their most active window",
            "self_reference": "one run per distinct subject clip (generalization_sets.self_reference_entries)",
            "counts": set_counts(entries),
            "entries": [e.to_json() for e in entries],
        }
        for name, entries in built.items()
    }


def to_json(data: dict) -> str:
    return json.dumps(data, indent=1) + "\n"


def regenerate(root: Path | None = None) -> dict[Path, str]:
    """The text of every file this module writes, by path."""
    root = Path(root or data_root())
    clips, split = load_index(root), load_split()
    styles = make_styles(clips)
    files = {STYLES_FILE: to_json(styles)}
    for name, data in make_sets(clips, split, styles, root).items():
        files[set_path(name)] = to_json(data)
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write (or --check) the generalization sets and style halves.")
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = parser.parse_args(argv)
    return write_or_check(regenerate(), args.check)


if __name__ == "__main__":
    sys.exit(main())
