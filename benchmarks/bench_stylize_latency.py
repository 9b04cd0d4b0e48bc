"""Benchmark of the learned stylizer's latency (issue 7): warm stylize of a 300-frame clip, server side.

The add-on's path (``ServerClient`` + ``StylizeJob``: encode, pipes, the server's pipeline, decode)
on a warm ``python -m core.server --config CONFIG`` (default: the shipped weights/stylizer.json);
baseline: the same request to a warm server running the statistics stylizer (``--stylizer
statistics``), measured alongside. The clip is real data: a dataset-2 walk resampled to 30 fps and
cut to 300 frames; the reference a whole dataset-2 walk of another style. Medians of ``--runs``
requests after one warm-up request per server; min and max too.

Run from the repository root:
``python -m benchmarks.bench_stylize_latency [--config weights/stylizer.json] [--runs 10] [--device auto|cpu|cuda]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

from training.data.paths import REPO_ROOT

from .server_requests import C, format_seconds, rig_motion, run_job, stylize_request, times

CONTENT = "dataset-2_walk_elderly_001.bvh.gz"  # 414 frames at 30 fps, cut to 300
STYLE = "dataset-2_walk_active_001.bvh.gz"
FPS = 30.0
FRAMES = 300
WEIGHTS = {"left_arm": 1.5}


def _warm_times(server_args: list[str], request, runs: int) -> tuple[list[float], dict]:
    """Seconds of ``runs`` stylize requests to one warm server (after a warm-up request), and its hello."""
    log = Path(tempfile.mkdtemp(prefix="bench-stylize-")) / "server.log"
    client = C.ServerClient(sys.executable, server_args, log_path=log, core_dir=REPO_ROOT, timeout=600.0)

    with client:
        info = client.start()
        if info.get("type") != "hello":
            raise SystemExit(f"the server did not start: {info}; log {log}:\n{client.log_tail()}")
        result = run_job(client, request, timeout=600)  # warm-up: first-call allocations, caches, CUDA kernels
        assert result["rotations"].shape[0] == FRAMES
        seconds = times(lambda: run_job(client, request, timeout=600), runs)
    return seconds, info


def _device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="weights/stylizer.json", help="the model config to time")
    parser.add_argument("--runs", type=int, default=10, help="warm stylize requests per server")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="the servers' --device")
    args = parser.parse_args(argv)
    import torch

    request = stylize_request(rig_motion(CONTENT, FRAMES, FPS), rig_motion(STYLE, fps=FPS), WEIGHTS)
    common = ["--device", args.device, "--log-level", "WARNING"]
    config = os.path.abspath(args.config)
    ours, info = _warm_times([*common, "--config", config], request, args.runs)
    base, base_info = _warm_times([*common, "--stylizer", "statistics"], request, args.runs)

    command = shlex.join(
        ["python", "-m", "benchmarks.bench_stylize_latency", *(sys.argv[1:] if argv is None else argv)]
    )
    print(f"`{command}`")
    print(
        f"(device {_device_name(info['device'])}; torch {torch.__version__}, {torch.get_num_threads()} threads "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); Python {platform.python_version()}; "
        f"{FRAMES} frames at {FPS:g} fps, {CONTENT} styled by {STYLE}; warm servers, {args.runs} requests each)\n"
    )
    print("| stylizer | median | min | max |\n|---|---|---|---|")
    for name, seconds in ((f"{info['stylizer']} ({args.config})", ours), (f"{base_info['stylizer']} (baseline)", base)):
        print(
            f"| {name} | {format_seconds(statistics.median(seconds))} | {format_seconds(min(seconds))} | {format_seconds(max(seconds))} |"
        )
    print(f"\nratio (median ÷ baseline median): {statistics.median(ours) / statistics.median(base):.1f}")


if __name__ == "__main__":
    main()
