"""The generalization suite end to end, with stylizers whose answers are known (issue 15)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO_ROOT

from core.runtime import stylize_rig_motion
from core.stylize.baselines import STYLIZERS
from core.stylize.loading import load_stylizer
from core.stylize.request import StyleRequest
from training.evaluate import main as evaluate_main
from training.evaluation import own_clips, suite
from training.evaluation.generalization_sets import entry_motions, load_generalization_set


@pytest.fixture(scope="module")
def judges_and_scale():
    return suite.Judges(), suite.descriptor_scale_of_real_clips()


def _rows(stylizer, name, judges_and_scale, limit=2):
    return suite.run_set(STYLIZERS[stylizer](), name, *judges_and_scale, limit=limit, log=lambda *a: None)


@pytest.mark.parametrize("name", suite.SETS)
def test_the_identity_stylizer_is_a_perfect_copy_raw(judges_and_scale, name):
    rows = _rows("identity", name, judges_and_scale)
    raw = [r for r in rows if r["run"] == "raw"]
    assert {r["kind"] for r in raw} == {"pair", "self"}
    for row in raw:
        if row["kind"] == "self":
            assert row["joint_error_pct"] == 0.0 and row["distance_ratio"] == 1.0 and row["contact_f1"] == 1.0
        else:
            assert row["stance_height_change_cm"] == 0.0 and row["contact_f1"] == 1.0
            assert row["distance_vs_source"] == 1.0 and row["style_shift"] == 0.0 and not row["style_toward"]
            assert all(row[k] == 1.0 for k in row if k.startswith("retention_"))
            assert row.get("seam_added_cm", 0.0) == 0.0
            assert row.get("excursion_vs_root_motion", 1.0) == pytest.approx(1.0, abs=1e-6)
    assert all("seconds" in r for r in rows if r["run"] == "product")


def test_the_statistics_baseline_moves_toward_unseen_style_references(judges_and_scale):
    rows = [r for r in _rows("statistics", "unseen_styles", judges_and_scale, limit=4) if r["kind"] == "pair"]
    raw = [r for r in rows if r["run"] == "raw"]
    assert all(r["style_toward"] and r["style_shift"] > 0.3 for r in raw), [r["style_shift"] for r in raw]
    for r in raw:  # every judge family judges the dataset-2 content; the unseen style only its own judge
        assert "unseen_style_correct" in r and not any(k.startswith("style_correct") for k in r)
        assert all(suite.judged_key("content_correct", f) in r for f in suite.JUDGE_FAMILIES)


def test_the_command_writes_a_report_and_the_summary(tmp_path):
    assert (
        evaluate_main(["--suite", "generalization", "--stylizer", "identity", "--limit", "1", "--out", str(tmp_path)])
        == 0
    )
    report = json.loads((tmp_path / "generalization" / "identity" / "report.json").read_text())
    assert report["command"].startswith("python -m training.evaluate --suite generalization")
    assert set(report["summary"]) == set(suite.SETS) and all(
        set(v) == set(suite.RUNS) for v in report["summary"].values()
    )
    assert report["summary"]["foreign"]["raw"]["self_error_pct"] == 0.0
    assert "| foreign | identity | raw |" in (tmp_path / "generalization" / "summary.md").read_text()


def test_one_sampling_finished_twice_is_the_raw_and_the_product_stylize():
    """The suite samples the shipped model once per entry: both runs must equal a stylize call."""
    stylizer = load_stylizer(REPO_ROOT / "weights" / "stylizer.json")
    recorder = suite._Recorder(stylizer)
    stylize_rig_motion(*entry_motions(load_generalization_set("short_cycles")[0]), stylizer=recorder)
    request = recorder.request
    product = stylizer.stylize(request)
    raw = stylizer.stylize(StyleRequest(request.content, request.reference, options=suite.raw_options(stylizer)))
    again = suite._Recorder(stylizer)
    shared = again.stylize(request)
    for ours, theirs in ((shared, product), (again.raw, raw)):
        assert np.array_equal(ours.rotations, theirs.rotations) and np.array_equal(ours.positions, theirs.positions)
    assert not np.allclose(raw.positions, product.positions)  # the post-processes do change the output


@pytest.fixture(scope="module")
def own_clips_folder(tmp_path_factory):
    """Motion that is in no data folder: the bundled examples on Mixamo, Rigify and metarig rigs at
    120, 60, 25 and 24 fps, a 31-frame crop and two held in place (own_clips.write_variants)."""
    folder = tmp_path_factory.mktemp("own") / "clips"
    own_clips.write_variants(folder)
    return folder


def test_own_clips_run_the_suite_measures_on_any_files(own_clips_folder, tmp_path):
    """--suite own: every clip of a folder with itself and with each bundled example reference, raw
    and product, measured like the committed sets (identity: a perfect copy raw, near one product)."""
    argv = ["--suite", "own", "--clips", str(own_clips_folder), "--stylizer", "identity", "--out", str(tmp_path)]
    assert evaluate_main(argv) == 0
    report = json.loads((tmp_path / "own_clips" / "identity" / "report.json").read_text())
    rows = report["rows"]
    references = sorted((REPO_ROOT / "examples" / "clips").glob("*.bvh"))
    clips = len(own_clips.VARIANTS)
    assert len([r for r in rows if r["kind"] == "pair"]) == clips * len(references) * 2  # raw and product
    selves = {(r["id"], r["run"]): r for r in rows if r["kind"] == "self"}
    assert len(selves) == clips * 2
    for (clip, run), row in selves.items():
        if run == "raw":
            assert row["joint_error_pct"] == 0.0 and row["distance_ratio"] == 1.0 and row["contact_f1"] == 1.0
        else:  # through the clip's own rig and rate and back, and the foot cleanup (its contacts: README)
            assert row["joint_error_pct"] < 1.0 and abs(row["distance_ratio"] - 1.0) < 0.01, (clip, row)
    for row in rows:
        if row["kind"] == "pair" and row["run"] == "raw":
            assert row["stance_height_change_cm"] == 0.0 and row["distance_vs_source"] == 1.0
            assert all(row[k] == 1.0 for k in row if k.startswith("retention_"))
            assert "style_shift" in row  # ../shared is here: the real takes' unit
    assert "| own | identity | raw |" in (tmp_path / "own_clips" / "summary.md").read_text()


def test_own_clips_refuse_a_folder_without_bvh_files(tmp_path):
    (tmp_path / "notes.txt").write_text("no motion here")
    with pytest.raises(SystemExit, match="no .bvh or .bvh.gz files"):
        evaluate_main(["--suite", "own", "--clips", str(tmp_path), "--stylizer", "identity", "--out", str(tmp_path)])
