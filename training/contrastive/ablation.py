"""Compare encoder training runs (the issue 6 ablations) in one markdown table.

    python -m training.contrastive.ablation --runs runs/full runs/no_queue runs/no_crossview \\
        runs/no_orthogonality runs/no_bodypart --out reports/encoders/ablation.md [--fast]

Each run folder holds exported encoders (a ``<stem>.json`` config beside ``<stem>.safetensors``;
``encoders.*`` is preferred when a folder has several, as ``training.contrastive train`` exports
one per view) and a config naming its ablation: key ``ablation`` or ``variant`` (in ``config.json``
or the encoder JSON), else the training config's ``name`` (``contrastive_no_queue`` -> ``no_queue``,
``contrastive`` -> ``full``), else the folder name. Training steps and minutes come from the same
JSON (``training.steps`` and ``training.train_seconds`` of an export; ``steps``/``training_steps``,
``minutes``/``training_minutes`` or ``seconds`` elsewhere) when given. Every run is evaluated by
``training.contrastive.evaluate`` (``--fast``: fewer training windows, fewer t-SNE points, no
group probes); its full report goes to ``<out folder>/<variant>/`` and its row to the table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from core.io.atomic import write_text
from training.contrastive.evaluate import (
    PROBES,
    encoder_config,
    evaluate_encoders,
    find_key,
    load_real_encoders,
    nested,
    write_report,
)

ABLATION_KEYS = ("ablation", "variant")
STEP_KEYS = ("steps", "training_steps", "total_steps", "global_step")
MINUTE_KEYS = ("minutes", "training_minutes", "train_minutes")
SECOND_KEYS = ("seconds", "training_seconds", "train_seconds", "wall_seconds")
COLUMNS = (
    "variant",
    "style←E_s",
    "content←E_c",
    "style←E_c (leak)",
    "content←E_s (leak)",
    "kNN style on dataset-1 (top-1; hand-made baseline)",
    "training steps / minutes",
)


def find_encoder_stem(run_dir: Path) -> Path:
    """The path stem of the encoders exported in ``run_dir`` (searched recursively)."""
    run_dir = Path(run_dir)
    stems = sorted({p.with_suffix("") for p in run_dir.rglob("*.safetensors") if p.with_suffix(".json").is_file()})
    if not stems:
        raise FileNotFoundError(f"{run_dir}: no exported encoders (<stem>.safetensors beside <stem>.json)")
    preferred = [s for s in stems if s.name == "encoders"] or [s for s in stems if s.name.startswith("encoder")]
    return (preferred or stems)[0]


def run_info(run_dir: Path, encoder_cfg: dict) -> dict:
    """variant, steps, minutes of a run from its config files (missing values None)."""
    configs = [encoder_cfg]
    for name in ("config.json", "run.json", "summary.json", "train_summary.json"):
        path = Path(run_dir) / name
        if path.is_file():
            configs.insert(0, json.loads(path.read_text()))

    def first(keys):
        for cfg in configs:
            value = find_key(cfg, keys)
            if value is not None:
                return value
        return None

    variant = first(ABLATION_KEYS) or nested(encoder_cfg, "training", "config", "name")
    if variant is None:
        variant = Path(run_dir).name
    variant = str(variant)
    if variant.startswith("contrastive"):  # training/configs names: contrastive, contrastive_no_queue, ...
        variant = variant.removeprefix("contrastive").lstrip("_-") or "full"
    minutes = first(MINUTE_KEYS)
    if minutes is None and (seconds := first(SECOND_KEYS)) is not None:
        minutes = float(seconds) / 60.0
    return {"variant": variant, "steps": first(STEP_KEYS), "minutes": minutes}


def _probe_cell(metrics: dict, key: str) -> str:
    probe = metrics["probes"][key]
    mark = "✓" if probe["passed"] else "✗"
    return f"{probe['accuracy']:.3f} {mark}"


def _training_cell(steps, minutes) -> str:
    s = "—" if steps is None else f"{int(steps):,}"
    m = "—" if minutes is None else f"{float(minutes):.{1 if float(minutes) < 10 else 0}f}"
    return f"{s} / {m}"


def ablation_table(rows: list[dict]) -> str:
    """Markdown table; each row: variant, metrics (evaluate's metrics.json), steps, minutes."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        m = row["metrics"]
        retrieval = m["retrieval_dataset1"]
        cells = [
            row["variant"],
            *(_probe_cell(m, key) for key in PROBES),
            f"{retrieval['encoder']['top1']:.3f} ({retrieval['baseline_handmade']['top1']:.3f})",
            _training_cell(row.get("steps"), row.get("minutes")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_notes(rows: list[dict]) -> str:
    targets = ", ".join(f"{v[4]} {v[2]} {v[3]:.2f}" for v in PROBES.values())
    chance = rows[0]["metrics"]["retrieval_dataset1"]["encoder"]["chance"] if rows else 1 / 15
    return (
        f"Probe columns: test-window accuracy of a linear probe (dataset-2, train → test split), ✓/✗ against the "
        f"issue's targets ({targets}); chance 1/7 for style, 1/10 for content. kNN: leave-one-content-out cosine "
        f"1-NN style accuracy on dataset-1's 15 unseen styles (chance {chance:.3f}), the hand-made-feature baseline "
        "in brackets. Full reports per variant in the folders beside this file."
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="run folders")
    parser.add_argument(
        "--out", type=Path, required=True, help="the markdown table (e.g. reports/encoders/ablation.md)"
    )
    parser.add_argument("--fast", action="store_true", help="evaluate on fewer windows (see evaluate --fast)")
    parser.add_argument("--max-train-clips", type=int, help="probe on an even subsample of train clips (a quick look)")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    command = "python -m training.contrastive.ablation " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    rows = []
    for run_dir in args.runs:
        stem = find_encoder_stem(run_dir)
        encoders = load_real_encoders(stem)
        config = encoder_config(encoders, stem)
        info = run_info(run_dir, config)
        metrics, artefacts = evaluate_encoders(
            encoders, info["variant"], config, fast=args.fast, max_train_clips=args.max_train_clips
        )
        metrics["encoders"] = str(stem)
        metrics["command"] = command
        write_report(metrics, artefacts, args.out.parent / info["variant"], plots=not args.no_plots)
        rows.append({**info, "metrics": metrics, "encoders": str(stem)})
        print(ablation_table(rows[-1:]).splitlines()[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# Encoder ablations\n\n"
        f"Command: `{command}`{' (fast: fewer training windows)' if args.fast else ''}\n\n"
        + ablation_table(rows)
        + "\n\n"
        + table_notes(rows)
        + "\n\n"
        + "\n".join(f"- {r['variant']}: `{r['encoders']}`" for r in rows)
        + "\n"
    )
    write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
