"""The walk-forward's folds: train and test windows of a price index, and each fold's evolution settings.

Folds follow skfolio's :class:`~skfolio.model_selection.WalkForward` (which this module calls):
rolling train windows (expanding from the first bar when ``anchored``), ``purge`` bars left out between a
train window's end and its test window, test windows back to back without overlap, the last partial
window dropped. Windows are counted in bars of closes (``train: 504``) or in calendar spans
(``train: "3Y", test: "1Y"``: test windows start on the first bar of each period, as skfolio's ``freq``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genetic_sizer.config import WalkForwardConfig
from genetic_sizer.errors import ConfigError

__all__ = ["MIN_TRAIN_BARS", "Fold", "fold_config", "fold_seed", "make_folds"]

MIN_TRAIN_BARS = 3
"""The fewest bars an evolution can run on (two returns for a standard deviation)."""

_FREQ = {"D": "D", "W": "W-MON", "M": "MS", "Q": "QS", "Y": "YS"}
"""pandas frequency whose periods start each calendar test window, by span unit."""


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: bar positions (inclusive) of its train and test windows."""

    number: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    @property
    def train(self) -> slice:
        return slice(self.train_start, self.train_end + 1)

    @property
    def test(self) -> slice:
        return slice(self.test_start, self.test_end + 1)

    def bounds(self, index: pd.DatetimeIndex) -> dict[str, str]:
        """The fold's windows as ISO-8601 bar timestamps (inclusive)."""
        return {
            "train_start": index[self.train_start].isoformat(),
            "train_end": index[self.train_end].isoformat(),
            "test_start": index[self.test_start].isoformat(),
            "test_end": index[self.test_end].isoformat(),
        }


def _offset(n: int, unit: str) -> pd.DateOffset:
    return {
        "D": pd.DateOffset(days=n),
        "W": pd.DateOffset(weeks=n),
        "M": pd.DateOffset(months=n),
        "Q": pd.DateOffset(months=3 * n),
        "Y": pd.DateOffset(years=n),
    }[unit]


def _splitter(config: WalkForwardConfig):
    from skfolio.model_selection import WalkForward

    train, test = config.window("train"), config.window("test")
    if isinstance(test, int):
        return WalkForward(
            test_size=test,
            train_size=train,
            purged_size=config.purge,
            expand_train=config.anchored,
            reduce_test=config.keep_partial,
        )
    (n_test, unit), (n_train, train_unit) = test, train
    return WalkForward(
        test_size=n_test,
        train_size=_offset(n_train, train_unit),
        freq=_FREQ[unit],
        purged_size=config.purge,
        expand_train=config.anchored,
        reduce_test=config.keep_partial,
    )


def make_folds(index: pd.DatetimeIndex, config: WalkForwardConfig) -> list[Fold]:
    """The walk-forward folds of a price index.

    Parameters
    ----------
    index : DatetimeIndex
        Bar timestamps of the whole window (``Prices.index``).
    config : WalkForwardConfig

    Returns
    -------
    list of Fold, in time order; a ConfigError when the window holds no complete fold (or a train window
    shorter than 3 bars, too short to evolve on).
    """
    frame = pd.DataFrame(np.zeros((len(index), 1)), index=index)
    try:
        splits = list(_splitter(config).split(frame))
    except ValueError as exc:
        raise ConfigError(f"walkforward: {exc}") from None
    folds = []
    for train, test in splits:
        if len(test) == 0:
            continue
        folds.append(Fold(len(folds), int(train[0]), int(train[-1]), int(test[0]), int(test[-1])))
    span = f"{index[0].date()} .. {index[-1].date()}, {len(index)} bars"
    if not folds:
        raise ConfigError(
            f"walkforward: train {config.train!r} + purge {config.purge} + test {config.test!r} does not fit "
            f"in the data ({span}): no complete fold"
        )
    short = [f for f in folds if f.train_end - f.train_start + 1 < MIN_TRAIN_BARS]
    if short:
        raise ConfigError(
            f"walkforward: fold {short[0].number}'s train window has "
            f"{short[0].train_end - short[0].train_start + 1} bar(s); at least {MIN_TRAIN_BARS} are needed"
        )
    return folds


def fold_seed(seed: int, fold: int) -> int:
    """The evolution seed of fold ``fold``: derived from the run's seed and the fold number (SeedSequence), so
    folds are independent of each other and of where they run."""
    words = np.random.SeedSequence([int(seed), int(fold)]).generate_state(2, dtype=np.uint32)
    return int((int(words[0]) << 31) ^ int(words[1])) & (2**63 - 1)


def fold_config(config, fold: int):
    """The configuration one fold evolves with: the run's, with the fold's seed and no holdout (the fold's test
    window is its out-of-sample part)."""
    ev = dataclasses.replace(config.evolution, seed=fold_seed(config.evolution.seed, fold), holdout=0)
    return dataclasses.replace(config, evolution=ev)
