"""Benchmark: warm end-to-end stylize of a 300-frame clip from Blender (issue 5; DESIGN §8: <= 2 s
on 2 CPU cores with the server warm).

Builds the add-on zip, installs it into real bpy with fresh user resources and drives
benchmarks/blender/bench_stylize.py: the batch API's ``stylize()`` timed end to end (read both
actions, the runtime round trip, key the new action), next to its parts; the runtime round trip is
the baseline the add-on's own overhead (prepare + apply) is measured against. Medians.

Run from the repository root: ``python -m benchmarks.bench_blender_stylize [--runs 7]``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

from tests.blender_runner import REPO_ROOT, run_addon_script
from training.data.paths import bandai_root

SCRIPT = REPO_ROOT / "benchmarks" / "blender" / "bench_stylize.py"
CONTENT = "dataset-1/data/dataset-1_walk-back_not-confident_001.bvh"  # 364 frames, cut to 300
STYLE = "dataset-2/data/dataset-2_walk_elderly_001.bvh.gz"
BUDGET_S = 2.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mst-bench-") as tmp:
        tmp = Path(tmp)
        root = bandai_root()
        r = run_addon_script(
            SCRIPT, tmp, root / CONTENT, root / STYLE, "--frames", args.frames, "--runs", args.runs, timeout=600
        )
    command = "python -m benchmarks.bench_blender_stylize " + shlex.join(sys.argv[1:] if argv is None else argv)
    total_s = r["total_ms"] / 1000
    print(
        f"Stylize from Blender, bpy {r['blender']}, {r['frames']} frames x {r['bones']} bones, statistics stylizer, "
        f"server warm (cold start {r['cold_start_s']:.2f} s); medians of {r['runs']} runs\n"
    )
    print("| part | ms | share |")
    print("|---|---:|---:|")
    parts = (
        ("prepare (read source + style, build request)", "prepare"),
        ("runtime round trip (baseline)", "round_trip"),
        ("apply (key the new action)", "apply"),
    )
    for label, key in parts:
        print(f"| {label} | {r[key + '_ms']:.0f} | {r[key + '_ms'] / r['total_ms']:.0%} |")
    ratio = r["total_ms"] / r["round_trip_ms"]
    print(f"| **end to end (`stylize()`)** | **{r['total_ms']:.0f}** | {ratio:.2f}x the round trip |")
    print(f"\nBudget {BUDGET_S:.0f} s: {'met' if total_s <= BUDGET_S else 'MISSED'}. Command: `{command}`")
    return 0 if total_s <= BUDGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
