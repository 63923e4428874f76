"""Batched linear algebra on many small blocks (oBERT's block Fisher): Gram matrices, Cholesky, SPD inverse.

Tens of thousands of 50×50 matrices are far too small for a LAPACK call to be compute-bound: per-call
overhead decides the speed. So on CPU the Gram, the Cholesky and the product L⁻ᵀL⁻¹ go through NumPy /
SciPy (zero-copy views of the torch storage; the Cholesky is LAPACK `?potrf` called in place on each block),
which beat torch's batched wrappers on such blocks, and the triangular solve through torch's batched
`solve_triangular`, which beat the LAPACK routes (`?potri`, `?trtri` + `?lauum`, `inv_ex`,
`cholesky_inverse`). On CUDA, and with the fast paths off (`runtime.fast_paths`), everything stays in torch's
batched kernels; `smc bench fisher` prints the two paths' times on the host at hand. `map_blocks` spreads
spans of blocks over torch's thread count in Python threads.
"""
from __future__ import annotations

import ctypes
import functools
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import torch
from scipy.linalg import cython_lapack, lapack
from torch import Tensor

from .errors import SMCError
from .runtime import fast_paths, torch_threads

_POTRF = {torch.float32: lapack.spotrf, torch.float64: lapack.dpotrf}


def one_cpu_thread(device: torch.device):
    """Batched small LAPACK calls on CPU run on one thread: torch 2.13's multi-threaded batched triangular
    solve was many times slower than one thread on shared cores."""
    return torch_threads(1 if device.type == "cpu" else None)


def map_blocks(fn: Callable[[int, int], object], n: int, chunk: int, device: torch.device) -> None:
    """fn(lo, hi) over consecutive spans of [0, n), each independent. On CPU the spans are shared among as many
    Python threads as torch has intra-op threads, every op inside on one thread: NumPy, SciPy's LAPACK and
    torch kernels release the GIL, and this beat one multi-threaded batched call (`smc bench fisher`).
    Results do not depend on the thread count."""
    spans = [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]
    workers = min(torch.get_num_threads(), len(spans)) if device.type == "cpu" else 1
    if workers <= 1:
        for lo, hi in spans:
            fn(lo, hi)
        return
    with one_cpu_thread(device), ThreadPoolExecutor(workers) as pool:
        for done in [pool.submit(fn, lo, hi) for lo, hi in spans]:
            done.result()


def _numpy_ok(*tensors: Tensor) -> bool:
    return fast_paths() and all(t.device.type == "cpu" and t.dtype in _POTRF and not t.requires_grad for t in tensors)


def add_gram(out: Tensor, x: Tensor, accumulate: bool, chunk: int = 2048) -> Tensor:
    """out (n, B, B) ← [out +] xᵀx per block, x of shape (n, m, B) (any strides: a view of the gradients)."""
    if not (_numpy_ok(out, x) and out.is_contiguous() and out.dtype == x.dtype):
        map_blocks(lambda lo, hi: out[lo:hi].baddbmm_(x[lo:hi].mT, x[lo:hi], beta=1.0 if accumulate else 0.0),
                   len(out), chunk, out.device)
        return out
    o, a = out.numpy(), x.numpy()

    def gram(lo: int, hi: int) -> None:
        xs = a[lo:hi]
        if accumulate:
            o[lo:hi] += np.matmul(xs.transpose(0, 2, 1), xs)
        else:
            np.matmul(xs.transpose(0, 2, 1), xs, out=o[lo:hi])
    map_blocks(gram, len(o), chunk, out.device)
    return out


def cholesky_(f: Tensor) -> tuple[Tensor, Tensor]:
    """Cholesky of a batch of SPD matrices in place: returns (L, info) with L = `f`'s storage, its lower
    triangle the factor; the strict upper triangle still holds `f`'s (so f = that, mirrored, plus the
    diagonal the caller saved). info > 0 marks a block that is not positive definite."""
    if not (_numpy_ok(f) and f.is_contiguous()):
        with one_cpu_thread(f.device):
            chol, info = torch.linalg.cholesky_ex(f)
        f.copy_(chol.add_(torch.triu(f, diagonal=1)))         # torch zeroes the upper triangle: keep f's
        return f, info
    blocks = f.numpy()
    nogil = _nogil_potrf(blocks.dtype.char)
    info = np.zeros(len(blocks), dtype=np.int32)
    if nogil is not None:                                       # row-major blocks = Fortran's transposes:
        n, status, step = ctypes.c_int(blocks.shape[-1]), ctypes.c_int(), blocks.strides[0]
        for i, address in enumerate(range(blocks.ctypes.data, blocks.ctypes.data + len(blocks) * step, step)):
            nogil(b"U", n, address, n, status)                 # Fortran's upper = our lower triangle
            info[i] = status.value
        return f, torch.from_numpy(info)
    potrf = _POTRF[f.dtype]
    for i, block in enumerate(blocks):                          # block.T is Fortran-ordered: no copy
        info[i] = potrf(block.T, lower=0, clean=0, overwrite_a=1)[1]
    return f, torch.from_numpy(info)


@functools.cache
def _nogil_potrf(kind: str):
    """LAPACK ?potrf from SciPy's public Cython LAPACK (`scipy.linalg.cython_lapack`) as a ctypes function,
    which, unlike the f2py wrapper, drops the GIL during the call, so `map_blocks`' threads factor in
    parallel; None where the capsule is not there (then the f2py wrapper serves)."""
    try:
        capsule = cython_lapack.__pyx_capi__[{"f": "spotrf", "d": "dpotrf"}[kind]]
    except (AttributeError, KeyError):
        return None
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype, api.PyCapsule_GetName.argtypes = ctypes.c_char_p, [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    address = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    int_p = ctypes.POINTER(ctypes.c_int)           # void ?potrf(char *uplo, int *n, T *a, int *lda, int *info)
    return ctypes.CFUNCTYPE(None, ctypes.c_char_p, int_p, ctypes.c_void_p, int_p, int_p)(address)


def _mirror(packed: Tensor, diagonal: Tensor) -> Tensor:
    """The symmetric matrices whose strict upper triangle and diagonal `cholesky_` left behind."""
    upper = torch.triu(packed, diagonal=1)
    return upper + upper.mT + torch.diag_embed(diagonal)


def safe_cholesky(f: Tensor) -> Tensor:
    """Cholesky (lower triangle; upper unspecified) of a batch of SPD matrices, `f` kept. Σ g gᵀ is summed in
    float32 (the bulk of the work); when its rounding outweighs a tiny λ a block can come out indefinite, and
    only those blocks get a jitter of 10⁻⁸…10⁻⁴ × their mean diagonal added (the standard PSD-safe
    Cholesky), with a warning."""
    chol, info = cholesky_(f.clone())
    bad = info > 0
    scale = torch.diagonal(f, dim1=1, dim2=2).mean(-1)
    eye = torch.eye(f.shape[-1], dtype=f.dtype, device=f.device)
    for jitter in (1e-8, 1e-6, 1e-4):
        if not bool(bad.any()):
            return chol
        warnings.warn(f"{int(bad.sum())} Fisher blocks not positive definite; adding {jitter:g} × their mean "
                      "diagonal (raise obert damping to avoid this)", stacklevel=4)
        fixed, info = cholesky_(f[bad] + jitter * scale[bad, None, None] * eye)
        chol[bad] = fixed
        bad = bad.clone()
        bad[bad.clone()] = info > 0
    if bool(bad.any()):
        raise SMCError("block Fisher not positive definite even with jitter; raise obert damping (e.g. 1e-4)")
    return chol


def inverse_from_cholesky(chol: Tensor, out: Tensor | None = None, scale: float = 1.0) -> Tensor:
    """F⁻¹ = L⁻ᵀ L⁻¹ from the lower triangle of `chol`: L⁻ᵀ by one batched triangular solve X Lᵀ = I, then
    one batched product. `out` may be `chol` itself."""
    root = torch.eye(chol.shape[-1], dtype=chol.dtype, device=chol.device).mul_(scale ** 0.5)
    with one_cpu_thread(chol.device):                          # X = √scale · L⁻ᵀ, so X Xᵀ = scale · F⁻¹
        x = torch.linalg.solve_triangular(chol.mT, root.expand_as(chol), upper=True, left=False)
    if out is None:
        out = torch.empty_like(chol)
    if _numpy_ok(out, x) and out.is_contiguous():
        a = x.numpy()
        np.matmul(a, a.transpose(0, 2, 1), out=out.numpy())
        return out
    return torch.bmm(x, x.mT, out=out)


def spd_inverse_(f: Tensor, scale: float = 1.0, max_pivot_ratio: float = 1e3) -> Tensor:
    """`scale` · f⁻¹ of a batch of SPD blocks, in place. float32 blocks are factored in float32 and redone in
    float64 where float32 fails or is shaky (pivot ratio max L_jj² / min L_jj², a lower bound on the
    condition number, above `max_pivot_ratio`, where float32 could lose more than ~1e-4 relative accuracy)."""
    if f.dtype == torch.float64:
        return inverse_from_cholesky(safe_cholesky(f), out=f, scale=scale)
    diagonal = torch.diagonal(f, dim1=1, dim2=2).clone()
    chol, info = cholesky_(f)
    pivots = torch.diagonal(chol, dim1=1, dim2=2) ** 2
    shaky = (info > 0) | ~(pivots.amax(-1) <= max_pivot_ratio * pivots.amin(-1))
    exact = None
    if bool(shaky.any()):
        original = _mirror(chol[shaky], diagonal[shaky]).double()
        exact = inverse_from_cholesky(safe_cholesky(original), scale=scale).float()
    inv = inverse_from_cholesky(chol, out=f, scale=scale)
    if exact is not None:
        inv[shaky] = exact
    return inv
