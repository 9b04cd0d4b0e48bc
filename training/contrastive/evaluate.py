"""Evaluate exported contrastive encoders E_c / E_s (DESIGN §6-7, issue 6) and write their report.

    python -m training.contrastive.evaluate --encoders weights/encoders/encoders [--out reports/encoders/NAME]
    python -m training.contrastive.evaluate --stand-in [--out reports/encoders/stand_in]   # sanity baseline

What it measures, all from the committed take-level split (``training/splits/bandai_split.json``):

1. Linear probes on dataset-2 (``training.evaluation.probes``: multinomial logistic regression,
   standardised codes, L-BFGS): fitted on the codes of TRAIN-split windows, scored on TEST-split
   windows. style <- E_s (7 styles, target >= 0.95), content <- E_c (10 contents, >= 0.95) and the
   leakage probes style <- E_c (<= 0.40, chance 1/7) and content <- E_s (<= 0.30, chance 1/10).
   E_c's code sequence is mean-pooled over time. Windows are ``window`` frames (the encoder config's
   window length when it names one, else 60 = 2 s at 30 fps) every ``stride`` frames; a clip shorter
   than a window gives one window padded by repeating its last frame. Window accuracy is the figure
   of record (pass/fail); per clip two more: the majority vote of the clip's window predictions
   ("clip vote", ties to the larger summed logit) and a probe fitted and scored on clip-mean codes
   ("clip pooled"). Optionally style from each body-group code of E_s.
2. Style retrieval on dataset-1 (15 styles never seen in training; its normal-only contents
   call/punch/slash/kick/respond/dance are left out, as for the dataset-1 judge): clip codes are the
   mean of the clip's window E_s codes; leave-one-content-out: the queries are the clips of one
   content, the gallery the clips of every other content, so a query's own content (and take) is
   never in its gallery. Cosine kNN: top-1 (k=1), k=5 majority vote (ties to the larger summed
   similarity) and top-5 hit (the query's style among the 5 nearest). Baseline run alongside: the
   same kNN on hand-made clip features (mean and std over frames of the 134 raw features, z-scored
   with dataset-2 training-clip statistics). Chance 1/15.
3. t-SNE (``training.contrastive.tsne``, exact, seeded) of E_s and E_c (pooled) codes of test
   windows, each coloured by style and by content: ``tsne.png``. Probe confusion matrices too.
4. ``report.md`` and ``metrics.json`` in the output folder, with the command, the encoder's config
   summary, chance levels and pass/fail against the thresholds.

``--stand-in`` evaluates ``StatisticsEncoder``, a fixed untrained function of window statistics
(seeded random projections): the numbers any learned encoder must beat by far on the leakage side.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

import numpy as np

from core.io.atomic import replacing, write_text
from training.data.cache import FeatureCache, load_cache
from training.data.paths import REPO_ROOT
from training.data.split import load_split
from training.evaluation.probes import fit_linear_probe, knn_accuracy, pool_codes

WINDOW = 60
STRIDE = 30
FAST_TRAIN_STRIDE = 60  # --fast: training windows every 2 s (the test windows stay at STRIDE)
BATCH = 256
TSNE_POINTS = 1000
FAST_TSNE_POINTS = 400
SEED = 0
GROUP_NAMES = ("root", "torso", "left_arm", "right_arm", "left_leg", "right_leg")
DATASET1_EXCLUDED_CONTENTS = ("call", "punch", "slash", "kick", "respond", "dance-short", "dance-long")
KNN_KS = (1, 5)

# probe key -> (label kind, code kind, comparison, threshold, human name)
KNN_READOUT_K = 10
PROBES = {
    "style_from_Es": ("style", "style", ">=", 0.95, "style ← E_s"),
    "content_from_Ec": ("content", "content", ">=", 0.95, "content ← E_c"),
    "style_from_Ec": ("style", "content", "<=", 0.40, "style ← E_c (leak)"),
    "content_from_Es": ("content", "style", "<=", 0.30, "content ← E_s (leak)"),
}


# --------------------------------------------------------------------------- encoders


class StatisticsEncoder:
    """A stand-in encoder with the ``Encoders.encode`` interface: fixed seeded random projections
    (no training) of window statistics. content: each 4-frame chunk's mean features projected to
    ``dc`` (a sequence, T' = T // 4); style: tanh of a projection of the window's per-channel mean
    and std to ``ds``; groups: six more such projections to ``dg`` each."""

    def __init__(self, dim: int = 134, dc: int = 32, ds: int = 32, dg: int = 8, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.content_proj = rng.normal(size=(dim, dc)) / np.sqrt(dim)
        self.style_proj = rng.normal(size=(2 * dim, ds)) / np.sqrt(2 * dim)
        self.group_proj = rng.normal(size=(len(GROUP_NAMES), 2 * dim, dg)) / np.sqrt(2 * dim)
        self.config = {
            "kind": "stand-in: seeded random projections of window statistics",
            "seed": seed,
            "content_dim": dc,
            "style_dim": ds,
            "group_dim": dg,
        }

    def encode(self, features: np.ndarray) -> dict[str, np.ndarray]:
        x = np.asarray(features, dtype=np.float64)
        n, t, d = x.shape
        chunks = x[:, : t // 4 * 4].reshape(n, t // 4, 4, d).mean(2)
        stats = np.concatenate([x.mean(1), x.std(1)], axis=1)
        return {
            "content": (chunks @ self.content_proj).astype(np.float32),
            "style": np.tanh(stats @ self.style_proj).astype(np.float32),
            "groups": np.tanh(np.einsum("nd,gde->nge", stats, self.group_proj)).astype(np.float32),
        }


def load_real_encoders(path_stem: str | Path):
    """``core.models.encoders.load_encoders`` (imported late: the module lands with issue 6)."""
    from core.models.encoders import load_encoders

    return load_encoders(str(path_stem))


def run_name(path_stem: str | Path) -> str:
    """A report name for a stem: its folder's name for the default export name (runs/full/encoders -> full)."""
    stem = Path(path_stem)
    if stem.suffix in (".json", ".safetensors"):
        stem = stem.with_suffix("")
    return stem.parent.name if stem.name.startswith("encoders") and stem.parent.name else stem.name


def encoder_config(encoders, path_stem: str | Path | None = None) -> dict:
    """The encoder's config as a dict: the checkpoint JSON (``meta`` of a loaded ``Encoders``, or the
    file beside the weights), else its ``config`` attribute."""
    meta = getattr(encoders, "meta", None)
    if isinstance(meta, dict) and meta:
        return meta
    if path_stem is not None:
        path = Path(str(path_stem) + ".json")
        if path.is_file():
            return json.loads(path.read_text())
    config = getattr(encoders, "config", None)
    if is_dataclass(config):
        config = asdict(config)
    elif config is not None and not isinstance(config, dict):
        config = dict(vars(config)) if hasattr(config, "__dict__") else {"config": repr(config)}
    return config or {}


def find_key(config, names: tuple[str, ...]):
    """The first value under any of ``names`` in a nested dict (breadth first), or None."""
    queue = [config]
    while queue:
        node = queue.pop(0)
        if isinstance(node, dict):
            for name in names:
                if name in node and not isinstance(node[name], (dict, list)):
                    return node[name]
            queue += [v for v in node.values() if isinstance(v, dict)]
    return None


def nested(config, *keys):
    """config[k1][k2]... or None."""
    for key in keys:
        if not isinstance(config, dict) or key not in config:
            return None
        config = config[key]
    return config


def config_window(config: dict) -> int:
    """The training window length: training.config.data.window of an exported checkpoint, else any
    window-like key, else WINDOW."""
    value = nested(config, "training", "config", "data", "window")
    if value is None:
        value = find_key(config, ("window", "window_length", "window_frames", "frames_per_window", "clip_frames"))
    return int(value) if isinstance(value, (int, float)) and value >= 8 else WINDOW


def config_summary(config: dict, limit: int = 100) -> dict:
    """Scalar entries of the config (nested keys joined with '.'), at most ``limit``."""
    out: dict = {}

    def walk(node, prefix):
        for key, value in node.items():
            if len(out) >= limit:
                return
            if key in ("smoke", "stats"):  # the trainer's smoke-test table, normalisation arrays
                continue
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, name + ".")
            elif isinstance(value, (str, int, float, bool)) or value is None:
                out[name] = value if not isinstance(value, str) or len(value) < 200 else value[:197] + "..."
            elif isinstance(value, list) and len(value) <= 8 and all(isinstance(v, (str, int, float)) for v in value):
                out[name] = value

    if isinstance(config, dict):
        walk(config, "")
    return out


# --------------------------------------------------------------------------- windows and codes


@dataclass(frozen=True)
class Windows:
    """Windows of cache clips: (clip row, start frame) each, plus the clip's labels."""

    rows: np.ndarray  # (N,) cache clip index
    starts: np.ndarray  # (N,)
    length: int
    style: np.ndarray  # (N,) str
    content: np.ndarray  # (N,) str

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, keep) -> Windows:
        keep = np.asarray(keep)
        return Windows(self.rows[keep], self.starts[keep], self.length, self.style[keep], self.content[keep])


def make_windows(cache: FeatureCache, clip_rows, length: int = WINDOW, stride: int = STRIDE) -> Windows:
    """Windows every ``stride`` frames of each clip; one (padded later) for a clip shorter than ``length``."""
    lengths = cache.lengths()
    rows, starts = [], []
    for row in clip_rows:
        s = np.arange(0, max(int(lengths[row]) - length, 0) + 1, stride)
        rows.append(np.full(len(s), row))
        starts.append(s)
    rows = np.concatenate(rows).astype(np.int64)
    styles = np.array([cache.clips[r].style for r in rows])
    contents = np.array([cache.clips[r].content for r in rows])
    return Windows(rows, np.concatenate(starts).astype(np.int64), length, styles, contents)


def gather(cache: FeatureCache, windows: Windows, index=slice(None)) -> np.ndarray:
    """Features (B, length, 134) float32; frames past a clip's end repeat its last frame."""
    rows, starts = windows.rows[index], windows.starts[index]
    frames = starts[:, None] + np.arange(windows.length)[None, :]
    last = cache.lengths()[rows][:, None] - 1
    return cache.features[cache.offsets[rows][:, None] + np.minimum(frames, last)]


def encode_windows(encoders, cache: FeatureCache, windows: Windows, batch: int = BATCH) -> dict[str, np.ndarray]:
    """content (N, Dc) mean-pooled over time, style (N, Ds), groups (N, 6, Dg) when given."""
    parts: dict[str, list] = {"content": [], "style": [], "groups": []}
    for begin in range(0, len(windows), batch):
        codes = encoders.encode(gather(cache, windows, slice(begin, begin + batch)))
        parts["content"].append(pool_codes(np.asarray(codes["content"], dtype=np.float64)))
        parts["style"].append(np.asarray(codes["style"], dtype=np.float64))
        if codes.get("groups") is not None:
            parts["groups"].append(np.asarray(codes["groups"], dtype=np.float64))
    out = {k: np.concatenate(v) for k, v in parts.items() if v}
    for key, value in out.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(f"the encoder returned non-finite {key} codes")
    return out


def clip_means(codes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique clip rows, mean code per clip)."""
    clips, inverse = np.unique(rows, return_inverse=True)
    sums = np.zeros((len(clips), codes.shape[1]))
    np.add.at(sums, inverse, codes)
    return clips, sums / np.bincount(inverse)[:, None]


# --------------------------------------------------------------------------- probes


def probe_suite(train_codes, train_labels, train_rows, test_codes, test_labels, test_rows) -> dict:
    """Window accuracy, clip vote and clip-pooled accuracy of linear probes, with chance levels and
    the test predictions (for a confusion matrix)."""
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    probe = fit_linear_probe(train_codes, train_labels)
    logits = probe.logits(test_codes)
    predicted = probe.classes[np.argmax(logits, axis=1)]
    # clip vote: most windows, ties to the larger summed logit
    clips, inverse = np.unique(test_rows, return_inverse=True)
    votes = np.zeros((len(clips), len(probe.classes)))
    np.add.at(votes, (inverse, np.argmax(logits, axis=1)), 1.0)
    summed = np.zeros_like(votes)
    np.add.at(summed, inverse, logits)
    order = votes + 1e-6 * (summed - summed.min()) / max(np.ptp(summed), 1e-12)
    clip_truth = np.empty(len(clips), dtype=test_labels.dtype)
    clip_truth[inverse] = test_labels
    vote = float(np.mean(probe.classes[np.argmax(order, axis=1)] == clip_truth))
    # clip pooled: a probe on clip-mean codes
    train_clips, train_means = clip_means(pool_codes(train_codes), np.asarray(train_rows))
    train_clip_labels = np.empty(len(train_clips), dtype=train_labels.dtype)
    train_clip_labels[np.searchsorted(train_clips, train_rows)] = train_labels
    _, test_means = clip_means(pool_codes(test_codes), np.asarray(test_rows))
    pooled = fit_linear_probe(train_means, train_clip_labels)
    classes, counts = np.unique(train_labels, return_counts=True)
    return {
        "accuracy": float(np.mean(predicted == test_labels)),
        "clip_vote_accuracy": vote,
        "clip_pooled_accuracy": float(np.mean(pooled.predict(test_means) == clip_truth)),
        "uniform_chance": 1.0 / len(classes),
        "majority_chance": float(np.mean(test_labels == classes[np.argmax(counts)])),
        "num_classes": len(classes),
        "num_train_windows": len(train_labels),
        "num_test_windows": len(test_labels),
        "num_train_clips": len(train_clips),
        "num_test_clips": len(clips),
        "classes": [str(c) for c in probe.classes],
        "_predicted": predicted,
    }


def passes(value: float, comparison: str, threshold: float) -> bool:
    return value >= threshold if comparison == ">=" else value <= threshold


# --------------------------------------------------------------------------- retrieval


def leave_one_content_out(contents) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(content, query indices, gallery indices) per content: the queries are the items of that
    content, the gallery every item of another content."""
    contents = np.asarray(contents)
    return [(c, np.flatnonzero(contents == c), np.flatnonzero(contents != c)) for c in sorted(set(contents.tolist()))]


def knn_style_retrieval(codes, styles, contents, ks=KNN_KS) -> dict:
    """Leave-one-content-out cosine kNN of the style label (see the module doc)."""
    x = np.asarray(codes, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    styles = np.asarray(styles)
    hits = {"top1": [], **{f"k{k}_vote": [] for k in ks if k > 1}, "top5_hit": []}
    per_content = {}
    for content, queries, gallery in leave_one_content_out(contents):
        sims = x[queries] @ x[gallery].T
        order = np.argsort(-sims, axis=1, kind="stable")
        correct = []
        for qi, q in enumerate(queries):
            nearest = order[qi]
            labels = styles[gallery[nearest]]
            hits["top1"].append(labels[0] == styles[q])
            correct.append(labels[0] == styles[q])
            hits["top5_hit"].append(styles[q] in set(labels[:5].tolist()))
            for k in ks:
                if k == 1:
                    continue
                score = Counter()
                for label, sim in zip(labels[:k], sims[qi, nearest[:k]]):
                    score[label] += 1.0 + 1e-6 * sim  # votes, ties to the larger summed similarity
                hits[f"k{k}_vote"].append(max(score, key=score.get) == styles[q])
        per_content[content] = {"queries": len(queries), "top1": float(np.mean(correct))}
    out = {key: float(np.mean(v)) for key, v in hits.items()}
    out["per_content"] = per_content
    out["num_clips"] = len(styles)
    out["num_styles"] = len(set(styles.tolist()))
    out["chance"] = 1.0 / out["num_styles"]
    return out


def handmade_clip_features(cache: FeatureCache, rows, reference_rows) -> np.ndarray:
    """Per clip: mean and std over frames of the 134 features, z-scored with ``reference_rows``' statistics."""

    def stats(r):
        f = cache.clip_features(r).astype(np.float64)
        return np.concatenate([f.mean(0), f.std(0)])

    x = np.stack([stats(r) for r in rows])
    ref = np.stack([stats(r) for r in reference_rows])
    scale = ref.std(0)
    return (x - ref.mean(0)) / np.where(scale > 1e-6, scale, 1.0)


# --------------------------------------------------------------------------- the whole evaluation


def split_rows(cache: FeatureCache, split: dict) -> dict[str, list[int]]:
    position = {clip.id: i for i, clip in enumerate(cache.clips)}
    out = {name: sorted(position[c] for c in split[name] if c in position) for name in ("train", "test")}
    out["dataset1"] = sorted(
        position[c]
        for c in split["unseen_style"]
        if c in position and cache.clips[position[c]].content not in DATASET1_EXCLUDED_CONTENTS
    )
    return out


def evaluate_encoders(
    encoders,
    name: str,
    config: dict | None = None,
    fast: bool = False,
    seed: int = SEED,
    window: int | None = None,
    cache: FeatureCache | None = None,
    split: dict | None = None,
    max_train_clips: int | None = None,
    tsne_points: int | None = None,
    group_probes: bool | None = None,
) -> tuple[dict, dict]:
    """(metrics, artefacts for the plots) of one encoder; see the module doc."""
    started = time.perf_counter()
    cache = cache or load_cache(progress=False)
    split = split or load_split()
    config = config if config is not None else encoder_config(encoders)
    length = window or config_window(config)
    rows = split_rows(cache, split)
    if max_train_clips is not None:  # an even subsample of clips (tests, quick looks)
        pick = np.linspace(0, len(rows["train"]) - 1, max_train_clips).round().astype(int)
        rows["train"] = [rows["train"][i] for i in np.unique(pick)]
    train = make_windows(cache, rows["train"], length, FAST_TRAIN_STRIDE if fast else STRIDE)
    test = make_windows(cache, rows["test"], length, STRIDE)
    unseen = make_windows(cache, rows["dataset1"], length, STRIDE)

    t0 = time.perf_counter()
    codes = {
        part: encode_windows(encoders, cache, w) for part, w in (("train", train), ("test", test), ("dataset1", unseen))
    }
    encode_seconds = time.perf_counter() - t0
    dims = {k: list(v.shape[1:]) for k, v in codes["test"].items()}

    probes, predictions = {}, {}
    for key, (label_kind, code_kind, comparison, threshold, title) in PROBES.items():
        result = probe_suite(
            codes["train"][code_kind], getattr(train, label_kind), train.rows,
            codes["test"][code_kind], getattr(test, label_kind), test.rows,
        )  # fmt: skip
        predictions[key] = result.pop("_predicted")
        result.update(title=title, comparison=comparison, threshold=threshold)
        result["passed"] = passes(result["accuracy"], comparison, threshold)
        probes[key] = result

    # the same read-outs by cosine 10-NN (train windows -> test windows): the linear erasers leave
    # nonlinear leakage, and this measures it
    knn = {}
    for key, (label_kind, code_kind, _, _, title) in PROBES.items():
        names, ids = np.unique(
            np.concatenate([getattr(train, label_kind), getattr(test, label_kind)]), return_inverse=True
        )
        knn[key] = {
            "title": title,
            "accuracy": knn_accuracy(
                codes["train"][code_kind],
                ids[: len(train.rows)],
                codes["test"][code_kind],
                ids[len(train.rows) :],
                KNN_READOUT_K,
            ),
            "chance": 1.0 / len(names),
        }

    groups = {}
    if (group_probes if group_probes is not None else not fast) and "groups" in codes["test"]:
        for g, group in enumerate(GROUP_NAMES[: codes["test"]["groups"].shape[1]]):
            style, leak = (
                probe_suite(codes["train"]["groups"][:, g], getattr(train, label), train.rows,
                            codes["test"]["groups"][:, g], getattr(test, label), test.rows)
                for label in ("style", "content")
            )  # fmt: skip
            groups[group] = {
                "style_accuracy": style["accuracy"],
                "clip_pooled_style_accuracy": style["clip_pooled_accuracy"],
                # the denoiser reads these codes too: content must not ride in them (issue 15)
                "content_accuracy": leak["accuracy"],
                "content_chance": leak["uniform_chance"],
            }

    d1_rows, d1_style_codes = clip_means(codes["dataset1"]["style"], unseen.rows)
    d1_styles = np.array([cache.clips[r].style for r in d1_rows])
    d1_contents = np.array([cache.clips[r].content for r in d1_rows])
    retrieval = {
        "encoder": knn_style_retrieval(d1_style_codes, d1_styles, d1_contents),
        "baseline_handmade": knn_style_retrieval(
            handmade_clip_features(cache, d1_rows, rows["train"]), d1_styles, d1_contents
        ),
        "protocol": "leave-one-content-out, cosine kNN on clip codes (mean of window E_s codes); "
        f"dataset-1 without {', '.join(DATASET1_EXCLUDED_CONTENTS)}",
        "baseline": "per-clip mean and std of the 134 raw features, z-scored with dataset-2 train-clip statistics",
    }
    retrieval["beats_baseline_top1"] = retrieval["encoder"]["top1"] > retrieval["baseline_handmade"]["top1"]

    # t-SNE sample: an even spread of test windows
    count = min(len(test), tsne_points or (FAST_TSNE_POINTS if fast else TSNE_POINTS))
    sample = np.sort(np.random.default_rng(seed).choice(len(test), size=count, replace=False))
    metrics = {
        "name": name,
        "config_summary": config_summary(config),
        "window": {
            "length": length,
            "stride_train": FAST_TRAIN_STRIDE if fast else STRIDE,
            "stride_test": STRIDE,
            "short_clips": "one window, last frame repeated",
        },
        "fast": fast,
        "seed": seed,
        "code_dims": dims,
        "windows": {"train": len(train), "test": len(test), "dataset1": len(unseen)},
        "clips": {"train": len(rows["train"]), "test": len(rows["test"]), "dataset1": len(rows["dataset1"])},
        "probes": probes,
        "knn_readouts": knn,
        "group_style_probes": groups,
        "retrieval_dataset1": retrieval,
        "passed_all_probes": all(p["passed"] for p in probes.values()),
        "encode_seconds": encode_seconds,
        "tsne_points": int(count),
    }
    artefacts = {
        "test": test,
        "codes_test": codes["test"],
        "predictions": predictions,
        "tsne_sample": sample,
    }
    metrics["seconds"] = time.perf_counter() - started
    return metrics, artefacts


# --------------------------------------------------------------------------- report


def report_markdown(metrics: dict) -> str:
    p, r = metrics["probes"], metrics["retrieval_dataset1"]
    lines = [
        f"# Encoders `{metrics['name']}`",
        "",
        f"Command: `{metrics.get('command', '')}` ({metrics.get('seconds', 0):.0f} s, encoding {metrics['encode_seconds']:.0f} s)",
        "",
        f"Windows of {metrics['window']['length']} frames (30 fps), every {metrics['window']['stride_train']} frames "
        f"(train) / {metrics['window']['stride_test']} (test); clips shorter than a window give one window with the "
        f"last frame repeated. {metrics['windows']['train']} train windows ({metrics['clips']['train']} clips), "
        f"{metrics['windows']['test']} test windows ({metrics['clips']['test']} clips). Code sizes: "
        + ", ".join(f"{k} {v}" for k, v in metrics["code_dims"].items())
        + ".",
        "",
        "## Linear probes (dataset-2, train split → test split)",
        "",
        (
            "Multinomial logistic regression (`training/evaluation/probes.py`) fitted on train-window codes, scored on "
            "test windows; E_c pooled over time. Pass/fail is on the window accuracy."
        ),
        "",
        "| probe | classes | chance (1/K) | window acc | clip vote | clip pooled | target | pass |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in p.values():
        lines.append(
            f"| {v['title']} | {v['num_classes']} | {v['uniform_chance']:.3f} | **{v['accuracy']:.3f}** | "
            f"{v['clip_vote_accuracy']:.3f} | {v['clip_pooled_accuracy']:.3f} | {v['comparison']} {v['threshold']:.2f} | "
            f"{'PASS' if v['passed'] else 'FAIL'} |"
        )
    lines += ["", f"All four probes pass: **{'yes' if metrics['passed_all_probes'] else 'no'}**.", ""]
    if metrics.get("knn_readouts"):
        lines += [
            (
                f"The same read-outs by cosine {KNN_READOUT_K}-NN over the train windows (nonlinear; linear erasers "
                "do not remove what only this finds):"
            ),
            "",
            "| read-out | chance | window acc |",
            "|---|---|---|",
        ]
        lines += [
            f"| {v['title']} | {v['chance']:.3f} | {v['accuracy']:.3f} |" for v in metrics["knn_readouts"].values()
        ]
        lines.append("")
    if metrics["group_style_probes"]:
        lines += ["Style from each body-group code of E_s (window / clip pooled), and content from it (leak, window):",
                  "", "| group | style acc | clip pooled | content acc (leak) | content chance |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for g, v in metrics["group_style_probes"].items():
            lines.append(
                f"| {g} | {v['style_accuracy']:.3f} | {v['clip_pooled_style_accuracy']:.3f} "
                f"| {v['content_accuracy']:.3f} | {v['content_chance']:.3f} |"
            )
        lines.append("")
    enc, base = r["encoder"], r["baseline_handmade"]
    lines += [
        "## Style retrieval on dataset-1 (unseen styles)",
        "",
        (
            f"{r['protocol']}; {enc['num_clips']} clips, {enc['num_styles']} styles, chance {enc['chance']:.3f}. "
            f"Baseline: {r['baseline']}."
        ),
        "",
        "| codes | top-1 (k=1) | k=5 vote | top-5 hit |",
        "|---|---|---|---|",
        f"| E_s | **{enc['top1']:.3f}** | {enc['k5_vote']:.3f} | {enc['top5_hit']:.3f} |",
        f"| hand-made baseline | {base['top1']:.3f} | {base['k5_vote']:.3f} | {base['top5_hit']:.3f} |",
        f"| chance | {enc['chance']:.3f} | {enc['chance']:.3f} | ≈{min(1.0, 5 * enc['chance']):.3f} |",
        "",
        f"E_s beats the baseline on top-1: **{'yes' if r['beats_baseline_top1'] else 'no'}**.",
        "",
        "| held-out content | queries | E_s top-1 | baseline top-1 |",
        "|---|---|---|---|",
    ]
    for c, v in enc["per_content"].items():
        lines.append(f"| {c} | {v['queries']} | {v['top1']:.3f} | {base['per_content'][c]['top1']:.3f} |")
    lines += [
        "",
        "## Plots",
        "",
        (
            f"- [`tsne.png`](tsne.png): t-SNE of {metrics['tsne_points']} test windows' E_s and E_c codes, coloured by "
            f"style and by content (exact t-SNE, perplexity 30, seed {metrics['seed']})."
        ),
        (
            "- [`confusion_style_from_Es.png`](confusion_style_from_Es.png), "
            "[`confusion_content_from_Ec.png`](confusion_content_from_Ec.png), "
            "[`confusion_style_from_Ec.png`](confusion_style_from_Ec.png), "
            "[`confusion_content_from_Es.png`](confusion_content_from_Es.png): the probes' test-window confusion matrices."
        ),
        "",
        "## Encoder config",
        "",
    ]
    summary = metrics["config_summary"]
    lines += [f"- `{k}`: `{v}`" for k, v in summary.items()] or ["- (none given)"]
    return "\n".join(lines) + "\n"


def plot_tsne(metrics: dict, artefacts: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from training.contrastive.tsne import tsne

    sample = artefacts["tsne_sample"]
    test = artefacts["test"].subset(sample)
    embeddings = {
        "E_s": tsne(artefacts["codes_test"]["style"][sample], seed=metrics["seed"]),
        "E_c": tsne(artefacts["codes_test"]["content"][sample], seed=metrics["seed"]),
    }
    fig = Figure(figsize=(12, 10.5), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    for i, (code, y) in enumerate(embeddings.items()):
        for j, kind in enumerate(("style", "content")):
            ax = axes[i, j]
            labels = getattr(test, kind)
            names = sorted(set(labels.tolist()))
            colours = [_colour(k, len(names)) for k in range(len(names))]
            for k, label in enumerate(names):
                mask = labels == label
                ax.scatter(y[mask, 0], y[mask, 1], s=6, color=colours[k], label=label, alpha=0.8, linewidths=0)
            ax.set_title(f"{code} codes coloured by {kind}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.legend(fontsize=6, markerscale=2, loc="best", ncol=1 if len(names) <= 8 else 2, framealpha=0.7)
    fig.suptitle(f"{metrics['name']}: t-SNE of {len(sample)} test windows (seed {metrics['seed']})")
    fig.tight_layout()
    with replacing(path) as temp:
        fig.savefig(temp)


def _colour(k: int, n: int):
    from matplotlib import colormaps

    return colormaps["tab10" if n <= 10 else "tab20"](k % (10 if n <= 10 else 20))


def write_report(metrics: dict, artefacts: dict, out_dir: Path, plots: bool = True) -> None:
    from training.evaluation.measures import confusion_matrix

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    write_text(out_dir / "report.md", report_markdown(metrics))
    if not plots:
        return
    from training.judges.report import plot_confusion

    test = artefacts["test"]
    for key, (label_kind, _, _, _, title) in PROBES.items():
        truth = getattr(test, label_kind)
        labels = sorted(set(truth.tolist()))
        matrix, _ = confusion_matrix(artefacts["predictions"][key], truth, labels)
        plot_confusion(matrix, labels, out_dir / f"confusion_{key}.png", f"{metrics['name']}: {title} (test windows)")
    plot_tsne(metrics, artefacts, out_dir / "tsne.png")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--encoders", help="path stem of the exported encoders (load_encoders)")
    source.add_argument("--stand-in", action="store_true", help="evaluate the untrained StatisticsEncoder")
    parser.add_argument("--out", type=Path, help="report folder (default reports/encoders/<name>)")
    parser.add_argument("--fast", action="store_true", help="fewer training windows and t-SNE points, no group probes")
    parser.add_argument("--window", type=int, help="window length in frames (default: the encoder config's, else 60)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--max-train-clips", type=int, help="probe on an even subsample of train clips (a quick look)")
    parser.add_argument("--tsne-points", type=int, help=f"test windows in the t-SNE (default {TSNE_POINTS})")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    if args.stand_in:
        encoders, name, config = StatisticsEncoder(), "stand_in", None
    else:
        encoders = load_real_encoders(args.encoders)
        name, config = run_name(args.encoders), encoder_config(encoders, args.encoders)
    metrics, artefacts = evaluate_encoders(
        encoders,
        name,
        config,
        fast=args.fast,
        seed=args.seed,
        window=args.window,
        max_train_clips=args.max_train_clips,
        tsne_points=args.tsne_points,
    )
    metrics["encoders"] = "stand-in (StatisticsEncoder)" if args.stand_in else str(args.encoders)
    metrics["command"] = "python -m training.contrastive.evaluate " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:])
    )
    out = args.out or REPO_ROOT / "reports" / "encoders" / name
    write_report(metrics, artefacts, out, plots=not args.no_plots)
    print(report_markdown(metrics).split("## Plots")[0])
    print(f"report in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
