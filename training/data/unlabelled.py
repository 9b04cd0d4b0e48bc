"""The unlabelled training cache (issue 16): canonical features of motion without style labels.

The stylizer also learns from non-Bandai motion: the CMU clips on Character Creator's skeleton
(``motion/cmu_iclone_ccbase``), except those its ``EVALUATION.txt`` reserves for evaluation. The
MakeHuman cycles are not here: the data README keeps them out of training. Each clip is read the way
the evaluation reads foreign clips (training.evaluation.generalization_clips: rig_for_skeleton with
its motion, the up axis detected), carried onto the canonical rig at 30 fps (core.runtime
.to_canonical) and put on the floor (``grounded``), then turned into DESIGN §3 features.

Like the Bandai cache (training.data.cache) the result is one safetensors file under
``<repo>/.cache/``, never pickle, stamped with FEATURE_VERSION, CACHE_FORMAT and a hash of the clip
files' paths and sizes, and rebuilt when the stamp no longer matches. CACHE_FORMAT also stands for
the reading path: bump it when retargeting or grounding changes what a clip's features are.

Build or refresh from the command line: ``python -m training.data.unlabelled [--rebuild]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file
from tqdm import tqdm

from core.io.atomic import replacing
from core.io.bvh import read_bvh
from core.motion.motion import Motion
from core.ops.features import motion_to_features
from core.retarget.grounding import grounded
from core.retarget.matching import rig_for_skeleton
from core.runtime import RigMotion, to_canonical
from training.data.cache import files_stamp, read_stamp
from training.data.paths import cache_dir, data_root

CACHE_FORMAT = 1
CACHE_FILE = "unlabelled_features.safetensors"
CMU_FOLDER = "motion/cmu_iclone_ccbase"
EVALUATION_LIST = "EVALUATION.txt"


def evaluation_files(root: Path) -> set[str]:
    """File names EVALUATION.txt reserves for evaluation ('#' starts a comment)."""
    lines = (root / CMU_FOLDER / EVALUATION_LIST).read_text().splitlines()
    return {line.split("#", 1)[0].strip() for line in lines} - {""}


def training_paths(root: Path) -> list[str]:
    """Paths (relative to the data root, sorted) of the CMU clips the data README allows for training."""
    reserved = evaluation_files(root)
    return [f"{CMU_FOLDER}/{p.name}" for p in sorted((root / CMU_FOLDER).glob("*.bvh.gz")) if p.name not in reserved]


def clip_id(path: str) -> str:
    """``motion/cmu_iclone_ccbase/002_02.bvh.gz`` -> ``cmu_iclone_ccbase/002_02``."""
    folder, name = path.split("/")[-2:]
    return f"{folder}/{name.split('.')[0]}"


def canonical_clip(path: Path) -> Motion:
    """A foreign clip file on the canonical rig at 30 fps, on the canonical floor."""
    motion = read_bvh(path)
    rig = rig_for_skeleton(motion.skeleton, name=path.name, motion=motion)
    return grounded(to_canonical(RigMotion(rig, motion)))


def cache_stamp(paths: list[str], root: Path) -> str:
    """What the cached numbers depend on (training.data.cache.files_stamp; CACHE_FORMAT also stands
    for the reading path)."""
    return files_stamp(paths, root, CACHE_FORMAT)


def build_cache(paths: list[str], root: Path, path: Path, progress: bool) -> tuple[list[str], list[np.ndarray]]:
    """Read every clip, compute its features and write the cache file (atomically). One process:
    the 46 clips take seconds, and the machine's cores go to training."""
    features = [
        motion_to_features(canonical_clip(root / p))[0].astype(np.float32)
        for p in tqdm(paths, unit="clip", desc="unlabelled cache", disable=not progress)
    ]
    ids = [clip_id(p) for p in paths]
    offsets = np.concatenate([[0], np.cumsum([len(f) for f in features])]).astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"stamp": cache_stamp(paths, root), "ids": json.dumps(ids)}
    with replacing(path) as temp:
        save_file({"features": np.concatenate(features), "offsets": offsets}, temp, metadata=metadata)
    return ids, features


def read_cache(path: Path) -> tuple[list[str], list[np.ndarray]]:
    with safe_open(path, framework="numpy") as f:
        ids = json.loads(f.metadata()["ids"])
        features, offsets = f.get_tensor("features"), f.get_tensor("offsets")
    return ids, [features[a:b] for a, b in itertools.pairwise(offsets)]


def load_unlabelled_cache(
    progress: bool = False, rebuild: bool = False, root: Path | None = None, path: Path | None = None
) -> tuple[list[str], list[np.ndarray]]:
    """(clip ids, float32 (frames, FEATURE_DIM) features per clip) of every unlabelled training
    clip, the cache rebuilt first when missing, stale or ``rebuild``."""
    root = Path(root or data_root())
    path = Path(path or cache_dir() / CACHE_FILE)
    paths = training_paths(root)
    if not rebuild and path.is_file() and read_stamp(path) == cache_stamp(paths, root):
        return read_cache(path)
    return build_cache(paths, root, path, progress)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Build or refresh the unlabelled feature cache.")
    parser.add_argument("--rebuild", action="store_true", help="rebuild even when the cache is up to date")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    ids, features = load_unlabelled_cache(progress=True, rebuild=args.rebuild)
    frames = sum(len(f) for f in features)
    print(f"{cache_dir() / CACHE_FILE}: {len(ids)} clips, {frames} frames, {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
