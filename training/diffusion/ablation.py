"""Ablation of the diffusion stylizer's training: short runs with one part switched off, each
evaluated by the harness on the VALIDATION-split cross set (never the test split) and, with
``--suite-limit N``, on the first N pairs of every generalization set (raw model and product).

    python -m training.diffusion.ablation [--steps 1200] [--suite-limit 8] [--out out/diffusion/ablation]
    python -m training.diffusion.ablation --sampling    # the shipped weights, one sampling setting changed

Writes ablation.md / ablation.json (or sampling.md / sampling.json) to reports/diffusion/ablation/.
Short runs rank the parts; their absolute figures sit below the shipped model's (trained longer).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.io.atomic import write_text
from training.data.paths import REPO_ROOT
from training.diffusion.train import DEFAULT_CONFIG, train
from training.evaluate import evaluate, summary_table
from training.evaluation.suite import suite_table
from training.runs import load_config
from training.ship import MODEL_CONFIG

# Issue 16: each change of the generalising stylizer switched off on its own.
VARIANTS = {
    "shipped config": [],
    "no source branch (E_c content codes only, as before issue 16)": ["model.source=false", "model.content_dim=64"],
    "source branch without content codes": ["model.content_dim=0"],
    "no style strip (the source keeps its style in training)": ["data.style_strip=0.0"],
    "no style loss": ["loss.style=0.0"],
    "cross references of other contents": ["data.cross_same_content=false"],
    "dataset-2 only (no dataset-1, no unlabelled clips)": ["data.dataset1=false", "data.unlabelled=false"],
    "no augmentation (no speed change, in place, short crops, mirror)": [
        "data.speed_change=0.0",
        "data.in_place=0.0",
        "data.min_window=60",
        "data.mirror=false",
    ],
}
SAMPLING = {
    "shipped settings": {},
    "no cleanup stage": {"cleanup": False},
    "keep_path off (root from the model)": {"keep_path": False},
    "no smoothing (smooth = 0)": {"smooth": 0.0},
    "smooth 0.5": {"smooth": 0.5},
    "guidance 0.75": {"guidance": 0.75},
    "guidance 1.5": {"guidance": 1.5},
    "steps 25": {"steps": 25},
    "start 0.7 (SDEdit from the source)": {"start": 0.7},
    "residual (source + the sampled style change)": {"residual": True},
}
REPORT_DIR = REPO_ROOT / "reports" / "diffusion" / "ablation"


def run(steps: int, out: Path, variants: list[str], suite_limit: int = 0) -> list[dict]:
    from core.stylize.loading import load_stylizer
    from training.evaluation.suite import run_suite

    rows = []
    for index, name in enumerate(variants):
        overrides = [*VARIANTS[name], f"train.max_steps={steps}", "train.progress=false"]
        folder = out / f"variant{index}"
        if not (folder / "denoiser.json").is_file():
            train(load_config(DEFAULT_CONFIG, overrides), folder, command="ablation: " + " ".join(overrides))
        config = {**MODEL_CONFIG, "denoiser": "denoiser", "encoders": str(REPO_ROOT / "weights/encoders/contrastive")}
        write_text(folder / "stylizer.json", json.dumps(config, indent=1))
        report, _ = evaluate(None, "cross", config=folder / "stylizer.json", name=name, cleanup=True, split_name="val")
        row = {"variant": name, "overrides": overrides, "report": report}
        if suite_limit:
            row["suite"] = run_suite(
                load_stylizer(folder / "stylizer.json"), name, limit=suite_limit, log=lambda *a: None
            )
        rows.append(row)
        print(summary_table([report]).splitlines()[-1], flush=True)
    return rows


def run_sampling(out: Path) -> list[dict]:
    """The shipped denoiser with one sampling or post-processing setting changed per row."""
    rows = []
    out.mkdir(parents=True, exist_ok=True)
    for index, (name, change) in enumerate(SAMPLING.items()):
        change = dict(change)
        cleanup = change.pop("cleanup", True)
        config = {**json.loads((REPO_ROOT / "weights" / "stylizer.json").read_text()), **change}
        config.update(
            denoiser=str(REPO_ROOT / "weights/diffusion/denoiser"),
            encoders=str(REPO_ROOT / "weights/encoders/contrastive"),
        )
        path = out / f"sampling{index}.json"
        write_text(path, json.dumps(config, indent=1))
        report, _ = evaluate(None, "cross", config=path, name=name, cleanup=cleanup, split_name="val")
        rows.append({"variant": name, "overrides": [f"{k}={v}" for k, v in SAMPLING[name].items()], "report": report})
        print(summary_table([report]).splitlines()[-1], flush=True)
    return rows


def write(rows: list[dict], steps: int | None, command: str) -> Path:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    if steps is None:
        title, what, stem = "sampling and post-processing", "The shipped weights with one setting changed;", "sampling"
    else:
        title, what, stem = (
            "training ablation",
            f"Each variant trains {steps} steps from scratch;",
            "ablation",
        )
    lines = [
        f"# Diffusion stylizer: {title}",
        "",
        f"Command: `{command}`. {what} the harness runs it on the cross set built from the VALIDATION split",
        "(`--split val`), with the shipped sampling settings and the cleanup stage unless the row says otherwise.",
        "",
        summary_table([r["report"] for r in rows]),
        "",
        "| variant | overrides |",
        "|---|---|",
        *(f"| {r['variant']} | `{' '.join(r['overrides'])}` |" for r in rows),
    ]
    suites = [r["suite"] for r in rows if "suite" in r]
    if suites:
        lines += [
            "",
            f"## Generalization suite, first {suites[0]['limit']} pairs of each set (raw model and product)",
            "",
            suite_table(suites),
        ]
    path = REPORT_DIR / f"{stem}.md"
    write_text(path, "\n".join(lines) + "\n")
    slim = [
        {"variant": r["variant"], "overrides": r["overrides"], "summary": r["report"]["summary"]}
        | ({"suite": r["suite"]["summary"]} if "suite" in r else {})
        for r in rows
    ]
    write_text(REPORT_DIR / f"{stem}.json", json.dumps(slim, indent=1))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.diffusion.ablation", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "diffusion" / "ablation")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--suite-limit", type=int, default=0, help="also run the generalization suite on N pairs a set")
    parser.add_argument("--sampling", action="store_true", help="vary the shipped model's sampling settings instead")
    args = parser.parse_args(argv)
    if args.sampling:
        rows = run_sampling(args.out / "sampling")
        print(f"wrote {write(rows, None, 'python -m training.diffusion.ablation --sampling')}")
        return 0
    rows = run(args.steps, args.out, args.variants, args.suite_limit)
    command = "python -m training.diffusion.ablation" + (f" --steps {args.steps}" if args.steps != 1200 else "")
    command += f" --suite-limit {args.suite_limit}" if args.suite_limit else ""
    print(f"wrote {write(rows, args.steps, command)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
