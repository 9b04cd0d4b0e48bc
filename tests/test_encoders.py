"""Content/style encoders and their input views (core.models.encoders), on real windows of the cache."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from core.models.encoders import (
    GROUP_NAMES,
    NODE_NAMES,
    NUM_NODES,
    ROOT_NODE,
    VIEWS,
    ContentEncoder,
    EncoderConfig,
    Encoders,
    StyleEncoder,
    compute_stats,
    count_parameters,
    group_nodes,
    load_encoders,
    make_view,
    save_encoders,
    skeleton_adjacency,
    view_channels,
)
from core.motion.canonical import BODY_GROUPS
from core.ops.features import BODY_JOINTS, CONTACTS, FEATURE_DIM, HEIGHT, ROTATIONS
from core.ops.rotations import sixd_to_matrix

WINDOW = 60


@pytest.fixture(scope="module")
def windows(cache) -> np.ndarray:
    """(64, 60, 134) float32 real windows from clips spread over the cache."""
    rng = np.random.default_rng(0)
    lengths = cache.lengths()
    ids = np.flatnonzero(lengths >= WINDOW)
    picks = rng.choice(ids, 64, replace=False)
    out = []
    for i in picks:
        start = rng.integers(0, lengths[i] - WINDOW + 1)
        out.append(cache.clip_features(i)[start : start + WINDOW])
    return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def stats(cache) -> dict:
    return compute_stats(cache.features[::7])


def normalised(windows, stats) -> torch.Tensor:
    return (torch.from_numpy(windows) - torch.from_numpy(stats["mean"])) / torch.from_numpy(stats["std"])


def test_graph_and_groups():
    assert NUM_NODES == 22 and NODE_NAMES[ROOT_NODE] == "root" and NODE_NAMES[:21] == BODY_JOINTS
    a = skeleton_adjacency()
    assert a.shape == (3, NUM_NODES, NUM_NODES)
    assert a[1].sum(1).astype(bool).sum() == NUM_NODES - 1  # every node but the root node has a parent
    assert a[1][BODY_JOINTS.index("Hips"), ROOT_NODE] > 0  # Hips hangs off the root node
    nodes = group_nodes()
    assert [len(n) for n in nodes] == [1, 5, 4, 4, 4, 4] and nodes[0] == [ROOT_NODE]
    for name, idx in zip(GROUP_NAMES, nodes):
        if name != "root":
            assert tuple(NODE_NAMES[i] for i in idx) == BODY_GROUPS[name]


def test_views(windows, stats):
    x = normalised(windows, stats)
    views = {v: make_view(x, v, stats) for v in VIEWS}
    for v, t in views.items():
        assert t.shape == (64, WINDOW, NUM_NODES, view_channels(v)), v
        assert torch.isfinite(t).all()
    joint, vel, bone = views["joint"], views["velocity"], views["bone"]
    # joint view: the feature channels, root node carries height .. contacts
    assert torch.equal(joint[:, :, :21, :6].reshape(64, WINDOW, -1), x[..., ROTATIONS])
    assert torch.equal(joint[:, :, :21, 6:], torch.zeros_like(joint[:, :, :21, 6:]))
    assert torch.equal(joint[:, :, ROOT_NODE, 0], x[..., HEIGHT.start])
    assert torch.equal(joint[:, :, ROOT_NODE, 4:], x[..., CONTACTS])
    # velocity view: differences, frame 0 repeats frame 1
    assert torch.allclose(vel[:, 5], joint[:, 5] - joint[:, 4])
    assert torch.equal(vel[:, 0], vel[:, 1])
    # bone view: world (heading-free) orientation by forward kinematics on the raw rotations
    raw = torch.from_numpy(windows[..., ROTATIONS]).reshape(64, WINDOW, 21, 6).double()
    m = sixd_to_matrix(raw)
    chain = ["Hips", "Spine", "Chest", "Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L"]
    world = m[..., 0, :, :]
    for name in chain[1:]:
        world = world @ m[..., BODY_JOINTS.index(name), :, :]
    hand = BODY_JOINTS.index("Hand_L")
    expected = torch.cat([world[..., :, 0], world[..., :, 1]], -1).float()
    assert torch.allclose(bone[:, :, hand, :6], expected, atol=1e-5)
    hips = bone[:, :, 0, :6]
    assert torch.allclose(hips, torch.from_numpy(windows[..., ROTATIONS][..., :6]), atol=1e-5)
    assert (
        bone[:, :, 1:21, :6] - torch.from_numpy(windows[..., ROTATIONS]).reshape(64, WINDOW, 21, 6)[:, :, 1:]
    ).abs().max() > 0.5
    assert torch.equal(bone[:, :, ROOT_NODE], joint[:, :, ROOT_NODE])
    # a zero-masked joint (augment.mask_joints) keeps the bone view finite: its subtree reads zeros
    masked = torch.from_numpy(windows[:2]).clone()
    elbow = BODY_JOINTS.index("LowerArm_L")
    masked[..., ROTATIONS.start + 6 * elbow : ROTATIONS.start + 6 * elbow + 6] = 0
    mb = make_view((masked - torch.from_numpy(stats["mean"])) / torch.from_numpy(stats["std"]), "bone", stats)
    assert torch.isfinite(mb).all() and torch.equal(mb[:, :, [elbow, hand], :6], torch.zeros_like(mb[:, :, :2, :6]))
    assert torch.allclose(mb[:, :, 0, :6], bone[:2, :, 0, :6])
    with pytest.raises(ValueError, match="stats"):
        make_view(x, "bone")
    with pytest.raises(ValueError, match="view"):
        make_view(x, "pose")


def test_config_round_trip():
    config = EncoderConfig(view="bone", hidden=32)
    again = EncoderConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    with pytest.raises(ValueError, match="unknown"):
        EncoderConfig.from_dict({**config.to_dict(), "width": 3})
    with pytest.raises(ValueError):
        EncoderConfig(view="pose")


@pytest.mark.parametrize("view", VIEWS)
def test_encoder_shapes_and_adjacency_gradient(windows, stats, view):
    torch.manual_seed(0)
    config = EncoderConfig(view=view)
    content, style = ContentEncoder(config), StyleEncoder(config)
    x = make_view(normalised(windows[:8], stats), view, stats)
    c = content(x)
    s = style(x.reshape(8, WINDOW, -1))  # the flattened layout works too
    assert c.shape == (8, WINDOW // config.content_stride, config.content_dim)
    assert s["style"].shape == (8, config.style_dim)
    assert s["groups"].shape == (8, len(GROUP_NAMES), config.group_dim)
    (c.square().mean() + s["style"].square().mean() + s["groups"].square().mean()).backward()
    for module in (content, style):
        for block in module.backbone.blocks:
            assert block.gcn.learned.grad is not None and block.gcn.learned.grad.abs().sum() > 0
    assert ContentEncoder(EncoderConfig(view=view, content_stride=2))(x).shape[1] == WINDOW // 2
    assert ContentEncoder(EncoderConfig(view=view, content_stride=5))(x).shape[1] == WINDOW // 5


def test_no_learned_adjacency():
    config = EncoderConfig(learned_adjacency=False)
    content = ContentEncoder(config)
    assert all(b.gcn.learned is None for b in content.backbone.blocks)
    assert count_parameters(content) < count_parameters(ContentEncoder(EncoderConfig()))


def _trained_encoders(windows, stats, view="joint") -> Encoders:
    """Encoders with non-trivial batch-norm statistics (a few training-mode passes)."""
    torch.manual_seed(1)
    config = EncoderConfig(view=view)
    content, style = ContentEncoder(config), StyleEncoder(config)
    x = make_view(normalised(windows, stats), view, stats)
    with torch.no_grad():
        for _ in range(3):
            content(x)
            style(x)
    return Encoders(content, style, config, stats)


@pytest.mark.parametrize("view", ["joint", "bone"])
def test_save_load_round_trip(tmp_path, windows, stats, view):
    encoders = _trained_encoders(windows, stats, view)
    before = encoders.encode(windows)
    assert encoders.content.training  # encode restores the training mode
    weights, meta = save_encoders(
        tmp_path / "enc", encoders.content, encoders.style, {"command": "pytest", "split": "x.json"}, stats
    )
    assert weights.name == "enc.safetensors" and meta.name == "enc.json"
    loaded = load_encoders(tmp_path / "enc")
    assert loaded.config == encoders.config and loaded.meta["command"] == "pytest"
    assert np.array_equal(loaded.stats["mean"], stats["mean"]) and np.array_equal(loaded.stats["std"], stats["std"])
    after = loaded.encode(windows)
    for key in ("content", "style", "groups"):
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    assert after["content"].shape == (64, 15, 64) and after["style"].shape == (64, 128)
    assert after["groups"].shape == (64, 6, 32) and after["content"].dtype == np.float32
    # a JSON that is not an encoder checkpoint, or of another feature version, is refused
    data = json.loads(meta.read_text())
    meta.write_text(json.dumps({**data, "feature_version": -1}))
    with pytest.raises(ValueError, match="feature version"):
        load_encoders(tmp_path / "enc")
    meta.write_text(json.dumps({**data, "format": "other"}))
    with pytest.raises(ValueError, match="not an encoder checkpoint"):
        load_encoders(tmp_path / "enc")


def test_encode_batch_equals_per_item(windows, stats):
    encoders = _trained_encoders(windows, stats)
    batch = encoders.encode(windows[:12], batch_size=5)
    for i in range(12):
        one = encoders.encode(windows[i : i + 1])
        for key in ("content", "style", "groups"):
            np.testing.assert_allclose(one[key][0], batch[key][i], atol=1e-5, rtol=1e-5, err_msg=key)
    empty = encoders.encode(np.zeros((0, WINDOW, FEATURE_DIM), np.float32))
    assert empty["content"].shape == (0, 15, 64) and empty["groups"].shape == (0, 6, 32)


def test_forward_backward_time(windows, stats, capsys):
    """Times one optimiser step of both encoders on a (64, 60, 134) batch (printed; decides the steps)."""
    config = EncoderConfig()
    content, style = ContentEncoder(config), StyleEncoder(config)
    params = list(content.parameters()) + list(style.parameters())
    optimiser = torch.optim.AdamW(params, lr=1e-3)
    x = make_view(normalised(windows, stats), "joint", stats)
    times = []
    for _ in range(5):
        begin = time.perf_counter()
        c = content(x)
        s = style(x)
        loss = c.square().mean() + s["style"].square().mean() + s["groups"].square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - begin)
    median, best = float(np.median(times[1:])), min(times[1:])
    with capsys.disabled():
        print(
            f"\nencoders: content {count_parameters(content):,} + style {count_parameters(style):,} parameters; "
            f"forward+backward+AdamW step of both on (64, 60, 134), {torch.get_num_threads()} threads: "
            f"median {median:.3f} s, best {best:.3f} s (runs {', '.join(f'{t:.3f}' for t in times)}; "
            "the best is the figure for an unloaded machine)"
        )
    assert median < 30.0
