"""Long takes through the whole pipeline (core.runtime.stylize_rig_motion, the shipped model):
time, its growth with length, peak memory and cancel latency.

    python benchmarks/bench_long_takes.py [--lengths 300 3000 30000 100000] [--runs 3] [--threads N]

The content is a real Bandai walk looped to each length, the style a real angry walk. Every run is
a fresh subprocess, so peak RSS (ru_maxrss) is that length's alone. Each length reports the median
time of ``--runs`` runs, the log-log exponent of time against the previous length, the peak RSS
over its runs, and cancel latency: in the first run's process the take is run again and cancelled
at CANCEL_AT shares of its measured time (a timer thread sets the flag the job polls); latency is
from the flag being set to Cancelled being raised, the worst of them reported with its stage.
Prints a markdown table for the README. Targets (issue 14): exponent <= 1.1, 100k frames <= 60 s on
2 CPU cores, peak RSS <= 1 GB at every length, cancel latency <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTENT = "dataset-2_walk_normal_001.bvh.gz"
STYLE = "dataset-1_walk_angry_001.bvh"
CANCEL_AT = (0.25, 0.75)  # shares of the measured run time at which the cancel runs set the flag


def looped_take(frames: int):
    """(content, style) RigMotions: the content clip looped to ``frames`` frames."""
    import numpy as np

    from core.io.bvh import read_bvh
    from core.retarget.matching import rig_for_skeleton
    from core.runtime import RigMotion
    from tests.conftest import bandai_clip

    clip = read_bvh(bandai_clip(CONTENT))
    reps = -(-frames // clip.num_frames)
    rotations = np.concatenate([clip.rotations] * reps)[:frames]
    positions = np.concatenate([clip.positions] * reps)[:frames]
    style = read_bvh(bandai_clip(STYLE))
    return (
        RigMotion(rig_for_skeleton(clip.skeleton), clip.with_arrays(rotations, positions)),
        RigMotion(rig_for_skeleton(style.skeleton), style),
    )


def cancel_latency(content, style, stylizer, delay: float) -> tuple[float, str]:
    """(seconds from the cancel flag being set ``delay`` s into a run to Cancelled, the stage it
    was in); (nan, "finished") if the run ended first."""
    from core.runtime import Cancelled, Job, stylize_rig_motion

    flag, set_at, stage = threading.Event(), [0.0], ["prepare"]

    def fire() -> None:
        set_at[0] = time.perf_counter()
        flag.set()

    timer = threading.Timer(delay, fire)
    job = Job(progress=lambda step, total, name: stage.__setitem__(0, name), cancelled=flag.is_set)
    timer.start()
    try:
        stylize_rig_motion(content, style, stylizer=stylizer, job=job)
    except Cancelled:
        return time.perf_counter() - set_at[0], stage[0]
    finally:
        timer.cancel()
    return math.nan, "finished"


def child(frames: int, cancel: bool, threads: int) -> dict:
    """One measured run (and the cancel runs) of ``frames`` frames in this process."""
    import torch

    from core.runtime import stylize_rig_motion
    from core.stylize.loading import SHIPPED_CONFIG, load_stylizer

    if threads:
        torch.set_num_threads(threads)
    stylizer = load_stylizer(SHIPPED_CONFIG)
    content, style = looped_take(frames)
    start = time.perf_counter()
    stylize_rig_motion(content, style, stylizer=stylizer)
    seconds = time.perf_counter() - start
    latencies = [cancel_latency(content, style, stylizer, share * seconds) for share in CANCEL_AT] if cancel else []
    return {
        "frames": frames,
        "seconds": seconds,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux: MiB
        "cancel": latencies,
    }


def measure(frames: int, runs: int, threads: int) -> dict:
    results = []
    for run in range(runs):
        command = [sys.executable, __file__, "--child", str(frames), "--threads", str(threads)]
        if run == 0:
            command.append("--cancel")
        out = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(f"  {frames} frames, run {run + 1}: {results[-1]}", file=sys.stderr, flush=True)
    worst = max(results[0]["cancel"], key=lambda c: -1.0 if math.isnan(c[0]) else c[0])
    return {
        "frames": frames,
        "seconds": statistics.median(r["seconds"] for r in results),
        "rss_mb": max(r["rss_mb"] for r in results),
        "cancel_s": worst[0],
        "cancel_stage": worst[1],
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| frames | median time (s) | exponent vs previous | peak RSS (MiB) | worst cancel latency (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for i, row in enumerate(rows):
        previous = rows[i - 1] if i else None
        exponent = (
            f"{math.log(row['seconds'] / previous['seconds']) / math.log(row['frames'] / previous['frames']):.2f}"
            if previous
            else ""
        )
        lines.append(
            f"| {row['frames']:,} | {row['seconds']:.1f} | {exponent} | {row['rss_mb']:.0f} | "
            f"{row['cancel_s']:.2f} ({row['cancel_stage']}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[300, 3000, 30000, 100000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cancel", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(REPO))
        print(json.dumps(child(args.child, args.cancel, args.threads)))
        return
    rows = [measure(frames, args.runs, args.threads) for frames in args.lengths]
    print(table(rows))


if __name__ == "__main__":
    main()
