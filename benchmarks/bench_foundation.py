"""Benchmarks of the motion foundation (issue 3, DESIGN §8): medians, each against a baseline run alongside.

- parse every clip into the feature cache, cold (BVH parse + features + write), 2 worker processes;
  baseline: the same build in one process;
- reload the cache (index, stamp check, read); baseline: re-parsing every clip with read_bvh;
- forward kinematics of 10,000 real frames, batched numpy (torch for reference); baseline: a
  per-frame loop of 4x4 matrix products.

Run from the repository root: ``python -m benchmarks.bench_foundation [--runs 3] [--fast-runs 20]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from core.io.bvh import read_bvh
from core.ops.kinematics import forward_kinematics
from core.ops.rotations import quat_to_matrix
from training.data.cache import load_cache
from training.data.index import load_index
from training.data.paths import data_root

FK_FRAMES = 10_000


def median_seconds(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fk_matrix_loop(parents, rotations, positions) -> np.ndarray:
    """Baseline: world positions frame by frame, joint by joint, with 4x4 homogeneous matrices."""
    out = np.empty(positions.shape)
    for f in range(len(rotations)):
        local = np.tile(np.eye(4), (len(parents), 1, 1))
        local[:, :3, :3] = quat_to_matrix(rotations[f])
        local[:, :3, 3] = positions[f]
        world = [None] * len(parents)
        for j, p in enumerate(parents):
            world[j] = local[j] if p < 0 else world[p] @ local[j]
            out[f, j] = world[j][:3, 3]
    return out


def fk_frames(clips) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """FK_FRAMES real frames: dataset-2 walks, concatenated."""
    motions, total = [], 0
    for clip in (c for c in clips if c.dataset == "dataset-2" and c.content == "walk"):
        motions.append(read_bvh(data_root() / clip.path))
        total += motions[-1].num_frames
        if total >= FK_FRAMES:
            break
    rotations = np.concatenate([m.rotations for m in motions])[:FK_FRAMES]
    positions = np.concatenate([m.positions for m in motions])[:FK_FRAMES]
    return motions[0].skeleton.parents, rotations, positions


def measure(args) -> list[tuple[str, float, str, float, str]]:
    """Rows of (measure, ours, baseline name, baseline, budget); seconds, NaN where there is no baseline."""
    clips = load_index()[: args.clips]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cache.safetensors"

        def build(workers):
            return lambda: load_cache(clips, path=path, workers=workers, progress=False, rebuild=True)

        ours, base = median_seconds(build(2), args.runs), median_seconds(build(1), args.runs)
        rows.append((f"parse {len(clips)} clips into the cache (cold)", ours, "1 process", base, "≤ 120 s"))

        size = load_cache(clips, path=path, progress=False).features.nbytes / 2**20
        ours = median_seconds(lambda: load_cache(load_index()[: args.clips], path=path), args.fast_runs)
        base = median_seconds(lambda: [read_bvh(data_root() / c.path) for c in clips], args.runs)
        rows.append((f"reload the cache ({size:.0f} MiB)", ours, "read_bvh every clip", base, "≤ 5 s"))

    parents, rotations, positions = fk_frames(load_index())
    _, reference = forward_kinematics(parents, rotations, positions)
    assert np.allclose(fk_matrix_loop(parents, rotations[:100], positions[:100]), reference[:100], atol=1e-6)
    ours = median_seconds(lambda: forward_kinematics(parents, rotations, positions), args.fast_runs)
    base = median_seconds(lambda: fk_matrix_loop(parents, rotations, positions), args.runs)
    rows.append((f"FK {FK_FRAMES:,} frames × 22 joints, numpy float64", ours, "per-frame 4x4 loop", base, "≤ 50 ms"))

    tr, tp = torch.from_numpy(rotations).float(), torch.from_numpy(positions).float()
    threads = torch.get_num_threads()
    for n in sorted({1, threads}):  # many small ops: a second intra-op thread can cost more than it gives
        torch.set_num_threads(n)
        with torch.no_grad():
            ours = median_seconds(lambda: forward_kinematics(parents, tr, tp), args.fast_runs)
        rows.append((f"FK {FK_FRAMES:,} frames, torch float32, {n} thread(s)", ours, "—", np.nan, "reference"))
    torch.set_num_threads(threads)
    return rows


def _fmt(seconds: float) -> str:
    if np.isnan(seconds):
        return "—"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of the slow measures (builds, re-parse, FK loop)")
    parser.add_argument("--fast-runs", type=int, default=20, help="runs of the fast measures (reload, FK)")
    parser.add_argument("--clips", type=int, default=None, help="use only the first N clips (smoke test)")
    args = parser.parse_args(argv)
    rows = measure(args)

    command = shlex.join(["python", "-m", "benchmarks.bench_foundation", *(sys.argv[1:] if argv is None else argv)])
    print(f"`{command}`")
    print(
        f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
        f"torch {torch.__version__}; medians of {args.runs} slow / {args.fast_runs} fast runs)\n"
    )
    print("| measure | ours (median) | baseline | baseline (median) | budget |\n|---|---|---|---|---|")
    for what, ours, base_name, base, budget in rows:
        print(f"| {what} | {_fmt(ours)} | {base_name} | {_fmt(base)} | {budget} |")


if __name__ == "__main__":
    main()
