"""The diffusion stylizer and its parts: noise schedule, DDIM sampler, denoiser checkpoints,
differentiable encoder codes, and the stylizer itself on real clips with a tiny random-init model."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest
import torch

from core.diffusion import DDIMSampler, NoiseSchedule
from core.models.denoiser import (
    GROUP_NAMES,
    Denoiser,
    DenoiserConfig,
    feature_group_masks,
    load_denoiser,
    save_denoiser,
)
from core.models.encoders import load_encoders
from core.motion.canonical import BODY_GROUPS, JOINT_NAMES
from core.ops.features import CONTACTS, FEATURE_DIM, motion_to_features
from core.ops.rotations import quat_angle
from core.stylize.loading import ModelConfigError, known_stylizers, load_stylizer, stylizer_class
from core.stylize.request import GROUPS, StyleRequest
from tests.conftest import REPO_ROOT

ENCODERS = REPO_ROOT / "weights" / "encoders" / "contrastive"
EXACT_RAD = 1e-5
TINY = DenoiserConfig(hidden=32, blocks=2)
SCHEDULE_STEPS = 100


# ------------------------------------------------------------------------------------------ schedule


def test_schedule_alpha_bar_decreases_in_unit_interval():
    s = NoiseSchedule(SCHEDULE_STEPS)
    a = s.alpha_bar
    assert a.shape == (SCHEDULE_STEPS,)
    assert torch.all(a > 0) and torch.all(a <= 1)
    assert torch.all(a[1:] < a[:-1])
    assert s.to_dict() == {"num_steps": SCHEDULE_STEPS}


def test_schedule_noise_from_inverts_add_noise():
    s = NoiseSchedule(SCHEDULE_STEPS)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 30, FEATURE_DIM, generator=g)
    noise = torch.randn(4, 30, FEATURE_DIM, generator=g)
    t = torch.tensor([0, 10, 50, SCHEDULE_STEPS - 1])
    x_t = s.add_noise(x0, noise, t)
    assert torch.allclose(s.noise_from(x_t, x0, t), noise, atol=1e-4)
    # the noisiest step is almost all noise, the cleanest almost all signal
    assert s.alpha_bar[-1] < 1e-3 and s.alpha_bar[0] > 0.99
    assert (x_t[3] - noise[3]).abs().max() < 0.05
    assert (x_t[0] - x0[0]).abs().max() < 0.5


@pytest.mark.parametrize("steps", [0, 1, -5])
def test_schedule_refuses_too_few_steps(steps):
    with pytest.raises(ValueError, match="at least 2 steps"):
        NoiseSchedule(steps)


# ------------------------------------------------------------------------------------------- sampler


@pytest.mark.parametrize("start", [1.0, 0.5])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_returns_the_fixed_x0_of_a_constant_denoiser(start, eta):
    s = NoiseSchedule(SCHEDULE_STEPS)
    target = torch.linspace(-2, 2, 2 * 40 * 7).reshape(2, 40, 7)
    calls, seen = [], []

    def denoise(x_t, t):
        seen.append(t.clone())
        assert x_t.shape == target.shape and t.shape == (2,)
        return target.clone()

    sampler = DDIMSampler(s, steps=8, eta=eta)
    out = sampler.sample(
        denoise, torch.zeros_like(target), start, torch.Generator().manual_seed(1), lambda i, n: calls.append((i, n))
    )
    assert torch.equal(out, target)
    ts = sampler.timesteps(start)
    assert len(calls) == len(seen) == len(ts)
    assert calls == [(i, len(ts)) for i in range(len(ts))]
    assert [int(t[0]) for t in seen] == ts


@pytest.mark.parametrize("steps", [1, 4, 10, 99, 100])
@pytest.mark.parametrize("start", [1.0, 0.5, 0.25, 0.03, 0.001])
def test_ddim_timesteps_descend_to_zero(steps, start):
    sampler = DDIMSampler(NoiseSchedule(SCHEDULE_STEPS), steps=steps)
    ts = sampler.timesteps(start)
    top = max(0, round(start * SCHEDULE_STEPS) - 1)
    assert ts[0] == top  # the first call is at the level the sample was noised to
    # one step is a single x0 prediction from that level; more end at the cleanest step
    assert ts[-1] == (top if steps == 1 else 0)
    assert len(ts) == len(set(ts)) <= steps
    assert all(a > b for a, b in itertools.pairwise(ts))


def test_ddim_refuses_bad_settings():
    s = NoiseSchedule(SCHEDULE_STEPS)
    for steps in (0, -1, SCHEDULE_STEPS + 1):
        with pytest.raises(ValueError, match="steps"):
            DDIMSampler(s, steps=steps)
    for eta in (-0.1, 1.5):
        with pytest.raises(ValueError, match="eta"):
            DDIMSampler(s, steps=4, eta=eta)
    sampler = DDIMSampler(s, steps=4)
    for start in (0.0, -0.5, 1.01):
        with pytest.raises(ValueError, match="start"):
            sampler.timesteps(start)
        with pytest.raises(ValueError, match="start"):
            sampler.sample(lambda x, t: x, torch.zeros(1, 5, 3), start)


# ------------------------------------------------------------------------------------------ denoiser


def _conditions(batch: int, frames: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    c = TINY
    return (
        torch.randn(batch, frames, FEATURE_DIM, generator=g),
        torch.randint(0, SCHEDULE_STEPS, (batch,), generator=g),
        torch.randn(batch, max(frames // 4, 1), c.content_dim, generator=g),
        torch.randn(batch, c.style_dim, generator=g),
        torch.randn(batch, len(GROUP_NAMES), c.group_dim, generator=g),
    )


def _random_denoiser(seed: int = 0) -> Denoiser:
    torch.manual_seed(seed)
    net = Denoiser(TINY, SCHEDULE_STEPS)
    # the residual blocks' last convs start at zero; perturb them so every block is exercised
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return net.eval()


@pytest.mark.parametrize("frames", [60, 301, 7])
def test_denoiser_output_has_the_input_shape(frames):
    net = _random_denoiser()
    with torch.no_grad():
        out = net(*_conditions(2, frames))
    assert out.shape == (2, frames, FEATURE_DIM)
    assert torch.isfinite(out).all()


def test_a_source_denoiser_reads_the_source_as_a_residual(tmp_path):
    """Issue 16: the source's features in, the output a residual over them; content codes optional."""
    config = DenoiserConfig(hidden=32, blocks=2, source=True, content_dim=0)
    net = Denoiser(config, SCHEDULE_STEPS).eval()
    x_t, t, _, style, groups = _conditions(2, 33)
    source = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = net(x_t, t, None, style, groups, source)
        assert out.shape == x_t.shape and torch.isfinite(out).all()
        save_denoiser(tmp_path / "source", net, _stats())
        loaded, meta = load_denoiser(tmp_path / "source")
        assert DenoiserConfig.from_dict(meta["denoiser"]) == config
        assert torch.equal(loaded(x_t, t, None, style, groups, source), out)
        torch.nn.init.zeros_(net.out.weight)
        torch.nn.init.zeros_(net.out.bias)
        assert torch.equal(net(x_t, t, None, style, groups, source), source)
    with pytest.raises(ValueError, match="reads a source"):
        net(x_t, t, None, style, groups)
    with pytest.raises(ValueError, match="no content codes"):
        net(x_t, t, torch.zeros(2, 8, 64), style, groups, source)


def test_feature_group_masks_partition_the_channels():
    masks = feature_group_masks()
    assert masks.shape == (len(GROUP_NAMES), FEATURE_DIM) == (6, 134)
    assert set(np.unique(masks)) <= {0.0, 1.0}
    np.testing.assert_array_equal(masks.sum(0), np.ones(FEATURE_DIM))
    group = dict(zip(GROUP_NAMES, masks, strict=True))
    assert group["root"][:4].all() and group["root"].sum() == 4
    assert CONTACTS == slice(130, 134)
    assert group["left_leg"][[130, 131]].all() and group["right_leg"][[132, 133]].all()
    assert not group["left_leg"][[132, 133]].any() and not group["right_leg"][[130, 131]].any()
    for name in ("torso", "left_arm", "right_arm"):
        assert not group[name][CONTACTS].any()
    # 6 rotation channels per joint: the torso has the pelvis and 4 spine joints, each limb 4 joints
    assert group["torso"].sum() == 6 * len(BODY_GROUPS["torso"])
    for name in ("left_arm", "right_arm"):
        assert group[name].sum() == 6 * len(BODY_GROUPS[name])
    for name in ("left_leg", "right_leg"):
        assert group[name].sum() == 6 * len(BODY_GROUPS[name]) + 2


def _stats() -> dict:
    return load_encoders(ENCODERS).stats


def test_denoiser_checkpoint_round_trip(tmp_path):
    net = _random_denoiser(3)
    weights, meta_path = save_denoiser(tmp_path / "ckpt" / "tiny", net, _stats(), extra={"command": "test"})
    assert weights.name == "tiny.safetensors" and meta_path.name == "tiny.json"
    loaded, meta = load_denoiser(tmp_path / "ckpt" / "tiny")
    assert not loaded.training
    assert meta["command"] == "test" and meta["schedule"] == {"num_steps": SCHEDULE_STEPS}
    assert DenoiserConfig.from_dict(meta["denoiser"]) == TINY
    np.testing.assert_array_equal(np.asarray(meta["stats"]["mean"], np.float32), _stats()["mean"])
    inputs = _conditions(2, 45, seed=5)
    with torch.no_grad():
        assert torch.equal(net(*inputs), loaded(*inputs))
    # the stem may be given with either suffix
    again, _ = load_denoiser(meta_path)
    with torch.no_grad():
        assert torch.equal(again(*inputs), loaded(*inputs))


def test_denoiser_checkpoint_problems_name_the_file(tmp_path):
    stem = tmp_path / "tiny"
    weights, meta_path = save_denoiser(stem, _random_denoiser(), _stats())
    good_weights, good_meta = weights.read_bytes(), meta_path.read_text()

    def expect(path):
        with pytest.raises(ValueError) as err:
            load_denoiser(stem)
        assert str(path) in str(err.value)

    weights.unlink()
    expect(weights)
    weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    expect(weights)
    weights.write_bytes(good_weights)
    meta_path.write_text("{not json")
    expect(meta_path)
    meta_path.write_text(json.dumps({**json.loads(good_meta), "format": "mst-encoders"}))
    expect(meta_path)
    meta_path.write_text(json.dumps({**json.loads(good_meta), "feature_version": -1}))
    expect(meta_path)
    bigger = {**json.loads(good_meta), "denoiser": {**json.loads(good_meta)["denoiser"], "hidden": 64}}
    meta_path.write_text(json.dumps(bigger))
    expect(weights)
    meta_path.unlink()
    expect(meta_path)


# ------------------------------------------------------------------------------------------ encoders


def test_encoder_codes_match_encode(clips):
    encoders = load_encoders(ENCODERS)
    features, _ = motion_to_features(clips["walk"])
    windows = np.stack([features[0:60], features[100:160]]).astype(np.float32)
    assert set(encoders.erasers) == {"content", "style", "groups"}  # labels erased from every code read
    expected = encoders.encode(windows)
    x = torch.from_numpy(windows).requires_grad_(True)
    got = encoders.codes(x)
    assert set(got) == {"content", "style", "groups"}
    for key in got:
        assert got[key].shape == expected[key].shape
        # the networks agree to within 1e-5; the erasers (a float32 projection, entries up to ~4,
        # applied by numpy in encode and by torch here) add up to ~1.5e-5 of summation-order rounding,
        # both results ~1e-5 from the float64 value, so allow 3e-5
        np.testing.assert_allclose(got[key].detach().numpy(), expected[key], atol=3e-5, rtol=0)
    # without the erasers the codes are the encode() codes to 1e-5 (bit-equal in practice)
    erasers, encoders.erasers = encoders.erasers, {}
    try:
        plain, plain_codes = encoders.encode(windows), encoders.codes(torch.from_numpy(windows))
    finally:
        encoders.erasers = erasers
    for key in plain:
        np.testing.assert_allclose(plain_codes[key].detach().numpy(), plain[key], atol=1e-5, rtol=0)
    # differentiable with respect to the features
    sum(v.sum() for v in got.values()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------- the stylizer


@pytest.fixture(scope="module")
def model_config(tmp_path_factory):
    """A tiny random-init denoiser and the shipped encoders (copied), named by a model config."""
    folder = tmp_path_factory.mktemp("model")
    (folder / "nets").mkdir()
    for suffix in (".json", ".safetensors"):
        shutil.copy(ENCODERS.with_name(ENCODERS.name + suffix), folder / "nets" / ("contrastive" + suffix))
    save_denoiser(folder / "nets" / "denoiser", _random_denoiser(7), _stats())
    path = folder / "diffusion.json"
    path.write_text(
        json.dumps({"stylizer": "diffusion", "denoiser": "nets/denoiser", "encoders": "nets/contrastive", "steps": 4})
    )
    return path


@pytest.fixture(scope="module")
def stylizer(model_config):
    return load_stylizer(model_config)


def test_diffusion_is_a_known_stylizer():
    assert "diffusion" in known_stylizers()
    assert stylizer_class("diffusion").name == "diffusion"


def test_loaded_stylizer_settings(stylizer):
    assert stylizer.name == "diffusion"
    assert stylizer.defaults["steps"] == 4
    assert not stylizer.denoiser.training
    assert stylizer.schedule.num_steps == SCHEDULE_STEPS


def test_output_is_a_finite_motion_of_the_content(stylizer, clips):
    content = clips["walk"]
    out = stylizer.stylize(StyleRequest(content, clips["tired_walk"]))
    assert out.num_frames == content.num_frames
    assert out.skeleton.names == content.skeleton.names == JOINT_NAMES
    assert out.fps == content.fps
    assert np.isfinite(out.rotations).all() and np.isfinite(out.positions).all()
    # something changed (the weights are 1 everywhere)
    assert quat_angle(out.rotations, content.rotations).max() > 1e-3


def test_all_weights_zero_returns_the_content(stylizer, clips):
    content = clips["walk"]
    out = stylizer.stylize(StyleRequest(content, clips["wave"], weights={g: 0.0 for g in GROUPS}))
    assert np.array_equal(out.rotations, content.rotations)
    assert np.array_equal(out.positions, content.positions)


def test_arms_only_leaves_legs_torso_and_root_alone(stylizer, clips):
    content = clips["walk"]
    weights = {g: 0.0 for g in GROUPS} | {"left_arm": 1.0, "right_arm": 1.0}
    out = stylizer.stylize(StyleRequest(content, clips["wave"], weights=weights))
    arms = {JOINT_NAMES.index(n) for g in ("left_arm", "right_arm") for n in BODY_GROUPS[g]}
    kept = [j for j in range(len(JOINT_NAMES)) if j not in arms]
    assert {JOINT_NAMES.index(n) for n in BODY_GROUPS["left_leg"] + BODY_GROUPS["torso"]} <= set(kept)
    assert quat_angle(out.rotations[:, kept], content.rotations[:, kept]).max() <= EXACT_RAD
    np.testing.assert_allclose(out.positions, content.positions, atol=1e-9)
    _, world = out.world()
    _, world_content = content.world()
    hips = JOINT_NAMES.index("Hips")
    np.testing.assert_allclose(world[:, hips], world_content[:, hips], atol=1e-6)
    assert quat_angle(out.rotations[:, sorted(arms)], content.rotations[:, sorted(arms)]).max() > 1e-3


def test_seed_makes_it_deterministic(stylizer, clips):
    def run(seed):
        return stylizer.stylize(StyleRequest(clips["walk"], clips["tired_walk"], options={"seed": seed}))

    a, b, c = run(3), run(3), run(4)
    assert np.array_equal(a.rotations, b.rotations) and np.array_equal(a.positions, b.positions)
    assert not np.array_equal(a.rotations, c.rotations)


def test_options_accepted(stylizer, clips):
    content = clips["walk"].slice(0, 90)
    options = {"steps": 2, "start": 0.5, "guidance": 2.0, "seed": 9, "keep_path": False}
    out = stylizer.stylize(StyleRequest(content, clips["wave"], options=options))
    assert out.num_frames == 90 and np.isfinite(out.rotations).all()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("steps", 0),
        ("steps", 1.5),
        ("steps", SCHEDULE_STEPS + 1),
        ("start", 0),
        ("guidance", -1),
        ("seed", -1),
        ("keep_path", "yes"),
        ("strength", 1.0),
    ],
)
def test_bad_options_name_the_option(stylizer, clips, option, value):
    request = StyleRequest(clips["walk"].slice(0, 60), clips["wave"], options={option: value})
    with pytest.raises(ValueError, match=option):
        stylizer.stylize(request)


def _config(folder, name, **fields):
    path = folder / name
    path.write_text(json.dumps({"stylizer": "diffusion", "encoders": "nets/contrastive", **fields}))
    return path


def test_load_stylizer_errors(model_config):
    folder = model_config.parent
    with pytest.raises(ModelConfigError, match=r"gone\.json does not exist"):
        load_stylizer(_config(folder, "missing.json", denoiser="nets/gone"))
    with pytest.raises(ModelConfigError, match="unknown settings \\['temperature'\\]"):
        load_stylizer(_config(folder, "unknown.json", denoiser="nets/denoiser", temperature=1.0))
    with pytest.raises(ModelConfigError, match="needs 'denoiser'"):
        load_stylizer(_config(folder, "nodenoiser.json"))
    with pytest.raises(ModelConfigError, match="encoders checkpoint"):
        load_stylizer(_config(folder, "noencoders.json", denoiser="nets/denoiser", encoders="nets/none"))
    with pytest.raises(ModelConfigError, match="option steps"):
        load_stylizer(_config(folder, "badsteps.json", denoiser="nets/denoiser", steps=0))
    # a weights file is refused: the checkpoints are named by 'denoiser' and 'encoders'
    with pytest.raises(ModelConfigError, match="not in 'weights'"):
        load_stylizer(_config(folder, "weights.json", denoiser="nets/denoiser", weights="nets/denoiser.safetensors"))
