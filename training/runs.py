"""What every trainer's command line shares: the ``train`` arguments, the config a run uses, the
resume check (a run folder resumes only with the config it started with) and reading metrics.csv."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import tomllib


def add_train_arguments(parser: argparse.ArgumentParser, default_config: Path, name: str) -> None:
    parser.add_argument("--config", type=Path, default=default_config)
    parser.add_argument("--out", type=Path, default=None, help=f"run folder (default out/{name}/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--smoke", action="store_true", help="merge the config's [smoke] table (a tiny run)")
    parser.add_argument("--stop-after", type=int, default=None, help="stop (with a checkpoint) after this step")


def run_config(parser: argparse.ArgumentParser, args, default_config: Path) -> dict:
    """The config of ``train`` arguments: on a plain ``--resume``, the run folder's own config.toml."""
    from training.contrastive.train import load_config  # the TOML loader lives with the first trainer

    if args.resume and args.out is None:
        parser.error("--resume needs --out")
    if args.resume and (args.out / "config.toml").is_file() and args.config == default_config and not args.overrides:
        return tomllib.loads((args.out / "config.toml").read_text())
    return load_config(args.config, args.overrides, smoke=args.smoke)


def check_resume(config: dict, out: Path) -> None:
    saved = tomllib.loads((Path(out) / "config.toml").read_text())
    if saved != config:
        raise ValueError(f"--resume: the config differs from the run's {Path(out) / 'config.toml'}")


def read_metrics(path: Path) -> list[dict]:
    """metrics.csv rows as floats (an empty cell, e.g. a step without validation, is NaN)."""
    with Path(path).open() as f:
        return [
            {k: (float(v) if v not in ("", None) else float("nan")) for k, v in r.items()} for r in csv.DictReader(f)
        ]
