"""What every trainer shares: TOML configs (a ``base`` chain, ``--set`` overrides, written back
beside the run), the ``train`` command line, the resume check (a run folder resumes only with the
config it started with), per-step seeds, and metrics.csv with its plots."""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import io
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import tomllib

from core.io.atomic import append_text, replacing, write_text
from training.data.paths import REPO_ROOT

# Every weight file trained on the Bandai Namco data carries the data's licence.
WEIGHTS_LICENSE = "CC BY-NC 4.0: trained on the Bandai Namco Research Motion Dataset (non-commercial use only)"


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_keys(config: dict, reference: dict, where: str = "") -> None:
    for key, value in config.items():
        if key not in reference:
            raise KeyError(f"unknown config key {where + key!r} (not in the base config)")
        if isinstance(value, dict) and isinstance(reference[key], dict):
            _check_keys(value, reference[key], f"{where}{key}.")


def parse_override(text: str) -> dict:
    """``a.b=value`` -> {"a": {"b": value}}; the value is read as TOML (``3``, ``1e-3``, ``true``,
    ``["joint"]``, ``"x"``), else kept as a string."""
    if "=" not in text:
        raise ValueError(f"override must be key=value; got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load_config(path: str | Path, overrides=(), smoke: bool = False) -> dict:
    """The TOML config with its ``base`` chain merged under it, then the ``smoke`` table (if asked),
    then ``--set`` overrides. Keys that the base does not have are errors (typos)."""
    path = Path(path)
    config = tomllib.loads(path.read_text())
    base_name = config.pop("base", None)
    if base_name is not None:
        base = load_config(path.parent / base_name)
        _check_keys(config, base)
        config = deep_merge(base, config)
    if smoke:
        config = deep_merge(config, config.get("smoke", {}))
    for text in overrides:
        override = parse_override(text)
        _check_keys(override, config)
        config = deep_merge(config, override)
    return config


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if not (isinstance(value, float) and not math.isfinite(value)) else str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(config: dict, prefix: str = "") -> str:
    """A minimal TOML writer for nested tables of scalars and lists (tomllib reads it back equal)."""
    lines = [f"{key} = {_toml_value(v)}" for key, v in config.items() if not isinstance(v, dict)]
    for key, value in config.items():
        if isinstance(value, dict):
            name = f"{prefix}{key}"
            lines += ["", f"[{name}]", to_toml(value, name + ".").strip("\n")]
    return "\n".join(line for line in lines) + "\n"


def step_seed(*parts: int) -> int:
    """A seed derived from (run seed, step, stream...): a resumed run draws what an unbroken one would."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


def spread_subset(ids, limit: int) -> list[str]:
    """``limit`` ids spread evenly over the sorted list (0 = all): keeps every content x style cell
    represented in small test runs."""
    ids = sorted(ids)
    if not limit or limit >= len(ids):
        return ids
    return [ids[i] for i in np.linspace(0, len(ids) - 1, limit).round().astype(int)]


def run_device(config: dict):
    """The config's ``device`` ("auto": CUDA when there is one); under torchrun, this process's GPU."""
    import torch

    wanted = config["device"]
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(wanted)


def optimizer_tensors(optimizer) -> dict:
    """The optimizer's per-parameter state as flat ``optim.<index>.<name>`` tensors (safetensors
    checkpoints hold no pickled objects); ``optimizer_state`` reads them back."""
    import torch

    return {
        f"optim.{index}.{name}": torch.as_tensor(value).detach().cpu().clone().contiguous()
        for index, state in optimizer.state_dict()["state"].items()
        for name, value in state.items()
    }


def optimizer_state(tensors: dict) -> dict:
    """The ``state`` of an optimizer state dict from a checkpoint's ``optim.*`` tensors."""
    state: dict = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    return state


def add_train_arguments(parser: argparse.ArgumentParser, default_config: Path, name: str) -> None:
    parser.add_argument("--config", type=Path, default=default_config)
    parser.add_argument("--out", type=Path, default=None, help=f"run folder (default out/{name}/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--smoke", action="store_true", help="merge the config's [smoke] table (a tiny run)")
    parser.add_argument("--stop-after", type=int, default=None, help="stop (with a checkpoint) after this step")


def run_config(parser: argparse.ArgumentParser, args, default_config: Path) -> dict:
    """The config of ``train`` arguments: on a plain ``--resume``, the run folder's own config.toml."""
    if args.resume and args.out is None:
        parser.error("--resume needs --out")
    if args.resume and (args.out / "config.toml").is_file() and args.config == default_config and not args.overrides:
        return tomllib.loads((args.out / "config.toml").read_text())
    return load_config(args.config, args.overrides, smoke=args.smoke)


def check_resume(config: dict, out: Path) -> None:
    saved = tomllib.loads((Path(out) / "config.toml").read_text())
    if saved != config:
        raise ValueError(f"--resume: the config differs from the run's {Path(out) / 'config.toml'}")


def restart_metrics(path: Path, fields: tuple[str, ...], resumed_step: int | None = None) -> None:
    """metrics.csv with its header and, on a resume at ``resumed_step``, its rows up to that step
    (rows written after the checkpoint come again, so a resumed run writes an unbroken run's rows)."""
    path = Path(path)
    rows = []
    if resumed_step is not None and path.is_file():
        with path.open() as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resumed_step]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows({k: r.get(k, "") for k in fields} for r in rows)
    write_text(path, text.getvalue())


def append_metrics(path: Path, fields: tuple[str, ...], row: dict, digits: int) -> None:
    """One metrics.csv row; floats to ``digits`` significant digits, missing fields empty."""

    def cell(value) -> str:
        if value is None or value == "":
            return ""
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    text = io.StringIO(newline="")
    csv.DictWriter(text, fieldnames=fields).writerow({k: cell(row.get(k, "")) for k in fields})
    append_text(path, text.getvalue())


def read_metrics(path: Path) -> list[dict]:
    """metrics.csv rows as floats (an empty cell, e.g. a step without validation, is NaN)."""
    with Path(path).open() as f:
        return [
            {k: (float(v) if v not in ("", None) else float("nan")) for k, v in r.items()} for r in csv.DictReader(f)
        ]


def plot_metrics(
    path: Path,
    out: Path,
    loss_names: tuple[str, ...],
    val_fields: tuple[str, ...],
    val_title: str,
    log_loss: bool = False,
) -> list[Path]:
    """losses.png (every non-zero loss column and the learning rate against the step) and
    validation.png (the ``val_fields`` columns at the steps that validated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(path)
    if not rows:
        return []
    out = Path(out)
    steps = np.array([r["step"] for r in rows])
    fig, (losses, schedule) = plt.subplots(1, 2, figsize=(11, 4))
    for name in loss_names:
        values = np.array([r[name] for r in rows])
        if np.isfinite(values).any() and np.nanmax(np.abs(values)) > 0:
            losses.plot(steps, values, label=name)
    losses.set(xlabel="step", ylabel="loss", title="training losses", yscale="log" if log_loss else "linear")
    losses.legend(fontsize=8)
    schedule.plot(steps, [r["lr"] for r in rows])
    schedule.set(xlabel="step", ylabel="learning rate", title="schedule")
    fig.tight_layout()
    with replacing(out / "losses.png") as temp:
        fig.savefig(temp, dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in val_fields:
        values = np.array([r[name] for r in rows])
        keep = np.isfinite(values)
        if keep.any():
            ax.plot(steps[keep], values[keep], marker="o", label=name)
    ax.set(xlabel="step", title=val_title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with replacing(out / "validation.png") as temp:
        fig.savefig(temp, dpi=100)
    plt.close(fig)
    return [out / "losses.png", out / "validation.png"]


def git_commit() -> str | None:
    """HEAD's hash, with ``-dirty`` when the tree has changes: the provenance a checkpoint or log records."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def write_or_check(texts: dict[Path, str], check: bool) -> int:
    """Write regenerated committed files (path -> JSON text with a ``counts`` entry, which is
    printed), or with ``check`` only compare them with what is committed: 1 when any differs (a
    generator changed), else 0."""
    status = 0
    for path, text in texts.items():
        if check:
            same = path.is_file() and path.read_text() == text
            print(f"{path}: {'up to date' if same else 'differs from the regenerated file'}")
            status |= 0 if same else 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, text)
            print(f"wrote {path}: {json.loads(text)['counts']}")
    return status


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
