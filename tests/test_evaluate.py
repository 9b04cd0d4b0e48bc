"""The evaluation command end to end on the committed judges and sets: identity and the
statistics baseline, with the figures that expose what each one is."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_diffusion_config

from training.evaluate import evaluate, main, write_report


@pytest.fixture(scope="module")
def identity_cross(data_root):
    return evaluate("identity", "cross")


def test_identity_keeps_the_source_and_scores_no_style(identity_cross):
    report, _ = identity_cross
    s = report["summary"]
    assert report["pairs"] == 140
    assert s["sra"] < 0.05  # the source's own style is never the target style
    assert s["cra"] > 0.95
    assert s["path_shape_error_median"] < 1e-9
    assert s["contact_f1_mean"] == 1.0
    assert s["zero_weight_pairs"] > 0 and s["zero_weight_max_rotation_rad"] < 1e-9
    assert s["foot_skate_output_mean"] == pytest.approx(s["foot_skate_source_mean"])


def test_statistics_weakness_shows_on_cross_content_pairs(data_root, identity_cross):
    report, _ = evaluate("statistics", "cross")
    s = report["summary"]
    # It imposes the reference's style, content and all: style recognised, source content lost.
    assert s["sra"] > 0.8 and s["cra"] < 0.5
    assert s["fmd"] < identity_cross[0]["summary"]["fmd"]
    assert s["zero_weight_max_rotation_rad"] < 1e-5  # weight-0 groups keep the source exactly


def test_report_files(identity_cross, tmp_path):
    report, artefacts = identity_cross
    out = tmp_path / "cross" / "identity"
    write_report(report, artefacts, out)
    saved = json.loads((out / "report.json").read_text())
    assert saved["summary"] == report["summary"] and len(saved["rows"]) == 140
    assert "| cross | identity |" in (out / "report.md").read_text()
    for name in ("confusion_style.png", "confusion_content.png", "sra_per_style.png", "strip_1.png"):
        assert (out / name).stat().st_size > 10_000, name
    suite_report = tmp_path / "generalization" / "identity" / "report.json"  # a suite's: it has its own summary
    suite_report.parent.mkdir(parents=True)
    suite_report.write_text(json.dumps({"suite": "generalization", "stylizer": "identity", "sets": [], "rows": []}))
    assert main(["--summary", "--out", str(tmp_path)]) == 0
    assert "| cross | identity |" in (tmp_path / "summary.md").read_text()


def test_model_config_with_cleanup(data_root, tmp_path):
    config = tiny_diffusion_config(tmp_path, steps=2, start=0.5)
    report, artefacts = evaluate(None, "cross", 2, config=config, name="tiny", cleanup=True)
    assert report["stylizer"] == "tiny" and report["pairs"] == 2 and len(artefacts["outputs"]) == 2
    assert report["config"] == config and report["cleanup"] is True
    assert (
        report["command"]
        == f"python -m training.evaluate --config {config} --name tiny --set cross --limit 2 --cleanup"
    )
    assert all(row["cleanup_seconds"] >= 0 for row in report["rows"])
    assert 0 <= report["summary"]["sra"] <= 1 and report["summary"]["contact_f1_mean"] >= 0
    with pytest.raises(ValueError):
        evaluate("identity", "cross", 2, config=config)


def test_raw_figures_are_the_model_alone(data_root, tmp_path):
    """--raw switches the post-processes off: keep_path no longer holds the path shape for it."""
    config = tiny_diffusion_config(tmp_path, steps=2, start=0.5)
    raw, _ = evaluate(None, "cross", 2, config=config, raw=True)
    shipped, _ = evaluate(None, "cross", 2, config=config)
    assert raw["stylizer"] == "diffusion-raw" and raw["raw"] is True and raw["command"].endswith("--raw")
    assert raw["summary"]["path_shape_error_median"] > shipped["summary"]["path_shape_error_median"]
    with pytest.raises(ValueError, match="no cleanup"):
        evaluate(None, "cross", 2, config=config, raw=True, cleanup=True)


def test_main_takes_config_or_stylizer(data_root, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--stylizer", "identity", "--config", "x.json", "--set", "cross"])
    config = tiny_diffusion_config(tmp_path, steps=2, start=0.5)
    assert main(["--config", config, "--set", "cross", "--limit", "2", "--cleanup", "--out", str(tmp_path / "r")]) == 0
    saved = json.loads((tmp_path / "r" / "cross" / "diffusion" / "report.json").read_text())
    assert saved["stylizer"] == "diffusion" and saved["cleanup"] is True and saved["pairs"] == 2
    assert (
        "--cleanup" in saved["command"]
        and "Foot-contact cleanup stage: on" in (tmp_path / "r" / "cross" / "diffusion" / "report.md").read_text()
    )


def test_on_another_rig_through_the_product_pipeline(data_root):
    """--rig: each pair is performed on a Mixamo rig at 24 fps through the product's pipeline; the
    report says so, and the zero-weight groups (upper body only, arms only, no torso among the
    first 8 pairs) are exact on the rig itself."""
    report, artefacts = evaluate("statistics", "cross", 8, cleanup=True, rig="mixamo", rig_fps=24)
    assert report["stylizer"] == "statistics-on-mixamo" and report["rig"] == {"name": "mixamo", "fps": 24}
    assert report["command"].endswith("--set cross --limit 8 --cleanup --rig mixamo --rig-fps 24")
    s = report["summary"]
    assert s["zero_weight_pairs"] >= 3
    assert s["zero_weight_max_rotation_rad"] < 1e-12 and s["zero_weight_max_root_cm"] == 0.0  # float rounding
    assert all("cleanup_seconds" not in row for row in report["rows"])  # the cleanup ran inside the pipeline
    for output in artefacts["outputs"]:
        assert output.fps == 30 and output.skeleton.names[1] == "Hips"
    assert s["path_shape_error_median"] < 0.1 and s["contact_f1_mean"] > 0.8


def test_identity_through_a_60_fps_cmu_rig_keeps_the_source(data_root):
    """The round trip itself (canonical -> CMU rig at 60 fps -> pipeline -> back) adds no style,
    keeps the content, the path and the contacts, and adds no skate."""
    report, _ = evaluate("identity", "cross", 8, rig="cmu", rig_fps=60)
    s = report["summary"]
    assert s["sra"] == 0.0 and s["cra"] == 1.0
    assert s["path_shape_error_median"] < 1e-3 and s["contact_f1_mean"] > 0.99
    assert s["foot_skate_output_mean"] == pytest.approx(s["foot_skate_source_mean"], rel=1e-3)
    with pytest.raises(ValueError, match="unknown rig"):
        evaluate("identity", "cross", 1, rig="bandai")
