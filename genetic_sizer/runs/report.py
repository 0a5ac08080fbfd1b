"""The HTML report of a run: one self-contained file (plotly, its JavaScript inlined) that opens offline.

:func:`write_report` reads a run directory, an ``evolve`` run or a ``walkforward`` run, and writes
``report.html`` beside its files:

* the headline table: the champion beside every benchmark, in sample and out of sample side by side (an
  in-sample figure is never shown without its out-of-sample counterpart; a run without an out-of-sample
  window says so in the table's title);
* the deflated Sharpe ratio and the probability of backtest overfitting, each with a sentence on how to
  read it;
* fitness by generation (every fold's best for a walk-forward);
* the champion's allocation over time as a stacked area (weights drift between rebalances; markers on
  the rebalance bars), computed by the vectorbt reference engine;
* out-of-sample equity and drawdown of the champion and every benchmark;
* in-sample vs out-of-sample Sharpe per fold (walk-forward);
* the Pareto front (multi-objective runs).

This is the only module importing plotly (lazily).
"""

from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from genetic_sizer.runs.analytics import analytics_html
from genetic_sizer.runs.rundir import RunDir

__all__ = ["REPORT_FILE", "write_report"]

REPORT_FILE = "report.html"

DSR_SENTENCE = (
    "The deflated Sharpe ratio is the probability that the champion's Sharpe ratio is not just the luckiest "
    "of all the genomes the search tried, given how many it tried and how widely their Sharpe ratios spread; "
    "below 0.95 the champion cannot be told apart from the best of that many strategies without skill. Its null is "
    "zero skill, so on a long-only run it mostly measures the equity premium: the test of skill beyond 1/N is the "
    "deflated Sharpe of the returns in excess of 1/N (raw and effective trials, both needed)."
)
PBO_SENTENCE = (
    "The probability of backtest overfitting is the share of in-sample / out-of-sample splits of the train "
    "window (CSCV) in which the genome that was best in sample ranks in the bottom half out of sample; near 0 "
    "selecting by in-sample Sharpe generalises, near 0.5 or above it is no better than picking at random. Over "
    "trials bred on the very window CSCV splits it reads high even on pure noise: the representative PBO, on a "
    "window the candidates were not bred on, is the one to read."
)

_SHOWN = ("sharpe", "cagr", "max_drawdown", "annualized_volatility", "sortino", "calmar", "turnover")
_LABEL = {
    "sharpe": "Sharpe",
    "cagr": "CAGR",
    "max_drawdown": "Max DD",
    "annualized_volatility": "Vol",
    "sortino": "Sortino",
    "calmar": "Calmar",
    "turnover": "Turnover",
}


# ---- reading a run directory ------------------------------------------------------------------------
def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _fmt(v, metric: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if metric in ("cagr", "max_drawdown", "annualized_volatility"):
        return f"{100 * v:.1f}%"
    return f"{v:.3f}"


# ---- figures -------------------------------------------------------------------------------------------
def _fig_html(fig, first: list[bool]) -> str:
    include = first[0]
    first[0] = False
    return fig.to_html(full_html=False, include_plotlyjs=include, config={"displaylogo": False})


def _fitness_figure(logbooks: dict[str, list[dict]], objective: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, rows in logbooks.items():
        gens = [int(r["gen"]) for r in rows]
        fig.add_trace(go.Scatter(x=gens, y=[_num(r[f"{objective}_best"]) for r in rows], name=f"{name} best"))
        if len(logbooks) == 1:
            fig.add_trace(go.Scatter(x=gens, y=[_num(r[f"{objective}_mean"]) for r in rows], name="population mean"))
    fig.update_layout(
        title=f"Fitness by generation ({objective}, in-sample: the window each evolution was trained on)",
        xaxis_title="generation",
        yaxis_title=objective,
        height=380,
    )
    return fig


def _allocation_figure(weights: pd.DataFrame, rebalance: np.ndarray, boundaries: list, title: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    for sym in weights.columns:
        w = weights[sym].to_numpy()
        if np.nanmax(np.abs(w)) < 1e-4:
            continue
        fig.add_trace(go.Scatter(x=weights.index, y=w, name=sym, stackgroup="one", mode="none"))
    reb = weights.index[rebalance]
    fig.add_trace(
        go.Scatter(
            x=reb,
            y=np.full(len(reb), 1.02),
            mode="markers",
            marker={"symbol": "triangle-down", "size": 7, "color": "black"},
            name="rebalance",
        )
    )
    for when, label in boundaries:
        fig.add_vline(x=when, line_dash="dash", line_color="grey")
        fig.add_annotation(x=when, y=1.08, text=label, showarrow=False, font={"size": 10})
    fig.update_layout(title=title, yaxis_title="weight (share of portfolio value)", height=440)
    return fig


def _equity_figure(index, values: dict[str, np.ndarray], title: str):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.05)
    for k, (name, v) in enumerate(values.items()):
        v = np.asarray(v, dtype=np.float64)
        peak = np.maximum.accumulate(v)
        width = 2.5 if k == 0 else 1.2
        fig.add_trace(go.Scatter(x=index, y=v, name=name, legendgroup=name, line={"width": width}), row=1, col=1)
        fig.add_trace(
            go.Scatter(x=index, y=v / peak - 1, name=name, legendgroup=name, showlegend=False, line={"width": width}),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="value", type="log", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    fig.update_layout(title=title, height=560)
    return fig


def _folds_figure(folds: list[dict]):
    import plotly.graph_objects as go

    labels = [f"{f['number']}: {f['test_start'][:10]}" for f in folds]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=[f["in_sample"]["GA"]["sharpe"] for f in folds], name="GA in-sample (train)"))
    fig.add_trace(
        go.Bar(
            x=labels,
            y=[f["out_of_sample"].get("GA", {}).get("sharpe", math.nan) for f in folds],
            name="GA out-of-sample (test)",
        )
    )
    fig.add_trace(
        go.Bar(
            x=labels,
            y=[f["out_of_sample"].get("equal_weight", {}).get("sharpe", math.nan) for f in folds],
            name="equal weight out-of-sample",
        )
    )
    fig.update_layout(
        title="Sharpe per fold: in sample (train window) vs out of sample (test window)",
        barmode="group",
        xaxis_title="fold: test window start",
        yaxis_title="annualized Sharpe",
        height=420,
    )
    return fig


def _pareto_figure(rows: list[dict], objectives: list[str]):
    import plotly.graph_objects as go

    x, y = objectives[1], objectives[0]
    color = objectives[2] if len(objectives) > 2 else None
    fig = go.Figure(
        go.Scatter(
            x=[_num(r[x]) for r in rows],
            y=[_num(r[y]) for r in rows],
            mode="markers",
            marker={
                "color": [_num(r[color]) for r in rows] if color else None,
                "colorscale": "Viridis",
                "showscale": bool(color),
                "colorbar": {"title": color} if color else None,
            },
            text=[f"member {r['rank']}" for r in rows],
            name="Pareto front",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[_num(rows[0][x])],
            y=[_num(rows[0][y])],
            mode="markers",
            marker={"symbol": "star", "size": 16, "color": "red"},
            name="champion",
        )
    )
    fig.update_layout(title="Pareto front (in-sample)", xaxis_title=x, yaxis_title=y, height=440)
    return fig


# ---- tables --------------------------------------------------------------------------------------------
def _table(rows: dict[str, dict], oos: dict[str, dict] | None, title: str) -> str:
    head = "".join(
        f"<th>{_LABEL[m]}<br><small>in-sample</small></th><th>{_LABEL[m]}<br><small>out-of-sample</small></th>"
        for m in _SHOWN
    )
    body = []
    for name, m in rows.items():
        o = (oos or {}).get(name, {})
        cells = "".join(f"<td>{_fmt(m.get(k), k)}</td><td class='oos'>{_fmt(o.get(k), k)}</td>" for k in _SHOWN)
        body.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return f"<h2>{html.escape(title)}</h2><table><tr><th>allocation</th>{head}</tr>{''.join(body)}</table>"


def _stat_block(dsr, pbo, note: str = "") -> str:
    return (
        "<h2>Overfitting statistics</h2><ul>"
        f"<li><b>Deflated Sharpe ratio: {_fmt(dsr)}</b>. {html.escape(DSR_SENTENCE)}</li>"
        f"<li><b>Probability of backtest overfitting: {_fmt(pbo)}</b>. {html.escape(PBO_SENTENCE)}"
        f"{' ' + html.escape(note) if note else ''}</li></ul>"
    )


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px;margin-bottom:1em}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right} th{background:#f4f4f4}
td.oos{background:#eef6ee} h1{margin-bottom:0.2em} .meta{color:#555;font-size:13px}
"""


def _page(title: str, parts: list[str]) -> str:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n"
    )


# ---- the two kinds of run ---------------------------------------------------------------------------
def _evolve_parts(rd: RunDir, config, prices, first: list[bool]) -> list[str]:
    from genetic_sizer.backtest.simulate import holdings

    champion = json.loads(rd.champion_path.read_text())
    summary = _read_csv(rd.summary_path)
    is_rows = {r["allocation"]: {k: _num(v) for k, v in r.items()} for r in summary if r["window"] == "in_sample"}
    oos_rows = {r["allocation"]: {k: _num(v) for k, v in r.items()} for r in summary if r["window"] == "out_of_sample"}
    oos = champion.get("out_of_sample")
    ins = champion.get("in_sample", {})
    if oos:
        title = (
            f"Champion beside classical allocations: in sample ({ins['first_bar'][:10]} .. {ins['last_bar'][:10]}) "
            f"and out of sample, held-out ({oos['first_bar'][:10]} .. {oos['last_bar'][:10]})"
        )
    else:
        title = (
            "Champion beside classical allocations: IN SAMPLE ONLY (evolution.holdout is 0: no out-of-sample window)"
        )
    parts = [_table(is_rows, oos_rows or None, title)]
    parts += _risk_free_note(champion["portfolio"].get("risk_free"))
    parts.append(_stat_block(champion.get("deflated_sharpe"), None, "(PBO is computed per fold by a walk-forward.)"))
    parts += analytics_html(champion.get("analytics"))  # diversification and attribution
    logbook = _read_csv(rd.logbook_path)
    parts.append(_fig_html(_fitness_figure({"run": logbook}, config.objective[0]), first))
    if logbook and "leverage_mean" in logbook[0]:
        parts.append(_fig_html(_leverage_figure({"run": logbook}, config.evolution.genes["leverage"]), first))
    w = np.array([champion["weights"][s] for s in prices.symbols])
    pf = config.portfolio
    strategy = champion.get("strategy") or {"rebalance": pf.rebalance, "threshold": None}
    held, mask = holdings(
        prices,
        w,
        rebalance=strategy["rebalance"],
        threshold=strategy["threshold"],
        fees=pf.fees,
        slippage=pf.slippage,
        init_cash=pf.init_cash,
        **_account_of(pf, [strategy]),
    )
    bounds = [(pd.Timestamp(oos["first_bar"]), "out of sample")] if oos else []
    title = f"Champion's allocation over time (in sample, then held out; {_strategy_text(strategy)})"
    parts.append(_fig_html(_allocation_figure(held, mask, bounds, title), first))
    values = _read_csv(rd.file(RunDir.VALUES)) if rd.file(RunDir.VALUES).is_file() else []
    window = "out_of_sample" if oos else "in_sample"
    rows = [r for r in values if r["window"] == window]
    if rows:
        names = [c for c in rows[0] if c not in ("time", "window")]
        index = pd.DatetimeIndex([r["time"] for r in rows])
        curves = {n: np.array([_num(r[n]) for r in rows]) for n in names}
        what = "Out-of-sample (held-out window)" if oos else "In-sample (no held-out window)"
        parts.append(_fig_html(_equity_figure(index, curves, f"{what} equity and drawdown"), first))
    if config.multi_objective:
        parts.append(_fig_html(_pareto_figure(_read_csv(rd.members_path(True)), list(config.objective)), first))
    return parts


def _strategy_text(strategy: dict) -> str:
    """How a strategy keeps its weights, e.g. ``rebalance M, drift band 0.05`` (``, leverage 2.3x`` for perps)."""
    band = "no drift band" if strategy.get("threshold") is None else f"drift band {strategy['threshold']:.4g}"
    lev = "" if strategy.get("leverage") is None else f", leverage {strategy['leverage']:.3g}x"
    vt = "" if strategy.get("vol_target") is None else f", vol target {strategy['vol_target']:.3g}"
    return f"rebalance {strategy['rebalance']}, {band}{lev}{vt}"


def _policy_text(pf, genes) -> str:
    """The run's rebalancing rule for the report's header: the portfolio's policy, or what the strategy genes
    evolved it among (the classical allocations keep the portfolio's policy without a band)."""
    genes = genes or {}
    if "rebalance" in genes:
        codes = ", ".join(str(c) for c in genes["rebalance"])  # every N bars is an int
        text = f"rebalance evolved among {codes} (classical allocations: {pf.rebalance})"
    else:
        text = f"rebalance {pf.rebalance}"
    if "threshold" in genes:
        lo, hi = genes["threshold"]
        text += f", drift band evolved in [{lo:g}, {hi:g}]"
    return text


def _account_of(pf, strategies: list[dict]) -> dict:
    """The account keywords of :func:`genetic_sizer.backtest.simulate.holdings` for one genome kept by ``strategies``
    (one, or one per segment): a perp genome at its own leverage (per segment), else the portfolio's."""
    account = pf.account()
    if pf.market == "perp":
        levs = [s.get("leverage") or pf.leverage for s in strategies]
        account["leverage"] = levs[0] if len(levs) == 1 else levs
    if pf.policy() is not None:  # the rebalancing policy: minimum trade, maximum turnover, volatility target
        account["policy"] = pf.policy()
    return account


def _leverage_figure(logbooks: dict[str, list[dict]], bounds):
    """The population's mean leverage (± std for a single run) by generation: where the leverage gene went."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, rows in logbooks.items():
        gens = [int(r["gen"]) for r in rows]
        mean = np.array([_num(r["leverage_mean"]) for r in rows])
        fig.add_trace(go.Scatter(x=gens, y=mean, name=f"{name} mean leverage"))
        if len(logbooks) == 1:
            std = np.array([_num(r["leverage_std"]) for r in rows])
            fig.add_trace(go.Scatter(x=gens, y=mean + std, name="mean + std", line={"dash": "dot"}))
            fig.add_trace(go.Scatter(x=gens, y=mean - std, name="mean - std", line={"dash": "dot"}))
    fig.update_layout(
        title=f"Leverage gene by generation (the population's mean; evolved in [{bounds[0]:g}, {bounds[1]:g}])",
        xaxis_title="generation",
        yaxis_title="gross leverage",
        height=340,
    )
    return fig


def _walkforward_parts(rd: RunDir, config, prices, first: list[bool]) -> list[str]:
    from genetic_sizer.backtest.simulate import holdings

    wf = json.loads(rd.file(RunDir.WALKFORWARD).read_text())
    folds = wf["folds"]
    strategies = wf["strategies"]
    is_mean = {
        s: {k: float(np.nanmean([_num(f["in_sample"][s].get(k)) for f in folds])) for k in _SHOWN} for s in strategies
    }
    win = wf["out_of_sample_window"]
    title = (
        f"Walk-forward, {len(folds)} folds: out of sample = the stitched test windows "
        f"({win['first_bar'][:10]} .. {win['last_bar'][:10]}); in sample = the mean over the folds' train windows"
    )
    parts = [_table(is_mean, wf["out_of_sample"], title)]
    parts += _risk_free_note(wf["settings"]["portfolio"].get("risk_free"))
    for s, why in wf.get("skipped", {}).items():
        parts.append(f"<p class='meta'>{html.escape(s)} left out: {html.escape(why)}</p>")
    for d in wf.get("dropped_windows", []):
        lo, hi = d.get("period_start", d.get("first_bar", "")), d.get("period_end", d.get("last_bar", ""))
        where = f"{lo[:10]} .. {hi[:10]}"
        parts.append(f"<p class='meta'>test window {where} left out: {html.escape(d['reason'])}</p>")
    parts.append(
        _stat_block(wf.get("deflated_sharpe"), wf.get("pbo"), "(Both of the last fold, whose champion goes live.)")
    )
    parts += _significance_parts(wf)
    parts.append(_fig_html(_folds_figure(folds), first))
    logbooks = {}
    for f in folds:
        path = rd.path / "folds" / f"fold-{f['number']:03d}.json"
        if path.is_file():
            logbooks[f"fold {f['number']}"] = json.loads(path.read_text()).get("logbook", [])
    if logbooks:
        parts.append(_fig_html(_fitness_figure(logbooks, config.objective[0]), first))
        if all(rows and "leverage_mean" in rows[0] for rows in logbooks.values()):
            parts.append(_fig_html(_leverage_figure(logbooks, config.evolution.genes["leverage"]), first))
    values = _read_csv(rd.file(RunDir.OOS_VALUES))
    index = pd.DatetimeIndex([r["time"] for r in values])
    curves = {s: np.array([_num(r[s]) for r in values]) for s in strategies}
    lo = int(np.flatnonzero(prices.index == index[0])[0])
    test = prices.bars(lo, lo + len(index))
    schedule = np.array([[f["weights"]["GA"][s] for s in prices.symbols] for f in folds])
    traded = [pd.Timestamp(f.get("traded_at", f["test_start"])) for f in folds]  # schema 1: at the test start
    starts = [int(np.flatnonzero(test.index == t)[0]) for t in traded]
    pf = config.portfolio
    kept = [(f.get("strategy") or {}).get("GA") or {"rebalance": pf.rebalance, "threshold": None} for f in folds]
    held, mask = holdings(
        test,
        schedule,
        segment_starts=starts,
        rebalance=[k["rebalance"] for k in kept],
        threshold=[k["threshold"] for k in kept],
        fees=pf.fees,
        slippage=pf.slippage,
        init_cash=pf.init_cash,
        **_account_of(pf, kept),
    )
    bounds = [(t, f"fold {f['number']}") for t, f in zip(traded, folds, strict=True)]
    if config.evolution.genes is not None:  # each fold's champion keeps its weights its own way
        bounds = [(t, f"{label}: {_strategy_text(k)}") for (t, label), k in zip(bounds, kept, strict=True)]
    title = "GA allocation over time, out of sample (each fold's champion)"
    parts.append(_fig_html(_allocation_figure(held, mask, bounds, title), first))
    title = "Out-of-sample equity and drawdown (stitched test windows)"
    parts.append(_fig_html(_equity_figure(index, curves, title), first))
    return parts


def _significance_parts(wf: dict) -> list[str]:
    """The significance of GA's out-of-sample Sharpe difference (``walkforward.json`` ``significance``) and what each
    fold deployed, with its excess-of-1/N deflated Sharpe."""
    sig, rows = wf.get("significance") or {}, []
    for key in ("equal_weight", "best_classical"):
        t = sig.get(key)
        if t:
            d = t.get("sharpe_difference_annualized")
            rows.append(
                f"<tr><th>GA vs {html.escape(t['benchmark'])}{' (best classical)' if key != 'equal_weight' else ''}"
                f"</th><td>{_fmt(d)}</td><td>{_fmt(t.get('p_value'))}</td><td>{html.escape(str(t.get('method')))}"
                f"</td><td>{t.get('block_length') or ''}</td></tr>"
            )
    spa = sig.get("spa")
    if spa:
        rows.append(
            f"<tr><th>any of {html.escape(', '.join(spa['candidates']))} vs 1/N (Hansen's SPA)</th>"
            f"<td>{_fmt(spa.get('difference_annualized'))}</td><td>{_fmt(spa.get('p_value'))}</td><td>hansen_spa</td>"
            f"<td>{spa.get('block_length') or ''}</td></tr>"
        )
    parts = []
    if rows:
        parts.append(
            "<h2>Is the out-of-sample Sharpe difference real?</h2><table><tr><th>test</th><th>Sharpe difference "
            "(a year)</th><th>p-value</th><th>method</th><th>block length</th></tr>" + "".join(rows) + "</table>"
            "<p class='meta'>Two-sided p-values of the stitched out-of-sample returns (Ledoit and Wolf's studentized "
            "block bootstrap; SPA: one-sided, does any GA variant beat 1/N); below 0.05 the difference is unlikely to "
            f"be luck. {html.escape((sig.get('best_classical') or {}).get('selection', ''))}</p>"
        )
    body = []
    for f in wf["folds"]:
        x = f.get("excess_deflated_sharpe") or {}
        dsr = (
            "n/a" if "raw" not in x else f"{x['raw']['deflated_sharpe']:.3f} / {x['effective']['deflated_sharpe']:.3f}"
        )
        pbo = (f.get("representative_pbo") or {}).get("pbo")
        body.append(
            f"<tr><th>{f['number']}</th><td>{f['test_start'][:10]}</td><td style='text-align:left'>"
            f"{html.escape(f.get('deployed', 'GA champion'))}</td><td>{dsr}</td><td>{_fmt(pbo)} "
            f"<small>{html.escape((f.get('representative_pbo') or {}).get('window') or '')}</small></td></tr>"
        )
    parts.append(
        "<h2>What each fold deployed</h2><table><tr><th>fold</th><th>test from</th><th>GA deployed</th><th>deflated "
        "Sharpe of the excess over 1/N (raw / effective trials)</th><th>PBO (cluster representatives, on a window "
        "the trials were not bred on)</th></tr>" + "".join(body) + "</table>"
    )
    return parts


def _risk_free_note(record) -> list[str]:
    """The line under a table whose Sharpe and Sortino are of excess returns (none without a rate)."""
    from genetic_sizer.backtest.riskfree import describe

    text = describe(record)
    return [f"<p class='meta'>{html.escape(text)}</p>"] if text else []


def _account_text(pf, prices, config_genes=None) -> str:
    """The account model, for the report's header: nothing for spot."""
    if pf.market != "perp":
        return ""
    funding = "funding charged" if prices.funding is not None else "WITHOUT funding"
    genes = config_genes or {}
    if "leverage" in genes:
        lo, hi = genes["leverage"]
        return (
            f"perpetuals with an evolved leverage in [{lo:g}, {hi:g}] (the classical allocations at {pf.leverage:g}; "
            f"{funding}); "
        )
    return f"perpetuals at leverage {pf.leverage:g} ({funding}); "


def write_report(run_dir, prices=None) -> Path:
    """Write ``report.html`` for the run in ``run_dir`` (an ``evolve`` or a ``walkforward`` run) and return its
    path. ``prices`` is the run's whole data window (loaded from its config when not given)."""
    from genetic_sizer.runs.strategies import load_data

    rd = RunDir.open_existing(run_dir)
    config = rd.load_config()
    if prices is None:
        prices = load_data(config.data)
    first = [True]
    kind = "walk-forward" if rd.file(RunDir.WALKFORWARD).is_file() else "evolution"
    if kind == "walk-forward":
        body = _walkforward_parts(rd, config, prices, first)
    else:
        body = _evolve_parts(rd, config, prices, first)
    pf = config.portfolio
    meta = (
        f"<p class='meta'>{html.escape(rd.location)}: {len(prices.symbols)} assets, "
        f"{prices.index[0].date()} .. {prices.index[-1].date()} ({prices.n_bars} bars); objective "
        f"{', '.join(config.objective)}; {_account_text(pf, prices, config.evolution.genes)}{pf.direction}, "
        f"{_policy_text(pf, config.evolution.genes)}, "
        f"fees {pf.fees:g}, "
        f"slippage {pf.slippage:g}; population {config.evolution.population}, {config.evolution.generations} "
        f"generations, seed {config.evolution.seed}. Out-of-sample cells are shaded.</p>"
    )
    page = _page(f"genetic_sizer {kind} report", [f"<h1>genetic_sizer {kind} report</h1>", meta, *body])
    path = rd.write_text(REPORT_FILE, page)
    rd.sync()
    return path
