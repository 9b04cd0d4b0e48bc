"""The contrastive encoders' evaluation (issue 6): probes, dataset-1 retrieval, t-SNE, reports, ablation table.

Runs on the real feature cache and the committed split. The encoders are deterministic stand-ins
(``StatisticsEncoder``: seeded random projections of window statistics; and, when
core.models.encoders is importable, a seeded untrained ST-GCN pair saved and reloaded through
``save_encoders``/``load_encoders``), so every number the probes give is an honest figure for them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.contrastive import ablation
from training.contrastive import evaluate as ev
from training.contrastive.tsne import knn_label_agreement, knn_preservation, trustworthiness, tsne
from training.data.split import load_split


@pytest.fixture(scope="module")
def split():
    return load_split()


@pytest.fixture(scope="module")
def stand_in_run(cache, split, tmp_path_factory):
    metrics, artefacts = ev.evaluate_encoders(
        ev.StatisticsEncoder(),
        "stand_in",
        fast=True,
        cache=cache,
        split=split,
        max_train_clips=400,
        tsne_points=150,
        group_probes=True,
    )
    out = tmp_path_factory.mktemp("stand_in")
    metrics["command"] = "pytest"
    ev.write_report(metrics, artefacts, out)
    return metrics, artefacts, out


def test_stand_in_end_to_end_writes_report_metrics_and_plots(stand_in_run):
    _, _, out = stand_in_run
    for name in ("report.md", "metrics.json", "tsne.png", *(f"confusion_{k}.png" for k in ev.PROBES)):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["probes"].keys() == ev.PROBES.keys()
    text = (out / "report.md").read_text()
    assert "style ← E_s" in text and "content ← E_s (leak)" in text and "Command: `pytest`" in text
    assert ("PASS" in text) or ("FAIL" in text)
    assert saved["clips"]["test"] == 274 and saved["windows"]["test"] >= 274  # every test clip gives a window
    assert saved["clips"]["dataset1"] == 165  # dataset-1 without its normal-only contents


def test_probe_accuracies_and_chance_levels(stand_in_run):
    metrics = stand_in_run[0]
    for key, (label_kind, _, comparison, threshold, _) in ev.PROBES.items():
        p = metrics["probes"][key]
        for field in ("accuracy", "clip_vote_accuracy", "clip_pooled_accuracy", "majority_chance"):
            assert 0.0 <= p[field] <= 1.0, (key, field)
        k = 7 if label_kind == "style" else 10
        assert p["num_classes"] == k and p["uniform_chance"] == pytest.approx(1 / k)
        assert p["passed"] == (p["accuracy"] >= threshold if comparison == ">=" else p["accuracy"] <= threshold)
    for retrieval in (metrics["retrieval_dataset1"]["encoder"], metrics["retrieval_dataset1"]["baseline_handmade"]):
        assert retrieval["num_styles"] == 15 and retrieval["chance"] == pytest.approx(1 / 15)
        for field in ("top1", "k5_vote", "top5_hit"):
            assert 0.0 <= retrieval[field] <= 1.0
        assert retrieval["top5_hit"] >= retrieval["top1"]
    assert metrics["group_style_probes"]
    for group, probe in metrics["group_style_probes"].items():  # every code the denoiser reads is probed
        assert 0.0 <= probe["content_accuracy"] <= 1.0 and probe["content_chance"] == pytest.approx(0.1), group
    # honest numbers for the stand-in: its style code is a function of window statistics, which carry style
    assert metrics["probes"]["style_from_Es"]["accuracy"] > 0.6
    assert metrics["retrieval_dataset1"]["baseline_handmade"]["top1"] > 2 / 15


def test_probes_on_random_codes_stay_near_chance(cache, split):
    rows = ev.split_rows(cache, split)
    train = ev.make_windows(cache, rows["train"][::4])
    test = ev.make_windows(cache, rows["test"])
    rng = np.random.default_rng(0)
    result = ev.probe_suite(
        rng.normal(size=(len(train), 16)),
        train.style,
        train.rows,
        rng.normal(size=(len(test), 16)),
        test.style,
        test.rows,
    )
    assert result["uniform_chance"] == pytest.approx(1 / 7)
    assert result["accuracy"] < 0.3 and result["clip_pooled_accuracy"] < 0.3


def test_windows_pad_short_clips_and_stay_in_their_clip(cache, split):
    rows = ev.split_rows(cache, split)["test"]
    windows = ev.make_windows(cache, rows, 60, 30)
    lengths = cache.lengths()
    assert set(windows.rows.tolist()) == set(rows)
    x = ev.gather(cache, windows)
    assert x.shape == (len(windows), 60, 134)
    short = next(r for r in rows if lengths[r] < 60)
    i = int(np.flatnonzero(windows.rows == short)[0])
    clip = cache.clip_features(short)
    np.testing.assert_array_equal(x[i, : lengths[short]], clip)
    np.testing.assert_array_equal(x[i, lengths[short] :], np.broadcast_to(clip[-1], (60 - lengths[short], 134)))


def test_leave_one_content_out_never_puts_the_query_content_in_the_gallery(cache, split):
    rows = ev.split_rows(cache, split)["dataset1"]
    contents = np.array([cache.clips[r].content for r in rows])
    folds = ev.leave_one_content_out(contents)
    assert len(folds) == len(set(contents.tolist())) == 10
    for content, queries, gallery in folds:
        assert np.all(contents[queries] == content)
        assert not np.any(contents[gallery] == content)
        assert len(queries) + len(gallery) == len(contents)
    assert sorted(np.concatenate([q for _, q, _ in folds]).tolist()) == list(range(len(contents)))
    # codes that only say the content are useless here (the gallery never has it); codes of the style are perfect
    styles = np.array([cache.clips[r].style for r in rows])
    names = sorted(set(styles.tolist()))
    one_hot = np.eye(len(names))[[names.index(s) for s in styles]]
    assert ev.knn_style_retrieval(one_hot + 0.01, styles, contents)["top1"] == 1.0


def test_tsne_is_deterministic_and_separates_two_clusters():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 1, (60, 10)), rng.normal(6, 1, (60, 10))])
    labels = np.repeat([0, 1], 60)
    y = tsne(x, seed=7, iterations=500)
    np.testing.assert_array_equal(y, tsne(x, seed=7, iterations=500))
    assert not np.array_equal(y, tsne(x, seed=8, iterations=500))
    assert y.shape == (120, 2) and np.all(np.isfinite(y))
    assert knn_label_agreement(y, labels, k=5) == 1.0
    assert trustworthiness(x, y, k=5) > 0.9
    assert knn_preservation(x, y, k=10) > 0.3
    gap = np.linalg.norm(y[:60].mean(0) - y[60:].mean(0))
    assert gap > 2 * max(y[:60].std(0).max(), y[60:].std(0).max())


def _metrics(values, top1=0.5, base=0.4):
    probes = {}
    for (key, (_, _, comparison, threshold, title)), value in zip(ev.PROBES.items(), values):
        passed = value >= threshold if comparison == ">=" else value <= threshold
        probes[key] = {"accuracy": value, "passed": passed, "title": title}
    retrieval = {"encoder": {"top1": top1, "chance": 1 / 15}, "baseline_handmade": {"top1": base}}
    return {"probes": probes, "retrieval_dataset1": retrieval}


def test_ablation_table_formats_given_metrics(tmp_path):
    rows = [
        {"variant": "full", "metrics": _metrics([0.97, 0.96, 0.2, 0.15], 0.61, 0.509), "steps": 3000, "minutes": 24.6},
        {"variant": "no_queue", "metrics": _metrics([0.9, 0.95, 0.45, 0.3]), "steps": None, "minutes": None},
    ]
    lines = ablation.ablation_table(rows).splitlines()
    assert lines[0].startswith("| variant | style←E_s | content←E_c | style←E_c (leak) | content←E_s (leak) |")
    assert lines[1] == "|" + "---|" * 7
    assert lines[2] == "| full | 0.970 ✓ | 0.960 ✓ | 0.200 ✓ | 0.150 ✓ | 0.610 (0.509) | 3,000 / 25 |"
    assert lines[3] == "| no_queue | 0.900 ✗ | 0.950 ✓ | 0.450 ✗ | 0.300 ✓ | 0.500 (0.400) | — / — |"
    assert "chance 0.067" in ablation.table_notes(rows)

    run = tmp_path / "run_a"
    run.mkdir()
    config = {"training": {"steps": 3000, "train_seconds": 1500.0, "config": {"name": "contrastive_no_queue"}}}
    assert ablation.run_info(run, config) == {"variant": "no_queue", "steps": 3000, "minutes": 25.0}
    (run / "config.json").write_text(json.dumps({"ablation": "no_crossview"}))
    assert ablation.run_info(run, config)["variant"] == "no_crossview"
    assert ablation.run_info(tmp_path, {})["variant"] == tmp_path.name


def test_config_lookups():
    config = {"encoder": {"hidden": 64}, "training": {"config": {"data": {"window": 90, "stride": 15}}}}
    assert ev.config_window(config) == 90
    assert ev.config_window({}) == ev.WINDOW
    summary = ev.config_summary(config)
    assert summary["training.config.data.window"] == 90 and summary["encoder.hidden"] == 64
    assert ev.run_name("runs/full/encoders") == "full" and ev.run_name("weights/enc_v2.json") == "enc_v2"


def test_real_encoder_interface_end_to_end(cache, split, tmp_path):
    """A seeded untrained ST-GCN pair, exported and reloaded like a trained one, through the CLI."""
    enc = pytest.importorskip("core.models.encoders")
    import torch

    torch.manual_seed(0)
    config = enc.EncoderConfig.from_dict({"hidden": 8, "layers": 1, "content_dim": 8, "style_dim": 8, "group_dim": 4})
    train_rows = ev.split_rows(cache, split)["train"]
    frames = np.concatenate([cache.clip_features(r) for r in train_rows[::50]])
    stats = {"mean": frames.mean(0), "std": np.maximum(frames.std(0), 1e-2)}
    meta = {"training": {"steps": 0, "train_seconds": 0.0, "config": {"name": "contrastive", "data": {"window": 60}}}}
    run = tmp_path / "run"
    enc.save_encoders(run / "encoders", enc.ContentEncoder(config), enc.StyleEncoder(config), meta, stats)
    out = tmp_path / "report"
    args = ["--runs", str(run), "--out", str(out / "ablation.md"), "--fast", "--no-plots", "--max-train-clips", "120"]
    assert ablation.main(args) == 0
    saved = json.loads((out / "full" / "metrics.json").read_text())
    assert saved["window"]["length"] == 60 and saved["code_dims"]["groups"] == [6, 4]
    assert saved["encoders"].endswith("encoders")
    table = (out / "ablation.md").read_text()
    assert "| full |" in table and "| 0 / 0.0 |" in table
