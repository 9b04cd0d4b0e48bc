"""Benchmarks of the runtime server (issue 5, DESIGN §2): medians, each against a baseline run alongside.

- cold start: ``python -m core.server --device cpu`` launched through the add-on's
  ``ServerClient.start()`` up to its hello reply; baseline: ``python -c pass`` on the same interpreter
  (the floor of any subprocess);
- warm end-to-end stylize of a 300-frame real clip through ``ServerClient`` + ``StylizeJob`` (the
  add-on's path: encode, pipes, server pipeline, decode); baseline: the in-process library call
  ``core.runtime.stylize_rig_motion`` on the same request (the pipeline alone).

Run from the repository root: ``python -m benchmarks.bench_server [--runs 10] [--warm-runs 10]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from core.runtime import stylize_rig_motion
from core.stylize.loading import SHIPPED_CONFIG, load_stylizer
from training.data.paths import REPO_ROOT

from .server_requests import C, format_seconds, rig_motion, run_job, stylize_request, times

CONTENT = "dataset-1_walk-back_not-confident_001.bvh"  # 364 frames, cut to 300
STYLE = "dataset-1_walk_angry_001.bvh"
FRAMES = 300
WEIGHTS = {"left_arm": 1.5}
SERVER_ARGS = ("--device", "cpu", "--log-level", "WARNING")


def measure(args) -> list[tuple[str, float, str, float]]:
    """Rows of (measure, ours, baseline name, baseline); seconds."""
    rows = []
    log = Path(tempfile.mkdtemp(prefix="bench-server-")) / "server.log"
    client = C.ServerClient(sys.executable, SERVER_ARGS, log_path=log, core_dir=REPO_ROOT, timeout=120.0)

    def cold():
        client.start()
        assert client.server_info["type"] == "hello"
        assert client.stop() == 0

    cold()  # warm the OS file cache once: every launch after it is "cold" for the process only
    ours = statistics.median(times(cold, args.runs))
    base = statistics.median(times(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), args.runs))
    rows.append(("server cold start to hello (`python -m core.server --device cpu`)", ours, "`python -c pass`", base))

    content, style = rig_motion(CONTENT, FRAMES), rig_motion(STYLE)
    request = stylize_request(content, style, WEIGHTS)

    def through_server():
        return run_job(client, request, timeout=120)

    shipped = load_stylizer(SHIPPED_CONFIG)  # what the server runs by default

    def library():
        return stylize_rig_motion(content, style, weights=WEIGHTS, stylizer=shipped)

    with client:
        client.start()
        got, expected = through_server(), library()  # also the warm-up of both paths
        assert np.abs(got["rotations"] - expected.rotations).max() < 1e-5
        ours = statistics.median(times(through_server, args.warm_runs))
        base = statistics.median(times(library, args.warm_runs))
    rows.append(
        (f"warm stylize, {FRAMES} frames, ServerClient + StylizeJob", ours, "in-process stylize_rig_motion", base)
    )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="launches for the cold start and its baseline")
    parser.add_argument("--warm-runs", type=int, default=10, help="stylize requests for the warm measures")
    args = parser.parse_args(argv)
    rows = measure(args)

    command = shlex.join(["python", "-m", "benchmarks.bench_server", *(sys.argv[1:] if argv is None else argv)])
    print(f"`{command}`")
    print(
        f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}; "
        f"medians of {args.runs} launches / {args.warm_runs} warm requests)\n"
    )
    print("| measure | ours (median) | baseline | baseline (median) | ours ÷ baseline |\n|---|---|---|---|---|")
    for what, ours, base_name, base in rows:
        print(f"| {what} | {format_seconds(ours)} | {base_name} | {format_seconds(base)} | {ours / base:.2f} |")


if __name__ == "__main__":
    main()
