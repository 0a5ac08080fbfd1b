"""Earlier champions as the assets of a run (``data.strategies``): multi-strategy allocation.

A run whose ``data.strategies`` lists run directories weights *strategies*, not coins or stocks: each listed run's
champion (its ``champion.json``) is simulated on the data its run recorded (the run's ``config.yaml`` ``data:``
section, the whole window: in sample and held out) with its own strategy (calendar policy, drift band, perp
leverage, the run's fees and slippage), and its value per bar, divided by its first value, is that strategy's
"price". The streams are aligned on the union of their calendars: on a bar of another strategy's calendar a
strategy's value is carried from its own last bar (it has no bar there, so no profit or loss); a strategy that
starts later is a leading gap (``data.leading_gaps``: trimmed to the first bar every strategy has, or an error), and
the window ends at the earliest last bar of the streams. ``data.symbols``, ``data.start``, ``data.end`` and
``data.periods_per_year`` then select as for any prices. The same evolution, walk-forward and report run on them.

The champion is re-checked against its file before its stream is used: the run's data over the champion's
in-sample window must have the fingerprint the champion recorded (``data.close_sha256``), otherwise the data changed
since it was evolved and the stream would not be that champion's. Every stream's in-sample end is in the notes: the
part of a stream up to it is where that champion was selected (flattering; a walk-forward run's champion is its
last fold's, selected on that fold's window), the rest is out of sample for it: ``data.start`` after the latest
in-sample end allocates on out-of-sample streams only. A window that overlaps a kept strategy's in-sample window
is a :class:`~genetic_sizer.errors.DataWarning` and a note naming the strategies and that bar.

A strategy run may itself be a multi-strategy run (its streams are loaded the same way); a run that lists itself,
directly or through others, is refused.

:func:`load_data` is what every command loads a run's data with: the strategies' streams when ``data.strategies`` is
set, else :func:`genetic_sizer.data.loaders.load_from_config`.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genetic_sizer.data.loaders import load_from_config
from genetic_sizer.data.prices import Prices
from genetic_sizer.data.times import fmt_ts
from genetic_sizer.errors import ChampionError, ConfigError, DataError, DataWarning, RunDirError

__all__ = [
    "StrategyStream",
    "champion_identities",
    "champion_identity",
    "load_data",
    "load_strategies",
    "strategy_stream",
]


@dataclass(frozen=True)
class StrategyStream:
    """One strategy's return stream: ``name``, the run directory it came from, its champion file, the value per bar
    (a Series on the run's data, from the run's ``init_cash``), the window the champion was evolved on (first and last
    bar) and what it was simulated with (a sentence)."""

    name: str
    run_dir: str
    champion_path: str
    value: pd.Series
    in_sample: tuple[pd.Timestamp, pd.Timestamp]
    how: str


def load_data(data_config, _seen: tuple[str, ...] = ()) -> Prices:
    """The prices a run's ``data:`` section describes: the strategies' streams (:func:`load_strategies`) when
    ``data.strategies`` is set, else the prices :func:`~genetic_sizer.data.loaders.load_from_config` loads."""
    if getattr(data_config, "strategies", None):
        return load_strategies(data_config, _seen)
    return load_from_config(data_config)


def strategy_stream(name: str, run_dir, _seen: tuple[str, ...] = ()) -> StrategyStream:
    """The value per bar of the champion in ``run_dir`` simulated on its run's recorded data (module docstring);
    a :class:`~genetic_sizer.errors.RunDirError` naming the strategy and the directory when it has no run, no
    champion, or data that changed since the champion was evolved."""
    from genetic_sizer.evolution.evaluator import Evaluator
    from genetic_sizer.runs.champion import load as load_champion
    from genetic_sizer.runs.rundir import RunDir

    where = f"data.strategies: {name!r} ({run_dir})"
    try:
        rd = RunDir.open_existing(run_dir)
    except RunDirError as exc:
        raise RunDirError(f"{where}: {exc}") from None
    key = rd.url or str(rd.path.resolve())  # one name per run, however it was written
    if key in _seen:
        raise ConfigError(f"{where}: the run lists itself among its strategies (through {' -> '.join(_seen)})")
    if not rd.champion_path.is_file():
        raise RunDirError(f"{where}: the run has no {RunDir.CHAMPION} (unfinished, or not an evolve/walkforward run)")
    try:
        champion = load_champion(rd.champion_path)
        config = rd.load_config()
    except (ChampionError, ConfigError) as exc:
        raise RunDirError(f"{where}: {exc}") from None
    try:
        prices = load_data(config.data, (*_seen, key))
    except (ConfigError, DataError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
    missing = [a for a in champion.assets if a not in prices.symbols]
    if missing:
        raise RunDirError(f"{where}: the run's data has no {missing[0]!r}, an asset of its champion")
    if tuple(prices.symbols) != tuple(champion.assets):
        prices = prices.select(list(champion.assets))
    first, last = pd.Timestamp(champion.data["first_bar"]), pd.Timestamp(champion.data["last_bar"])
    i0, i1 = int(prices.index.searchsorted(first)), int(prices.index.searchsorted(last, side="right"))
    recorded = champion.data.get("close_sha256")
    if i1 - i0 < 2 or (recorded is not None and prices.bars(i0, i1).sha256() != recorded):
        raise RunDirError(
            f"{where}: the run's data ({prices.source}, {fmt_ts(prices.index[0])} .. {fmt_ts(prices.index[-1])}) over "
            f"the champion's in-sample window {champion.data['first_bar']} .. {champion.data['last_bar']} is not the "
            "data it was evolved on (its fingerprint data.close_sha256 differs): the file changed since"
        )
    try:
        evaluator = Evaluator.from_config(prices, config)
        value = evaluator.backtest_strategies(champion.weights[None, :], [champion.strategy]).value[:, 0]
    except (ConfigError, DataError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
    if not (np.isfinite(value).all() and (value > 0).all()):
        bad = int(np.flatnonzero(~(np.isfinite(value) & (value > 0)))[0])
        raise DataError(f"{where}: the champion's value reaches {value[bad]:g} at {fmt_ts(prices.index[bad])}")
    s = champion.strategy
    band = "no drift band" if s.get("threshold") is None else f"drift band {s['threshold']:g}"
    lev = f", leverage {s['leverage']:g}" if s.get("leverage") is not None else ""
    how = f"{champion.market}, rebalance {s['rebalance']}, {band}{lev}, fees {evaluator.fees:g}"
    return StrategyStream(
        name=name,
        run_dir=str(run_dir),
        champion_path=str(rd.champion_path),
        value=pd.Series(value, index=prices.index, name=name),
        in_sample=(first, last),
        how=how,
    )


def load_strategies(data_config, _seen: tuple[str, ...] = ()) -> Prices:
    """The strategies of ``data_config.strategies`` as prices: each champion's value divided by its first, aligned on
    the union of the calendars up to the earliest last bar (module docstring), then ``data.symbols``, ``start``,
    ``end``, ``leading_gaps`` and ``periods_per_year`` applied as for any prices."""
    dc = data_config
    streams = [strategy_stream(name, path, _seen) for name, path in dc.strategy_dirs()]
    end = min(s.value.index[-1] for s in streams)
    union = streams[0].value.index
    for s in streams[1:]:
        union = union.union(s.value.index)
    union = union[union <= end]
    columns, notes = {}, []
    for s in streams:
        own = s.value.loc[:end]
        norm = own / own.iloc[0]
        carried = norm.reindex(union).ffill()  # no bar of its own: its value stands (NaN before its first bar)
        filled = int(((union >= own.index[0]) & ~union.isin(own.index)).sum())
        columns[s.name] = carried
        carry = f"; {filled} bar(s) of the other calendars carry its last value" if filled else ""
        notes.append(
            f"strategy {s.name}: the champion {s.champion_path} ({s.how}) simulated on its run's data "
            f"{fmt_ts(own.index[0])} .. {fmt_ts(own.index[-1])}; evolved on {fmt_ts(s.in_sample[0])} .. "
            f"{fmt_ts(s.in_sample[1])} (out of sample only after it){carry}"
        )
    ends = {s.name: s.value.index[-1] for s in streams}
    cut = [n for n, t in ends.items() if t > end]
    if cut:
        notes.append(f"streams cut at {fmt_ts(end)}, the earliest last bar, for {cut}")
    frame = pd.DataFrame(columns, index=union)
    names = ", ".join(columns)
    prices = Prices.from_frame(
        frame,
        source=f"strategies ({names})",
        symbols=list(dc.symbols) if dc.symbols else None,
        start=dc.start,
        end=dc.end,
        periods_per_year=dc.periods_per_year,
        leading_gaps=dc.leading_gaps,
        notes=notes,
    )
    return _warn_in_sample(prices, streams)


def _warn_in_sample(prices: Prices, streams) -> Prices:
    """``prices`` with a note, and a :class:`~genetic_sizer.errors.DataWarning`, when its window overlaps the in-sample
    window of a strategy it keeps: there its stream is where its champion was selected, so the allocation's figures
    on those bars (in sample and held out alike) are flattered."""
    first, last = prices.index[0], prices.index[-1]
    inside = [s for s in streams if s.name in prices.symbols and s.in_sample[0] <= last and s.in_sample[1] >= first]
    if not inside:
        return prices
    latest = max(s.in_sample[1] for s in inside)
    note = (
        f"the allocation's window {fmt_ts(first)} .. {fmt_ts(last)} overlaps the in-sample window(s) of "
        f"{[s.name for s in inside]}: their streams there are where their champions were selected, so the "
        f"allocation's figures on those bars, in sample and held out, are flattered; data.start after "
        f"{fmt_ts(latest)} allocates on out-of-sample streams only"
    )
    warnings.warn(f"{prices.source}: {note}", DataWarning, stacklevel=3)
    return dataclasses.replace(prices, notes=(*prices.notes, note))


def champion_identity(champion) -> dict:
    """What names a strategy's champion (its config and data fingerprints and its weights by asset): recorded by the
    allocation champion (``data.strategy_champions``) and compared by the live book (:func:`~genetic_sizer.live.
    combine.parts_of`, which builds the same three keys) before it trades the strategy."""
    return {
        "config_sha256": champion.config_sha256,
        "close_sha256": champion.data["close_sha256"],
        "weights": {a: float(w) for a, w in zip(champion.assets, champion.weights, strict=True)},
    }


def champion_identities(data_config) -> dict:
    """``{name: champion_identity}`` of the champion each run of ``data_config.strategies`` holds now."""
    from genetic_sizer.runs.champion import load as load_champion
    from genetic_sizer.runs.rundir import RunDir

    return {
        n: champion_identity(load_champion(RunDir.open_existing(d).champion_path))
        for n, d in data_config.strategy_dirs()
    }
