"""Schedules: GMP cubic (Zhu & Gupta 2017), IMP rounds, RigL cosine drop fraction."""
import math

import pytest

from smc_lib.errors import SMCError
from smc_lib.schedules import GMPSchedule, imp_rounds, rigl_drop_fraction, rigl_update_steps


@pytest.mark.parametrize("total", [10, 57, 1000])
@pytest.mark.parametrize("final", [0.2, 0.5904, 0.893])
def test_gmp_reaches_target_exactly_at_80_percent(total, final):
    sch = GMPSchedule(final, total)
    steps = sch.update_steps()
    assert steps[0] == sch.t0 == max(1, round(0.1 * total))
    assert steps[-1] == sch.t_end == round(0.8 * total)
    assert sch.sparsity_at(sch.t_end) == final
    assert all(sch.sparsity_at(t) == final for t in range(sch.t_end, total + 1))
    assert all(sch.sparsity_at(t) < final for t in range(0, sch.t_end))
    values = [sch.sparsity_at(t) for t in range(total + 1)]
    assert values == sorted(values)               # monotone non-decreasing


def test_gmp_follows_the_cubic_formula():
    sch = GMPSchedule(0.8, 1000, frequency=70)
    t0, n_dt = 100, 700
    for t in sch.update_steps():
        expected = 0.8 + (0.0 - 0.8) * (1 - (t - t0) / n_dt) ** 3
        assert sch.sparsity_at(t) == pytest.approx(expected, abs=1e-12)
    assert sch.sparsity_at(169) == sch.sparsity_at(100) == 0.0     # constant between updates
    assert sch.update_steps() == list(range(100, 800, 70)) + [800]


@pytest.mark.parametrize("bad", [dict(final=1.0, total_steps=10), dict(final=0.5, total_steps=0),
                                 dict(final=0.5, total_steps=10, start=0.9, end=0.5),
                                 dict(final=0.5, total_steps=10, frequency=0)])
def test_gmp_rejects_bad_settings(bad):
    with pytest.raises(SMCError):
        GMPSchedule(**bad)


def test_imp_rounds_are_one_minus_0p8_to_the_k_and_clip_to_target():
    assert imp_rounds(0.2) == [0.2]
    r = imp_rounds(1 - 0.8 ** 5)
    assert len(r) == 5 and all(math.isclose(s, 1 - 0.8 ** k) for k, s in enumerate(r, 1))
    assert r[-1] == 1 - 0.8 ** 5
    r = imp_rounds(0.59)                          # the paper's rounded level: last round exactly the target
    assert r[:-1] == pytest.approx([0.2, 0.36, 0.488]) and r[-1] == 0.59
    assert imp_rounds(0.5)[-1] == 0.5 and len(imp_rounds(0.5)) == 4
    assert imp_rounds(0.0) == []
    with pytest.raises(SMCError):
        imp_rounds(1.0)
    with pytest.raises(SMCError):
        imp_rounds(0.5, rate=0.0)


def test_rigl_cosine_drop_fraction():
    assert rigl_drop_fraction(0, 0.3, 100) == pytest.approx(0.3)
    assert rigl_drop_fraction(50, 0.3, 100) == pytest.approx(0.15)
    assert rigl_drop_fraction(25, 0.3, 100) == pytest.approx(0.15 * (1 + math.cos(math.pi / 4)))
    assert rigl_drop_fraction(100, 0.3, 100) == 0.0
    t_end, steps = rigl_update_steps(100, every=10)
    assert t_end == 75 and steps == list(range(10, 75, 10))
    assert rigl_update_steps(100)[1] == list(range(7, 75, 7))
    with pytest.raises(SMCError):
        rigl_update_steps(100, every=0)


@pytest.mark.parametrize("k", range(1, 11))
def test_imp_round_k_is_defined_by_k_for_the_4_digit_grid(k):
    """Profiles write 1 - 0.8^k to 4 digits; round k must be k rounds, whether the rounded value lies above
    the exact one (0.7379 > 0.737856: once 7 rounds) or below it (0.7903 < 0.790285)."""
    from smc_lib.config import PAPER_SPARSITIES
    from smc_lib.schedules import imp_round_count

    target = PAPER_SPARSITIES[k - 1]
    assert imp_round_count(target) == k
    rounds = imp_rounds(target)
    assert len(rounds) == k and rounds[-1] == target
    assert rounds[:-1] == list(PAPER_SPARSITIES[:k - 1])      # the chain's earlier rounds are the grid's levels
    assert imp_rounds(rounds[-2]) == rounds[:-1] if k > 1 else True


def test_off_grid_targets_clip_the_last_round():
    from smc_lib.schedules import imp_round_count

    assert imp_round_count(0.5) == 4 and imp_round_count(0.1) == 1 and imp_round_count(0.2001) == 2
