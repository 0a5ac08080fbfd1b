"""The analytics a champion file carries: diversification and attribution in sample and out of sample.

:func:`champion_analytics` applies :mod:`genetic_sizer.backtest.analytics` to the champion of a finished run over the
windows its summary reports (the evolution's window and the held-out one), against the benchmark of
``allocators.benchmark``: an allocation of the summary (1/N by default; its traded values, with the run's rebalancing
and costs), or a price column of a file (its simple returns on the window's bars). A benchmark allocation the run
left out (it broke the genome's constraints) is measured as a constant mix of its weights when it is 1/N, and is
otherwise reported as unavailable with the reason. The result is JSON-ready (the champion file's ``analytics``).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from genetic_sizer.backtest.analytics import attribution, diversification, simple_returns
from genetic_sizer.data.prices import Prices
from genetic_sizer.data.times import fmt_ts
from genetic_sizer.errors import DataError

__all__ = [
    "account_scale",
    "analytics_html",
    "analytics_of",
    "benchmark_returns",
    "champion_analytics",
    "describe_analytics",
]


def _by_symbol(symbols, values) -> dict | None:
    return None if values is None else {s: float(v) for s, v in zip(symbols, values, strict=True)}


def benchmark_returns(spec: dict, prices: Prices) -> np.ndarray:
    """The simple returns of the benchmark price column ``spec`` (``{path, column}``) on the bars of ``prices``:
    a DataError naming the file and the first bar it has no price for."""
    from genetic_sizer.data.loaders import load_rates

    series, _ = load_rates(spec["path"], spec["column"], what="benchmark")
    aligned = series[~series.index.duplicated()].reindex(pd.DatetimeIndex(prices.index))
    bad = ~np.isfinite(aligned.to_numpy()) | ~(aligned.to_numpy() > 0)
    if bad.any():
        raise DataError(
            f"benchmark: {spec['path']}: no positive price in column {series.name!r} at {fmt_ts(prices.index[bad][0])} "
            f"(a bar of the window {fmt_ts(prices.index[0])} .. {fmt_ts(prices.index[-1])})"
        )
    return simple_returns(aligned.to_numpy(dtype=np.float64))


def champion_analytics(config, windows, names, weights, scale: float = 1.0) -> dict:
    """Diversification and attribution of ``weights[0]`` (the champion's row) over each window.

    Parameters
    ----------
    config : RunConfig (its ``allocators.benchmark``)
    windows : list of (label, Prices, values (n_bars, n_names)): the traded values of every row of ``names``
    names : the rows' names (``names[0]`` the champion)
    weights : (n_names, n_assets) the rows' target weights
    scale : the gross exposure the champion's weights are sized at (a perp account's leverage; 1 on the spot
        account); the benchmark allocation's are sized at ``portfolio.leverage``, as the run traded them
    """
    spec = config.allocators.benchmark
    w = np.asarray(weights[0], dtype=np.float64) * scale
    # the allocations (and 1/N) trade at portfolio.leverage (fixed_strategy), whatever leverage the champion evolved
    bscale = float(config.portfolio.leverage) if config.portfolio.market == "perp" else 1.0
    out = {"benchmark": spec if isinstance(spec, str) else f"{spec['path']}:{spec['column'] or 'its column'}"}
    for label, prices, values in windows:
        r = simple_returns(prices.close)
        d = diversification(w, r)
        d["risk_contribution"] = _by_symbol(prices.symbols, d["risk_contribution"])
        entry = {"diversification": d, "attribution": None, "benchmark_note": None}
        port = simple_returns(values[:, 0])
        bw, bench = None, None
        if isinstance(spec, dict):
            bench = benchmark_returns(spec, prices)
        elif spec in names:
            bw = np.asarray(weights[names.index(spec)], dtype=np.float64) * bscale
            bench = simple_returns(values[:, names.index(spec)])
        elif spec == "equal_weight":
            bw = np.full(prices.n_assets, bscale / prices.n_assets)
            bench = r @ bw
            entry["benchmark_note"] = "1/N was left out of the run (its constraints): measured as a constant mix"
        else:
            entry["benchmark_note"] = f"{spec} was left out of the run: no attribution against it"
        if bench is not None:
            a = attribution(r, w, port, bench, prices.periods_per_year, benchmark_weights=bw)
            for key in ("contribution", "benchmark_contribution", "active_contribution"):
                a[key] = _by_symbol(prices.symbols, a[key])
            entry["attribution"] = a
        out[label] = entry
    return out


def account_scale(config, record: dict) -> float:
    """The gross exposure a champion file's weights are sized at: its leverage (evolved, else the portfolio's) on a
    perp account, 1 on the spot account."""
    if config.portfolio.market != "perp":
        return 1.0
    lev = (record.get("strategy") or {}).get("leverage") or record["portfolio"].get("leverage") or 1.0
    return float(lev)


def analytics_of(config, windows, names, weights, strategies, scale: float = 1.0) -> dict:
    """:func:`champion_analytics` of ``weights`` (rows named ``names``, ``names[0]`` the champion) traded over each
    window of ``windows`` (``[(label, Prices)]``) from its first close, each row kept by its entry of ``strategies``
    (as :meth:`~genetic_sizer.evolution.evaluator.Evaluator.backtest_strategies` takes them) with the config's costs:
    for champions whose run left no traded values to reuse (a walk-forward's last fold, an exported member)."""
    from genetic_sizer.evolution.evaluator import Evaluator

    weights = np.asarray(weights, dtype=np.float64)
    traded = []
    for label, prices in windows:
        bt = Evaluator.from_config(prices, config).backtest_strategies(weights, list(strategies))
        traded.append((label, prices, bt.value))
    return champion_analytics(config, traded, list(names), weights, scale)


def describe_analytics(analytics: dict) -> list[str]:
    """The lines the run summary prints of a champion file's ``analytics``."""
    lines = []
    for label, title in (("in_sample", "IS"), ("out_of_sample", "OOS")):
        entry = analytics.get(label)
        if not entry:
            continue
        d = entry["diversification"]
        top = sorted(d["risk_contribution"].items(), key=lambda kv: -abs(kv[1]))[:3]
        dr = d["diversification_ratio"]
        lines.append(
            f"champion diversification {title}: effective assets {d['effective_assets']:.2f} (HHI {d['hhi']:.3f}), "
            f"diversification ratio {'-' if dr is None else f'{dr:.2f}'}; most risk from "
            + ", ".join(f"{s} {v:.1f}%" for s, v in top)
        )
        a = entry["attribution"]
        if a is None:
            lines.append(f"  attribution {title}: {entry['benchmark_note']}")
            continue
        ir = a["information_ratio"]
        lines.append(
            f"  vs {analytics['benchmark']} {title}: active return {100 * a['active_return']:+.2f}%/yr, tracking "
            f"error {100 * a['tracking_error']:.2f}%, information ratio {'-' if ir is None else f'{ir:.2f}'}"
            + (f" ({entry['benchmark_note']})" if entry["benchmark_note"] else "")
        )
    return lines


def analytics_html(analytics: dict | None) -> list[str]:
    """The champion's diversification and attribution (its file's ``analytics``) as two tables: the figures per
    window, and per asset (risk contribution in % of variance, annualized return contribution, active contribution)."""
    if not analytics:
        return []
    windows = [w for w in ("in_sample", "out_of_sample") if analytics.get(w)]
    label = {"in_sample": "IS", "out_of_sample": "OOS"}
    figures = (
        ("effective assets (1/HHI)", "diversification", "effective_assets", 1),
        ("HHI", "diversification", "hhi", 1),
        ("diversification ratio", "diversification", "diversification_ratio", 1),
        ("active return (%/yr)", "attribution", "active_return", 100),
        ("tracking error (%)", "attribution", "tracking_error", 100),
        ("information ratio", "attribution", "information_ratio", 1),
    )

    def cell(v, scale=1):
        return "-" if v is None else f"{scale * v:.4f}"

    head = "".join(f"<th>{label[w]}</th>" for w in windows)
    rows = []
    for name, part, key, scale in figures:
        vals = [(analytics[w][part] or {}).get(key) for w in windows]
        rows.append(f"<tr><td>{html.escape(name)}</td>{''.join(f'<td>{cell(v, scale)}</td>' for v in vals)}</tr>")
    bench = html.escape(str(analytics["benchmark"]))
    out = [
        f"<h2>Champion diversification and attribution (benchmark: {bench})</h2>"
        f"<table><tr><th>figure</th>{head}</tr>{''.join(rows)}</table>"
    ]
    per = [
        ("risk %", "diversification", "risk_contribution", 1),
        ("return %/yr", "attribution", "contribution", 100),
        ("active %/yr", "attribution", "active_contribution", 100),
    ]
    head = "".join(f"<th>{h} {label[w]}</th>" for h, *_ in per for w in windows)
    symbols = list(analytics[windows[0]]["diversification"]["risk_contribution"])
    body = []
    for s in symbols:
        cells = [((analytics[w][part] or {}).get(key) or {}).get(s) for _, part, key, _ in per for w in windows]
        scales = [sc for *_, sc in per for _ in windows]
        body.append(
            f"<tr><td>{html.escape(s)}</td>"
            + "".join(f"<td>{cell(v, k)}</td>" for v, k in zip(cells, scales, strict=True))
            + "</tr>"
        )
    out.append(f"<h2>Per asset</h2><table><tr><th>asset</th>{head}</tr>{''.join(body)}</table>")
    return out
