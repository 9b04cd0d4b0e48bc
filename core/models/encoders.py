"""Content and style encoders (DESIGN §6): a spatial-temporal graph network over the body.

Graph: 22 nodes. Nodes 0..20 are the 21 body joints of core.ops.features.BODY_JOINTS (Hips first, in
canonical order); node 21 (``ROOT_NODE``) is a "root" node carrying the pelvis height, planar
velocity, heading velocity and the 4 foot contacts. Edges are the canonical skeleton's parent links
among the body joints plus root node -- Hips. (The placement joint ``joint_Root`` has no node: the
features fold it into the pelvis.)

Views (per-frame input layout, ``make_view``): every view is a (B, T, 22, C) node tensor with one
common channel count C = ``view_channels(view)`` = 8 per node:

- ``joint``: joints carry their 6D rotation (normalised feature channels) in channels 0..5 and zeros
  in 6..7; the root node carries [height, planar vx, planar vz, heading velocity, heel L, toe L,
  heel R, toe R] (normalised feature channels).
- ``velocity``: the temporal difference of the joint view, v[t] = j[t] - j[t-1], with frame 0
  repeating frame 1 (zeros for a single frame).
- ``bone``: each joint's 6D orientation in the heading-free body frame, i.e. the product of the local
  rotations along its chain from the pelvis (forward kinematics on the de-normalised 6D; so this view
  needs the normalisation ``stats``). The joint view says how each joint bends, the bone view where
  each bone points (the rotation analogue of the bone vectors of 2s-AGCN/CrosSCLR); they agree only
  on Hips. The root node carries the same channels as in the joint view. Values are raw 6D
  entries in [-1, 1]; the encoder's input batch norm rescales every view anyway. A joint whose 6D
  is (near) zero (joint masking) gets the zero matrix, so it and its subtree read zeros.

Encoders take the view tensor (B, T, 22, C) or its flattened form (B, T, 22 * C). Backbone: input
batch norm over (node, channel) as in ST-GCN, then ``layers`` blocks of [graph convolution with K = 3
partitions (self, towards parent, towards children) of the fixed symmetric-normalised adjacency
PLUS a learned adjacency (a (3, 22, 22) parameter per block, zero at init, added: 2s-AGCN) -> BN ->
ReLU -> temporal convolution (kernel ``kernel``) -> BN] with a residual connection. The first
log2(content_stride) blocks stride 2 in time (downsampling early keeps it fast on CPU). ``dropout``
acts on the pooled features before the heads (on the full (B, C, T, N) maps it cost 6% of a step).

- ``ContentEncoder``: (B, T, ...) -> (B, T // content_stride, content_dim): node mean, temporal
  average pooling to T // content_stride steps, a 1x1 convolution.
- ``StyleEncoder``: -> dict(style (B, style_dim), groups (B, 6, group_dim)). Each node's features are
  pooled over time (mean, plus the std when ``style_std_pool``: style lives in statistics, as in
  AdaIN); the global code is the node mean through a 2-layer MLP, each group code the mean over its
  nodes (GROUP_NAMES order: root = the root node; torso = Hips Spine Chest Neck Head; arms and legs
  per BODY_GROUPS) through its own linear map. Codes are not normalised; the losses normalise.

Checkpoints: ``save_encoders(stem, ...)`` writes ``stem.safetensors`` (both state dicts, keys
``content.*`` and ``style.*``) and ``stem.json`` (encoder config, normalisation stats of the training
split, feature version and whatever else the trainer passes). Never pickle. ``load_encoders`` gives
an ``Encoders`` whose ``encode`` maps raw features (N, T, 134) to codes in numpy.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..motion.canonical import BODY_GROUPS, JOINT_NAMES, PLACEMENT_ROOT, canonical_skeleton
from ..ops.features import (
    BODY_JOINTS,
    CONTACTS,
    FEATURE_DIM,
    FEATURE_VERSION,
    HEADING_VELOCITY,
    HEIGHT,
    NUM_BODY_JOINTS,
    PLANAR_VELOCITY,
    ROTATIONS,
)
from ..ops.rotations import matrix_to_sixd, sixd_to_matrix
from .erasure import erase

VIEWS = ("joint", "velocity", "bone")
NUM_NODES = NUM_BODY_JOINTS + 1  # 21 body joints + the root node
ROOT_NODE = NUM_BODY_JOINTS  # index of the root node (last)
NODE_NAMES: tuple[str, ...] = BODY_JOINTS + ("root",)
NODE_CHANNELS = 8  # 6D rotation (joints, zero-padded) / 8 root channels
ROOT_CHANNELS = np.concatenate(
    [np.arange(FEATURE_DIM)[s] for s in (HEIGHT, PLANAR_VELOCITY, HEADING_VELOCITY, CONTACTS)]
)
GROUP_NAMES: tuple[str, ...] = tuple(BODY_GROUPS)  # root, torso, left_arm, right_arm, left_leg, right_leg
CHECKPOINT_FORMAT = "mst-encoders"
CHECKPOINT_VERSION = 1


def _body_parents() -> tuple[int, ...]:
    """Parent of each body joint as an index into BODY_JOINTS (-1 for Hips)."""
    skeleton = canonical_skeleton()
    parents = []
    for name in BODY_JOINTS:
        parent = skeleton.parents[skeleton.index(name)]
        parent_name = JOINT_NAMES[parent] if parent >= 0 else PLACEMENT_ROOT
        parents.append(BODY_JOINTS.index(parent_name) if parent_name != PLACEMENT_ROOT else -1)
    return tuple(parents)


BODY_PARENTS = _body_parents()
# Node parents for the graph: Hips hangs off the root node.
NODE_PARENTS: tuple[int, ...] = tuple(ROOT_NODE if p < 0 else p for p in BODY_PARENTS) + (-1,)


def group_nodes() -> list[list[int]]:
    """Node indices of each body group, in GROUP_NAMES order."""
    out = []
    for name in GROUP_NAMES:
        out.append([ROOT_NODE] if name == "root" else [BODY_JOINTS.index(j) for j in BODY_GROUPS[name]])
    return out


def view_channels(view: str) -> int:
    """Channels per node of a view (the same for every view): the view tensor is (B, T, NUM_NODES, C)."""
    _check_view(view)
    return NODE_CHANNELS


def _check_view(view: str) -> None:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}; got {view!r}")


# ----------------------------------------------------------------------------------------------- views


def _stats_tensors(stats, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(stats, dict):
        mean, std = stats["mean"], stats["std"]
    else:
        mean, std = stats

    def as_t(a):
        a = a if torch.is_tensor(a) else torch.from_numpy(np.asarray(a))
        return a.to(dtype=like.dtype, device=like.device)

    return as_t(mean), as_t(std)


def _joint_nodes(features: torch.Tensor) -> torch.Tensor:
    lead = features.shape[:-1]
    rot = features[..., ROTATIONS].reshape(*lead, NUM_BODY_JOINTS, 6)
    rot = F.pad(rot, (0, NODE_CHANNELS - 6))
    root = features[..., torch.as_tensor(ROOT_CHANNELS, device=features.device)][..., None, :]
    return torch.cat([rot, root], dim=-2)


def make_view(features: torch.Tensor, view: str, stats=None) -> torch.Tensor:
    """(B, T, 134) NORMALISED features -> (B, T, NUM_NODES, C) node tensor of ``view`` (module docstring).

    ``stats`` (dict with ``mean``/``std`` (134,), or a (mean, std) pair) is needed by the bone view
    only, to de-normalise the 6D rotations before forward kinematics.
    """
    _check_view(view)
    if features.shape[-1] != FEATURE_DIM:
        raise ValueError(f"features must end in {FEATURE_DIM} channels; got {tuple(features.shape)}")
    joint = _joint_nodes(features)
    if view == "joint":
        return joint
    if view == "velocity":
        if features.shape[-2] < 2:
            return torch.zeros_like(joint)
        d = joint[..., 1:, :, :] - joint[..., :-1, :, :]
        return torch.cat([d[..., :1, :, :], d], dim=-3)
    if stats is None:
        raise ValueError("the bone view needs the normalisation stats (make_view(..., stats=...)) to de-normalise 6D")
    mean, std = _stats_tensors(stats, features)
    raw = features[..., ROTATIONS] * std[ROTATIONS] + mean[ROTATIONS]
    raw = raw.reshape(*features.shape[:-1], NUM_BODY_JOINTS, 6)
    # a masked joint (zero 6D, see training.contrastive.augment) reaches here as float noise around 0,
    # which Gram-Schmidt would blow up into an arbitrary rotation: make it the zero matrix instead
    # (its whole subtree then reads zeros)
    present = (raw[..., :3].square().sum(-1) > 0.01).to(raw.dtype)[..., None, None]
    local = sixd_to_matrix(raw) * present
    world: list[torch.Tensor] = []
    for j, p in enumerate(BODY_PARENTS):
        world.append(local[..., j, :, :] if p < 0 else world[p] @ local[..., j, :, :])
    bone = matrix_to_sixd(torch.stack(world, dim=-3))
    return torch.cat([F.pad(bone, (0, NODE_CHANNELS - 6)), joint[..., ROOT_NODE:, :]], dim=-2)


# ---------------------------------------------------------------------------------------------- config


@dataclass
class EncoderConfig:
    """Architecture of one content/style encoder pair (both read the same ``view``)."""

    view: str = "joint"
    hidden: int = 64  # channels of every block
    layers: int = 4
    kernel: int = 5  # temporal kernel (odd)
    content_dim: int = 64
    content_stride: int = 4  # content codes per time: T // content_stride steps
    style_dim: int = 128
    group_dim: int = 32
    dropout: float = 0.1
    learned_adjacency: bool = True
    style_std_pool: bool = True  # style pooling: temporal mean and std (False: mean only)

    def __post_init__(self):
        _check_view(self.view)
        if self.kernel % 2 != 1:
            raise ValueError(f"temporal kernel must be odd; got {self.kernel}")
        if self.content_stride < 1 or self.layers < 1 or self.hidden < 1:
            raise ValueError("content_stride, layers and hidden must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EncoderConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown encoder config keys {sorted(unknown)}")
        return cls(**d)

    def block_strides(self) -> list[int]:
        """Temporal stride of each block: 2 for the first floor(log2(content_stride)) blocks."""
        downs = math.floor(math.log2(self.content_stride)) if self.content_stride > 1 else 0
        return [2 if i < downs else 1 for i in range(self.layers)]


# ------------------------------------------------------------------------------------------- backbone


def skeleton_adjacency() -> np.ndarray:
    """(3, N, N) fixed partitions [self, child->parent, parent->child], symmetric-normalised by the degree
    of A + I. Entry [k, n, m] sends node n's features to node m."""
    n = NUM_NODES
    inward = np.zeros((n, n))
    for child, parent in enumerate(NODE_PARENTS):
        if parent >= 0:
            inward[child, parent] = 1.0
    outward = inward.T
    eye = np.eye(n)
    degree = (eye + inward + outward).sum(1)
    scale = 1.0 / np.sqrt(degree)
    norm = lambda a: scale[:, None] * a * scale[None, :]
    return np.stack([norm(eye), norm(inward), norm(outward)]).astype(np.float32)


class GraphConv(nn.Module):
    """y = sum_k W_k x (A_k + B_k): fixed normalised partitions A plus a learned adjacency B (zero init)."""

    def __init__(self, cin: int, cout: int, learned: bool):
        super().__init__()
        a = torch.from_numpy(skeleton_adjacency())
        self.register_buffer("adjacency", a)
        self.learned = nn.Parameter(torch.zeros_like(a)) if learned else None
        self.partitions = a.shape[0]
        # the same map either way; mixing nodes on the narrower side is cheaper (the input block)
        self.aggregate_first = cin < cout
        if self.aggregate_first:
            self.conv = nn.Conv2d(cin * self.partitions, cout, 1)
        else:
            self.conv = nn.Conv2d(cin, cout * self.partitions, 1)
        self.cout = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, N)
        b, c, t, n = x.shape
        a = self.adjacency if self.learned is None else self.adjacency + self.learned
        if self.aggregate_first:
            return self.conv(torch.einsum("bctn,knm->bkctm", x, a).reshape(b, self.partitions * c, t, n))
        y = self.conv(x).view(b, self.partitions, self.cout, t, n)
        return torch.einsum("bkctn,knm->bctm", y, a)


class STBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, learned: bool):
        super().__init__()
        self.gcn = GraphConv(cin, cout, learned)
        self.bn1 = nn.BatchNorm2d(cout)
        self.tcn = nn.Conv2d(cout, cout, (kernel, 1), stride=(stride, 1), padding=(kernel // 2, 0), bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if cin == cout and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=(stride, 1), bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.gcn(x)))
        y = self.bn2(self.tcn(y))
        return F.relu(y + self.residual(x))


class Backbone(nn.Module):
    """(B, T, N, C) or (B, T, N * C) view tensor -> (B, hidden, T', N)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        c = view_channels(config.view)
        self.in_channels = c
        self.data_bn = nn.BatchNorm1d(NUM_NODES * c)
        blocks, cin = [], c
        for stride in config.block_strides():
            blocks.append(STBlock(cin, config.hidden, config.kernel, stride, config.learned_adjacency))
            cin = config.hidden
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.reshape(x.shape[0], x.shape[1], NUM_NODES, -1)
        b, t, n, c = x.shape
        if n != NUM_NODES or c != self.in_channels:
            raise ValueError(f"encoder input must be (B, T, {NUM_NODES}, {self.in_channels}); got {tuple(x.shape)}")
        x = self.data_bn(x.reshape(b, t, n * c).transpose(1, 2))  # (B, N*C, T)
        x = x.reshape(b, n, c, t).permute(0, 2, 3, 1)  # (B, C, T, N)
        for block in self.blocks:
            x = block(x)
        return x


class ContentEncoder(nn.Module):
    """View tensor (B, T, ...) -> content code sequence (B, T // content_stride, content_dim)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.backbone = Backbone(config)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Conv1d(config.hidden, config.content_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[1] // self.config.content_stride
        if steps < 1:
            raise ValueError(f"windows need at least content_stride={self.config.content_stride} frames")
        h = self.backbone(x).mean(dim=3)  # (B, C, T')
        h = F.adaptive_avg_pool1d(h, steps)
        return self.head(self.dropout(h)).transpose(1, 2)


class StyleEncoder(nn.Module):
    """View tensor (B, T, ...) -> dict(style (B, style_dim), groups (B, 6, group_dim)), unnormalised."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.backbone = Backbone(config)
        self.dropout = nn.Dropout(config.dropout)
        pooled = config.hidden * (2 if config.style_std_pool else 1)
        self.global_head = nn.Sequential(nn.Linear(pooled, pooled), nn.ReLU(), nn.Linear(pooled, config.style_dim))
        pool = torch.zeros(len(GROUP_NAMES), NUM_NODES)
        for g, nodes in enumerate(group_nodes()):
            pool[g, nodes] = 1.0 / len(nodes)
        self.register_buffer("group_pool", pool)
        self.group_weight = nn.Parameter(torch.randn(len(GROUP_NAMES), pooled, config.group_dim) / math.sqrt(pooled))
        self.group_bias = nn.Parameter(torch.zeros(len(GROUP_NAMES), config.group_dim))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.backbone(x)  # (B, C, T', N)
        stats = [h.mean(dim=2)]
        if self.config.style_std_pool:
            stats.append(torch.sqrt(h.var(dim=2, unbiased=False) + 1e-5))
        node = self.dropout(torch.cat(stats, dim=1))  # (B, P, N)
        style = self.global_head(node.mean(dim=2))
        grouped = torch.einsum("bpn,gn->bgp", node, self.group_pool)
        groups = torch.einsum("bgp,gpd->bgd", grouped, self.group_weight) + self.group_bias
        return {"style": style, "groups": groups}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------- normalisation


def compute_stats(features: np.ndarray, min_std: float = 1e-4) -> dict[str, np.ndarray]:
    """Per-channel mean and std (float32, (134,)) of (frames, 134) TRAINING-split features; the std is
    floored at ``min_std`` (contact or constant channels)."""
    x = np.asarray(features, dtype=np.float64).reshape(-1, FEATURE_DIM)
    return {
        "mean": x.mean(0).astype(np.float32),
        "std": np.maximum(x.std(0), min_std).astype(np.float32),
    }


def _stats_arrays(stats) -> dict[str, np.ndarray]:
    mean, std = (stats["mean"], stats["std"]) if isinstance(stats, dict) else stats
    to_np = lambda a: (a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)).astype(np.float32)
    out = {"mean": to_np(mean).reshape(-1), "std": to_np(std).reshape(-1)}
    if out["mean"].shape != (FEATURE_DIM,) or out["std"].shape != (FEATURE_DIM,):
        raise ValueError(f"stats mean/std must be ({FEATURE_DIM},)")
    return out


# ------------------------------------------------------------------------------------------- encoders


class Encoders:
    """A content/style encoder pair with its config and normalisation stats; ``encode`` for inference.

    Construct directly (``Encoders(content, style, config, stats)``, e.g. during training) or with
    ``load_encoders``. ``config`` is an EncoderConfig or its dict; ``stats`` a dict(mean, std) or pair.
    ``meta`` is the whole JSON of a loaded checkpoint (empty when constructed directly).
    """

    def __init__(
        self, content: ContentEncoder, style: StyleEncoder, config, stats, meta: dict | None = None, erasers=None
    ):
        self.content = content
        self.style = style
        self.config = config if isinstance(config, EncoderConfig) else EncoderConfig.from_dict(dict(config))
        self.stats = _stats_arrays(stats)
        self.meta = dict(meta or {})
        # linear erasers (core.models.erasure) applied to the "content" and/or "style" codes by encode
        self.erasers = dict(erasers or {})

    @property
    def device(self) -> torch.device:
        return next(self.content.parameters()).device

    def view(self, features: torch.Tensor) -> torch.Tensor:
        """Raw (B, T, 134) features (tensor) -> the normalised view tensor the encoders read."""
        mean = torch.as_tensor(self.stats["mean"], device=features.device)
        std = torch.as_tensor(self.stats["std"], device=features.device)
        return make_view((features - mean) / std, self.config.view, self.stats)

    def codes(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw (B, T, 134) feature tensor -> dict(content, style, groups) tensors with the erasers
        applied, differentiable with respect to ``features`` (training losses score a network's
        output with the frozen encoders through this). The caller sets train/eval mode."""
        x = self.view(features)
        s = self.style(x)
        out = {"content": self.content(x), "style": s["style"], "groups": s["groups"]}
        for name, eraser in self.erasers.items():
            mean = torch.as_tensor(eraser["mean"], device=features.device)
            projection = torch.as_tensor(eraser["projection"], device=features.device)
            out[name] = erase_codes(name, out[name], mean, projection)
        return out

    @torch.no_grad()
    def encode(self, features: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Raw features (N, T, 134) -> dict(content (N, T // stride, Dc), style (N, Ds), groups (N, 6, Dg)),
        float32 numpy; eval mode (restored afterwards), no gradients, batches independent."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 3 or features.shape[2] != FEATURE_DIM:
            raise ValueError(f"features must be (N, T, {FEATURE_DIM}); got {features.shape}")
        modes = (self.content.training, self.style.training)
        self.content.eval()
        self.style.eval()
        out: dict[str, list[np.ndarray]] = {"content": [], "style": [], "groups": []}
        try:
            device = self.device
            for begin in range(0, len(features), batch_size):
                x = self.view(torch.from_numpy(features[begin : begin + batch_size]).to(device))
                out["content"].append(self.content(x).cpu().numpy())
                s = self.style(x)
                out["style"].append(s["style"].cpu().numpy())
                out["groups"].append(s["groups"].cpu().numpy())
        finally:
            self.content.train(modes[0])
            self.style.train(modes[1])
        c = self.config
        for name, eraser in self.erasers.items():
            if out[name]:
                out[name] = [erase_codes(name, v, eraser["mean"], eraser["projection"]) for v in out[name]]
        empty = {
            "content": (0, features.shape[1] // c.content_stride, c.content_dim),
            "style": (0, c.style_dim),
            "groups": (0, len(GROUP_NAMES), c.group_dim),
        }
        return {
            k: np.concatenate(v).astype(np.float32) if v else np.zeros(empty[k], np.float32) for k, v in out.items()
        }


def erase_codes(name: str, codes, mean, projection):
    """``codes`` of one kind (numpy or torch, with ``mean`` and ``projection`` of the same kind) less
    their fitted label directions. The group codes (..., 6, Dg) are erased as one vector per
    window, so no linear read-out of any group, nor of all of them together, finds what was erased."""
    if name != "groups":
        return erase(codes, mean, projection)
    return erase(codes.reshape(*codes.shape[:-2], -1), mean, projection).reshape(codes.shape)


def checkpoint_paths(path_stem) -> tuple[Path, Path]:
    """(``<stem>.safetensors``, ``<stem>.json``) of a checkpoint stem (a path with either suffix
    is taken as its stem): the file pair of every checkpoint in this package."""
    stem = Path(path_stem)
    if stem.suffix in (".json", ".safetensors"):
        stem = stem.with_suffix("")
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_encoders(
    path_stem, content: ContentEncoder, style: StyleEncoder, config: dict, stats, erasers=None
) -> tuple[Path, Path]:
    """Write ``<stem>.safetensors`` (tensors) and ``<stem>.json``; returns both paths.

    ``erasers``: {"content" | "style" | "groups": dict(mean, projection)} linear erasers encode() applies.

    The JSON holds everything in ``config`` (training command, commit, split, ...) plus ``format``,
    ``encoder`` (the modules' EncoderConfig), ``feature_version``, ``feature_dim``, ``stats``
    (mean/std lists, exact for float32) and ``weights`` (the tensors' file name).
    """
    from safetensors.torch import save_file

    from ..io.atomic import replacing, write_text

    if content.config != style.config:
        raise ValueError("content and style encoders must share one EncoderConfig")
    weights, meta_path = checkpoint_paths(path_stem)
    tensors = {f"content.{k}": v.detach().cpu().contiguous() for k, v in content.state_dict().items()}
    tensors.update({f"style.{k}": v.detach().cpu().contiguous() for k, v in style.state_dict().items()})
    for name, eraser in (erasers or {}).items():
        for key in ("mean", "projection"):
            tensors[f"eraser.{name}.{key}"] = torch.from_numpy(np.ascontiguousarray(eraser[key], dtype=np.float32))
    s = _stats_arrays(stats)
    meta = dict(config or {})
    given = meta.get("encoder")
    if given is not None and EncoderConfig.from_dict(dict(given)) != content.config:
        raise ValueError("config['encoder'] differs from the modules' EncoderConfig")
    meta.update(
        format=CHECKPOINT_FORMAT,
        format_version=CHECKPOINT_VERSION,
        encoder=content.config.to_dict(),
        feature_version=FEATURE_VERSION,
        feature_dim=FEATURE_DIM,
        stats={"mean": [float(v) for v in s["mean"]], "std": [float(v) for v in s["std"]]},
        weights=weights.name,
    )
    weights.parent.mkdir(parents=True, exist_ok=True)
    with replacing(weights) as temporary:
        save_file(tensors, str(temporary), metadata={"format": CHECKPOINT_FORMAT})
    write_text(meta_path, json.dumps(meta, indent=1))
    return weights, meta_path


def load_encoders(path_stem, device="cpu") -> Encoders:
    """The Encoders saved by ``save_encoders`` (eval mode, on ``device``)."""
    from safetensors.torch import load_file

    weights, meta_path = checkpoint_paths(path_stem)
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{meta_path} is not an encoder checkpoint (format {meta.get('format')!r})")
    if meta.get("feature_version") != FEATURE_VERSION:
        raise ValueError(
            f"{meta_path}: encoders trained on feature version {meta.get('feature_version')}, "
            f"this code computes version {FEATURE_VERSION}"
        )
    config = EncoderConfig.from_dict(meta["encoder"])
    tensors = load_file(str(weights_path := meta_path.with_name(meta.get("weights", weights.name))))
    content, style = ContentEncoder(config), StyleEncoder(config)
    for prefix, module in (("content.", content), ("style.", style)):
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ValueError(f"{weights_path}: weights do not match the encoder config: {e}") from e
        module.to(device).eval()
    stats = {k: np.asarray(meta["stats"][k], dtype=np.float32) for k in ("mean", "std")}
    erasers: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        if key.startswith("eraser."):
            _, name, part = key.split(".")
            erasers.setdefault(name, {})[part] = value.numpy()
    return Encoders(content, style, config, stats, meta, erasers)
