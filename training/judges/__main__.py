"""Train the judges and write their reports: ``python -m training.judges``.

    python -m training.judges                       # all three judges (about 3 min on 2 CPU cores)
    python -m training.judges --kinds style content # some of them
    python -m training.judges --report-only         # redraw plots and judges.md from saved results

Writes ``weights/judges/<kind>.safetensors`` + ``<kind>.json`` and, under ``reports/judges/``,
``<kind>_metrics.csv``, ``<kind>_curves.png``, ``<kind>_confusion.png`` and ``judges.md``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from training.data.paths import REPO_ROOT
from training.judges.api import WEIGHTS_DIR
from training.judges.config import KINDS, default_config
from training.judges.report import plot_judge, write_summary

REPORTS_DIR = REPO_ROOT / "reports" / "judges"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m training.judges", description="Train the evaluation judges.")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--reports-dir", type=Path, default=REPORTS_DIR)
    parser.add_argument("--epochs", type=int, help="override every judge's epoch count")
    parser.add_argument("--seed", type=int, help="override every judge's seed")
    parser.add_argument("--report-only", action="store_true", help="only redraw plots and judges.md")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "training.judges", *argv])

    import json

    if not args.report_only:
        from training.data.cache import load_cache
        from training.data.split import load_split
        from training.judges.train import train_judge

        cache, split = load_cache(), load_split()
        overrides = {k: v for k, v in (("epochs", args.epochs), ("seed", args.seed)) if v is not None}
        for kind in args.kinds:
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
    for kind in args.kinds:
        meta = args.weights_dir / f"{kind}.json"
        if meta.is_file() and (args.reports_dir / f"{kind}_metrics.csv").is_file():
            plot_judge(json.loads(meta.read_text()), args.reports_dir)
    print(f"wrote {write_summary(args.weights_dir, args.reports_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
