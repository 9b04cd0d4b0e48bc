"""Train the judges and write their reports: ``python -m training.judges``.

    python -m training.judges                       # the three CNN judges (about 3 min on 2 CPU cores)
    python -m training.judges --kinds style content # some of them
    python -m training.judges --kinds knn_style knn_content seq_style seq_content  # the other families
    python -m training.judges --report-only         # redraw every judge's plots and judges.md

Writes ``weights/judges/<kind>.safetensors`` + ``<kind>.json`` and, under ``reports/judges/``,
``<kind>_confusion.png``, ``judges.md`` and, for the network judges, ``<kind>_metrics.csv`` and
``<kind>_curves.png`` (the kNN judges have no epochs: their choice of k is in their JSON).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from training.data.paths import REPO_ROOT
from training.judges import ALL_KINDS, knn, sequence
from training.judges.api import WEIGHTS_DIR
from training.judges.config import KINDS, default_config
from training.judges.report import plot_judge, write_summary

REPORTS_DIR = REPO_ROOT / "reports" / "judges"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m training.judges", description="Train the evaluation judges.")
    parser.add_argument(
        "--kinds", nargs="+", choices=ALL_KINDS, help="default: train the CNN judges; with --report-only, redraw all"
    )
    parser.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--reports-dir", type=Path, default=REPORTS_DIR)
    parser.add_argument("--epochs", type=int, help="override every network judge's epoch count")
    parser.add_argument("--seed", type=int, help="override every network judge's seed")
    parser.add_argument("--report-only", action="store_true", help="only redraw plots and judges.md")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "training.judges", *argv])
    kinds = args.kinds or list(ALL_KINDS if args.report_only else KINDS)

    import json

    if not args.report_only:
        from training.data.cache import load_cache
        from training.data.split import load_split
        from training.judges.train import train_judge

        cache, split = load_cache(), load_split()
        overrides = {k: v for k, v in (("epochs", args.epochs), ("seed", args.seed)) if v is not None}
        for kind in kinds:
            if kind in knn.KINDS:
                saved = knn.train_knn(kind, cache, split, args.weights_dir, command=command)
            elif kind in sequence.KINDS:
                config = sequence.default_sequence_config(kind, **overrides)
                saved = sequence.train_sequence(
                    config, cache, split, args.weights_dir, command, args.reports_dir / f"{kind}_metrics.csv"
                )
            else:
                saved = train_judge(
                    default_config(kind, **overrides),
                    cache,
                    split,
                    args.weights_dir,
                    metrics_csv=args.reports_dir / f"{kind}_metrics.csv",
                    command=command,
                )
            m = saved["metrics"]
            print(
                f"[{kind}] test accuracy {m.get('test_accuracy', float('nan')):.4f} on {m.get('test_clips', 0)} clips, "
                f"{m['train_seconds']:.0f} s"
            )
    for kind in kinds:
        meta = args.weights_dir / f"{kind}.json"
        if meta.is_file():
            plot_judge(json.loads(meta.read_text()), args.reports_dir)
    print(f"wrote {write_summary(args.weights_dir, args.reports_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
