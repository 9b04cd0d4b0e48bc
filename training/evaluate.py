"""Evaluate one stylizer on one fixed pair set and write its report (DESIGN §7, issue 4).

    python -m training.evaluate --stylizer statistics --set cross
    python -m training.evaluate --config weights/stylizer.json --set cross --cleanup
    python -m training.evaluate --summary          # reports/summary.md from every report.json
    python -m training.evaluate --suite generalization --config weights/stylizer.json   # issue 15
    python -m training.evaluate --suite own --clips DIR --config weights/stylizer.json  # any BVH files

Every report carries the three kinds of figure DESIGN §7 asks for, because label accuracy alone is
gameable: recognition (SRA, CRA from the independent judges), fidelity to the source instance
(root path shape error, contact timing F1, rotation deviation of zero-weight groups) and quality
(FMD in the judges' feature space per target style, foot skate of output and source, jitter against real clips).
Headline SRA/CRA are over the "full" pairs (every group styled by one reference); the body-group
pairs (upper body only, arms only, mixed references) are reported beside them.
Outputs go to reports/<set>/<stylizer>/: report.json, report.md and plots.

``--config`` evaluates the stylizer a model config describes (core.stylize.loading.load_stylizer;
the report's name is the stylizer's ``name`` unless ``--name`` overrides it); ``--cleanup`` runs the
product's foot-contact cleanup stage (core.runtime.clean_stylized, default CleanupSettings, the
pair's weights) on every output before it is measured, as the server does. ``--rig NAME`` performs
every pair on another rig at ``--rig-fps`` through the product's whole pipeline
(training.evaluation.on_rig); its reports are named <stylizer>-on-<rig>.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from core.io.atomic import replacing, write_text
from core.motion.motion import Motion
from core.ops.features import motion_to_features
from core.runtime import CleanupSettings, clean_stylized
from core.stylize.baselines import STYLIZERS
from core.stylize.loading import load_stylizer
from training.data.cache import load_cache
from training.data.index import load_index
from training.data.paths import REPO_ROOT
from training.data.split import load_split
from training.evaluation import measures, test_log
from training.evaluation.on_rig import EVALUATION_RIGS, evaluation_rig, stylize_on_rig
from training.evaluation.pairs import SETS, Pair, clip_motions, load_pairs, make_set
from training.evaluation.retrieval import RetrievalStylizer
from training.evaluation.suite import raw_options
from training.judges.api import load_judge
from training.judges.report import plot_confusion

REPORTS_DIR = REPO_ROOT / "reports"
STYLIZER_NAMES = (*STYLIZERS, RetrievalStylizer.name)
STRIP_PAIRS = 3  # stick-figure strips of source / reference / output for the first few full pairs
ZERO = 1e-12  # deviations below this are float rounding (quat_angle of identical rotations)


def make_stylizer(name: str, cache):
    if name == RetrievalStylizer.name:
        return RetrievalStylizer(cache=cache)
    if name not in STYLIZERS:
        raise SystemExit(f"unknown stylizer {name!r}; choose from {', '.join(STYLIZER_NAMES)}")
    return STYLIZERS[name]()


def pair_request(pair, motions: dict, stylizer):
    """The pair's StyleRequest for ``stylizer``: the label options only go to the retrieval
    baseline (the one stylizer built on them; a learned stylizer refuses options it does not know)."""
    request = pair.request(motions.__getitem__)
    if isinstance(stylizer, RetrievalStylizer):
        return request
    return dataclasses.replace(request, options={})


def config_label(config) -> str:
    """A model config path as a report records it: relative to the repository when inside it."""
    path = Path(config)
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _real_cells(cache, split) -> dict[tuple[str, str], list[int]]:
    """(style, content) -> cache rows of real dataset-2 test clips: FMD and jitter references."""
    test = set(split["test"])
    cells = defaultdict(list)
    for row, clip in enumerate(cache.clips):
        if clip.id in test:
            cells[(clip.style, clip.content)].append(row)
    return cells


def _pair_row(pair, request, output: Motion, seconds: float, kept: dict | None = None) -> dict:
    """One pair's figures; ``kept``: the zero-weight deviation measured elsewhere (on a rig)."""
    source = request.content
    skate = measures.foot_skate_pair(source, output)
    row = {
        "id": pair.id,
        "variant": pair.variant,
        "source": pair.source,
        "reference": pair.reference,
        "source_content": pair.source_content,
        "target_style": pair.target_style,
        "frames": output.num_frames,
        "stylize_seconds": seconds,
        "path_shape_error": measures.root_path_shape_error(source, output),
        "contact_f1": measures.contact_timing_f1(measures.motion_contacts(source), measures.motion_contacts(output)),
        "foot_skate_output": skate["output"],
        "foot_skate_source": skate["source"],
        "jitter": measures.jitter(output),
    }
    if any(w == 0 for w in pair.weights.values()):
        deviation = kept if kept is not None else measures.zero_weight_deviation(source, output, pair.weights)
        row["zero_weight_rotation_rad"] = deviation["rotation_rad"]
        row["zero_weight_root_cm"] = deviation["root_position_cm"]
    return row


def evaluate(
    stylizer_name: str | None,
    set_name: str,
    limit: int | None = None,
    *,
    config: str | Path | None = None,
    name: str | None = None,
    cleanup: bool = False,
    device: str = "cpu",
    split_name: str = "test",
    rig: str | None = None,
    rig_fps: float = 24.0,
    raw: bool = False,
) -> tuple[dict, dict]:
    """(report, artefacts for plotting) of one stylizer on one set.

    The stylizer is a baseline by ``stylizer_name`` or, with ``config``, the one that model config
    describes (then ``stylizer_name`` must be None); ``name`` overrides the report's stylizer name
    (default: the name, or the loaded stylizer's ``name``). ``cleanup``: run the product's
    foot-contact cleanup stage on each output before measuring it. ``split_name="val"`` builds the
    same kind of set from the VALIDATION split (pairs and the real clips FMD and jitter compare
    with): for choosing settings, so that the committed test-split figures are never tuned on.
    ``rig``: perform each pair on that rig at ``rig_fps`` (training.evaluation.on_rig); the cleanup
    stage then runs inside the product's pipeline, and the source is measured after the same round trip.
    ``raw``: the model alone, its post-processes (keep_path, smoothing) off and no cleanup, so the
    figures the pipeline meets by construction are not read as the model's (issue 15).
    """
    if (stylizer_name is None) == (config is None):
        raise ValueError("give exactly one of stylizer_name and config")
    if raw and (cleanup or rig):
        raise ValueError("raw figures are the model's alone: no cleanup and no rig")
    started = time.perf_counter()
    cache = load_cache(progress=False)
    split = load_split()
    if split_name == "test":
        pairs = load_pairs(set_name)[:limit]
    else:
        split = {**split, "test": split[split_name]}
        pairs = [Pair(**p) for p in make_set(set_name, load_index(), split)["pairs"]][:limit]
    stylizer = make_stylizer(stylizer_name, cache) if config is None else load_stylizer(config, device)
    label = name or stylizer_name or stylizer.name
    if raw and not name:
        label = f"{label}-raw"
    on_rig = evaluation_rig(rig) if rig else None
    if on_rig is not None and not name:
        label = f"{label}-on-{rig}"
    motions = clip_motions({c for p in pairs for c in p.clip_ids()}, cache)
    style_judge, content_judge = load_judge("style"), load_judge("content")
    cleanup_settings = CleanupSettings()

    rows, outputs, output_features = [], [], []
    for pair in pairs:
        request = pair_request(pair, motions, stylizer)
        if raw:
            request = dataclasses.replace(request, options={**request.options, **raw_options(stylizer)})
        t0 = time.perf_counter()
        kept = None
        if on_rig is None:
            output = stylizer.stylize(request)
        else:
            source, output, kept = stylize_on_rig(stylizer, request, on_rig, rig_fps, cleanup)
            request = dataclasses.replace(request, content=source)
        seconds = time.perf_counter() - t0
        if output.num_frames != request.content.num_frames:
            raise RuntimeError(f"{label} returned {output.num_frames} frames for {request.content.num_frames}")
        cleanup_seconds = None
        if cleanup and on_rig is None:  # on a rig, the pipeline ran it
            t0 = time.perf_counter()
            output = clean_stylized(request.content, output, pair.weights, cleanup_settings)
            cleanup_seconds = time.perf_counter() - t0
        rows.append(_pair_row(pair, request, output, seconds, kept))
        if cleanup_seconds is not None:
            rows[-1]["cleanup_seconds"] = cleanup_seconds
        outputs.append(output)
        output_features.append(motion_to_features(output)[0])

    for row, style, content in zip(rows, style_judge.predict(output_features), content_judge.predict(output_features)):
        row["judged_style"], row["judged_content"] = style, content

    cells = _real_cells(cache, split)
    real_rows = sorted({r for row in rows for r in cells[(row["target_style"], row["source_content"])]})
    real_motions = clip_motions([cache.clips[r].id for r in real_rows], cache).values()
    real_jitter = {r: measures.jitter(m) for r, m in zip(real_rows, real_motions)}
    for row in rows:
        cell = cells[(row["target_style"], row["source_content"])]
        row["jitter_ratio"] = row["jitter"] / float(np.mean([real_jitter[r] for r in cell]))

    judges = (style_judge, content_judge)
    real_embedding = dict(zip(real_rows, _embed(judges, [cache.clip_features(r) for r in real_rows])))
    fmd = _fmd_per_target_style(rows, _embed(judges, output_features), real_embedding, cells)

    report = {
        "stylizer": label,
        "set": set_name,
        "pairs": len(rows),
        "config": config_label(config) if config is not None else None,
        "cleanup": bool(cleanup),
        "raw": raw,
        "rig": {"name": rig, "fps": rig_fps} if rig else None,
        "command": _command(
            stylizer_name, set_name, limit, config, name, cleanup, device, split_name, rig, rig_fps, raw
        ),
        "summary": _summarise(rows, fmd),
        "seconds": time.perf_counter() - started,
        "rows": rows,
    }
    artefacts = {
        "pairs": pairs,
        "motions": motions,
        "outputs": outputs,
        "labels": (style_judge.labels, content_judge.labels),
    }
    return report, artefacts


def _command(
    stylizer_name, set_name, limit, config, name, cleanup, device, split_name="test", rig=None, rig_fps=24.0, raw=False
):
    """The command line that reproduces a run."""
    words = ["python", "-m", "training.evaluate"]
    if config is None:
        words += ["--stylizer", stylizer_name]
    else:
        words += ["--config", config_label(config)]
    if name:
        words += ["--name", name]
    words += ["--set", set_name]
    if limit:
        words += ["--limit", str(limit)]
    if cleanup:
        words.append("--cleanup")
    if raw:
        words.append("--raw")
    if device != "cpu":
        words += ["--device", device]
    if split_name != "test":
        words += ["--split", split_name]
    if rig:
        words += ["--rig", rig, "--rig-fps", f"{rig_fps:g}"]
    return shlex.join(words)


def _embed(judges, features) -> np.ndarray:
    """The judges' joint feature space: their clip embeddings side by side."""
    return np.concatenate([judge.embed(features) for judge in judges], axis=1)


def _fmd_per_target_style(rows, outputs: np.ndarray, real_embedding: dict, cells) -> float:
    """Mean over target styles of the Fréchet distance between the outputs asked for that style and
    the real test clips of that style with the same source contents.

    Per style, not pooled: the sets are balanced, so pooled outputs of the identity stylizer have
    the same style mix as the pooled real clips and would score as well as a perfect stylizer.
    """
    by_style = defaultdict(list)
    for k, row in enumerate(rows):
        by_style[row["target_style"]].append(k)
    distances = []
    for style, ks in by_style.items():
        real = np.array([real_embedding[r] for k in ks for r in cells[(style, rows[k]["source_content"])]])
        distances.append(measures.frechet_distance(outputs[ks], real))
    return float(np.mean(distances))


def _summarise(rows: list[dict], fmd: float) -> dict:
    full = [r for r in rows if r["variant"] == "full"]

    def share(subset, judged, target):
        return (
            measures.recognition_accuracy([r[judged] for r in subset], [r[target] for r in subset]) if subset else None
        )

    zero = [r["zero_weight_rotation_rad"] for r in rows if "zero_weight_rotation_rad" in r]
    zero_root = [r["zero_weight_root_cm"] for r in rows if "zero_weight_root_cm" in r]
    per_style = defaultdict(list)
    for r in full:
        per_style[r["target_style"]].append(r["judged_style"] == r["target_style"])
    return {
        "sra": share(full, "judged_style", "target_style"),
        "cra": share(full, "judged_content", "source_content"),
        "sra_all_pairs": share(rows, "judged_style", "target_style"),
        "cra_all_pairs": share(rows, "judged_content", "source_content"),
        "sra_per_style": {s: float(np.mean(v)) for s, v in sorted(per_style.items())},
        "fmd": fmd,
        "path_shape_error_median": float(np.median([r["path_shape_error"] for r in rows])),
        "path_shape_error_mean": float(np.mean([r["path_shape_error"] for r in rows])),
        "contact_f1_mean": float(np.mean([r["contact_f1"] for r in rows])),
        "foot_skate_output_mean": float(np.mean([r["foot_skate_output"] for r in rows])),
        "foot_skate_source_mean": float(np.mean([r["foot_skate_source"] for r in rows])),
        "jitter_ratio_median": float(np.median([r["jitter_ratio"] for r in rows])),
        "zero_weight_max_rotation_rad": float(max(zero)) if zero else None,
        "zero_weight_max_root_cm": float(max(zero_root)) if zero_root else None,
        "zero_weight_pairs": len(zero),
        "stylize_seconds_median": float(np.median([r["stylize_seconds"] for r in rows])),
    }


SUMMARY_COLUMNS = (
    ("SRA", "sra", "{:.2f}"),
    ("CRA", "cra", "{:.2f}"),
    ("FMD", "fmd", "{:.1f}"),
    ("path shape err (median)", "path_shape_error_median", "{:.3f}"),
    ("contact F1", "contact_f1_mean", "{:.2f}"),
    ("skate out / src (cm/frame)", ("foot_skate_output_mean", "foot_skate_source_mean"), "{:.2f}"),
    ("jitter ÷ real", "jitter_ratio_median", "{:.2f}"),
    ("zero-weight dev (rad)", "zero_weight_max_rotation_rad", "{:.1e}"),
)


def _cell(summary: dict, key, fmt: str) -> str:
    if isinstance(key, tuple):
        return " / ".join(_cell(summary, k, fmt) for k in key)
    value = summary.get(key)
    if value is None:
        return "—"
    if key == "zero_weight_max_rotation_rad" and value < ZERO:
        return "0"
    return fmt.format(value)


def summary_table(reports: list[dict]) -> str:
    header = "| set | stylizer | " + " | ".join(name for name, _, _ in SUMMARY_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(SUMMARY_COLUMNS) + 2)]
    for rep in reports:
        cells = " | ".join(_cell(rep["summary"], key, fmt) for _, key, fmt in SUMMARY_COLUMNS)
        lines.append(f"| {rep['set']} | {rep['stylizer']} | {cells} |")
    return "\n".join(lines)


def write_report(report: dict, artefacts: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "report.json", json.dumps(report, indent=1))
    s = report["summary"]
    per_style = "\n".join(f"| {k} | {v:.2f} |" for k, v in s["sra_per_style"].items())
    write_text(
        out_dir / "report.md",
        f"# {report['stylizer']} on the {report['set']} set ({report['pairs']} pairs)\n\n"
        f"Command: `{report['command']}` ({report['seconds']:.0f} s)\n\n"
        + (f"Model config: `{report['config']}`. " if report.get("config") else "")
        + f"Foot-contact cleanup stage: {'on' if report.get('cleanup') else 'off'}.\n\n"
        + summary_table([report])
        + f"\n\nOver all pairs, body-group variants included: SRA {s['sra_all_pairs']:.2f}, CRA {s['cra_all_pairs']:.2f}."
        f" Zero-weight pairs: {s['zero_weight_pairs']}.\n\n| target style | SRA |\n|---|---|\n{per_style}\n",
    )
    _plot(report, artefacts, out_dir)


def _plot(report: dict, artefacts: dict, out_dir: Path) -> None:
    from training.plots import stick_figure_strip

    rows = report["rows"]
    style_labels, content_labels = (list(labels) for labels in artefacts["labels"])
    for kind, judged, target, labels in (
        ("style", "judged_style", "target_style", style_labels),
        ("content", "judged_content", "source_content", content_labels),
    ):
        matrix, _ = measures.confusion_matrix([r[judged] for r in rows], [r[target] for r in rows], labels)
        plot_confusion(
            matrix,
            labels,
            out_dir / f"confusion_{kind}.png",
            f"{report['stylizer']} · {report['set']}: {kind} judge on outputs",
        )
    _plot_sra_bars(
        report["summary"]["sra_per_style"], out_dir / "sra_per_style.png", f"{report['stylizer']} · {report['set']}"
    )
    full = [i for i, r in enumerate(rows) if r["variant"] == "full"][:STRIP_PAIRS]
    for k, i in enumerate(full):
        pair, motions = artefacts["pairs"][i], artefacts["motions"]
        stick_figure_strip(
            [motions[pair.source], motions[pair.reference], artefacts["outputs"][i]],
            path=out_dir / f"strip_{k + 1}.png",
            titles=[
                f"source: {pair.source_content} · {pair.source_style}",
                f"reference: {pair.reference_content} · {pair.target_style}",
                f"output ({report['stylizer']}): judged {rows[i]['judged_content']} · {rows[i]['judged_style']}",
            ],
            frames=6,
        )


def _plot_sra_bars(per_style: dict, path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.bar(list(per_style), list(per_style.values()), color="#1f63b4")
    ax.set_ylim(0, 1)
    ax.set_ylabel("SRA")
    ax.set_title(f"{title}: SRA per target style", fontsize=10)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    with replacing(path) as temp:
        fig.savefig(temp)


def write_summary(reports_dir: Path = REPORTS_DIR) -> Path:
    """``reports_dir``/summary.md: a row per pair-set report (the suites keep their own summaries)."""
    reports = [json.loads(p.read_text()) for name in SETS for p in sorted((reports_dir / name).glob("*/report.json"))]
    order = {name: i for i, name in enumerate(STYLIZER_NAMES)}
    reports.sort(key=lambda r: (SETS.index(r["set"]), order.get(r["stylizer"], 99)))
    path = reports_dir / "summary.md"
    write_text(path, summary_table(reports) + "\n")
    return path


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--stylizer", choices=STYLIZER_NAMES)
    which.add_argument("--config", type=Path, help="a model config (JSON): evaluate the stylizer it describes")
    parser.add_argument(
        "--name", help="the report's stylizer name (default: the stylizer's own); reports/<set>/<name>/"
    )
    parser.add_argument("--set", choices=SETS, dest="set_name")
    parser.add_argument(
        "--suite",
        choices=("generalization", "own"),
        help="generalization: run every generalization set, raw and product (issue 15); own: the same runs "
        "and measures on the BVH files of --clips (training.evaluation.own_clips)",
    )
    parser.add_argument("--clips", type=Path, help="with --suite own: a folder of BVH files (.bvh, .bvh.gz)")
    parser.add_argument(
        "--references", type=Path, help="with --suite own: a folder of style references (default examples/clips)"
    )
    parser.add_argument("--limit", type=int, help="only the first N pairs (a quick look; not for reports)")
    parser.add_argument(
        "--cleanup", action="store_true", help="run the product's foot-contact cleanup stage on each output"
    )
    parser.add_argument(
        "--raw", action="store_true", help="the model alone: keep_path and smoothing off, no cleanup (issue 15)"
    )
    parser.add_argument("--device", default="cpu", help="device of a model config's stylizer (default cpu)")
    parser.add_argument(
        "--split", default="test", choices=("test", "val"), help="val: pairs of the validation split, for tuning"
    )
    parser.add_argument("--rig", choices=EVALUATION_RIGS, help="perform every pair on this rig (product pipeline)")
    parser.add_argument("--rig-fps", type=float, default=24.0, help="the rig's frame rate with --rig (default 24)")
    parser.add_argument(
        "--rescore", metavar="REASON", help="score a model version on the test split again (logged with the reason)"
    )
    parser.add_argument("--out", type=Path, default=REPORTS_DIR)
    parser.add_argument("--summary", action="store_true", help="rewrite reports/summary.md from the reports")
    args = parser.parse_args(argv)
    chosen = args.stylizer or args.config
    if chosen and args.suite:
        return _run_suite(args, argv)
    sealed = args.config is not None and args.set_name and args.split == "test" and not args.limit
    if sealed:  # a learned model on the test split: once per version, on the record
        fingerprint = test_log.model_fingerprint(args.config)
        logged_set = " ".join(
            [args.set_name, *(["cleanup"] if args.cleanup else []), *(["raw"] if args.raw else []),
             *([f"on {args.rig}"] if args.rig else [])]
        )  # fmt: skip
        try:
            test_log.check_unscored(fingerprint, logged_set, args.rescore)
        except test_log.AlreadyScored as e:
            raise SystemExit(str(e)) from None
    if chosen and args.set_name:
        report, artefacts = evaluate(
            args.stylizer, args.set_name, args.limit,
            config=args.config, name=args.name, cleanup=args.cleanup, device=args.device, split_name=args.split,
            rig=args.rig, rig_fps=args.rig_fps, raw=args.raw,
        )  # fmt: skip
        out_dir = args.out / args.set_name / report["stylizer"]
        write_report(report, artefacts, out_dir)
        print(summary_table([report]))
        print(f"{report['seconds']:.1f} s; report in {out_dir}")
        if sealed:
            test_log.append_score(report["stylizer"], fingerprint, logged_set, report["summary"], args.rescore or "")
    elif not args.summary:
        parser.error("give --stylizer (or --config) and --set, or --summary")
    if args.summary or (chosen and args.set_name):
        print(f"summary: {write_summary(args.out)}")
    return 0


def _run_suite(args, argv) -> int:
    from training.evaluation import suite

    if args.stylizer == RetrievalStylizer.name:
        raise SystemExit("the retrieval baseline needs label options; the generalization suite has none")
    stylizer = STYLIZERS[args.stylizer]() if args.config is None else load_stylizer(args.config, args.device)
    label = args.name or args.stylizer or stylizer.name
    if args.suite == "own":
        if args.clips is None:
            raise SystemExit("--suite own needs --clips FOLDER (BVH files)")
        try:
            references = args.references or suite.own_clips.DEFAULT_REFERENCES
            report = suite.run_own_clips(stylizer, label, args.clips, references)
        except ValueError as e:
            raise SystemExit(str(e)) from None
    else:
        report = suite.run_suite(stylizer, label, limit=args.limit)
    report["command"] = shlex.join(["python", "-m", "training.evaluate", *argv])
    folder = args.out / ("generalization" if args.suite == "generalization" else "own_clips")
    out_dir = suite.write_suite_report(report, folder / label)
    print(suite.suite_table([report]))
    print(f"{report['seconds']:.0f} s; report in {out_dir}; summary: {suite.write_suite_summary(folder)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
