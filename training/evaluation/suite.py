"""The generalization suite (issue 15): every generalization set through one stylizer, raw and product.

    python -m training.evaluate --suite generalization --stylizer statistics
    python -m training.evaluate --suite generalization --config weights/stylizer.json

Each entry of each set (training.evaluation.generalization_sets, plus one self-reference run per
subject clip) is stylized twice:

- ``raw``: the stylizer's own output, on the canonical skeleton at 30 fps, with its post-processes
  switched off (``keep_path`` and smoothing, where it has them) and no foot-contact cleanup;
- ``product``: the shipped pipeline (core.runtime.stylize_rig_motion: the stylizer's shipped
  settings and the cleanup, on the content's own rig and frame rate), read back onto the canonical
  skeleton at 30 fps for measuring.

So a figure that the pipeline meets by construction (path shape, contacts) is never read as the
model's. Every run is measured with the label-free measures (training.evaluation.label_free) against
the canonical source; the judges score what they were trained to know (the dataset-2 style judge
on dataset-2 target styles, the content judge on dataset-2 contents, the dataset-1 style judge,
restricted to the unseen half, on unseen-style references). Outputs: reports/generalization/
<stylizer>/report.json and report.md.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.io.atomic import write_text
from core.motion.motion import Motion
from core.ops.features import motion_to_features
from core.runtime import RigMotion, stylize_rig_motion, to_canonical
from core.stylize.request import StyleRequest
from training.evaluation import label_free as L
from training.evaluation import own_clips
from training.evaluation.generalization_sets import (
    SETS,
    Entry,
    entry_motions,
    load_generalization_set,
    load_styles,
    self_reference_entries,
)
from training.judges import load_judge

RUNS = ("raw", "product")
# The post-processes a stylizer may apply after its model (core.stylize.diffusion): off for "raw".
POST_PROCESS_OFF = {"keep_path": False, "smooth": 0.0}
# label_free.events_in names an event; event_retention names the peak that shows it
SCALE_CLIPS = 280  # real training takes the style-shift unit is measured on (4 per content x style cell)
EXCURSION_FLOOR_CM = 5.0  # feet that swing less than this about the pelvis (a wave) have no stride to keep
PEAK_OF_EVENT = {"jump": "pelvis_rise", "kick": "foot_height", "raised_hand": "hand_rise"}


def raw_options(stylizer) -> dict:
    """Request options that switch the stylizer's post-processes off (none for the baselines)."""
    defaults = getattr(stylizer, "defaults", {})
    return {k: v for k, v in POST_PROCESS_OFF.items() if k in defaults}


class _Recorder:
    """Passes the pipeline's request to a stylizer and makes the raw run of the same request, so the
    raw run's source is exactly what the pipeline fed the model. A stylizer that samples apart from
    its post-processes (``sample`` / ``finish``: the diffusion stylizer) samples once for both runs."""

    def __init__(self, stylizer):
        self.stylizer, self.name = stylizer, stylizer.name
        self.request = self.raw = None

    def stylize(self, request: StyleRequest) -> Motion:
        self.request = request
        raw_request = StyleRequest(request.content, request.reference, options=raw_options(self.stylizer))
        if not hasattr(self.stylizer, "sample"):
            self.raw = self.stylizer.stylize(raw_request)
            return self.stylizer.stylize(request)
        sampled = self.stylizer.sample(request)
        if sampled is None:
            self.raw = request.content
            return request.content
        self.raw = self.stylizer.finish(request.content, sampled, raw_request.options)
        return self.stylizer.finish(request.content, sampled, request.options)


def stylize_entry(stylizer, content: RigMotion, reference: RigMotion) -> dict[str, Motion]:
    """Canonical 30 fps source, reference, raw output and product output of one entry."""
    recorder = _Recorder(stylizer)
    product = stylize_rig_motion(content, reference, stylizer=recorder)
    return {
        "source": recorder.request.content,
        "reference": recorder.request.reference,
        "raw": recorder.raw,
        "product": to_canonical(RigMotion(content.rig, product)),
    }


def measure_pair(source: Motion, reference: Motion, output: Motion, scale: np.ndarray | None) -> dict:
    """Every label-free figure of one output; event and seam figures only where the source has them,
    style shift only with a ``scale``."""
    row = {**L.pace(source, output, reference), **L.feet(source, output)}
    row.update({f"off_hinge_{k}_deg": v for k, v in L.off_hinge_deg(output).items()})
    row.update({f"limit_violations_{k}": v for k, v in L.joint_limit_violations(output).items()})
    row["floor_penetration_cm"] = L.floor_penetration(source, output)
    events = [PEAK_OF_EVENT[k] for k, present in L.events_in(source).items() if present]
    if events:
        retention = L.event_retention(source, output)
        row.update({f"retention_{peak}": retention[peak] for peak in events})
    if L.is_cyclic(source):
        row["seam_added_cm"] = L.loop_seam(output) - L.loop_seam(source)
    if scale is not None:
        shift = L.style_shift(source, reference, output, scale)
        row["style_shift"], row["style_toward"] = shift["fraction"], shift["toward"]
    return row


def descriptor_scale_of_real_clips(count: int = SCALE_CLIPS) -> np.ndarray:
    """The spread of ``style_descriptor`` over real dataset-2 training takes (spread over the
    split's cells): a fixed, judge-free unit for style shift, the same for every set and stylizer."""
    from training.data.cache import load_cache
    from training.data.split import load_split, training_takes
    from training.evaluation.pairs import clip_motions

    cache = load_cache(progress=False)
    train, _ = training_takes(cache.clips, load_split(), max_train=count)
    return L.descriptor_scale([L.style_descriptor(m) for m in clip_motions(train, cache).values()])


JUDGE_FAMILIES = ("cnn", "knn", "seq")  # the CNN judges ("style", "content") and two others (training.judges)


def judge_kind(family: str, target: str) -> str:
    return target if family == "cnn" else f"{family}_{target}"


def judged_key(figure: str, family: str) -> str:
    """Row key of a judged figure: the CNN's under its own name, the others' suffixed."""
    return figure if family == "cnn" else f"{figure}_{family}"


class Judges:
    """The judges a generalization row can be scored by, and which label each may judge: every
    family judges the dataset-2 style and content; the dataset-1 style judge (a CNN) the unseen half."""

    def __init__(self):
        self.style = {f: load_judge(judge_kind(f, "style")) for f in JUDGE_FAMILIES}
        self.content = {f: load_judge(judge_kind(f, "content")) for f in JUDGE_FAMILIES}
        self.dataset1 = load_judge("style_dataset1")
        self.unseen = tuple(load_styles()["unseen_half"])
        self.unseen_columns = [self.dataset1.labels.index(s) for s in self.unseen]

    def score(self, entry: Entry, outputs: list[Motion]) -> list[dict]:
        """Per output: judged labels, where the entry's labels are ones a judge knows."""
        features = [motion_to_features(m)[0] for m in outputs]
        rows = [{} for _ in outputs]
        reference, content = entry.reference, entry.content
        for family in JUDGE_FAMILIES:
            if reference.dataset == "dataset-2" and reference.clip != content.clip:
                for row, label in zip(rows, self.style[family].predict(features)):
                    row[judged_key("style_correct", family)] = label == reference.style
            if content.dataset == "dataset-2":
                for row, label in zip(rows, self.content[family].predict(features)):
                    row[judged_key("content_correct", family)] = label == content.content
        if reference.dataset == "dataset-1" and reference.style in self.unseen:
            probabilities = self.dataset1.predict_proba(features)[:, self.unseen_columns]
            for row, k in zip(rows, probabilities.argmax(axis=1)):
                row["unseen_style_correct"] = self.unseen[k] == reference.style
        return rows


def run_set(stylizer, name: str, judges: Judges, scale: np.ndarray, limit: int | None = None, log=print) -> list[dict]:
    """Rows (one per entry and run) of one committed set: its pairs, then its self-reference runs."""
    pairs = load_generalization_set(name)[:limit]
    return run_entries(stylizer, name, pairs, self_reference_entries(pairs), judges, scale, log)


def with_root_motion(entry: Entry) -> Entry:
    """The entry with its content clip as captured (root motion kept): what the same reference does
    to the clip when it travels is the yardstick of what it does in place."""
    return Entry(f"{entry.id}-root-motion", entry.subject, replace(entry.content, in_place=False), entry.reference)


def run_entries(
    stylizer, name: str, pairs: list[Entry], selves: list[Entry], judges: Judges | None, scale, log=print
) -> list[dict]:
    """Rows of the ``pairs`` and the ``selves`` (self-reference runs) as set ``name``; ``judges``
    None: no judged labels; ``scale`` None: no style shift."""
    motions, seconds = {}, {}
    for entry in pairs + selves + [with_root_motion(e) for e in pairs if e.content.in_place]:
        t0 = time.perf_counter()
        motions[entry.id] = stylize_entry(stylizer, *entry_motions(entry))
        seconds[entry.id] = time.perf_counter() - t0
    rows = []
    for kind, entries in (("pair", pairs), ("self", selves)):
        for entry in entries:
            m = motions[entry.id]
            outputs = [m[run] for run in RUNS]
            judged = judges.score(entry, outputs) if kind == "pair" and judges else [{} for _ in RUNS]
            for run, labels in zip(RUNS, judged):
                if kind == "pair":
                    figures = measure_pair(m["source"], m["reference"], m[run], scale)
                    rooted = motions.get(with_root_motion(entry).id, {}).get(run)
                    if rooted is not None and L.foot_excursion(rooted) >= EXCURSION_FLOOR_CM:
                        figures["excursion_vs_root_motion"] = L.foot_excursion(m[run]) / L.foot_excursion(rooted)
                else:
                    figures = L.self_reference(m["source"], m[run])
                rows.append({"set": name, "id": entry.id, "kind": kind, "run": run, **figures, **labels})
            rows[-1]["seconds"] = seconds[entry.id]
    log(f"[{name}] {len(pairs)} pairs, {len(selves)} self-reference runs, {sum(seconds.values()):.0f} s")
    return rows


# Figures of a set's summary: (row key, how rows are reduced, which rows).
SUMMARY = (
    ("self_error_pct", "median", "self", "joint_error_pct"),
    ("self_distance_ratio", "median", "self", "distance_ratio"),
    ("self_contact_f1", "median", "self", "contact_f1"),
    ("retention_pelvis_rise", "median", "pair", "retention_pelvis_rise"),
    ("retention_foot_height", "median", "pair", "retention_foot_height"),
    ("retention_hand_rise", "median", "pair", "retention_hand_rise"),
    ("distance_vs_source", "median", "pair", "distance_vs_source"),
    ("cadence_vs_source", "median", "pair", "cadence_vs_source"),
    ("excursion_vs_root_motion", "median", "pair", "excursion_vs_root_motion"),
    ("distance_vs_reference", "median", "pair", "distance_vs_reference"),
    ("cadence_vs_reference", "median", "pair", "cadence_vs_reference"),
    ("stance_height_change_cm", "median", "pair", "stance_height_change_cm"),
    ("skate_output", "median", "pair", "skate_output"),
    ("skate_source", "median", "pair", "skate_source"),
    ("contact_f1", "median", "pair", "contact_f1"),
    ("knee_off_hinge_p99_deg", "median", "pair", "off_hinge_knee_deg"),
    ("elbow_off_hinge_p99_deg", "median", "pair", "off_hinge_elbow_deg"),
    ("knee_limit_violations", "mean", "pair", "limit_violations_knee"),
    ("floor_penetration_cm", "median", "pair", "floor_penetration_cm"),
    ("seam_added_cm", "median", "pair", "seam_added_cm"),
    ("style_shift", "median", "pair", "style_shift"),
    ("style_toward", "mean", "pair", "style_toward"),
    *((judged_key("sra", f), "mean", "pair", judged_key("style_correct", f)) for f in JUDGE_FAMILIES),
    ("sra_unseen", "mean", "pair", "unseen_style_correct"),
    *((judged_key("cra", f), "mean", "pair", judged_key("content_correct", f)) for f in JUDGE_FAMILIES),
)


def summarise(rows: list[dict]) -> dict:
    """{set: {run: {figure: value, figure_n: rows it is over}}}; a figure no row has is left out."""
    grouped = defaultdict(list)
    for row in rows:
        grouped[row["set"], row["run"]].append(row)
    out: dict = defaultdict(dict)
    for (name, run), group in grouped.items():
        figures = {}
        for figure, reduce, kind, key in SUMMARY:
            values = [float(r[key]) for r in group if r["kind"] == kind and key in r]
            if values:
                figures[figure] = float(np.median(values) if reduce == "median" else np.mean(values))
                figures[f"{figure}_n"] = len(values)
        out[name][run] = figures
    return dict(out)


def run_suite(stylizer, label: str, sets=SETS, limit: int | None = None, log=print) -> dict:
    started = time.perf_counter()
    judges, scale = Judges(), descriptor_scale_of_real_clips()
    rows = [row for name in sets for row in run_set(stylizer, name, judges, scale, limit, log)]
    return _report("generalization", label, list(sets), limit, started, rows)


def run_own_clips(
    stylizer, label: str, clips: Path, references: Path = own_clips.DEFAULT_REFERENCES, log=print
) -> dict:
    """The suite's runs and measures on a folder of anyone's BVH files (training.evaluation.own_clips)."""
    started = time.perf_counter()
    pairs, selves = own_clips.own_entries(clips, references)
    scale = descriptor_scale_of_real_clips() if own_clips.has_training_data() else None
    rows = run_entries(stylizer, own_clips.OWN, pairs, selves, None, scale, log)
    report = _report(own_clips.OWN, label, [own_clips.OWN], None, started, rows)
    report["clips"], report["references"] = str(clips), str(references)
    return report


def _report(suite: str, label: str, sets: list[str], limit: int | None, started: float, rows: list[dict]) -> dict:
    return {
        "suite": suite,
        "stylizer": label,
        "sets": sets,
        "limit": limit,
        "seconds": time.perf_counter() - started,
        "summary": summarise(rows),
        "rows": rows,
    }


TABLE_FIGURES = (
    ("self err %", "self_error_pct", ".1f"),
    ("self dist", "self_distance_ratio", ".2f"),
    ("self F1", "self_contact_f1", ".2f"),
    ("pelvis rise kept", "retention_pelvis_rise", ".2f"),
    ("foot height kept", "retention_foot_height", ".2f"),
    ("hand rise kept", "retention_hand_rise", ".2f"),
    ("dist / src", "distance_vs_source", ".2f"),
    ("cadence / src", "cadence_vs_source", ".2f"),
    ("excursion / with root", "excursion_vs_root_motion", ".2f"),
    ("stance Δh cm", "stance_height_change_cm", "+.1f"),
    ("skate out / src", ("skate_output", "skate_source"), ".1f"),
    ("contact F1", "contact_f1", ".2f"),
    ("knee off-hinge °", "knee_off_hinge_p99_deg", ".1f"),
    ("seam added cm", "seam_added_cm", "+.1f"),
    ("style shift", "style_shift", ".2f"),
    ("toward", "style_toward", ".2f"),
    ("SRA " + " / ".join(JUDGE_FAMILIES), tuple(judged_key("sra", f) for f in JUDGE_FAMILIES), ".2f"),
    ("SRA unseen", "sra_unseen", ".2f"),
    ("CRA " + " / ".join(JUDGE_FAMILIES), tuple(judged_key("cra", f) for f in JUDGE_FAMILIES), ".2f"),
)


def _cell(figures: dict, key, fmt: str) -> str:
    """One figure, or several side by side ("a / b": skate output beside source, a judged figure
    per judge family)."""
    if isinstance(key, tuple):
        return "–" if key[0] not in figures else " / ".join(_cell(figures, k, fmt) for k in key)
    return format(figures[key], fmt) if key in figures else "–"


def suite_table(reports: list[dict]) -> str:
    """One markdown table: a row per set, stylizer and run."""
    header = ["set", "stylizer", "run", *(name for name, _, _ in TABLE_FIGURES)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in dict.fromkeys(n for report in reports for n in report["sets"]):
        for report in reports:
            for run in RUNS:
                figures = report["summary"].get(name, {}).get(run)
                if figures is None:
                    continue
                cells = [_cell(figures, key, fmt) for _, key, fmt in TABLE_FIGURES]
                lines.append("| " + " | ".join([name, report["stylizer"], run, *cells]) + " |")
    return "\n".join(lines) + "\n"


def write_suite_report(report: dict, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "report.json", json.dumps(report, indent=1) + "\n")
    text = (
        f"# Generalization suite: {report['stylizer']}\n\n"
        f"Command: `{report.get('command', '')}`; {report['seconds']:.0f} s.\n\n" + suite_table([report])
    )
    write_text(out_dir / "report.md", text)
    return out_dir


def write_suite_summary(folder: Path) -> Path:
    """``folder``/summary.md: the table of every stylizer's report.json under ``folder``."""
    reports = [json.loads(p.read_text()) for p in sorted(folder.glob("*/report.json"))]
    commands = "".join(f"- `{r.get('command', '')}` ({r['seconds']:.0f} s)\n" for r in reports)
    path = folder / "summary.md"
    write_text(path, "# Generalization suite\n\n" + suite_table(reports) + "\nCommands:\n\n" + commands)
    return path
