"""MoCo machinery for the content and style encoders: one encoder pair per view, momentum (EMA) key
copies of them, projection heads, the negative queues, and the distributed helpers.

- :class:`ViewEncoders`: E_c and E_s of one view (joint / velocity / bone) plus MLP projection heads
  for the time-pooled content code and the global style code (MoCo v2 style: the contrast happens in
  the projection space, the exported codes are the heads' inputs). Group codes are contrasted as they
  are, L2-normalised (a per-group head would add six heads for a 32-d code).
- :class:`ContrastiveModel`: the views in one module, so DDP wraps a single forward.
- :class:`Queues`: per view a content, a style and a (groups, K, d) group-code queue, plus the style
  label of every entry (for the optional supervised contrast; -1 = empty). All views' queues are
  written in lockstep, so entry j of every view holds the same window: CrosSCLR mining in one view
  indexes positives in another.
- :func:`gather_batch`: all-gather with the local slice kept differentiable (the SimCLR trick), for
  the losses that need the global batch.
- :func:`convert_global_batchnorm`: the encoders use BatchNorm; under DDP every BatchNorm of the
  query model is swapped for :class:`GlobalBatchNorm`, which normalises with the statistics of the
  GLOBAL batch (sums all-reduced, differentiably), so N processes compute what one process does
  with the whole batch (torch's SyncBatchNorm does this on GPUs only, not on CPU / gloo).

The key (momentum) encoder runs in eval mode: its BatchNorms use running statistics (copied from the
query model), so a key carries no signature of the batch it was computed in. In train mode the
positive key would share the current batch's statistics while the queued negatives carry other
batches', a shortcut MoCo removes with shuffled BN across GPUs; eval-mode keys remove it on one process.
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
import torch.nn.functional as F
from torch import nn

from core.models.encoders import ContentEncoder, EncoderConfig, StyleEncoder

NUM_GROUPS = 6


_BN_GROUP = None


def _bn_group():
    """A process group of its own for the batch-norm sums, so they never interleave with DDP's
    asynchronous gradient all-reduces on the default group."""
    global _BN_GROUP
    if _BN_GROUP is None:
        _BN_GROUP = dist.new_group(backend=dist.get_backend())
    return _BN_GROUP


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x, group=_bn_group())
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad, group=_bn_group())
        return grad


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm (1d or 2d, channels in dim 1) over the global batch of all processes; same
    parameters, buffers and state-dict keys as nn.BatchNorm*d; plain batch norm outside training or
    with one process."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input; got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or world()[1] == 1:
            return super().forward(x)
        x = x.contiguous()  # torch 2.13 CPU: a strided input here ended in heap corruption in backward
        dims = [d for d in range(x.dim()) if d != 1]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor(float(x.numel() // x.shape[1]), device=x.device)
        sums = torch.cat([x.sum(dim=dims), (x * x).sum(dim=dims), count[None]])
        sums = dist_nn.all_reduce(sums, group=_bn_group())
        channels = x.shape[1]
        n = sums[-1]
        mean = sums[:channels] / n
        var = sums[channels : 2 * channels] / n - mean * mean
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm of ``module`` for a GlobalBatchNorm holding the same tensors (in place)."""
    if world()[1] > 1:
        _bn_group()  # created now, collectively, not lazily inside a forward
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, GlobalBatchNorm):
            new = GlobalBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            new.load_state_dict(child.state_dict())
            new.to(next(iter(child.state_dict().values())).device)
            setattr(module, name, new)
        else:
            convert_global_batchnorm(child)
    return module


def _head(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, out_dim))


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient flipped and scaled backward (Ganin & Lempitsky's GRL), so a
    head trained to read a label off a code trains the encoder to hide it."""

    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    return _ReverseGradient.apply(x, scale)


class ViewEncoders(nn.Module):
    """One view's E_c and E_s with their training heads: MoCo projections, a content classifier on
    E_c (supervised content term) and the two leakage adversaries (style from E_c, content from
    E_s) behind gradient reversal. Only E_c and E_s are exported."""

    def __init__(self, config: EncoderConfig, projection_dim: int, labels: dict | None = None):
        super().__init__()
        self.config = config
        self.content = ContentEncoder(config)
        self.style = StyleEncoder(config)
        self.content_head = _head(config.content_dim, projection_dim)
        self.style_head = _head(config.style_dim, projection_dim)
        labels = labels or {}
        # heads exist only when their loss is on (DDP wants every parameter to take part)
        self.content_classifier = (
            nn.Linear(config.content_dim, labels["contents"]) if labels.get("supervised_content") else None
        )
        self.adversaries = (
            nn.ModuleDict(
                {
                    "style_from_content": _head(config.content_dim, labels["styles"]),
                    "content_from_style": _head(config.style_dim, labels["contents"]),
                }
            )
            if labels.get("adversary")
            else None
        )

    def forward(self, content_input: torch.Tensor, style_input: torch.Tensor) -> dict[str, torch.Tensor]:
        sequence = self.content(content_input)  # (B, T / stride, content_dim)
        pooled = sequence.mean(dim=1)
        style = self.style(style_input)
        out = {
            "content_pooled": pooled,
            "content": F.normalize(self.content_head(pooled), dim=1),
            "style_code": style["style"],
            "style": F.normalize(self.style_head(style["style"]), dim=1),
            "groups": F.normalize(style["groups"], dim=2),
        }
        if self.content_classifier is not None:
            out["content_logits"] = self.content_classifier(pooled)
        if self.adversaries is not None:
            out["style_from_content"] = self.adversaries["style_from_content"](reverse_gradient(pooled))
            out["content_from_style"] = self.adversaries["content_from_style"](reverse_gradient(style["style"]))
        return out


class ContrastiveModel(nn.Module):
    """``forward(inputs)``: inputs[view] = (content input, style input) -> outputs[view] (see ViewEncoders)."""

    def __init__(self, configs: dict[str, EncoderConfig], projection_dim: int, labels: dict | None = None):
        """``labels``: {"styles": K, "contents": K, "supervised_content": bool, "adversary": bool}
        for the label-supervised heads (none without it)."""
        super().__init__()
        self.views = nn.ModuleDict(
            {view: ViewEncoders(config, projection_dim, labels) for view, config in configs.items()}
        )

    def forward(self, inputs: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, dict[str, torch.Tensor]]:
        return {view: self.views[view](*inputs[view]) for view in self.views}


def key_copy(model: nn.Module) -> nn.Module:
    """The momentum encoder: a frozen copy, updated only by :func:`momentum_update`."""
    key = copy.deepcopy(model)
    for p in key.parameters():
        p.requires_grad_(False)
    return key


@torch.no_grad()
def momentum_update(key: nn.Module, query: nn.Module, momentum: float) -> None:
    for k, q in zip(key.parameters(), query.parameters(), strict=True):
        k.mul_(momentum).add_(q.detach(), alpha=1.0 - momentum)
    for k, q in zip(key.buffers(), query.buffers(), strict=True):
        k.copy_(q)


class Queues(nn.Module):
    """Negative queues (buffers, so they go into checkpoints with everything else)."""

    def __init__(self, views, size: int, projection_dim: int, group_dim: int, generator: torch.Generator):
        super().__init__()
        self.views, self.size = tuple(views), size
        for view in self.views:
            for kind, shape in (("content", (size, projection_dim)), ("style", (size, projection_dim))):
                self.register_buffer(f"{view}_{kind}", F.normalize(torch.randn(*shape, generator=generator), dim=-1))
            groups = F.normalize(torch.randn(NUM_GROUPS, size, group_dim, generator=generator), dim=-1)
            self.register_buffer(f"{view}_groups", groups)
        self.register_buffer("labels", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    def bank(self, view: str) -> dict[str, torch.Tensor]:
        return {
            "content": getattr(self, f"{view}_content"),
            "style": getattr(self, f"{view}_style"),
            "groups": getattr(self, f"{view}_groups"),
            "labels": self.labels,
        }

    @torch.no_grad()
    def enqueue(self, keys: dict[str, dict[str, torch.Tensor]], labels: torch.Tensor) -> None:
        """Write the global batch's keys (keys[view][kind], as from the key encoder) over the oldest entries."""
        index = (self.pointer + torch.arange(len(labels), device=labels.device)) % self.size
        for view in self.views:
            getattr(self, f"{view}_content")[index] = keys[view]["content"]
            getattr(self, f"{view}_style")[index] = keys[view]["style"]
            getattr(self, f"{view}_groups")[:, index] = keys[view]["groups"].transpose(0, 1)
        self.labels[index] = labels
        self.pointer.fill_(int((self.pointer + len(labels)) % self.size))


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """The global batch (rank order) of a per-rank tensor. Only the local slice carries gradient:
    a loss over the result, multiplied by the world size, gives after DDP's gradient averaging the
    gradient of that loss on one process holding the whole batch."""
    rank, size = world()
    if size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[rank] = x
    return torch.cat(parts)


def all_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over ranks of a tensor of (logged) values."""
    _, size = world()
    if size == 1:
        return values
    values = values.detach().clone()
    dist.all_reduce(values)
    return values / size
