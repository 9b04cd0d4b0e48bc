"""The one command that trains the shipped model from scratch (issue 7):

    python -m training.ship [--out out/ship] [--install] [--encoders weights/encoders/contrastive]

Stages, each a documented command of its own, run in this process in order:
  1. contrastive encoders  python -m training.contrastive train --config training/configs/contrastive.toml
  2. leakage erasers       python -m training.contrastive erase
  3. diffusion denoiser    python -m training.diffusion train --config training/configs/diffusion.toml
                           (on the encoders of stage 2)
A stage whose output exists is skipped, and a training stage cut short resumes from its checkpoint,
so rerunning the command after an interruption finishes the job. ``--encoders STEM`` takes trained
encoders (e.g. the installed ``weights/encoders/contrastive``, when only the denoiser's training
changed) in place of stages 1 and 2: they are copied into the run folder as stage 2's output. ``ship.log`` in the run folder
records every stage's command and wall time. ``--install`` then copies the weights into weights/
(encoders/contrastive.*, diffusion/denoiser.*), writes weights/stylizer.json, and copies the
training logs and curves to reports/diffusion/training/. Evaluating the installed model is its own
command (README: "Evaluate").
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from core.io.atomic import append_text, replacing, write_text
from training.data.paths import REPO_ROOT
from training.runs import WEIGHTS_LICENSE

WEIGHTS = REPO_ROOT / "weights"
REPORTS = REPO_ROOT / "reports" / "diffusion" / "training"
MODEL_CONFIG = {
    "stylizer": "diffusion",
    "description": "The learned stylizer (core/stylize/diffusion.py): a DDIM-sampled diffusion denoiser that reads "
    "the source motion and the frozen contrastive encoders' codes (issue 16). Trained by "
    "`python -m training.ship --install`. "
    "Weights licence: " + WEIGHTS_LICENSE,
    "denoiser": "diffusion/denoiser",
    "encoders": "encoders/contrastive",
    "steps": 10,
    "start": 1.0,
    "guidance": 1.0,
    "seed": 0,
    "keep_path": True,
    "smooth": 1.0,
}


def _stages(out: Path) -> list[tuple[str, Path, list[str], str]]:
    """(name, output that marks it done, argv, module) of every stage."""
    out = Path(out).resolve()
    encoders = out / "encoders" / "contrastive"
    # the denoiser's JSON records this path: repo-relative when the run folder is in the repo
    encoders_arg = encoders.relative_to(REPO_ROOT) if encoders.is_relative_to(REPO_ROOT) else encoders
    return [
        (
            "contrastive",
            out / "contrastive" / "encoders.json",
            ["train", "--config", "training/configs/contrastive.toml", "--out", str(out / "contrastive")],
            "training.contrastive.train",
        ),
        (
            "erase",
            encoders.with_suffix(".json"),
            ["erase", "--encoders", str(out / "contrastive" / "encoders"), "--out", str(encoders)],
            "training.contrastive.train",
        ),
        (
            "diffusion",
            out / "diffusion" / "denoiser.json",
            [
                "train",
                "--config",
                "training/configs/diffusion.toml",
                "--out",
                str(out / "diffusion"),
                "--set",
                f'encoders="{encoders_arg}"',
            ],
            "training.diffusion.train",
        ),
    ]


def use_encoders(out: Path, stem: Path) -> None:
    """Put trained encoders (checkpoint ``stem``) where stage 2 writes its output, so stages 1 and 2
    count as done; ship.log says where they came from."""
    target = Path(out).resolve() / "encoders" / "contrastive"
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json"):
        with replacing(target.with_suffix(suffix)) as temp:
            shutil.copyfile(Path(stem).with_suffix(suffix), temp)
    append_text(out / "ship.log", json.dumps({"stage": "encoders", "copied_from": str(stem)}) + "\n")


def run(out: Path) -> None:
    import importlib

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "ship.log"
    stages = _stages(out)
    for index, (name, done, argv, module) in enumerate(stages):
        # a stage feeds only the next, so a later stage's output means this one is done too
        finished = next((d for _, d, _, _ in stages[index:] if d.is_file()), None)
        if finished is not None:
            print(f"[ship] {name}: done already ({finished})")
            continue
        folder = Path(argv[argv.index("--out") + 1]) if name != "erase" else None
        if folder is not None and (folder / "checkpoint.json").is_file():
            argv = [*argv, "--resume"]
        command = f"python -m {module.rsplit('.', 1)[0]} " + " ".join(argv)
        print(f"[ship] {name}: {command}", flush=True)
        started = time.perf_counter()
        importlib.import_module(module).main(argv)
        seconds = time.perf_counter() - started
        append_text(log, json.dumps({"stage": name, "command": command, "seconds": round(seconds, 1)}) + "\n")
        print(f"[ship] {name}: {seconds / 60:.1f} min", flush=True)


def install(out: Path) -> None:
    """Copy the run's weights, config and training records into weights/ and reports/."""
    (WEIGHTS / "encoders").mkdir(parents=True, exist_ok=True)
    (WEIGHTS / "diffusion").mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json"):
        for part, name in (("encoders", "contrastive"), ("diffusion", "denoiser")):
            with replacing(WEIGHTS / part / f"{name}{suffix}") as temp:
                shutil.copyfile(out / part / f"{name}{suffix}", temp)
    meta_path = WEIGHTS / "diffusion" / "denoiser.json"
    meta = json.loads(meta_path.read_text())
    meta["license"] = WEIGHTS_LICENSE
    write_text(meta_path, json.dumps(meta, indent=1))
    write_text(WEIGHTS / "stylizer.json", json.dumps(MODEL_CONFIG, indent=2) + "\n")
    REPORTS.mkdir(parents=True, exist_ok=True)
    for src in (
        "ship.log",
        "diffusion/metrics.csv",
        "diffusion/losses.png",
        "diffusion/validation.png",
        "diffusion/config.toml",
        "contrastive/metrics.csv",
        "contrastive/losses.png",
        "contrastive/validation.png",
    ):
        path = out / src
        if path.is_file():
            with replacing(REPORTS / src.replace("/", "_")) as temp:
                shutil.copyfile(path, temp)
    print(f"[ship] installed into {WEIGHTS} and {REPORTS}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.ship", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "ship", help="run folder")
    parser.add_argument("--install", action="store_true", help="copy the result into weights/ and reports/")
    parser.add_argument("--encoders", type=Path, help="trained encoders (checkpoint stem) instead of stages 1-2")
    args = parser.parse_args(argv)
    if args.encoders is not None:
        use_encoders(args.out, args.encoders)
    run(args.out)
    if args.install:
        install(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
