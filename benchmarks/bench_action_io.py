"""Benchmark of the add-on's action I/O (issue 5: reading and keying 300 frames x 60 bones <= 50 ms).

Drives benchmarks/blender/bench_action_io.py in the Blender venv (real bpy) and prints a markdown
table: median read_action + write_action on a generated 60-bone rig with a 300-frame action, against
baselines run alongside (scene.frame_set per frame to read; per-key keyframe_insert to write, timed
on fewer frames and scaled).

Run from the repository root: ``python -m benchmarks.bench_action_io [--runs 15]``.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from tests.blender_runner import REPO_ROOT, run_blender_script

SCRIPT = REPO_ROOT / "benchmarks" / "blender" / "bench_action_io.py"
BUDGET_MS = 50.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--bones", type=int, default=60)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    r = run_blender_script(SCRIPT, "--frames", args.frames, "--bones", args.bones, "--runs", args.runs, timeout=600)
    command = "python -m benchmarks.bench_action_io " + shlex.join(sys.argv[1:] if argv is None else argv)
    ok = r["total_ms"] <= BUDGET_MS
    print(
        f"Action I/O, bpy {r['blender_version']}, {r['frames']} frames x {r['bones']} bones "
        f"({r['source_fcurves']} curves read, {r['written_fcurves']} written; medians of {r['runs']} runs)\n"
    )
    print("| step | action_io (ms) | baseline (ms) | baseline |")
    print("|---|---:|---:|---|")
    print(
        f"| read | {r['read_ms']:.1f} | {r['baseline_frame_set_read_ms']:.1f} | scene.frame_set per frame + foreach_get(matrix_basis) |"
    )
    print(
        f"| write (new action) | {r['write_ms']:.1f} | {r['baseline_keyframe_insert_write_ms']:.1f} | "
        f"per-key keyframe_insert, {r['naive_frames']} frames scaled to {r['frames']} |"
    )
    base_total = r["baseline_frame_set_read_ms"] + r["baseline_keyframe_insert_write_ms"]
    print(
        f"| **read + write** | **{r['total_ms']:.1f}** | {base_total:.1f} | budget {BUDGET_MS:.0f} ms: "
        f"{'met' if ok else 'MISSED'} |"
    )
    print(f"\nCommand: `{command}`")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
