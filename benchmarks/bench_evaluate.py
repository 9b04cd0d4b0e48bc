"""Benchmark: evaluating one stylizer over both fixed sets (issue 4: ≤ 10 min on 2 cores).

Times training.evaluate.evaluate() end to end (cache load, stylizing every pair, every measure,
both judges) for the statistics stylizer, the product's current one, against the identity
stylizer run alongside as the baseline (the harness's own cost). Report writing and plots are
not included. Medians of --runs runs.

    python -m benchmarks.bench_evaluate [--runs 3] [--stylizer statistics]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from training.evaluate import STYLIZER_NAMES, evaluate
from training.evaluation.pairs import SETS


def both_sets_seconds(stylizer: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for set_name in SETS:
            evaluate(stylizer, set_name)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stylizer", choices=STYLIZER_NAMES, default="statistics")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    measured = both_sets_seconds(args.stylizer, args.runs)
    baseline = both_sets_seconds("identity", args.runs)
    print(f"`python -m benchmarks.bench_evaluate --runs {args.runs} --stylizer {args.stylizer}`")
    print(
        f"({platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; medians of {args.runs})\n"
    )
    print("| measure | median | baseline (identity) | budget |\n|---|---|---|---|")
    print(f"| evaluate {args.stylizer} on both sets (280 pairs) | {measured:.1f} s | {baseline:.1f} s | ≤ 600 s |")


if __name__ == "__main__":
    main()
