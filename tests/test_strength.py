"""training.diffusion.strength end to end on a tiny random-init diffusion model: the files and
their fields (the values of an untrained model mean nothing)."""

from __future__ import annotations

import json

from conftest import tiny_diffusion_config

from training.diffusion.strength import main


def test_strength_files(data_root, tmp_path):
    config = tiny_diffusion_config(tmp_path, steps=2, start=0.5)
    out = tmp_path / "strength"
    assert main(["--config", config, "--limit", "2", "--out", str(out)]) == 0
    result = json.loads((out / "strength.json").read_text())
    assert result["cleanup"] is True and result["limit"] == 2 and result["stylizer"] == "diffusion"
    assert result["command"].startswith(f"python -m training.diffusion.strength --config {config} --limit 2")

    s = result["strength"]
    assert s["weights"] == [0.0, 0.5, 1.0, 1.5] and s["pairs"] == 2
    assert len(s["sra"]) == len(s["cra"]) == len(s["p_target_style"]) == 4
    assert all(0 <= v <= 1 for v in s["sra"] + s["cra"])
    assert isinstance(s["monotonic"], bool) and isinstance(s["strictly_rising"], bool)

    b = result["arms_only"]
    assert b["pairs"] == 2 and b["threshold_rad"] == 1e-5
    # weight-0 legs keep the source's rotations, through the cleanup stage too (even for a random model)
    assert b["passed"] and b["max_leg_rotation_rad"] <= 1e-5 and not b["cleanup_changed_legs"]

    c = result["per_group"]
    assert c["pairs"] == 2 and len(c["rows"]) == 2
    for side in ("arms", "legs"):
        assert set(c[side]) >= {"groups", "p_output", "p_source", "moves_toward", "share_pairs_higher"}
    assert all(r["style_b"] not in (r["style_a"], r["source_style"]) for r in c["rows"])

    md = (out / "strength.md").read_text()
    for heading in ("## a. Style strength", "## b. Arms only", "## c. Per-group references", result["command"]):
        assert heading in md


def test_no_cleanup_flag(data_root, tmp_path):
    config = tiny_diffusion_config(tmp_path, steps=2, start=0.5)
    out = tmp_path / "s"
    assert main(["--config", config, "--limit", "2", "--no-cleanup", "--out", str(out)]) == 0
    result = json.loads((out / "strength.json").read_text())
    assert result["cleanup"] is False and "--no-cleanup" in result["command"]
