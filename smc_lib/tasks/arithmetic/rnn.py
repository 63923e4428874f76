"""A bidirectional GRU whose backward pass computes weight gradients in one matrix product.

Why: on CPU, autograd through `nn.GRU` (and through any step-by-step GRU) forms and accumulates a full
(3H × H) weight gradient at every time step; with GTS's batch of 4 and hidden 512 that memory traffic,
not arithmetic, dominates a training step. Here the recurrence runs without autograd and a hand-written
backward walks the sequence once, collecting the gate gradients of all steps; the weight gradients are
then single (3H × T·B) · (T·B × H) products. Same equations and parameter layout as `torch.nn.GRU`
(gates r, z, n; Cho et al. 2014), checked against it in tests/test_arithmetic_models.py.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...runtime import fast_paths


def _small_batch_mm(w: Tensor, h: Tensor) -> Tensor:
    """h @ wᵀ for a handful of rows h (B, K) and a large row-major w (N, K), as a new contiguous (B, N).

    Computed as (w @ hᵀ)ᵀ with hᵀ a column-major view: MKL then streams w once in a matrix-vector-like
    kernel, where `F.linear(h, w)` packs w first: faster for GTS's recurrence shapes (N = 1536, K = 512,
    B = 4; `smc bench gts` prints the fast paths against the plain ones)."""
    return torch.mm(w, h.t()).t().contiguous()


class _GRUFunction(torch.autograd.Function):
    """One unidirectional GRU layer over (T, B, E) with zero initial state. `valid` (T, B), True on real
    tokens, each sequence's padding after its tokens (or None: no padding): padded steps output exactly 0,
    as a packed `nn.GRU` does, so their rows are left out of every input and weight product (exact, since
    they feed nothing; ~23 % of the rows of a GTS batch of 4)."""

    @staticmethod
    def forward(ctx, x: Tensor, valid: Tensor | None, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor,
                b_hh: Tensor) -> Tensor:
        T, B, E = x.shape
        H = w_hh.size(1)
        rows = None if valid is None else valid.reshape(-1).nonzero().squeeze(1)
        if rows is None:
            gi = F.linear(x, w_ih, b_ih)  # (T, B, 3H), all steps at once
        else:
            gi = x.new_zeros(T * B, 3 * H).index_copy_(0, rows, F.linear(x.reshape(T * B, E)[rows], w_ih, b_ih))
            gi = gi.view(T, B, 3 * H)
        h = x.new_zeros(B, H)
        hs, rzs, ns, ghn = [h], [], [], []
        for t in range(T):
            gh = _small_batch_mm(w_hh, h).add_(b_hh)
            rz = torch.sigmoid(gi[t, :, : 2 * H] + gh[:, : 2 * H])
            n = torch.tanh(torch.addcmul(gi[t, :, 2 * H:], rz[:, :H], gh[:, 2 * H:]))
            h = torch.lerp(n, h, rz[:, H:]).contiguous()  # (1 - z) * n + z * h
            hs.append(h), rzs.append(rz), ns.append(n), ghn.append(gh[:, 2 * H:])
        out = torch.stack(hs[1:])
        if valid is not None:
            out.masked_fill_(~valid.unsqueeze(-1), 0.0)
        rz = torch.stack(rzs)
        ctx.rows = rows
        ctx.save_for_backward(x, w_ih, w_hh, torch.stack(hs[:-1]), rz[..., :H], rz[..., H:], torch.stack(ns),
                              torch.stack(ghn), valid)
        return out

    @staticmethod
    def backward(ctx, d_out: Tensor):
        x, w_ih, w_hh, h_prev, r, z, n, ghn, valid = ctx.saved_tensors
        T, B, H = h_prev.shape
        E = x.size(-1)
        if valid is not None:                 # padded outputs are constant 0: no gradient flows from them
            d_out = d_out.masked_fill(~valid.unsqueeze(-1), 0.0)
        to_n = (1 - z) * (1 - n * n)          # d n_pre / d h
        to_z = (h_prev - n) * z * (1 - z)     # d z_pre / d h
        to_r = ghn * r * (1 - r)              # d r_pre / d n_pre
        dhs = x.new_empty(T, B, H)
        dh = x.new_zeros(B, H)
        w_hh_t = w_hh.t().contiguous()
        for t in reversed(range(T)):  # only the recurrence itself runs step by step
            dh = dh + d_out[t]
            dhs[t] = dh
            d_n = dh * to_n[t]
            d_gh = torch.cat([d_n * to_r[t], dh * to_z[t], d_n * r[t]], dim=1)
            dh = _small_batch_mm(w_hh_t, d_gh).add_(dh * z[t])
        d_n, d_z = dhs * to_n, dhs * to_z
        d_r = d_n * to_r
        flat_gi = torch.cat([d_r, d_z, d_n], dim=2).reshape(T * B, 3 * H)
        flat_gh = torch.cat([d_r, d_z, d_n * r], dim=2).reshape(T * B, 3 * H)
        xs, hs = x.reshape(T * B, E), h_prev.reshape(T * B, H)
        rows = ctx.rows
        if rows is None:
            d_x = (flat_gi @ w_ih).reshape(x.shape)
        else:                                 # padded rows of the gate gradients are exactly 0
            flat_gi, flat_gh, xs, hs = flat_gi[rows], flat_gh[rows], xs[rows], hs[rows]
            d_x = x.new_zeros(T * B, E).index_copy_(0, rows, flat_gi @ w_ih).view(x.shape)
        return d_x, None, flat_gi.t() @ xs, flat_gh.t() @ hs, flat_gi.sum(0), flat_gh.sum(0)


def gru_reference(x: Tensor, valid: Tensor | None, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> Tensor:
    """The plain-autograd GRU layer `_GRUFunction` and `gru_fused` must match (same equations as `torch.nn.GRU`,
    padded steps output 0): the path with SMC_FAST_PATHS=0, and the oracle of their tests."""
    H = w_hh.size(1)
    gi = F.linear(x, w_ih, b_ih)
    if valid is not None:                 # padded steps see no input, as in the fast path
        gi = gi.masked_fill(~valid.unsqueeze(-1), 0.0)
    h, outs = x.new_zeros(x.size(1), H), []
    for t in range(x.size(0)):
        gh = F.linear(h, w_hh, b_hh)
        r = torch.sigmoid(gi[t, :, :H] + gh[:, :H])
        z = torch.sigmoid(gi[t, :, H: 2 * H] + gh[:, H: 2 * H])
        n = torch.tanh(gi[t, :, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        outs.append(h)
    out = torch.stack(outs)
    return out if valid is None else out.masked_fill(~valid.unsqueeze(-1), 0.0)


_TEMPLATES: dict[tuple, nn.GRU] = {}


def gru_fused(x: Tensor, valid: Tensor | None, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> Tensor:
    """The same GRU layer through torch's own kernel (`nn.GRU` with these weights: cuDNN on CUDA). Padded steps
    follow the valid ones of their sequence and the recurrence runs forward, so what they see never reaches a
    valid step; their outputs are 0 as in `gru_reference`."""
    key = (w_ih.size(1), w_hh.size(1), x.device, x.dtype)
    if key not in _TEMPLATES:                   # a parameter-less shell: functional_call supplies the weights
        _TEMPLATES[key] = nn.GRU(key[0], key[1]).to(device=x.device, dtype=x.dtype).requires_grad_(False)
    weights = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh}
    out, _ = torch.func.functional_call(_TEMPLATES[key], weights, (x,))
    return out if valid is None else out.masked_fill(~valid.unsqueeze(-1), 0.0)


def gru_path(device: torch.device) -> str:
    """Which GRU runs on `device`: torch's kernel on CUDA (cuDNN), the hand-written backward on CPU, the plain
    autograd reference with the fast paths off (SMC_FAST_PATHS=0)."""
    if device.type == "cuda":
        return "fused"
    return "fast" if device.type == "cpu" and fast_paths() else "reference"


class GRULayer(nn.Module):
    """Parameters named and initialised like one direction of one layer of `nn.GRU`."""

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden, in_dim))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden, hidden))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden))
        bound = 1.0 / math.sqrt(hidden)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        """x (T, B, E) → hidden states (T, B, H), 0 where `valid` (T, B) is False."""
        args = (x, valid, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        path = gru_path(x.device)
        if path == "fast":
            return _GRUFunction.apply(*args)
        return gru_fused(*args) if path == "fused" else gru_reference(*args)


def reverse_within(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of (B, T, D) inside its own length, leaving the padding where it is."""
    T = x.size(1)
    idx = torch.arange(T, device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    rev = torch.where(idx < lengths, lengths - 1 - idx, idx)
    return x.gather(1, rev.unsqueeze(-1).expand(-1, -1, x.size(-1)))


class BiGRU(nn.Module):
    """Stacked bidirectional GRU over padded (B, T, E); returns (forward states, backward states)."""

    def __init__(self, in_dim: int, hidden: int, layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([GRULayer(in_dim if i == 0 else 2 * hidden, hidden) for _ in range(2)])
            for i in range(layers))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        h = x
        valid = torch.arange(x.size(1), device=x.device)[:, None] < lengths.to(x.device)[None, :]   # (T, B)
        for i, (fwd, bwd) in enumerate(self.layers):
            if i > 0:
                h = self.drop(h)
            f = fwd(h.transpose(0, 1), valid).transpose(0, 1)
            b = reverse_within(bwd(reverse_within(h, lengths).transpose(0, 1), valid).transpose(0, 1), lengths)
            h = torch.cat([f, b], dim=-1)
        H = h.size(-1) // 2
        return h[..., :H], h[..., H:]
