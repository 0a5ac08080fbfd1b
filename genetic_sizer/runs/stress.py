"""``genetic-sizer stress``: a champion's stress losses beside 1/N's and the classical allocators'.

:func:`stress_champion` reads a champion file and the data it was evolved on (its recorded source: the embedded data
set or the file at ``data.path``, its assets, the whole history the source has; or the ``data:`` section of a config
given), fits every allocator of :data:`~genetic_sizer.allocators.classical.CLASSICAL` on the champion's in-sample
window (its ``first_bar`` .. ``last_bar``, with the champion's weight bounds and the config's ``allocators:`` section)
and measures each book (:mod:`genetic_sizer.backtest.stress`):

* historical: the worst ``window``-bar windows of the whole data (of the 1/N book) and the named crises it covers;
* shocks: ``SPEC=MOVE`` with SPEC ``all``, a symbol, ``SYM1+SYM2`` or a group of the champion's constraints (every
  asset in it moves by MOVE, e.g. ``-0.3``); by default every asset -20% and the champion's largest holding -30%;
* parametric: the normal value at risk over ``window`` bars at ``confidence`` on the in-sample returns, as estimated,
  with every correlation one, and with every volatility times ``vol_mult``.

A perp champion's weights are of leverage x equity: every book is sized at the champion's leverage so the losses
compare like for like (no funding, fees or liquidation inside a scenario).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from genetic_sizer.backtest import stress as S
from genetic_sizer.data.times import fmt_ts
from genetic_sizer.errors import ConfigError, DataError

__all__ = ["DEFAULT_SHOCKS", "parse_shock", "stress_champion"]

DEFAULT_SHOCKS = ("all=-0.2", "largest=-0.3")
"""Every asset down 20%; the champion's largest holding down 30%."""


def parse_shock(spec: str, symbols, groups: dict, largest: str) -> tuple[str, np.ndarray]:
    """``(label, moves (n_assets,))`` of a shock ``SPEC=MOVE``; a ConfigError naming the spec otherwise."""
    if not isinstance(spec, str) or spec.count("=") != 1:
        raise ConfigError(f"--shock must be SPEC=MOVE (e.g. AAPL=-0.3, all=-0.2, AAPL+MSFT=-0.25), got {spec!r}")
    who, move = (x.strip() for x in spec.split("="))
    try:
        x = float(move)
    except ValueError:
        raise ConfigError(f"--shock {spec!r}: the move {move!r} is not a number (e.g. -0.3 for down 30%)") from None
    if not np.isfinite(x) or x < -1:
        raise ConfigError(f"--shock {spec!r}: the move must be a finite number >= -1 (-100%), got {x!r}")
    if who == "all":
        members, label = list(symbols), "all assets"
    elif who == "largest":
        members, label = [largest], f"{largest} (largest holding)"
    elif who in groups:
        members, label = list(groups[who]), f"group {who}"
    else:
        members, label = [m.strip() for m in who.split("+")], who
    unknown = [m for m in members if m not in symbols]
    if unknown:
        raise ConfigError(f"--shock {spec!r}: {unknown[0]!r} is not an asset of the champion {list(symbols)}")
    moves = np.array([x if s in members else 0.0 for s in symbols])
    return f"{label} {100 * x:+.0f}%", moves


def _bounds(value, symbols) -> np.ndarray:
    if isinstance(value, dict):
        return np.array([float(value.get(s, value.get("default", 0.0))) for s in symbols])
    if isinstance(value, (list, tuple)):
        return np.asarray(value, dtype=np.float64)
    return np.full(len(symbols), float(value))


def _prices(champion, config):
    from genetic_sizer.data.loaders import DEFAULT_SOURCE, load
    from genetic_sizer.runs.strategies import load_data

    if config is not None:
        prices = load_data(config.data)
        missing = [s for s in champion.assets if s not in prices.symbols]
        if missing:
            raise DataError(f"the config's data has no {missing[0]!r}, an asset of the champion {champion.path}")
        return prices.select(list(champion.assets)), "the config's data section"
    data = champion.data
    path, ppy = data.get("path"), data.get("periods_per_year")
    if data.get("strategies"):  # a multi-strategy allocation: the streams of the run directories it recorded
        from genetic_sizer.config import DataConfig

        dc = DataConfig(strategies=[{n: d} for n, d in data["strategies"].items()], periods_per_year=ppy)
        return load_data(dc).select(list(champion.assets)), "the strategies' run directories (recorded)"
    if path is None:
        if data.get("source") != DEFAULT_SOURCE:
            raise ConfigError(f"{champion.path}: its data source {data.get('source')!r} has no path: give --config")
        return load("default", symbols=list(champion.assets), periods_per_year=ppy), f"{DEFAULT_SOURCE} (recorded)"
    kind = "parquet" if Path(path).suffix.lower() == ".parquet" else "csv"
    prices = load(kind, path, symbols=list(champion.assets), periods_per_year=ppy, funding_path=False)
    return prices, f"{path} (recorded)"


def stress_champion(
    champion_path,
    config=None,
    *,
    config_data: bool = True,
    window: int = 21,
    worst: int = 3,
    shocks=DEFAULT_SHOCKS,
    vol_mult: float = 2.0,
    confidence: float = 0.99,
) -> dict:
    """The stress table of a champion file (module docstring) as a JSON-ready dict: ``books`` (weights by name),
    ``scenarios`` (name, kind, window, loss by book), ``not_covered`` crises, ``skipped`` allocators, ``data``.

    ``config`` (a RunConfig) gives the ``allocators:`` section and, with ``config_data`` (default), the data; with
    ``config_data=False`` the data stays the champion's recorded source.
    """
    from genetic_sizer.allocators.classical import fit_allocations
    from genetic_sizer.runs.champion import load as load_champion

    champion = load_champion(champion_path)
    prices, source = _prices(champion, config if config_data else None)
    symbols = list(prices.symbols)
    first, last = pd.Timestamp(champion.data["first_bar"]), pd.Timestamp(champion.data["last_bar"])
    i0, i1 = int(prices.index.searchsorted(first)), int(prices.index.searchsorted(last, side="right"))
    if i1 - i0 < 3:
        raise DataError(
            f"the data ({fmt_ts(prices.index[0])} .. {fmt_ts(prices.index[-1])}) does not cover the champion's "
            f"in-sample window {champion.data['first_bar']} .. {champion.data['last_bar']}"
        )
    train = prices.bars(i0, i1)
    same = train.sha256() == champion.data.get("close_sha256")
    pf = champion.portfolio
    scale = float(champion.strategy.get("leverage") or champion.leverage or 1.0) if champion.market == "perp" else 1.0
    settings = None if config is None else config.allocators
    lo, hi = _bounds(pf.get("min_weight", 0.0), symbols), _bounds(pf.get("max_weight", 1.0), symbols)
    fitted, skipped = fit_allocations(train, lo, hi, float(pf.get("min_position", 0.0) or 0.0), settings=settings)
    books = {"champion": champion.weights * scale, "1/N": np.full(len(symbols), scale / len(symbols))}
    books.update({n: w * scale for n, w in fitted.items() if n != "equal_weight"})
    names = list(books)
    scenarios = []

    def add(name, kind, span, losses):
        scenarios.append({"name": name, "kind": kind, "window": span, "losses": dict(zip(names, losses, strict=True))})

    close, index = prices.close, prices.index
    for k, (a, b) in enumerate(S.worst_windows(close, window, worst), 1):
        span = [fmt_ts(index[a]), fmt_ts(index[b])]
        add(
            f"worst {window}-bar window #{k}",
            "historical",
            span,
            [S.window_loss(close, w, a, b) for w in books.values()],
        )
    not_covered = {}
    for name, got in S.crisis_windows(index).items():
        if isinstance(got, str):
            not_covered[name] = got
            continue
        a, b = got
        span = [fmt_ts(index[a]), fmt_ts(index[b])]
        add(name, "crisis", span, [S.window_loss(close, w, a, b) for w in books.values()])
    groups = (pf.get("groups") or {}) if isinstance(pf.get("groups"), dict) else {}
    largest = symbols[int(np.argmax(np.abs(champion.weights)))]
    for spec in shocks:
        label, moves = parse_shock(spec, symbols, groups, largest)
        add(f"shock: {label}", "shock", None, [S.shock_loss(w, moves) for w in books.values()])
    r = train.close[1:] / train.close[:-1] - 1.0
    for kind, label in (
        ("base", f"VaR {100 * confidence:g}% over {window} bars"),
        ("correlation_one", f"VaR {100 * confidence:g}% over {window} bars, correlations 1"),
        ("volatility", f"VaR {100 * confidence:g}% over {window} bars, volatility x{vol_mult:g}"),
    ):
        losses = [
            S.parametric_loss(w, r, confidence=confidence, horizon=window, kind=kind, k=vol_mult)
            for w in books.values()
        ]
        add(label, "parametric", None, losses)
    return {
        "champion": str(champion_path),
        "data": {
            "source": source,
            "first_bar": fmt_ts(index[0]),
            "last_bar": fmt_ts(index[-1]),
            "in_sample": [champion.data["first_bar"], champion.data["last_bar"]],
            "same_as_evolved": same,
        },
        "scale": scale,
        "books": {n: {s: float(x) for s, x in zip(symbols, w, strict=True)} for n, w in books.items()},
        "skipped": dict(skipped),
        "scenarios": scenarios,
        "not_covered": not_covered,
        "settings": {
            "window": window,
            "worst": worst,
            "shocks": list(shocks),
            "vol_mult": vol_mult,
            "confidence": confidence,
        },
    }
