"""Sparsity schedules shared by the methods: pure functions of the step, no torch.

- GMP cubic schedule (Zhu & Gupta 2017, "To prune, or not to prune", eq. 1):
  s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n Δt))³ for t = t0, t0 + Δt, ..., t0 + n Δt.
- IMP rounds (Frankle & Carbin 2019; Chen et al. 2020): each round prunes 20 % of the remaining weights,
  so round k has sparsity 1 - 0.8^k (to 4 digits, as profiles write it); an off-grid target is reached by
  clipping the last round to it.
- RigL drop fraction (Evci et al. 2020, "Rigging the Lottery"): cosine decay α/2 (1 + cos(π t / T_end)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import SMCError, check_sparsity


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise SMCError(f"{name} must be a fraction of the training steps in [0, 1], got {value}")
    return float(value)


@dataclass(frozen=True)
class GMPSchedule:
    """Zhu & Gupta's cubic schedule from `start` to `end` (fractions of `total_steps`), one mask update
    every `frequency` steps; the last update is at exactly `end` and reaches exactly `final`."""

    final: float
    total_steps: int
    initial: float = 0.0
    start: float = 0.1
    end: float = 0.8
    frequency: int | None = None     # steps between updates; None: 10 updates over [start, end]

    def __post_init__(self) -> None:
        check_sparsity(self.final)
        check_sparsity(self.initial)
        _check_fraction("gmp start", self.start)
        _check_fraction("gmp end", self.end)
        if self.start > self.end:
            raise SMCError(f"gmp start ({self.start}) must not come after end ({self.end})")
        if self.total_steps < 1:
            raise SMCError(f"gmp needs at least one training step, got total_steps={self.total_steps}")
        if self.frequency is not None and self.frequency < 1:
            raise SMCError(f"gmp frequency must be >= 1 step, got {self.frequency}")

    @property
    def t0(self) -> int:
        return max(1, round(self.start * self.total_steps))

    @property
    def t_end(self) -> int:
        return max(self.t0, round(self.end * self.total_steps))

    def update_steps(self) -> list[int]:
        """Steps (1-based, after that many optimizer steps) at which the mask changes; ends at t_end."""
        span = self.t_end - self.t0
        dt = max(1, span // 10) if self.frequency is None else self.frequency
        steps = list(range(self.t0, self.t_end, dt))
        return steps + [self.t_end]

    def sparsity_at(self, step: int) -> float:
        """The target sparsity after `step` optimizer steps (constant between updates)."""
        if step < self.t0:
            return self.initial
        if step >= self.t_end:
            return self.final
        last = max(t for t in self.update_steps() if t <= step)
        frac = (last - self.t0) / (self.t_end - self.t0)
        return self.final + (self.initial - self.final) * (1.0 - frac) ** 3


IMP_DIGITS = 4   # profiles write 1 - 0.8^k to 4 digits (0.7379 is round 6, 0.7903 round 7)


def imp_round_count(target: float, rate: float = 0.2) -> int:
    """How many IMP rounds reach `target`: k when `target` is 1 - (1 - rate)^k written to IMP_DIGITS digits
    (round k is defined by k, not by a float comparison), else the first k whose sparsity passes it."""
    target = check_sparsity(target)
    if not 0.0 < rate < 1.0:
        raise SMCError(f"IMP prune rate must be in (0, 1), got {rate}; the paper uses 0.2")
    if target == 0.0:
        return 0
    k = max(1, round(math.log(1.0 - target) / math.log(1.0 - rate)))
    if round(1.0 - (1.0 - rate) ** k, IMP_DIGITS) == round(target, IMP_DIGITS):
        return k
    return max(1, math.ceil(math.log(1.0 - target) / math.log(1.0 - rate) - 1e-12))


def imp_rounds(target: float, rate: float = 0.2) -> list[float]:
    """Sparsity after each IMP round: 1 - (1 - rate)^j to IMP_DIGITS digits for the rounds before the last,
    which is exactly `target`. Round j of the chain is itself the run at sparsity `imp_rounds(...)[j - 1]`."""
    k = imp_round_count(target, rate)
    if k == 0:
        return []
    return [round(1.0 - (1.0 - rate) ** j, IMP_DIGITS) for j in range(1, k)] + [float(target)]


def rigl_drop_fraction(step: int, alpha: float, t_end: int) -> float:
    """RigL's cosine-decayed fraction of kept weights to drop (and regrow) at `step`; 0 from t_end on."""
    if step >= t_end:
        return 0.0
    return alpha / 2.0 * (1.0 + math.cos(math.pi * step / t_end))


def rigl_update_steps(total_steps: int, every: int | None = None, end: float = 0.75) -> tuple[int, list[int]]:
    """(T_end, steps of the drop/grow updates): every `every` steps (None: 10 updates) strictly before T_end."""
    _check_fraction("rigl end", end)
    t_end = max(1, round(end * total_steps))
    every = max(1, t_end // 10) if every is None else every
    if every < 1:
        raise SMCError(f"rigl update interval must be >= 1 step, got {every}")
    return t_end, list(range(every, t_end, every))
