"""Batched small-block linear algebra (smc_lib.linalg): the SciPy/NumPy CPU route and the torch route
(taken for non-contiguous blocks, as on CUDA) give the same factors and keep the promised storage layout."""
import numpy as np
import pytest
import torch

from smc_lib import linalg
from smc_lib.linalg import add_gram, cholesky_, inverse_from_cholesky, map_blocks, safe_cholesky, spd_inverse_
from smc_lib.methods.obert import fisher_inverse
from smc_lib.runtime import torch_threads


def _spd(n: int, b: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    g = torch.randn(n, 3 * b, b, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return g.mT @ g / (3 * b) + 1e-3 * torch.eye(b, dtype=dtype)


def _non_contiguous(f: torch.Tensor) -> torch.Tensor:
    wide = torch.zeros(f.shape[0], f.shape[1], 2 * f.shape[2], dtype=f.dtype)
    wide[:, :, : f.shape[2]] = f
    return wide[:, :, : f.shape[2]]


@pytest.mark.parametrize("nogil", [True, False], ids=["ctypes-lapack", "f2py-lapack"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cholesky_in_place_both_routes_factor_and_keep_the_upper_triangle(dtype, nogil, monkeypatch):
    if nogil:
        assert linalg._nogil_potrf("f") is not None and linalg._nogil_potrf("d") is not None
    else:
        monkeypatch.setattr(linalg, "_nogil_potrf", lambda kind: None)
    f = _spd(7, 9, seed=1, dtype=dtype)
    ref = torch.linalg.cholesky(f.double())
    for start in (f.clone(), _non_contiguous(f)):                       # LAPACK route, torch route
        chol, info = cholesky_(start)
        assert chol.data_ptr() == start.data_ptr() and int(info.max()) == 0
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(torch.tril(chol).double(), ref, rtol=tol, atol=tol)
        assert torch.equal(torch.triu(chol, 1), torch.triu(f, 1))      # f recoverable from what is left


def test_cholesky_flags_indefinite_blocks_and_safe_cholesky_repairs_them():
    f = _spd(4, 6, seed=2)
    f[2] = -torch.eye(6) + 1e-3 * f[2]                                   # not positive definite
    _, info = cholesky_(f.clone())
    assert info.tolist() == [0, 0, info[2].item(), 0] and info[2] > 0
    f[2] = torch.outer(torch.arange(1.0, 7.0), torch.arange(1.0, 7.0))  # PSD, rank 1: needs jitter
    with pytest.warns(UserWarning, match="not positive definite"):
        chol = torch.tril(safe_cholesky(f))
    assert torch.isfinite(chol).all()
    torch.testing.assert_close(chol[0] @ chol[0].T, f[0], rtol=1e-5, atol=1e-6)


def test_add_gram_routes_agree_and_accumulate():
    g = torch.randn(5, 24, 3, generator=torch.Generator().manual_seed(3)).transpose(0, 1)   # (24, 5, 3) view
    ref = torch.einsum("nki,nkj->nij", g.double(), g.double())
    out = torch.empty(24, 3, 3)
    add_gram(out, g, accumulate=False)
    torch.testing.assert_close(out.double(), ref, rtol=1e-6, atol=1e-6)
    add_gram(out, g, accumulate=True, chunk=5)
    torch.testing.assert_close(out.double(), 2 * ref, rtol=1e-6, atol=1e-6)
    nc = _non_contiguous(torch.zeros(24, 3, 3))                          # the torch route
    add_gram(nc, g, accumulate=False)
    torch.testing.assert_close(nc, out / 2)


def test_spd_inverse_in_place_matches_numpy():
    f = _spd(6, 11, seed=4)
    want = np.linalg.inv(f.double().numpy())
    got = spd_inverse_(f.clone(), scale=2.0)
    np.testing.assert_allclose(got.double().numpy(), 2.0 * want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    chol, _ = cholesky_(f.clone())
    np.testing.assert_allclose(inverse_from_cholesky(chol).double().numpy(), want, rtol=1e-4,
                               atol=1e-6 * np.abs(want).max())


def test_map_blocks_covers_every_span_once_and_threads_do_not_change_the_fisher_inverse():
    seen = []
    map_blocks(lambda lo, hi: seen.append((lo, hi)), 10, 4, torch.device("cpu"))
    assert sorted(seen) == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(ZeroDivisionError):
        with torch_threads(2):
            map_blocks(lambda lo, hi: 1 / 0, 10, 4, torch.device("cpu"))   # a worker's error reaches the caller
    g = torch.randn(40, 30 * 12, generator=torch.Generator().manual_seed(5))
    with torch_threads(1):
        one = fisher_inverse(g, block_size=12, damping=1e-3, chunk=7)
    with torch_threads(2):
        two = fisher_inverse(g, block_size=12, damping=1e-3, chunk=7)
    assert torch.equal(one, two)
