"""ESM-IF1 (GVP transformer) as a classifier: a tiny random-init model learns three synthetic backbones, and
scope `encoder` prunes only its transformer's Q/K/V/O and FFN matrices. Needs the `if1` extra."""
from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("torch_geometric")
pytest.importorskip("biotite")

from smc_lib import prune  # noqa: E402
from smc_lib.errors import SMCError  # noqa: E402
from smc_lib.scope import prunable  # noqa: E402
from smc_lib.tasks.protein import if1  # noqa: E402


def backbone(length: int, rise: float, turn: float, seed: int) -> torch.Tensor:
    """N, CA, C coordinates (L × 3 × 3, Å) of a helix-like chain with the given rise and turn per residue."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float32)
    ca = torch.stack([2.3 * torch.cos(turn * t), 2.3 * torch.sin(turn * t), rise * t], dim=1)
    offsets = torch.tensor([[-1.2, 0.6, -0.4], [0.0, 0.0, 0.0], [1.2, 0.7, 0.4]])
    return ca[:, None, :] + offsets[None] + 0.05 * torch.randn(length, 3, 3, generator=g)


BACKBONES = [backbone(14, 1.5, math.radians(100), 0), backbone(11, 3.3, math.radians(180), 1),
             backbone(17, 2.0, math.radians(60), 2)]


def test_tiny_if1_learns_three_backbones():
    torch.manual_seed(0)
    model, prov, converter = if1.build("esm-if1-tiny", classes=3)
    assert prov["init"] == "random" and not hasattr(model, "decoder")
    batch = if1.collate(converter, [b.tolist() for b in BACKBONES])
    labels = torch.tensor([0, 1, 2])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(**batch), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        assert model(**batch).argmax(1).tolist() == [0, 1, 2]


def test_scope_encoder_prunes_only_the_transformer_matrices():
    torch.manual_seed(0)
    model, _, converter = if1.build("esm-if1-tiny", classes=3, layers=2)
    names = list(prunable(model, "encoder"))
    assert names and all(any(k in n for k in ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"))
                         for n in names)
    assert not any("gvp" in n or n.startswith("head") for n in names)
    before = {n: int((p == 0).sum()) for n, p in model.named_parameters()}    # e.g. the padding embedding row
    masks = prune(model, 0.5, scope="encoder")
    assert masks.sparsity() == pytest.approx(0.5, abs=1e-3)
    pruned = {n for n, p in model.named_parameters() if int((p == 0).sum()) > before[n]}
    assert pruned == set(names)
    with torch.no_grad():                                     # the pruned model still runs on backbones
        out = model(**if1.collate(converter, [b.tolist() for b in BACKBONES]))
    assert out.shape == (3, 3) and torch.isfinite(out).all()


def test_unknown_if1_name_is_one_line():
    with pytest.raises(SMCError, match="cannot load ESM-IF1 model 'no_such_if1'"):
        if1.build("no_such_if1", classes=2)


def test_the_protein_task_refuses_if1_before_training():
    from smc_lib.tasks.protein.task import ProteinTask

    with pytest.raises(SMCError, match="reads backbone structures, and none are held for 'hp-s2c5'"):
        ProteinTask("hp-s2c5", "esm_if1_gvp4_t16_142M_UR50")
