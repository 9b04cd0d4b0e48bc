"""The generalization suite's measures on anyone's clips: a folder of BVH files, not the committed sets.

    python -m training.evaluate --suite own --clips my_clips/ --config weights/stylizer.json
    python -m training.evaluate --suite own --clips my_clips/ --references my_styles/ --stylizer statistics
    python -m training.evaluation.own_clips out/own_clips   # clips no data folder has (write_variants)

Why: the committed sets are cut from ``../shared/data``; a stylizer tuned on them could pass there and
fail on what users bring. This runs the same raw and product stylizations and the same label-free
measures (training.evaluation.suite) on any files: each clip with itself as the reference (self-
reference error, distance ratio, contact F1), and each clip with each reference (event retention,
pace, feet, knee hinge, loop seam, style shift). Clips may be on any rig the runtime maps, at any
frame rate and up axis. The default references are the bundled example clips (``examples/clips``:
a walk and a run among them), so it runs on a fresh clone without ``../shared``. No judge scores
these rows (the clips carry no labels); style shift is measured in the real training takes' unit
when ``../shared`` is there, else left out.
"""

from __future__ import annotations

from pathlib import Path

from core.io.bvh import read_bvh
from training.data.paths import REPO_ROOT, data_root
from training.evaluation.generalization_clips import ClipSpec
from training.evaluation.generalization_sets import Entry

OWN = "own"  # the set name of these rows, and their clips' source
DEFAULT_REFERENCES = REPO_ROOT / "examples" / "clips"
SUFFIXES = (".bvh", ".bvh.gz")


def bvh_files(folder: Path) -> list[Path]:
    """The BVH files (plain or gzipped) directly in ``folder``, sorted; an error naming the folder when none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))
    if not files:
        raise ValueError(f"{folder}: no .bvh or .bvh.gz files in it")
    return files


def clip_spec(path: Path) -> ClipSpec:
    """The whole file as a clip on the rig the runtime finds for it (read_rig_motion)."""
    motion = read_bvh(path)
    return ClipSpec(OWN, str(Path(path).resolve()), motion.fps, (0, motion.num_frames), description=Path(path).name)


def own_entries(clips: Path, references: Path = DEFAULT_REFERENCES) -> tuple[list[Entry], list[Entry]]:
    """(pairs, self-reference runs): every clip in ``clips`` with every other file in ``references``
    as its style reference, and every clip with itself."""
    subjects, styles = [clip_spec(p) for p in bvh_files(clips)], [clip_spec(p) for p in bvh_files(references)]
    pairs = [Entry(f"{s.description}+{r.description}", "content", s, r) for s in subjects for r in styles if r != s]
    return pairs, [Entry(f"{s.description}-self", "content", s, s) for s in subjects]


# (bundled example, rig, frame rate, frames kept (None: all), held in place): clips no data folder has
VARIANTS = (
    ("dataset-2_walk_normal_013.bvh", "mixamo", 120.0, None, False),
    ("dataset-2_run_active_044.bvh", "rigify_def", 24.0, 31, True),
    ("dataset-2_walk_elderly_015.bvh", "metarig", 60.0, None, False),
    ("dataset-2_wave-left-hand_exhausted_020.bvh", "mixamo", 25.0, None, True),
)


def write_variants(folder: Path) -> list[Path]:
    """The bundled example clips as other tools would hand them over (VARIANTS: another rig, another
    frame rate, a short crop, the root held in place), written as BVH files into ``folder``: motion
    that is in no data folder, made on a fresh clone."""
    from core.io.bvh import write_bvh
    from core.retarget.presets import bundled_rig
    from training.evaluation.generalization_clips import BANDAI, hold_pelvis_in_place, read_rig_motion
    from training.evaluation.on_rig import onto_rig

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rig, fps, frames, in_place in VARIANTS:
        motion = read_rig_motion(str(DEFAULT_REFERENCES / name), BANDAI).motion
        motion = motion.slice(0, frames or motion.num_frames)
        motion = hold_pelvis_in_place(motion) if in_place else motion
        path = folder / f"{name.removesuffix('.bvh')}_{rig}_{fps:g}fps{'_in_place' if in_place else ''}.bvh"
        write_bvh(onto_rig(motion, bundled_rig(rig), fps).motion, path)
        paths.append(path)
    return paths


def has_training_data() -> bool:
    """Whether the Bandai takes that give style shift its unit are there."""
    return (data_root() / "bandai-namco").is_dir()


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m training.evaluation.own_clips FOLDER  (writes the VARIANTS there)")
    for written in write_variants(Path(sys.argv[1])):
        print(written)
