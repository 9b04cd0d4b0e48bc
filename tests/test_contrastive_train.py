"""Contrastive encoder training (training/contrastive/train.py) on real windows of the dataset.

Small runs of the shipped config's ``[smoke]`` table (40 training clips, a tiny network): they run,
write their outputs, resume exactly, and a 2-process torchrun (gloo) run sees the same global batch
and computes the same losses as one process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tomllib
from safetensors.numpy import load_file

from training.contrastive.train import DEFAULT_CONFIG, train
from training.data.cache import load_cache
from training.runs import load_config, read_metrics

REPO = DEFAULT_CONFIG.parents[2]
LOSS_COLUMNS = ("loss", "loss_content", "loss_style", "loss_bodypart", "loss_orthogonality", "lr")


@pytest.fixture(scope="module")
def straight(tmp_path_factory, cache):
    """An uninterrupted 8-step smoke run (checkpoints at 4 and 8)."""
    config = load_config(DEFAULT_CONFIG, smoke=True)
    out = tmp_path_factory.mktemp("straight")
    train(config, out, cache=cache, command="pytest straight")
    return config, out


def _columns(rows, names=LOSS_COLUMNS):
    return np.array([[r[n] for n in names] for r in rows])


def test_run_writes_everything(straight):
    from core.models.encoders import load_encoders

    config, out = straight
    for name in (
        "metrics.csv",
        "checkpoint.safetensors",
        "checkpoint.json",
        "config.toml",
        "losses.png",
        "validation.png",
        "normalisation.safetensors",
        "encoders.safetensors",
        "encoders.json",
    ):
        assert (out / name).is_file(), name
    for view in config["model"]["views"]:
        assert (out / f"encoders_{view}.json").is_file()
    rows = read_metrics(out / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 9))
    losses = _columns(rows, ("loss",))
    assert np.isfinite(losses).all() and (losses > 0).all()
    for name in ("knn_style_from_style", "knn_content_from_content", "leak_style_from_content"):
        assert 0.0 <= rows[-1][name] <= 1.0
    assert np.isnan(rows[0]["knn_style_from_style"])  # validation every 4 steps only

    encoders = load_encoders(out / "encoders")
    assert encoders.meta["training"]["steps"] == 8
    assert encoders.meta["training"]["supervised_style"] is True  # the shipped config states its label use
    assert encoders.meta["training"]["supervised_content"] is True and encoders.meta["training"]["adversary"] is True
    assert encoders.meta["training"]["command"] == "pytest straight"
    window = np.asarray(load_cache(progress=False).features[:60][None], dtype=np.float32)
    codes = encoders.encode(window)
    assert codes["content"].shape == (1, 60 // encoders.config.content_stride, encoders.config.content_dim)
    assert codes["style"].shape == (1, encoders.config.style_dim)
    assert codes["groups"].shape == (1, 6, encoders.config.group_dim)
    # the exported normalisation is the training split's, the one saved beside the run
    stats = load_file(out / "normalisation.safetensors")
    np.testing.assert_array_equal(encoders.stats["mean"], stats["mean"])


def test_saved_config_is_the_one_used(straight):
    config, out = straight
    saved = tomllib.loads((out / "config.toml").read_text())
    assert saved == config
    assert json.loads((out / "checkpoint.json").read_text())["config"] == config
    exported = json.loads((out / "encoders.json").read_text())
    assert exported["training"]["config"] == config
    # what the run used is what the file says: the exported architecture is the config's
    assert exported["encoder"]["hidden"] == config["model"]["hidden"] == 8


def test_resume_repeats_the_uninterrupted_run(straight, tmp_path, cache):
    config, reference = straight
    train(config, tmp_path, cache=cache, stop_after=4)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 4
    assert len(read_metrics(tmp_path / "metrics.csv")) == 4
    train(config, tmp_path, cache=cache, resume=True)
    a, b = read_metrics(reference / "metrics.csv"), read_metrics(tmp_path / "metrics.csv")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    names = [n for n in a[0] if n != "seconds"]
    np.testing.assert_allclose(_columns(a, names), _columns(b, names), rtol=1e-6, atol=1e-7, equal_nan=True)
    ta, tb = load_file(reference / "checkpoint.safetensors"), load_file(tmp_path / "checkpoint.safetensors")
    assert ta.keys() == tb.keys()
    for key in ta:
        if not key.startswith("rng."):
            np.testing.assert_allclose(ta[key], tb[key], rtol=1e-6, atol=1e-7, err_msg=key)


def test_resume_refuses_a_different_config(straight, tmp_path, cache):
    config, _ = straight
    train(config, tmp_path, cache=cache, stop_after=1)
    changed = {**config, "seed": 1}
    with pytest.raises(ValueError, match="config differs"):
        train(changed, tmp_path, cache=cache, resume=True)


def test_overrides_and_ablation_configs():
    config = load_config(DEFAULT_CONFIG, ["train.max_steps=20", 'model.views=["joint", "bone"]'], smoke=True)
    assert config["train"]["max_steps"] == 20 and config["model"]["views"] == ["joint", "bone"]
    with pytest.raises(KeyError):
        load_config(DEFAULT_CONFIG, ["train.max_stepz=20"])
    base = load_config(DEFAULT_CONFIG)
    for name, key, value in (
        ("no_queue", ("moco", "queue_size"), 0),
        ("no_crossview", ("moco", "crossview_start"), -1),
        ("no_orthogonality", ("loss", "orthogonality"), 0.0),
        ("no_bodypart", ("loss", "bodypart"), 0.0),
    ):
        ablation = load_config(DEFAULT_CONFIG.with_name(f"contrastive_{name}.toml"))
        assert ablation[key[0]][key[1]] == value
        assert ablation["name"] == f"contrastive_{name}"
        ablation[key[0]][key[1]], ablation["name"] = base[key[0]][key[1]], base["name"]
        assert ablation == base  # one change each


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_match_one(straight, tmp_path):
    """torchrun --nproc_per_node=2 (gloo): each rank takes half of every global batch of 8, and the first
    3 steps' losses equal the one-process run's to 1e-5 relative. The batches, augmentations and queue
    contents are identical (the queue takes the all-gathered keys in rank order), BatchNorm normalises
    with global-batch statistics (GlobalBatchNorm), the orthogonality loss sees the gathered batch, and
    the smoke config has no dropout; what remains is the order of float sums (two half-batch gradients
    averaged by the all-reduce, BN sums across ranks), measured at about 2e-7 relative, the precision of
    the CSV's 8 significant digits."""
    _, reference = straight
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    command = [
        torchrun,
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "-m",
        "training.contrastive",
        "train",
        "--smoke",
        "--out",
        str(tmp_path),
        "--stop-after",
        "3",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "checkpoint.json").read_text())["world_size"] == 2
    one = _columns(read_metrics(reference / "metrics.csv")[:3])
    two = _columns(read_metrics(tmp_path / "metrics.csv"))
    assert two.shape == one.shape
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)


def test_partners_are_other_windows_of_the_same_clip(cache):
    from training.contrastive.train import Data
    from training.data.split import load_split

    config = load_config(DEFAULT_CONFIG, smoke=True)
    data = Data(config, cache, load_split())
    assert set(data.train_ids) <= set(load_split()["train"])  # training windows from the train split only
    assert data.source_window > config["data"]["window"]  # room for the augmenters' speed-ups
    for step in range(5):
        anchors, partners = data.global_batch(step, 32, seed=0)
        a, b = data.train.get(anchors), data.train.get(partners)
        np.testing.assert_array_equal(a["clip"], b["clip"])
        windows_of_clip = np.array([np.sum(_window_clip_ids(data) == c) for c in a["clip"]])
        np.testing.assert_array_equal(anchors == partners, windows_of_clip == 1)
    config["data"]["pair_mode"] = "augment"
    data = Data(config, cache, load_split())
    anchors, partners = data.global_batch(0, 32, seed=0)
    np.testing.assert_array_equal(anchors, partners)


def _window_clip_ids(data) -> np.ndarray:
    return data.train.get(np.arange(len(data.train)))["clip"]
