"""The ``robust:`` section: fitness and selection aimed at out-of-sample performance.

Every key is optional and the defaults are the plain GA (the in-sample objective on the whole training window,
the hall of fame's best genome deployed), so a config without the section behaves, and fingerprints, as before::

    robust: {resample: none,            # none | blocks | bootstrap: the objective on K resamples of the training
                                        # window (K contiguous blocks, or stationary-bootstrap resamples of its bars),
             resamples: 4,              # K
             block_length: null,        # bootstrap: mean block length in bars (null: the cube root of the bars)
             combine: mean_std,         # mean_std (mean - penalty x std) | quantile | min, over the K values
             penalty: 1.0, quantile: 0.25,
             shrink: 0.0,               # fixed mixing coefficient toward shrink_toward (evolved: a ``shrink`` gene)
             shrink_toward: equal_weight,   # equal_weight or a classical allocator (min_variance, hrp, ...)
             ensemble: none,            # none | top_k | cluster | resampled
             ensemble_size: 5,          # members averaged (top_k, cluster) or runs on resampled histories
             nested: false,             # inner validation split chooses among candidates
             inner_validation: 0.25,    # the last part of each training window: a fraction or a span ("1Y")
             inner_purge: 0,            # bars left out between the inner train and validation parts
             candidates: [hall_of_fame, equal_weight, inverse_volatility, min_variance, max_sharpe, hrp],
                                        # also: risk_parity, risk_budgeting, black_litterman, market_cap
             refit: true,               # refit the winning method on the whole training window
             methods: []}               # walk-forward: methods reported beside GA as GA_<method> (and GA_plain)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from genetic_sizer import vocab as V

__all__ = [
    "CANDIDATES",
    "CLASSICAL",
    "COMBINES",
    "DEFAULT_CANDIDATES",
    "ENSEMBLES",
    "METHODS",
    "RESAMPLES",
    "RobustConfig",
]

RESAMPLES = ("none", "blocks", "bootstrap")
COMBINES = ("mean_std", "quantile", "min")
ENSEMBLES = ("none", "top_k", "cluster", "resampled")
CLASSICAL = (
    "equal_weight",
    "inverse_volatility",
    "min_variance",
    "max_sharpe",
    "hrp",
    "risk_parity",
    "risk_budgeting",
    "black_litterman",
    "market_cap",
    "equal_minvar_blend",
    "volatility_timing",
)
"""The allocators' names (``genetic_sizer.allocators.classical.CLASSICAL``; config cannot import it: a test keeps
the two equal)."""
CANDIDATES = ("hall_of_fame", *CLASSICAL)
"""Every name ``robust.candidates`` may list."""
DEFAULT_CANDIDATES = ("hall_of_fame", "equal_weight", "inverse_volatility", "min_variance", "max_sharpe", "hrp")
"""``robust.candidates`` by default (the allocators added later, risk_parity ... market_cap, are opt-in: a config
that leaves the key out keeps its fingerprint and its nested selection)."""
METHODS = ("plain", "resampled", "shrink", "ensemble", "nested")
"""Names reported in walk-forward as ``GA_<method>``."""


@dataclass(frozen=True)
class RobustConfig:
    resample: str = "none"
    resamples: int = 4
    block_length: int | None = None
    combine: str = "mean_std"
    penalty: float = 1.0
    quantile: float = 0.25
    shrink: float = 0.0
    shrink_toward: str = "equal_weight"
    ensemble: str = "none"
    ensemble_size: int = 5
    nested: bool = False
    inner_validation: float | str = 0.25
    inner_purge: int = 0
    candidates: Any = DEFAULT_CANDIDATES
    refit: bool = True
    methods: Any = ()

    def __post_init__(self):
        V.check_choice("robust.resample", self.resample, RESAMPLES)
        V.check_number("robust.resamples", self.resamples, lo=2, hi=10_000, integer=True)
        if self.block_length is not None:
            V.check_number("robust.block_length", self.block_length, lo=1, integer=True)
        V.check_choice("robust.combine", self.combine, COMBINES)
        object.__setattr__(self, "penalty", V.check_number("robust.penalty", self.penalty, lo=0.0, hi=100.0))
        q = V.check_number("robust.quantile", self.quantile, lo=0.0, hi=1.0)
        object.__setattr__(self, "quantile", q)
        object.__setattr__(self, "shrink", V.check_number("robust.shrink", self.shrink, lo=0.0, hi=1.0))
        V.check_choice("robust.shrink_toward", self.shrink_toward, CLASSICAL)
        V.check_choice("robust.ensemble", self.ensemble, ENSEMBLES)
        V.check_number("robust.ensemble_size", self.ensemble_size, lo=1, hi=10_000, integer=True)
        for name in ("nested", "refit"):
            if not isinstance(getattr(self, name), bool):
                V.must_be(f"robust.{name}", getattr(self, name), "true or false")
        iv = self.inner_validation
        if isinstance(iv, str):
            V.parse_window("robust.inner_validation", iv)
            iv = iv.strip().upper().replace(" ", "")
        else:
            iv = V.check_number("robust.inner_validation", iv, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        object.__setattr__(self, "inner_validation", iv)
        V.check_number("robust.inner_purge", self.inner_purge, lo=0, integer=True)
        object.__setattr__(self, "candidates", _names("robust.candidates", self.candidates, CANDIDATES, empty=False))
        object.__setattr__(self, "methods", _names("robust.methods", self.methods, METHODS, empty=True))

    @property
    def active(self) -> bool:
        """Whether any key differs from the plain GA's default."""
        return any(getattr(self, f.name) != f.default for f in fields(self))


def _names(key: str, value, allowed, *, empty: bool) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)) or (not value and not empty):
        V.must_be(key, value, f"a list of names from {list(allowed)}")
    for i, name in enumerate(value):
        V.check_choice(f"{key}[{i}]", name, allowed)
    if len(set(value)) != len(value):
        V.must_be(key, list(value), "a list without duplicates")
    return tuple(value)
