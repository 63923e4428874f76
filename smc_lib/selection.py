"""Exact, deterministic, memory-lean selection of the k lowest scores spread over many tensors.

Global magnitude pruning (Han et al. 2015; Frankle & Carbin 2019, and the OMP baselines of Liu, Chen et al.
ICLR 2023) needs the k-th smallest of ~350 M scores. Concatenating them costs a full copy, and
torch's built-in pruning utility keeps a second copy of every weight. Here, the order is (score, flat index over the
tensors in dict order) and:

1. a random sample (fixed seed) brackets the k-th score in [lo, hi];
2. one chunked pass writes the keep-mask `score > lo` straight into the 1-byte mask and collects the few
   scores in (lo, hi] with their positions;
3. the r = k - #(score <= lo) lowest of those are pruned (a stable sort: ties go by flat index).

If the bracket misses (e.g. millions of tied scores), an exact radix select on the float bits (16 bits per
counting pass) finds the threshold instead. Up to `DIRECT_MAX` scores are concatenated and partitioned
around the k-th value (tests hold every path to an independent stable sort).
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, Mapping

import numpy as np
import torch

from .errors import SMCError

Tensor = torch.Tensor
DIRECT_MAX = 1 << 20      # at most this many scores: one concatenation and partition
CHUNK = 1 << 18           # elements per chunk on CPU (temporaries stay in cache)
CHUNK_CUDA = 1 << 24
SAMPLE = 1 << 20          # sample size used to bracket the k-th score (0 = go straight to radix)
SIGMAS = 4.0              # bracket half-width in standard errors of the sample quantile


def _chunks(x: Tensor) -> Iterator[tuple[int, Tensor]]:
    flat = x.reshape(-1)
    step = CHUNK_CUDA if flat.is_cuda else CHUNK
    for start in range(0, flat.numel(), step):
        yield start, flat[start:start + step]


_NUMPY_TRANSFORMS = {torch.abs: np.abs, torch.square: np.square}
_NUMPY_DTYPES = (torch.float16, torch.float32, torch.float64)


class ScoreView:
    """Scores seen through an elementwise `transform` (e.g. torch.abs) and `keep` masks (pruned → -inf).

    `chunks` reuses one buffer for the transformed chunk: a chunk is valid until the next one is produced.
    """

    def __init__(self, scores: Mapping[str, Tensor], transform: Callable[[Tensor], Tensor] | None = None,
                 keep: Mapping[str, Tensor] | None = None):
        self.scores = {n: v.detach() for n, v in scores.items()}
        self.transform, self.keep = transform, keep
        self._buf: Tensor | None = None

    def _transform_into_buffer(self, c: Tensor) -> Tensor:
        fn = _NUMPY_TRANSFORMS.get(self.transform)
        if fn is None or c.is_cuda or c.dtype not in _NUMPY_DTYPES:
            return self.transform(c)
        if self._buf is None or self._buf.numel() < c.numel() or self._buf.dtype != c.dtype:
            self._buf = torch.empty(max(c.numel(), CHUNK), dtype=c.dtype)
        out = self._buf[:c.numel()]
        fn(c.numpy(), out=out.numpy())
        return out

    def _mask_pruned(self, name: str, v: Tensor, where) -> Tensor:
        if self.keep is None:
            return v
        return v.clamp(min=torch.finfo(v.dtype).min).masked_fill_(~self.keep[name].reshape(-1)[where], -math.inf)

    def chunks(self, name: str) -> Iterator[tuple[int, Tensor]]:
        for start, c in _chunks(self.scores[name]):
            v = c if self.transform is None else self._transform_into_buffer(c)
            yield start, self._mask_pruned(name, v, slice(start, start + c.numel()))

    def gather(self, name: str, idx: Tensor) -> Tensor:
        v = self.scores[name].reshape(-1)[idx]
        return self._mask_pruned(name, v if self.transform is None else self.transform(v), idx)

    def flat(self, name: str) -> Tensor:
        v = self.scores[name].reshape(-1)
        return self._mask_pruned(name, v if self.transform is None else self.transform(v), slice(None))


def prune_lowest(view: ScoreView, names: list[str], k: int) -> dict[str, Tensor]:
    """Bool keep-masks over `names` that prune exactly the k lowest (score, flat index)."""
    sc = view.scores
    n = sum(sc[nm].numel() for nm in names)
    if k == 0:
        return {nm: torch.ones(sc[nm].shape, dtype=torch.bool, device=sc[nm].device) for nm in names}
    if n <= DIRECT_MAX:
        return _direct(view, names, k)
    bracket = _bracket(view, names, k, n)
    return (bracket and _one_pass(view, names, k, n, *bracket)) or _by_radix(view, names, k)


def count_true(mask: Tensor) -> int:
    """Number of True entries of a bool tensor (NumPy's count is several times faster on CPU)."""
    if mask.is_cuda or not mask.is_contiguous():
        return int(torch.count_nonzero(mask))
    return int(np.count_nonzero(mask.numpy()))


def _split(names: list[str], sizes: list[int], flat: Tensor, like: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {nm: part.view(like[nm].shape).to(like[nm].device) for nm, part in zip(names, flat.split(sizes))}


def _direct(view: ScoreView, names: list[str], k: int) -> dict[str, Tensor]:
    """One concatenation: the k-th value by an O(n) partition (NumPy's introselect, far cheaper than a
    stable sort), everything below it pruned, and the ties at it pruned by flat index."""
    allv = torch.cat([view.flat(nm).float().cpu() for nm in names]).numpy()
    if np.isnan(allv).any():
        raise SMCError("the scores contain NaN; make them finite (or -inf)")
    kth = np.partition(allv, k - 1)[k - 1]
    keep = allv >= kth
    ties = np.flatnonzero(allv == kth)[: k - (allv.size - int(np.count_nonzero(keep)))]
    keep[ties] = False
    return _split(names, [view.scores[nm].numel() for nm in names], torch.from_numpy(keep), view.scores)


def _bracket(view: ScoreView, names: list[str], k: int, n: int) -> tuple[float, float, int] | None:
    """[lo, hi] around the k-th score from a fixed-seed sample (stratified: each tensor in proportion to its
    size), and a cap on how many scores may fall inside (3x the expected count); None: no sampling."""
    if SAMPLE <= 0:
        return None
    g = torch.Generator().manual_seed(0)
    parts, m = [], min(SAMPLE, max(n // 16, 4096))
    for nm in names:
        size = view.scores[nm].numel()
        idx = torch.randint(size, (max(1, round(m * size / n)),), generator=g)
        parts.append(view.gather(nm, idx.to(view.scores[nm].device)).float().cpu())
    sample = torch.cat(parts)
    if torch.isnan(sample).any():
        raise SMCError("the scores contain NaN; make them finite (or -inf)")
    q, m = k / n, sample.numel()
    half = SIGMAS * math.sqrt(max(q * (1 - q), 1.0 / m) / m) + 2.0 / m
    lo_i, hi_i = math.floor((q - half) * m), math.ceil((q + half) * m)
    lo = sample.kthvalue(lo_i + 1).values.item() if lo_i >= 0 else -math.inf
    hi = sample.kthvalue(hi_i + 1).values.item() if hi_i < m else math.inf
    return lo, hi, max(1 << 20, int(3 * 2 * half * n))


def _lowest_r(vals: Tensor, r: int) -> Tensor:
    """Indices of the r lowest (value, index) entries of a 1-D tensor, in O(len) (kthvalue, no sort)."""
    if r == 0:
        return vals.new_zeros(0, dtype=torch.long)
    t = vals.kthvalue(r).values
    below = torch.nonzero(vals < t).view(-1)
    ties = torch.nonzero(vals == t).view(-1)[:r - below.numel()]
    return torch.cat([below, ties])


def _bracket_chunk(v: Tensor, out: Tensor, lo: float, hi: float) -> tuple[Tensor, Tensor, int]:
    """Write `v > lo` into `out`; return the positions and values of lo < v <= hi, and #(v > lo). NumPy on CPU: its
    comparisons and counts are several times faster than torch's for bool outputs."""
    if v.is_cuda or v.dtype not in _NUMPY_DTYPES:
        if torch.isnan(v).any():
            raise SMCError("the scores contain NaN; make them finite (or -inf)")
        torch.gt(v, lo, out=out)
        idx = torch.nonzero(out & (v <= hi)).view(-1)
        return idx, v[idx], int(torch.count_nonzero(out))
    vn, on = v.numpy(), out.numpy()
    np.greater(vn, lo, out=on)
    inside = np.less_equal(vn, hi)
    n_le, n_gt = np.count_nonzero(inside), np.count_nonzero(on)
    np.logical_and(inside, on, out=inside)
    idx = np.flatnonzero(inside)
    if n_le + n_gt - idx.size != vn.size:             # NaN is neither > lo nor <= hi
        raise SMCError("the scores contain NaN; make them finite (or -inf)")
    return torch.from_numpy(idx), torch.from_numpy(vn[idx]), int(n_gt)


def _one_pass(view: ScoreView, names: list[str], k: int, n: int, lo: float, hi: float,
              cap: int) -> dict[str, Tensor] | None:
    """Keep `score > lo`, collect (lo, hi], prune the r lowest of those; None if the bracket missed."""
    masks, vals, where, bounds, kept, inside = {}, [], [], [0], 0, 0
    for nm in names:
        mask = torch.empty(view.scores[nm].shape, dtype=torch.bool, device=view.scores[nm].device)
        flat = mask.view(-1)
        pos_dtype = torch.int32 if flat.numel() < 2**31 else torch.int64
        for start, v in view.chunks(nm):
            idx, val, n_kept = _bracket_chunk(v, flat[start:start + v.numel()], lo, hi)
            kept += n_kept
            inside += idx.numel()
            if inside > cap:
                return None
            vals.append(val.float())
            where.append((idx + start).to(pos_dtype))
        masks[nm] = mask
        bounds.append(inside)                         # this tensor's candidates: [bounds[i], bounds[i + 1])
    r = k - (n - kept)
    if not 0 <= r <= inside:
        return None
    values = torch.cat(vals)
    chosen = torch.zeros(inside, dtype=torch.bool, device=values.device)
    chosen[_lowest_r(values, r)] = True
    positions = torch.cat(where)
    for i, nm in enumerate(names):                    # O(candidates) in all, not per tensor
        a, b = bounds[i], bounds[i + 1]
        if b > a:
            masks[nm].view(-1)[positions[a:b][chosen[a:b]].long()] = False
    return masks


def _float_keys(v: Tensor) -> Tensor:
    """Order-preserving integer keys of float values (-0.0 folded onto +0.0)."""
    v = v.float() if v.dtype in (torch.float16, torch.bfloat16) else v
    v = (v + 0.0).contiguous()
    ity, bits = (torch.int64, 64) if v.dtype == torch.float64 else (torch.int32, 32)
    i = v.view(ity)
    return i ^ ((i >> (bits - 1)) & ((1 << (bits - 1)) - 1))


def _by_radix(view: ScoreView, names: list[str], k: int) -> dict[str, Tensor]:
    """Exact radix select of the k-th value on its float bits, then a threshold pass and a tie pass."""
    bits = 64 if view.scores[names[0]].dtype == torch.float64 else 32
    prefix, rank = None, k
    for level in range(bits // 16):
        shift = bits - 16 * (level + 1)
        hist = torch.zeros(1 << 16, dtype=torch.int64)
        for nm in names:
            for _, v in view.chunks(nm):
                if torch.isnan(v).any():
                    raise SMCError("the scores contain NaN; make them finite (or -inf)")
                key = _float_keys(v)
                if prefix is not None:
                    key = key[(key >> (shift + 16)) == prefix]
                digit = (key >> shift) + (1 << 15) if prefix is None else (key >> shift) & 0xFFFF
                hist += torch.bincount(digit.long(), minlength=1 << 16).cpu()
        cum = hist.cumsum(0)
        b = int(torch.searchsorted(cum, torch.tensor(rank)))
        rank -= int(cum[b - 1]) if b > 0 else 0
        prefix = b - (1 << 15) if prefix is None else (prefix << 16) | b
    ity, fty = (torch.int64, torch.float64) if bits == 64 else (torch.int32, torch.float32)
    key = torch.tensor([prefix], dtype=ity)
    t = (key ^ ((key >> (bits - 1)) & ((1 << (bits - 1)) - 1))).view(fty).item()
    masks, extra = {}, rank                            # `rank` ties at t are pruned, lowest flat index first
    for nm in names:
        masks[nm] = torch.empty(view.scores[nm].shape, dtype=torch.bool, device=view.scores[nm].device)
        flat = masks[nm].view(-1)
        for start, v in view.chunks(nm):
            torch.gt(v, t, out=flat[start:start + v.numel()])
            idx = torch.nonzero(v == t).view(-1)
            flat[start + idx[extra:]] = True
            extra = max(0, extra - idx.numel())
    return masks
