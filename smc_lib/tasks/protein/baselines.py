"""Baselines a protein model must beat: the majority class of the test split, and logistic regression on
amino-acid composition (the 20 residue frequencies of a sequence), the classic thermostability baseline
(e.g. Zhang & Fang 2006). The section's floor is ≥ 10 points above the majority and above this one."""
from __future__ import annotations

import collections

import torch

from .data import STANDARD, Protein


def composition(proteins: list[Protein]) -> torch.Tensor:
    """[n, 20] residue frequencies (non-standard residues ignored)."""
    index = {c: i for i, c in enumerate(STANDARD)}
    out = torch.zeros(len(proteins), len(STANDARD))
    for row, p in enumerate(proteins):
        for c in p.sequence:
            if c in index:
                out[row, index[c]] += 1
        out[row] /= max(1.0, float(out[row].sum()))
    return out


def majority(train: list[Protein], test: list[Protein]) -> float:
    """Accuracy (%) of predicting the test split's most frequent class (the floor's reference)."""
    counts = collections.Counter(p.label for p in test)
    return 100.0 * counts.most_common(1)[0][1] / len(test)


def composition_logreg(train: list[Protein], test: list[Protein], l2: float = 1e-3, steps: int = 200) -> float:
    """Test accuracy (%) of multinomial logistic regression on standardised composition, fit by L-BFGS."""
    x, xt = composition(train), composition(test)
    mu, sd = x.mean(0), x.std(0).clamp(min=1e-6)
    x, xt = (x - mu) / sd, (xt - mu) / sd
    y = torch.tensor([p.label for p in train])
    classes = int(max(y.max().item(), max(p.label for p in test))) + 1
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (xt @ w + b).argmax(1)
    return 100.0 * (pred == torch.tensor([p.label for p in test])).float().mean().item()
