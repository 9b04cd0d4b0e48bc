"""Reports of the judges: training curves, confusion matrices and the ``judges.md`` summary.

Everything is read back from what training wrote (``weights/judges/<kind>.json`` and
``reports/judges/<kind>_metrics.csv``), so the summary can be regenerated without retraining:
``python -m training.judges --report-only``. Matplotlib draws on its Agg canvas (no pyplot).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from core.io.atomic import replacing, write_text
from training.judges import ALL_KINDS

TITLES = {
    "style": "Style judge (dataset-2, 7 styles)",
    "content": "Content judge (dataset-2, 10 contents)",
    "style_dataset1": "Style judge (dataset-1, 15 styles, held-out contents)",
    "knn_style": "kNN style judge (dataset-2, 7 styles, clip statistics)",
    "knn_content": "kNN content judge (dataset-2, 10 contents, clip statistics)",
    "seq_style": "Sequence style judge (dataset-2, 7 styles, GRU on joint positions)",
    "seq_content": "Sequence content judge (dataset-2, 10 contents, GRU on joint positions)",
}


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def read_history(path: Path) -> list[dict]:
    with Path(path).open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def plot_curves(history: list[dict], path: Path, title: str, selected_epoch: int | None = None) -> None:
    """Loss (train, val) and accuracy (train windows, val clips) per epoch."""
    epoch = np.array([r["epoch"] for r in history])
    has_val = any(np.isfinite(r["val_loss"]) for r in history)
    val_label = "val (clips)" if has_val else "no val set: fixed epochs, last kept"
    fig = _figure(10, 3.8)
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(
        epoch, [r["train_loss"] for r in history], "o-", ms=3, label="train (windows, augmented, label-smoothed)"
    )
    ax_loss.plot(epoch, [r["val_loss"] for r in history], "o-", ms=3, label=val_label)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.set_yscale("log")
    ax_loss.set_title("loss")
    ax_acc.plot(epoch, [r["train_accuracy"] for r in history], "o-", ms=3, label="train (windows, augmented)")
    ax_acc.plot(epoch, [r["val_accuracy"] for r in history], "o-", ms=3, label=val_label)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.02)
    ax_acc.set_title("accuracy")
    for ax in (ax_loss, ax_acc):
        if selected_epoch is not None:
            ax.axvline(selected_epoch, color="0.6", ls="--", lw=1, label=f"kept: epoch {selected_epoch}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with replacing(path) as temp:
        fig.savefig(temp)


def plot_confusion(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (true label rows) with the clip counts written in."""
    matrix = np.asarray(matrix)
    rows = matrix.sum(axis=1, keepdims=True)
    share = matrix / np.maximum(rows, 1)
    size = 2.5 + 0.45 * len(labels)
    fig = _figure(size + 1.2, size)
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share[i, j] > 0.6 else "black",
                )
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"{title}\naccuracy {accuracy:.3f} on {matrix.sum()} clips", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    fig.tight_layout()
    with replacing(path) as temp:
        fig.savefig(temp)


def plot_judge(saved: dict, reports_dir: Path) -> None:
    """The confusion matrix and, for a judge trained in epochs (a metrics CSV), its curves."""
    kind, metrics = saved["kind"], saved["metrics"]
    reports_dir.mkdir(parents=True, exist_ok=True)
    history_csv = reports_dir / f"{kind}_metrics.csv"
    if history_csv.is_file():
        history = read_history(history_csv)
        plot_curves(history, reports_dir / f"{kind}_curves.png", TITLES.get(kind, kind), metrics.get("selected_epoch"))
    if "test_confusion" in metrics:
        plot_confusion(
            metrics["test_confusion"], saved["labels"], reports_dir / f"{kind}_confusion.png", TITLES.get(kind, kind)
        )


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _selected(saved: dict) -> str:
    """What val chose: the kept epoch (of those run), or a kNN judge's k."""
    m = saved["metrics"]
    return f"k = {saved['k']}" if "k" in saved else f"epoch {m['selected_epoch']} ({m['epochs_run']})"


def _weights_line(kind: str, saved: dict) -> str:
    files = f"`weights/judges/{kind}.safetensors`"
    if "bank" in saved:
        by_k = ", ".join(f"{k}: {v:.3f}" for k, v in saved["metrics"]["val_accuracy_by_k"].items())
        what = f"{files} (bank of {saved['bank']['clips']:,} clips x {saved['descriptor']['dimensions']} statistics)"
        return f"- weights: {what}, config `weights/judges/{kind}.json`; val accuracy by k: {by_k}."
    return (
        f"- weights: {files} ({saved['architecture']['parameters']:,} parameters), config "
        f"`weights/judges/{kind}.json`; seed {saved['training']['seed']}; git commit {saved['training']['git_commit']}."
    )


def write_summary(weights_dir: Path, reports_dir: Path) -> Path:
    """``reports_dir/judges.md``: one row per trained judge and per-class test accuracy tables."""
    saved = {}
    for kind in ALL_KINDS:
        meta = Path(weights_dir) / f"{kind}.json"
        if meta.is_file():
            saved[kind] = json.loads(meta.read_text())
    lines = [
        "# Judges",
        "",
        "Independent classifiers of the evaluation harness (DESIGN §7), trained on real takes and sharing",
        "no code or weights with the stylization models. Three families judge the dataset-2 style and",
        "content, so the recognition figures (SRA, CRA) do not rest on one network's blind spots:",
        "",
        "- **CNN** (`style`, `content`, `style_dataset1`; `training/judges/model.py`): a small 1D temporal CNN",
        "  over 2 s windows (60 frames at 30 fps) of the canonical features minus the foot contacts (pelvis",
        "  height, planar and heading velocity, 6D rotations of 21 joints: 130 channels), normalised with",
        "  training-clip statistics. A clip's prediction is the mean of its window logits (windows every 15",
        "  frames plus one flush with the end; clips under 60 frames are edge-padded); its embedding (for",
        "  FMD) is the mean of the windows' pooled 64-dimensional penultimate activations.",
        "- **kNN** (`knn_style`, `knn_content`; `training/judges/knn.py`): no network. A clip is the mean and",
        "  standard deviation over its frames of the same 130 channels plus its speed and turning statistics,",
        "  standardised with the training clips'; the k nearest training clips (and their mirrored copies)",
        "  vote, weighted by 1 / distance; k is chosen on val. Clips of any length are described as they are.",
        "- **Sequence** (`seq_style`, `seq_content`; `training/judges/sequence.py`): a GRU over joint",
        "  positions instead of rotations: the 20 body joints relative to the pelvis in its heading frame",
        "  (leg lengths) and their per-frame change, with the pelvis height and velocities, over the CNN's",
        "  windows (same padding and clip mean).",
        "",
        "Every family reads only what does not depend on where a clip stands or faces or on the placement",
        "joint, and keeps its answer through a retarget round trip onto other rigs and frame rates",
        "(`tests/test_judge_families.py`). Figures are clip-level accuracies on real takes; the split is",
        '`training/splits/bandai_split.json`. "test, mirrored" is a robustness figure: the same test takes',
        "mirrored left/right (content labels swapped); a judge that only scores well unmirrored leans on",
        "the actors' own asymmetries.",
        "",
        "| judge | classes | train / val / test clips | val chose | training time | val accuracy | test accuracy | test, mirrored |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, s in saved.items():
        m = s["metrics"]
        lines.append(
            f"| `{kind}` | {len(s['labels'])} | {m['train_clips']} / {m['val_clips']} / {m.get('test_clips', 0)} | "
            f"{_selected(s)} | {m['train_seconds']:.0f} s | {_fmt(m.get('val_accuracy'))} | "
            f"**{_fmt(m.get('test_accuracy'))}** | {_fmt(m.get('test_accuracy_mirrored'))} |"
        )
    commands = sorted({s["training"]["command"] for s in saved.values()})
    lines += [
        "",
        "Produced by " + ", ".join(f"`{c}`" for c in commands) + " (2 CPU threads, seeded, deterministic: a rerun "
        "writes identical tensors). Training times are wall-clock on a shared 2-core machine and grow when other "
        "jobs run alongside.",
        "",
    ]
    for kind, s in saved.items():
        m = s["metrics"]
        lines += [f"## {TITLES.get(kind, kind)}", ""]
        clips = s["training"]["clips"]
        lines += [f"- train: {clips['train']}; val: {clips['val']}; test: {clips['test']}."]
        excluded = s["training"].get("config", {}).get("exclude_contents")
        if excluded:
            lines += [f"- left out (normal-only contents): {', '.join(excluded)}."]
        plots = [f"confusion matrix: [`{kind}_confusion.png`]({kind}_confusion.png)"]
        if (Path(reports_dir) / f"{kind}_metrics.csv").is_file():
            plots = [
                f"curves: [`{kind}_curves.png`]({kind}_curves.png)",
                f"per-epoch figures: [`{kind}_metrics.csv`]({kind}_metrics.csv)",
                *plots,
            ]
        lines += [
            _weights_line(kind, s),
            "- " + ", ".join(plots) + ".",
            "",
            "| class | test clips | test accuracy |",
            "|---|---|---|",
        ]
        for name in s["labels"]:
            lines.append(f"| {name} | {m['test_support'][name]} | {_fmt(m['per_class_test_accuracy'][name])} |")
        lines += [f"| **all** | {m['test_clips']} | **{_fmt(m['test_accuracy'])}** |", ""]
    path = Path(reports_dir) / "judges.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "\n".join(lines))
    return path
