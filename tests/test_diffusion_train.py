"""Diffusion denoiser training (training/diffusion/train.py) and the ship command (training/ship.py).

Small runs of the shipped config's ``[smoke]`` table (40 training clips, a tiny network, 6 steps) on
the real data and the shipped frozen encoders: they write their outputs, export a denoiser that
loads back, resume bit-identically, and run with loss terms switched off. The ship command is
checked without training: its stage commands chain the right folders, and finished stages are
skipped.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tomllib
from safetensors.numpy import load_file

from training.diffusion.train import (
    DEFAULT_CONFIG,
    LOSS_NAMES,
    LOSS_TERMS,
    MIN_STD,
    VAL_FIELDS,
    feature_stats,
    train,
    training_clips,
)
from training.runs import load_config, parse_override, read_metrics

REPO = DEFAULT_CONFIG.parents[2]


@pytest.fixture(scope="module")
def straight(tmp_path_factory, cache):
    """An uninterrupted 6-step smoke run (rows at 2, 4, 6; validation at 6; checkpoints at 3 and 6)."""
    config = load_config(DEFAULT_CONFIG, smoke=True)
    out = tmp_path_factory.mktemp("straight")
    train(config, out, cache=cache, command="pytest straight")
    return config, out


def _raw_rows(path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _weighted_loss(config: dict, row: dict) -> float:
    return sum(config["loss"][t] * row[f"loss_{t}"] for t in LOSS_TERMS)


def test_run_writes_everything(straight, cache):
    from core.models.denoiser import load_denoiser
    from core.models.encoders import load_encoders
    from training.data.split import SPLIT_FILE

    config, out = straight
    for name in (
        "config.toml",
        "metrics.csv",
        "losses.png",
        "validation.png",
        "checkpoint.safetensors",
        "checkpoint.json",
        "denoiser.safetensors",
        "denoiser.json",
    ):
        assert (out / name).is_file(), name
    assert tomllib.loads((out / "config.toml").read_text()) == config

    rows = read_metrics(out / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    losses = np.array([[r[n] for n in LOSS_NAMES] for r in rows])
    assert np.isfinite(losses).all() and (losses[:, 0] > 0).all()
    for row in rows:  # the logged loss is the weighted sum of the logged terms (both are step means)
        assert row["loss"] == pytest.approx(_weighted_loss(config, row), rel=1e-4)
        assert row["lr"] > 0
    for name in VAL_FIELDS:  # validation at val_every (= max_steps) only
        assert np.isnan(rows[0][name]) and np.isnan(rows[1][name]) and np.isfinite(rows[2][name]), name
    assert 0.0 <= rows[2]["val_style_transfer"] <= 1.0

    checkpoint = json.loads((out / "checkpoint.json").read_text())
    assert checkpoint["step"] == 6 and checkpoint["config"] == config

    denoiser, meta = load_denoiser(out / "denoiser")
    assert denoiser.config.hidden == config["model"]["hidden"] == 32
    assert denoiser.config.blocks == config["model"]["blocks"] == 2
    assert denoiser.num_steps == config["model"]["schedule_steps"]
    training = meta["training"]
    assert training["command"] == "pytest straight"
    assert training["config"] == config
    assert training["steps"] == 6
    assert training["encoders"] == config["encoders"]
    assert training["split_file"] == SPLIT_FILE.relative_to(REPO).as_posix()
    assert training["supervised_style_swap"] is True
    # the normalisation is the denoiser's own: that of every frame of its training selection
    train_clips, _ = training_clips(cache, config, load_encoders(REPO / config["encoders"]), progress=False)
    expected = feature_stats(train_clips.features)
    np.testing.assert_allclose(meta["stats"]["mean"], expected["mean"], rtol=1e-6)
    np.testing.assert_allclose(meta["stats"]["std"], expected["std"], rtol=1e-6)
    assert min(meta["stats"]["std"]) >= np.float32(MIN_STD)
    # the exported weights are the final checkpoint's model
    exported, saved = load_file(out / "denoiser.safetensors"), load_file(out / "checkpoint.safetensors")
    assert {f"model.{k}" for k in exported} == {k for k in saved if k.startswith("model.")}
    for key, value in exported.items():
        np.testing.assert_array_equal(value, saved[f"model.{key}"], err_msg=key)
    assert any(k.startswith("optim.") for k in saved)  # the AdamW state travels with the checkpoint


def test_resume_repeats_the_uninterrupted_run(straight, tmp_path, cache):
    """Stopped at step 3 (between two metrics rows) and resumed: the same weights, bit for bit, and
    the same metrics rows (the row at step 4 averages steps 3 and 4 in both runs)."""
    config, reference = straight
    train(config, tmp_path, cache=cache, stop_after=3, command="pytest resumed")
    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 3
    assert [r["step"] for r in _raw_rows(tmp_path / "metrics.csv")] == ["2"]
    assert not (tmp_path / "denoiser.json").exists()  # exported at the end only
    train(config, tmp_path, cache=cache, resume=True, command="pytest resumed")

    a, b = _raw_rows(reference / "metrics.csv"), _raw_rows(tmp_path / "metrics.csv")
    assert len(a) == len(b) == 3
    for ra, rb in zip(a, b):
        ra.pop("seconds"), rb.pop("seconds")
        assert ra == rb
    ta, tb = load_file(reference / "denoiser.safetensors"), load_file(tmp_path / "denoiser.safetensors")
    assert ta.keys() == tb.keys()
    for key in ta:
        np.testing.assert_array_equal(ta[key], tb[key], err_msg=key)
    ca, cb = load_file(reference / "checkpoint.safetensors"), load_file(tmp_path / "checkpoint.safetensors")
    assert ca.keys() == cb.keys()
    for key in ca:  # model and AdamW moments alike
        np.testing.assert_array_equal(ca[key], cb[key], err_msg=key)


def test_resume_refuses_a_different_config(straight, tmp_path):
    config, reference = straight
    (tmp_path / "config.toml").write_text((reference / "config.toml").read_text())
    with pytest.raises(ValueError, match="config differs"):
        train({**config, "seed": 1}, tmp_path, resume=True)


def test_switched_off_losses_are_zero(tmp_path, cache):
    config = load_config(DEFAULT_CONFIG, ["loss.style=0", "loss.content=0"], smoke=True)
    assert config["loss"]["style"] == 0 and config["loss"]["content"] == 0
    train(config, tmp_path, cache=cache, stop_after=2)
    rows = read_metrics(tmp_path / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [2]
    row = rows[0]
    assert row["loss_style"] == 0.0 and row["loss_content"] == 0.0
    for name in ("loss", "loss_diffusion", "loss_contact", "loss_ccp"):
        assert np.isfinite(row[name]) and row[name] > 0, name
    assert row["loss"] == pytest.approx(_weighted_loss(config, row), rel=1e-4)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 2


def test_cli_resume_needs_out():
    from training.diffusion.train import main

    with pytest.raises(SystemExit):
        main(["train", "--resume"])


# ------------------------------------------------------------------------------------------- ship


def test_ship_stages_chain_their_outputs(tmp_path):
    from training.ship import _stages

    stages = _stages(tmp_path)
    assert [s[0] for s in stages] == ["contrastive", "erase", "diffusion"]
    (_, done1, argv1, module1), (_, done2, argv2, module2), (_, done3, argv3, module3) = stages
    assert module1 == module2 == "training.contrastive.train" and module3 == "training.diffusion.train"

    def value(argv, flag):
        return argv[argv.index(flag) + 1]

    # 1. contrastive encoders into <out>/contrastive, done when encoders.json is written there
    assert argv1[0] == "train" and value(argv1, "--config") == "training/configs/contrastive.toml"
    assert value(argv1, "--out") == str(tmp_path / "contrastive")
    assert done1 == tmp_path / "contrastive" / "encoders.json"
    # 2. the erasers read stage 1's encoders and write the erased pair that marks stage 2 done
    assert argv2[0] == "erase"
    assert value(argv2, "--encoders") == str(done1.with_suffix(""))
    assert value(argv2, "--out") == str(done2.with_suffix(""))
    assert done2 == tmp_path / "encoders" / "contrastive.json"
    # 3. the denoiser trains on stage 2's encoders
    assert argv3[0] == "train" and value(argv3, "--config") == "training/configs/diffusion.toml"
    assert value(argv3, "--out") == str(tmp_path / "diffusion")
    assert done3 == tmp_path / "diffusion" / "denoiser.json"
    override = value(argv3, "--set")
    assert parse_override(override) == {"encoders": str(done2.with_suffix(""))}
    config = load_config(DEFAULT_CONFIG, [override])
    assert REPO / config["encoders"] == done2.with_suffix("")  # absolute: the repo root does not apply


def test_ship_skips_finished_stages(tmp_path, capsys):
    from training.ship import _stages, run

    markers = [done for _, done, _, _ in _stages(tmp_path)]
    for done in markers:
        done.parent.mkdir(parents=True, exist_ok=True)
        done.touch()
    before = sorted(p for p in tmp_path.rglob("*"))
    run(tmp_path)  # would train for an hour if any stage ran
    assert not (tmp_path / "ship.log").exists()
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert capsys.readouterr().out.count("done already") == 3


def test_ship_takes_trained_encoders_in_place_of_stages_one_and_two(tmp_path, capsys):
    from training.ship import _stages, run, use_encoders

    stem = REPO / "weights" / "encoders" / "contrastive"
    use_encoders(tmp_path, stem)
    (_, _, _, _), (_, encoders, _, _), (_, denoiser, _, _) = _stages(tmp_path)
    for suffix in (".json", ".safetensors"):
        assert encoders.with_suffix(suffix).read_bytes() == stem.with_suffix(suffix).read_bytes()
    denoiser.parent.mkdir(parents=True)
    denoiser.touch()  # so that no stage trains here
    run(tmp_path)
    assert capsys.readouterr().out.count("done already") == 3
    assert json.loads((tmp_path / "ship.log").read_text())["copied_from"] == str(stem)
