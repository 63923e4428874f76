"""`smc bench fisher`: oBERT's block-Fisher inverse (Kurtic et al. 2022), ours vs SparseML's way.

Ours: all m gradients at once, one batched Gram product to Σ g gᵀ, then a Cholesky per block and a batched
triangular inverse (`smc_lib.linalg`; float64 only for ill-conditioned blocks). SparseML's way: F⁻¹ starts at I/λ and every gradient updates every block by
the rank-1 Woodbury (Sherman-Morrison) formula F⁻¹ ← F⁻¹ - (F⁻¹g gᵀF⁻¹) / (m + gᵀF⁻¹g), m times in sequence.
Both run in this process on the same random gradients; the relative error is against a float64 inverse of
λI + (1/m) Σ g gᵀ per block (Frobenius norm over all blocks). Ends with one JSON line.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
from torch import Tensor
from tqdm import tqdm

from smc_lib.errors import SMCError, run_main
from smc_lib.methods.obert import fisher_inverse
from smc_lib.runtime import plain_paths, torch_threads
from smc_lib.train import resolve_device


def sequential_woodbury(grads: Tensor, block_size: int, damping: float) -> Tensor:
    """F⁻¹ by m rank-1 updates of all blocks: SparseML's `EmpiricalBlockFisherInverse.add_grad`, verbatim
    but for names (sparseml/pytorch/sparsification/pruning/modifier_pruning_obs.py)."""
    m, d = grads.shape
    nb = d // block_size
    f_inv = torch.eye(block_size, device=grads.device).div_(damping).repeat(nb, 1, 1)
    for g in tqdm(grads, desc="sequential Woodbury", leave=False):
        g = g.view(nb, block_size)
        finv_g = torch.einsum("bij,bj->bi", f_inv, g)
        alpha = (m + torch.einsum("bi,bi->b", g, finv_g)).sqrt().unsqueeze(1)
        finv_g /= alpha
        f_inv.baddbmm_(finv_g.unsqueeze(2), finv_g.unsqueeze(1), alpha=-1)
    return f_inv


def relative_errors(grads: Tensor, block_size: int, damping: float, *finvs: Tensor,
                    chunk: int = 4096) -> list[float]:
    """‖F̂⁻¹ - F⁻¹‖ / ‖F⁻¹‖ for each candidate, F⁻¹ the float64 inverse, computed a chunk of blocks at a time."""
    m, d = grads.shape
    nb = d // block_size
    eye = torch.eye(block_size, dtype=torch.float64, device=grads.device)
    num, den = [0.0] * len(finvs), 0.0
    for lo in range(0, nb, chunk):
        g = grads[:, lo * block_size:(lo + chunk) * block_size].double()
        g = g.reshape(m, -1, block_size).transpose(0, 1)
        ref = torch.linalg.inv(torch.bmm(g.transpose(1, 2), g) / m + damping * eye)
        den += float((ref ** 2).sum())
        for i, f in enumerate(finvs):
            num[i] += float(((f[lo:lo + chunk].double() - ref) ** 2).sum())
    return [(n / den) ** 0.5 for n in num]


def _timed(fn, device: torch.device) -> tuple[Tensor, float, float]:
    """(result, wall seconds, CPU seconds of this process): on a loaded machine CPU time is the steadier."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t, time.process_time() - c


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="smc bench fisher", description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=2_000_000, help="weights (a multiple of --block-size)")
    ap.add_argument("--m", type=int, default=128, help="gradients")
    ap.add_argument("--block-size", type=int, default=50)
    ap.add_argument("--damping", type=float, default=1e-7)
    ap.add_argument("--device", default="auto", help="cpu, cuda, or auto")
    ap.add_argument("--grad-scale", type=float, default=1e-3,
                    help="std of the random gradients (fine-tuning gradients are of order 1e-3)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.d % args.block_size:
        raise SMCError(f"--d {args.d} is not a multiple of --block-size {args.block_size}")
    with torch_threads(args.threads):
        result = run(args)
    print(json.dumps(result))
    return result


def run(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    gen = torch.Generator().manual_seed(args.seed)
    grads = torch.randn(args.m, args.d, generator=gen).mul_(args.grad_scale).to(device)
    warm = grads[:, : 20 * args.block_size]                    # load LAPACK / kernels before timing
    fisher_inverse(warm, args.block_size, args.damping), sequential_woodbury(warm, args.block_size, args.damping)
    ours, ours_s, ours_cpu = _timed(lambda: fisher_inverse(grads, args.block_size, args.damping), device)
    with plain_paths():                                      # the plain-torch reference of the same algorithm
        _, plain_s, _ = _timed(lambda: fisher_inverse(grads, args.block_size, args.damping), device)
    seq, seq_s, seq_cpu = _timed(lambda: sequential_woodbury(grads, args.block_size, args.damping), device)
    err, seq_err = relative_errors(grads, args.block_size, args.damping, ours, seq)
    return {"bench": "fisher", "ours_s": round(ours_s, 3), "sequential_s": round(seq_s, 3),
            "speedup": round(seq_s / ours_s, 2), "plain_s": round(plain_s, 3),
            "fast_vs_plain": round(plain_s / ours_s, 2), "rel_err": float(f"{err:.3g}"),
            "sequential_rel_err": float(f"{seq_err:.3g}"), "ours_cpu_s": round(ours_cpu, 3),
            "sequential_cpu_s": round(seq_cpu, 3), "cpu_speedup": round(seq_cpu / ours_cpu, 2),
            "d": args.d, "m": args.m, "block_size": args.block_size, "device": str(device),
            "threads": torch.get_num_threads()}


if __name__ == "__main__":
    run_main(main)
