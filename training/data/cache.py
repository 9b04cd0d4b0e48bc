"""A feature cache: every clip's canonical features (DESIGN §3) in one safetensors file.

Parsing 2,846 BVH files and computing features takes about 20 s on 2 cores; training restarts often,
so the result is kept under ``<repo>/.cache/`` (gitignored) and reloaded in well under a second.
The file is stamped with FEATURE_VERSION, the cache format and a hash of the clip files' paths and
sizes; when any of them changes the stamp no longer matches and the cache rebuilds itself.
safetensors, never pickle: loading a cache can never run code.

Build or refresh from the command line: ``python -m training.data.cache [--rebuild]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file
from tqdm import tqdm

from core.io.atomic import replacing
from core.io.bvh import read_bvh
from core.ops.features import FEATURE_FPS, FEATURE_VERSION, motion_to_features
from core.ops.resample import resample
from training.data.index import Clip, load_index
from training.data.paths import cache_dir, data_root

CACHE_FORMAT = 1
CACHE_FILE = "bandai_features.safetensors"


@dataclass(frozen=True)
class FeatureCache:
    """Clips in index order; clip i's features are ``features[offsets[i]:offsets[i + 1]]``.

    starts holds each clip's (x, z, heading) at frame 0, which features_to_motion needs to put a
    decoded clip back where it was.
    """

    clips: tuple[Clip, ...]
    features: np.ndarray  # (total frames, FEATURE_DIM) float32
    offsets: np.ndarray  # (clips + 1,) int64
    starts: np.ndarray  # (clips, 3) float64
    stamp: str

    def __len__(self) -> int:
        return len(self.clips)

    def clip_features(self, i: int) -> np.ndarray:
        return self.features[self.offsets[i] : self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def files_stamp(paths: list[str], root: Path, cache_format: int) -> str:
    """What a feature cache's numbers depend on: feature layout, the cache's own format, and which
    files (relative to ``root``) of which size. Shared by every feature cache under .cache/."""
    files = [(p, (root / p).stat().st_size) for p in paths]
    payload = json.dumps({"feature_version": FEATURE_VERSION, "format": cache_format, "files": files})
    return hashlib.sha256(payload.encode()).hexdigest()


def cache_stamp(clips: list[Clip], root: Path) -> str:
    return files_stamp([c.path for c in clips], root, CACHE_FORMAT)


def clip_features(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(float32 features, float64 start) of one clip file; runs in the worker processes."""
    motion = resample(read_bvh(path), FEATURE_FPS)
    features, start = motion_to_features(motion)
    return features.astype(np.float32), start


def build_cache(clips: list[Clip], root: Path, path: Path, workers: int = 2, progress: bool = True) -> FeatureCache:
    """Parse every clip, compute its features and write the cache file (atomically)."""
    stamp = cache_stamp(clips, root)
    files = [str(root / c.path) for c in clips]
    bar = {"total": len(files), "unit": "clip", "desc": "feature cache", "disable": not progress}
    if workers > 1:
        # spawn, not fork: forking a parent that has torch's thread pools running can deadlock.
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = list(tqdm(pool.imap(clip_features, files, chunksize=16), **bar))
    else:
        results = [clip_features(f) for f in tqdm(files, **bar)]
    lengths = [len(f) for f, _ in results]
    cache = FeatureCache(
        clips=tuple(clips),
        features=np.concatenate([f for f, _ in results]),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        starts=np.stack([s for _, s in results]),
        stamp=stamp,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"features": cache.features, "offsets": cache.offsets, "starts": cache.starts}
    metadata = {"stamp": stamp, "clips": json.dumps([asdict(c) for c in clips])}
    with replacing(path) as temp:
        save_file(tensors, temp, metadata=metadata)
    return cache


def read_stamp(path: Path) -> str | None:
    """The stamp a cache file was written with, or None when it cannot be read."""
    try:
        with safe_open(path, framework="numpy") as f:
            return (f.metadata() or {}).get("stamp")
    except (OSError, SafetensorError):
        return None


def read_cache(path: Path) -> FeatureCache:
    with safe_open(path, framework="numpy") as f:
        metadata = f.metadata()
        arrays = {key: f.get_tensor(key) for key in ("features", "offsets", "starts")}
    clips = tuple(Clip(**c) for c in json.loads(metadata["clips"]))
    return FeatureCache(clips=clips, stamp=metadata["stamp"], **arrays)


def load_cache(
    clips: list[Clip] | None = None,
    root: Path | None = None,
    path: Path | None = None,
    workers: int = 2,
    progress: bool = True,
    rebuild: bool = False,
) -> FeatureCache:
    """The cache for ``clips`` (default: the whole index), rebuilt first when missing or stale."""
    root = Path(root or data_root())
    clips = list(clips) if clips is not None else load_index(root)
    path = Path(path or cache_dir() / CACHE_FILE)
    if not rebuild and path.is_file() and read_stamp(path) == cache_stamp(clips, root):
        return read_cache(path)
    return build_cache(clips, root, path, workers, progress)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Build or refresh the feature cache.")
    parser.add_argument("--rebuild", action="store_true", help="rebuild even when the cache is up to date")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    cache = load_cache(workers=args.workers, rebuild=args.rebuild)
    print(f"{cache_dir() / CACHE_FILE}: {len(cache)} clips, {len(cache.features)} frames, stamp {cache.stamp[:12]}")


if __name__ == "__main__":
    main()
