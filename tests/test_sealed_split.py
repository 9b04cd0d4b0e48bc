"""The test split is sealed: no trainer, eraser, normaliser or judge reads a test take (issue 15).

Each trainer is given the real feature cache with every test-split take's frames set to NaN and run
on its whole training selection (no clip limit): one NaN read anywhere reaches a normaliser, a code
or a loss, so finite results prove that nothing of the test split was read. Val takes stay readable:
settings are chosen on val.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from training.contrastive.erase import train_windows
from training.contrastive.train import DEFAULT_CONFIG as CONTRASTIVE_CONFIG
from training.contrastive.train import Data
from training.data.paths import REPO_ROOT
from training.diffusion.train import DEFAULT_CONFIG as DIFFUSION_CONFIG
from training.diffusion.train import Trainer
from training.evaluate import main as evaluate_main
from training.evaluation import test_log
from training.judges.config import KINDS, default_config
from training.judges.train import select_clips, train_judge
from training.runs import load_config


def test_the_sealed_cache_really_hides_every_test_take(sealed, split):
    test = set(split["test"])
    rows = [i for i, clip in enumerate(sealed.clips) if clip.id in test]
    assert len(rows) == len(test) > 200
    assert all(np.isnan(sealed.clip_features(i)).all() for i in rows)
    assert np.isfinite(sealed.clip_features(next(i for i, c in enumerate(sealed.clips) if c.id not in test))).all()


def test_contrastive_normaliser_and_windows_read_no_test_take(sealed, split):
    config = load_config(CONTRASTIVE_CONFIG, ["data.max_train_clips=0", "data.max_val_clips=0"], smoke=True)
    data = Data(config, sealed, split)
    assert len(data.train_ids) > 1000
    assert np.isfinite(data.mean).all() and np.isfinite(data.std).all()
    for sampler in (data.train, data.val, data.bank):
        batch = sampler.get(np.arange(0, len(sampler), max(1, len(sampler) // 500)))
        assert np.isfinite(batch["features"]).all()


def test_eraser_windows_read_no_test_take(sealed, split):
    features, *_ = train_windows(60, 30, sealed, split)
    assert len(features) > 1000 and np.isfinite(features).all()


def test_diffusion_trainer_reads_no_test_take(sealed, tmp_path):
    """A smoke-sized selection (encoding every clip takes minutes); it is drawn by the same
    ``training_takes`` rule the contrastive test above runs on every training take."""
    config = load_config(DIFFUSION_CONFIG, smoke=True)
    trainer = Trainer(config, tmp_path, cache=sealed, log=lambda *a: None)
    for clips in (trainer.train, trainer.val):
        assert all(np.isfinite(f).all() for f in clips.features)
        assert np.isfinite(clips.style_codes).all() and np.isfinite(clips.group_codes).all()
    assert torch.isfinite(trainer.low).all() and torch.isfinite(trainer.high).all()


@pytest.mark.parametrize("kind", KINDS)
def test_judges_train_and_normalise_on_no_test_take(sealed, split, kind, tmp_path):
    config = default_config(kind)
    clips = select_clips(config, sealed, split)
    test = set(split["test"])
    assert not {sealed.clips[i].id for i in clips["train"] + clips["val"]} & test
    saved = train_judge(config, sealed, split, tmp_path, max_steps=2, log=lambda *a: None)
    tensors = load_file(tmp_path / f"{kind}.safetensors")
    assert all(np.isfinite(t).all() for t in tensors.values()), "a judge's weights or normaliser read a test take"
    trained = [row for row in saved["history"] if row["epoch"] > 0]  # epoch 0 is the untrained net
    assert trained and all(np.isfinite(row["train_loss"]) for row in trained)
    assert not clips["val"] or all(np.isfinite(row["val_loss"]) for row in trained)


# ---------------------------------------------------------------- the test-split log


def test_the_shipped_model_is_not_scored_on_the_test_split_twice(capsys):
    """reports/test_log.md holds the shipped version's test scores: a second scoring is refused
    before any work, and the log is unchanged."""
    before = test_log.TEST_LOG.read_text()
    with pytest.raises(SystemExit, match="scored once per model version"):
        evaluate_main(["--config", str(REPO_ROOT / "weights" / "stylizer.json"), "--set", "cross", "--cleanup"])
    assert test_log.TEST_LOG.read_text() == before
    assert test_log.model_fingerprint(REPO_ROOT / "weights" / "stylizer.json") in before


def test_a_version_is_scored_once_unless_a_reason_is_logged(tmp_path):
    config = tmp_path / "model.json"
    config.write_text(json.dumps({"stylizer": "diffusion", "denoiser": "denoiser"}))
    (tmp_path / "denoiser.safetensors").write_bytes(b"weights v1")
    first = test_log.model_fingerprint(config)
    log = tmp_path / "test_log.md"
    test_log.check_unscored(first, "cross", None, log)
    test_log.append_score("diffusion", first, "cross", {"sra": 0.9, "cra": 0.8}, log=log)
    with pytest.raises(test_log.AlreadyScored, match="--rescore REASON"):
        test_log.check_unscored(first, "cross", None, log)
    test_log.check_unscored(first, "same", None, log)  # another set is a first look
    test_log.check_unscored(first, "cross", "judges retrained", log)
    (tmp_path / "denoiser.safetensors").write_bytes(b"weights v2")  # retrained: a new version
    assert test_log.model_fingerprint(config) != first
    test_log.check_unscored(test_log.model_fingerprint(config), "cross", None, log)
    assert "| cross | 0.900 | 0.800 | — |" in log.read_text()
