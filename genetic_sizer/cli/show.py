"""What the command line prints: the evolution's progress, the run summaries (champion beside the classical
allocations, the walk-forward), the live sizer's plans and status, a fetched champion. Printing only: every figure
comes from the library's results."""

from __future__ import annotations

__all__ = [
    "account_of",
    "perp_lines",
    "print_champion",
    "print_plan",
    "print_status",
    "print_summary",
    "print_walkforward",
    "progress_printer",
    "reference_of",
]


def progress_printer(objective: str):
    """A per-generation progress display: a rich progress bar on a terminal, one line per generation otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:

        def line(g):
            r = g.record
            print(
                f"gen {g.gen:>4}/{g.generations}  best {objective} {r[objective + '_best']: .4f}  "
                f"mean {r[objective + '_mean']: .4f}  evals {r['evaluations']}  {g.evals_per_second:,.0f} evals/s",
                flush=True,
            )

        return None, line
    progress = Progress(
        TextColumn("[bold]evolving"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task("", total=None)

    def update(g):
        r = g.record
        progress.update(
            task,
            total=g.generations + 1,
            completed=g.gen + 1,
            description=(
                f"best {objective} {r[objective + '_best']:.4f}  mean {r[objective + '_mean']:.4f}  "
                f"{g.evals_per_second:,.0f} evals/s"
            ),
        )

    return progress, update


_SHORT = {
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "calmar": "Calmar",
    "cagr": "CAGR",
    "max_drawdown": "MaxDD",
    "annualized_volatility": "Vol",
    "turnover": "Turnover",
}


_SUMMARY_COLUMNS = ("sharpe", "cagr", "max_drawdown", "annualized_volatility", "sortino", "turnover")


def print_summary(report, url: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 150))
    oos = report.summary_oos
    rec = report.champion
    ins, out = rec.get("in_sample"), rec.get("out_of_sample")
    if oos is not None and out:
        title = (
            f"Champion beside classical allocations: IS = in sample, the evolution's window "
            f"({ins['first_bar'][:10]} .. {ins['last_bar'][:10]}); OOS = out of sample, held out "
            f"({out['first_bar'][:10]} .. {out['last_bar'][:10]})"
        )
    else:
        title = "Champion beside classical allocations: IN-SAMPLE ONLY (no held-out window: evolution.holdout is 0)"
    table = Table(title=title)
    table.add_column("allocation", no_wrap=True)
    for m in _SUMMARY_COLUMNS:
        table.add_column(f"{_SHORT.get(m, m)} IS", justify="right")
        if oos is not None:
            table.add_column(f"{_SHORT.get(m, m)} OOS", justify="right", style="green")
    wiped = []
    for name, row in report.summary.items():
        other = (oos or {}).get(name)
        lost = row["wiped_out"] or (other is not None and other["wiped_out"])
        if lost:
            wiped.append(name)
        cells = []
        for m in _SUMMARY_COLUMNS:
            cells.append(f"{row[m]:.4f}")
            if oos is not None:
                cells.append(f"{other[m]:.4f}" if other else "-")
        table.add_row(f"{name} (wiped out)" if lost else name, *cells)
    console.print(table)
    _print_risk_free(console, rec.get("portfolio", {}).get("risk_free"))
    for name in wiped:
        console.print(f"  {name} was wiped out: its value reached zero or below; its figures measure it up to that bar")
    for name, why in report.skipped.items():
        console.print(f"  {name} left out: {why}")
    for line in beats_equal_weight_lines(rec, report.summary, oos):
        console.print(line, markup=False)
    built = rec.get("construction") or {}
    if built.get("method", "plain") != "plain" or "shrink_gene" in built:
        beside = "; plain_champion is the hall of fame's best" if built["method"] != "plain" else ""
        console.print(f"deployed champion: {describe_construction(built)}{beside}")
    if rec.get("analytics"):
        from genetic_sizer.runs.analytics import describe_analytics

        for line in describe_analytics(rec["analytics"]):
            console.print(line, markup=False)
    weights = rec["weights"]
    top = sorted(weights.items(), key=lambda kv: -abs(kv[1]))
    shown = ", ".join(f"{s} {w:.3f}" for s, w in top if abs(w) >= 5e-4)
    console.print(f"champion weights: {shown}")
    strategy = rec.get("strategy")
    if strategy and strategy.get("genes"):
        band = strategy["threshold"]
        evolved = ", ".join(f"{k} {v}" for k, v in strategy["genes"].items())
        detail = (
            "no drift band"
            if band is None
            else f"drift band {band:.4f} (the whole book trades back to target when a weight drifts "
            f"{100 * band:.1f} points from it)"
        )
        lev = "" if "leverage" not in strategy["genes"] else f", leverage {strategy['leverage']:.4g}x"
        vt = strategy.get("vol_target")
        if vt is not None:  # an evolved volatility target: each rebalance scales the exposure to it
            lev += f", vol target {vt:.4g} (annualized, over {strategy.get('vol_lookback', 20)} bars)"
        console.print(f"champion strategy: rebalance {strategy['rebalance']}, {detail}{lev}; evolved: {evolved}")
    pf = rec.get("portfolio", {})
    if pf.get("market") == "perp":
        m = rec["metrics"]
        console.print(
            f"champion account (perpetuals at leverage {pf['leverage']:g}, in sample): funding paid "
            f"{m['funding_paid']:,.2f}, received {m['funding_received']:,.2f}, fees {m['fees_paid']:,.2f}"
            + (", LIQUIDATED" if m.get("liquidated") else "")
        )
    ver = rec["verification"]
    engine = ver.get("engine", "vectorbt")
    against = f"; against {ver['against']}" if "against" in ver else ""
    console.print(
        f"{engine} re-check: metrics agree to {ver['max_rel_diff']:.1e} relative (limit {ver['rtol']:g}{against})"
    )
    where, champion = report.run_dir, report.champion_path
    if url:  # a run at a storage URL: the staging directory is this process's copy
        where, champion = url, f"{url}/{report.champion_path.name}"
    console.print(f"run directory: {where}  (champion: {champion})")


def describe_construction(built: dict) -> str:
    """How a champion file's ``construction`` says its weights were built, in words."""
    parts = [f"method {built['method']}"]
    gene = built.get("shrink_gene")
    if gene:
        parts.append(f"its evolved shrink gene {gene['coefficient']:.4g} toward {gene['target']} applied")
        if gene.get("projected"):
            parts.append(f"projected onto the genome space (moved {gene['distance']:.2g})")
    if built.get("ensemble"):
        parts.append(f"{built['ensemble']} ensemble of {built.get('size', len(built.get('members', [])))} members")
        if built.get("projected"):
            parts.append(f"projected onto the genome space (moved {built['distance']:.4f})")
    shrink = built.get("shrink")
    if shrink:
        parts.append(f"shrunk {shrink['coefficient']:g} toward {shrink['target']}")
        if shrink.get("projected"):
            parts.append(f"projected onto the genome space (moved {shrink['distance']:.4f})")
    return ", ".join(parts)


def reference_of(config) -> str:
    """What a run's champion is re-checked against, for progress lines."""
    if config.portfolio.market == "perp":
        return "the plain-Python perp reference loop"
    return "vectorbt"


def account_of(config, prices) -> str:
    """The account model for the start line: nothing for spot."""
    pf = config.portfolio
    if pf.market != "perp":
        return ""
    funding = "funding charged" if prices.funding is not None else "WITHOUT funding"
    genes = config.evolution.genes or {}
    if "leverage" in genes:
        lo, hi = genes["leverage"]
        return f"perpetuals at an evolved leverage in [{lo:g}, {hi:g}] ({funding}), "
    return f"perpetuals at leverage {pf.leverage:g} ({funding}), "


def perp_lines(config, prices) -> list[str]:
    """What a perp run's account rests on, for the start of its output: where liquidation is tested, where the
    maintenance margin comes from, and how the funding was read (which price each payment was charged at)."""
    if config.portfolio.market != "perp":
        return []
    tested = (
        "within each bar, every position at its adverse extreme (the bars' highs and lows)"
        if prices.high is not None
        else "at the bars' closes only (the data has no highs and lows)"
    )
    caps = config.portfolio.max_leverage
    margin = "portfolio.max_leverage" if caps is not None else "the exchange's margin tiers saved with the data"
    out = [f"perp account: liquidation tested {tested}; maintenance margin from {margin}"]
    return out + [note for note in prices.notes if note.startswith("funding from")]


def _print_risk_free(console, record) -> None:
    from genetic_sizer.backtest.riskfree import describe

    if describe(record):
        console.print(describe(record))


def beats_equal_weight_lines(rec: dict, summary: dict, oos: dict | None) -> list[str]:
    """Does the evolve champion beat 1/N? Out of sample (the held-out window) and by the deflated Sharpe ratio of its
    in-sample returns in excess of 1/N's (raw and effective trials). The deflated Sharpe of its raw returns is not
    a verdict: on a long-only run every trial earns the market's premium, so it reads near 1 for any champion."""
    out = []
    ew = "equal_weight"
    if oos is not None and ew in oos and "champion" in oos:
        c, e = oos["champion"]["sharpe"], oos[ew]["sharpe"]
        if c > e:
            out.append(f"out of sample the champion beats 1/N: Sharpe {c:.3f} vs {e:.3f} on the held-out window")
        else:
            out.append(
                f"out of sample the champion does NOT beat 1/N: Sharpe {c:.3f} vs {e:.3f} on the held-out window; "
                "1/N is the better portfolio to trade here"
            )
    elif ew in summary and "champion" in summary:
        c, e = summary["champion"]["sharpe"], summary[ew]["sharpe"]
        out.append(f"in sample only (nothing held out): champion Sharpe {c:.3f} vs 1/N {e:.3f}")
    excess = rec.get("excess_deflated_sharpe")
    if excess:
        out.append(excess_dsr_text(excess))
        if excess.get("verdict") != "skill":
            out.append("the search shows no skill beyond 1/N: nothing says its champion is better than 1/N")
    elif rec.get("deflated_sharpe") is not None:
        trials = rec.get("trials") or {}
        out.append(
            f"deflated Sharpe of the champion's raw returns (in sample, given {trials.get('n', 0):,} trials): "
            f"{rec['deflated_sharpe']:.3f}; it does not say whether the champion beats 1/N"
        )
    return out


def _p(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def significance_lines(sig: dict) -> list[str]:
    """The walk-forward's significance block (``walkforward.json``) in words."""
    out = []
    for key in ("equal_weight", "best_classical"):
        t = sig.get(key)
        if not t:
            continue
        who = "1/N" if key == "equal_weight" else f"the best classical ({t['benchmark']}, chosen after the fact)"
        if t.get("p_value") is None:
            out.append(f"GA vs {who}: no test ({t.get('note')})")
            continue
        d = t.get("sharpe_difference_annualized") or 0.0
        block = f", block {t['block_length']}" if t.get("block_length") else ""
        verdict = "significant at 5%" if t["p_value"] < 0.05 else "not significant at 5%: could be luck"
        out.append(
            f"GA vs {who}: out-of-sample Sharpe difference {d:+.3f} a year, p-value {_p(t['p_value'])} "
            f"({t['method']}{block}; {verdict})"
        )
    spa = sig.get("spa")
    if spa:
        cands = ", ".join(spa.get("candidates", []))
        if spa.get("p_value") is None:
            out.append(f"does any of {cands} beat 1/N? no test ({spa.get('note')})")
        else:
            out.append(
                f"does any of {cands} beat 1/N? Hansen's SPA p-value {_p(spa['p_value'])} (best: "
                f"{spa['best_strategy']}, {spa['difference_annualized']:+.3f} a year)"
            )
    return out


def excess_dsr_text(excess: dict) -> str:
    """The deflated Sharpe of the champion's excess over 1/N (raw and effective trials) in words."""
    if "raw" not in excess:
        return f"deflated Sharpe of the champion's returns minus 1/N's: n/a ({excess.get('note', 'not computed')})"
    raw, eff = excess["raw"], excess["effective"]
    return (
        f"deflated Sharpe of the champion's returns minus 1/N's (in sample): {raw['deflated_sharpe']:.3f} "
        f"given {raw['n_trials']:,} trials, {eff['deflated_sharpe']:.3f} given {eff['n_trials']} effective "
        f"(clustered) trials; 'skill' needs both >= {excess['threshold']}: {excess['verdict']}"
    )


def print_walkforward(wf, champion: dict, run_dir) -> None:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 150))
    win = wf.record["out_of_sample_window"]
    table = Table(
        title=(
            f"Walk-forward, {len(wf.folds)} folds. OOS = out of sample: the stitched test windows "
            f"({win['first_bar'][:10]} .. {win['last_bar'][:10]}), one continuous portfolio per strategy; "
            "IS = in sample: the mean over the folds' train windows"
        )
    )
    table.add_column("strategy", no_wrap=True)
    for m in _SUMMARY_COLUMNS:
        table.add_column(f"{_SHORT.get(m, m)} IS", justify="right")
        table.add_column(f"{_SHORT.get(m, m)} OOS", justify="right", style="green")
    for s in wf.strategies:
        cells = []
        for m in _SUMMARY_COLUMNS:
            cells.append(f"{np.mean([r['in_sample'][s][m] for r in wf.fold_results]):.4f}")
            cells.append(f"{wf.oos[s][m]:.4f}")
        table.add_row(s, *cells)
    console.print(table)
    _print_risk_free(console, wf.record["settings"]["portfolio"].get("risk_free"))
    for s, why in wf.skipped.items():
        console.print(f"  {s} left out: {why}")
    if wf.config.evolution.genes is not None:
        from genetic_sizer.validation.stitch import fold_strategy

        kept = []
        for f, r in zip(wf.folds, wf.fold_results, strict=True):
            k = fold_strategy(wf.config, r, "GA")
            band = "no band" if k["threshold"] is None else f"band {k['threshold']:.3f}"
            lev = "" if k.get("leverage") is None else f", {k['leverage']:.2f}x"
            kept.append(f"fold {f.number}: {k['rebalance']}, {band}{lev}")
        console.print("GA strategy per fold (evolved; out of sample each fold keeps its own): " + "; ".join(kept))
    ga, ew = wf.oos.get("GA"), wf.oos.get("equal_weight")
    if ga and ew:
        verdict = "beats" if ga["sharpe"] > ew["sharpe"] else "does NOT beat"
        console.print(
            f"out of sample the GA {verdict} equal weight (1/N): Sharpe {ga['sharpe']:.3f} vs {ew['sharpe']:.3f}, "
            f"CAGR {ga['cagr']:.2%} vs {ew['cagr']:.2%}, "
            f"max drawdown {ga['max_drawdown']:.2%} vs {ew['max_drawdown']:.2%}"
        )
    for line in significance_lines(wf.record.get("significance") or {}):
        console.print(line, markup=False)
    chosen = [f"fold {f['number']}: {f['deployed']}" for f in wf.record["folds"] if f.get("deployed")]
    if wf.config.robust.active and chosen:
        console.print("deployed per fold (GA): " + "; ".join(chosen), markup=False)
    excess = wf.record["folds"][-1].get("excess_deflated_sharpe")
    if excess:
        console.print("last fold: " + excess_dsr_text(excess), markup=False)
    dsr, pbo = wf.record["deflated_sharpe"], wf.record["pbo"]
    console.print(
        "last fold (its champion goes live), against zero skill and over trials bred on its window: deflated Sharpe "
        + (f"{dsr:.3f}" if dsr is not None else "n/a")
        + ", probability of backtest overfitting "
        + (f"{pbo:.3f}" if pbo is not None else "n/a")
        + (f" ({wf.fold_results[-1]['pbo_note']})" if dsr is None and wf.fold_results[-1].get("pbo_note") else "")
        + " (see report.html for how to read them)"
    )
    weights = champion["weights"]
    top = sorted(weights.items(), key=lambda kv: -abs(kv[1]))
    console.print("live champion weights: " + ", ".join(f"{s} {w:.3f}" for s, w in top if abs(w) >= 5e-4))
    console.print(f"run directory: {run_dir}  (walkforward.json, oos_values.csv, report.html, champion.json)")


def print_plan(result, as_json: bool) -> None:
    import json

    if as_json:
        from genetic_sizer.live.journal import jsonable

        print(json.dumps(jsonable(result.to_dict()), indent=2, allow_nan=False), flush=True)
        return
    from rich.console import Console
    from rich.table import Table

    plan = result.plan
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 130))
    if plan is not None:
        mode = "EXECUTED" if result.executed else "DRY RUN (nothing sent; add --execute to trade)"
        console.print(f"rule: {plan.rule} ({plan.rule_reason})", markup=False)
        table = Table(
            title=f"{mode}: {result.network}, account {result.address}, value ${plan.account_value:,.2f}, "
            f"leverage {plan.leverage:g}"
        )
        for col in ("coin", "weight", "mid", "current", "target", "delta", "notional $", "action", "reason"):
            table.add_column(col, justify="left" if col in ("coin", "action", "reason") else "right")
        for c in plan.coins:
            table.add_row(
                c.coin,
                f"{c.weight:.4f}",
                f"{c.mid:,.6g}",
                f"{c.current:g}",
                f"{c.target:g}",
                f"{c.delta:+g}",
                f"{c.notional:,.2f}",
                c.action,
                c.reason,
            )
        console.print(table)
        for k, o in enumerate(plan.orders):
            ro = " reduce-only" if o.reduce_only else ""
            console.print(
                f"  order {k + 1}: {o.side} {o.size:g} {o.coin} limit {o.limit_px:g} "
                f"(~${o.notional:,.2f}){ro} [{o.leg}]"
            )
    for r in result.results:
        part = ""
        if result.partial(r):
            part = f" of {result.requested[r.cloid]:g} (PARTIAL)"
        console.print(
            f"  result {r.coin}: {r.status} {r.filled_size:g}{part} @ {r.avg_px}"
            + (f" ({r.error})" if r.error else ""),
            markup=False,
        )
    for u in result.unknown:
        console.print(
            f"  outcome UNKNOWN {u['coin']} (cloid {u['cloid']}): not sent again; the next pass settles it",
            markup=False,
        )
    for note in result.notes:
        console.print(f"  note: {note}", markup=False)
    if result.error:
        console.print(f"  pass FAILED: {result.error}", markup=False)
    for coin, d in result.drift.items():
        console.print(f"  drift {coin}: position {d['position']:g} vs target {d['target']:g} (${d['drift_usd']:,.2f})")
    if result.pass_id is not None:
        resumed = " (resumed)" if result.resumed else ""
        console.print(f"  pass {result.period}{resumed}: {result.status}, {result.rounds} round(s)", markup=False)


def _fmt(value, kind: str = "g") -> str:
    if value is None:
        return "-"
    if kind == "%":
        return f"{value:+.2%}"
    if kind == "$":
        return f"${value:,.2f}"
    return f"{value:.4g}"


def print_status(report: dict) -> None:
    j = report["journal"]
    print(f"journal          {j['path']} ({j['records']} records)")
    if j["unreadable_lines"]:
        print(f"                 unreadable lines skipped: {', '.join(map(str, j['unreadable_lines']))}")
    print(f"account          {report['account']} on {report['network']}, period {report['period']}")
    print(f"champion         {report['champion']}")
    last = report["last_pass"]
    if last is None:
        print("last pass        none yet")
    else:
        print(
            f"last pass        {last['period']}: {last['status']} at {last['time']}"
            f" ({last.get('orders_sent') or 0} orders sent, {last.get('orders_filled') or 0} filled,"
            f" {last.get('partial_fills') or 0} partial)"
        )
        if last.get("rejected"):
            print(f"                 rejected: {', '.join(last['rejected'])}")
        if last.get("error"):
            print(f"                 error: {last['error']}")
    print(f"passes ended     {report['passes']}")
    if report["interrupted"]:
        print(f"interrupted      {', '.join(report['interrupted'])} (resumed by a restart in the same period)")
    if report["unresolved"]:
        coins = ", ".join(f"{u['coin']} ({u['cloid']})" for u in report["unresolved"])
        print(f"unresolved       {coins}: settled by the next start")
    if report["kill"]:
        print(f"KILL SWITCH      fired at {report['kill'].get('time')}: {report['kill'].get('reason')}")
        if report.get("kill_latched"):
            print("                 latched: nothing trades until `genetic-sizer size --reset-kill`")
        else:
            print("                 reset since (genetic-sizer size --reset-kill)")
    eq = report["equity"]
    print(
        f"equity           {_fmt(eq['latest'], '$')} ({eq['latest_source']}); started {_fmt(eq['first'], '$')} at "
        f"{eq['first_time'] or '-'}; high-water {_fmt(eq['high_water'], '$')}, drawdown "
        f"{'-' if eq['drawdown'] is None else format(eq['drawdown'], '.2%')}"
    )
    print(f"PnL since start  {_fmt(eq['pnl'], '$')} ({_fmt(eq['pnl_pct'], '%')})")
    source = report["drift_source"]
    print(f"drift per coin   ({'now, from the exchange' if source == 'exchange' else 'as last recorded'})")
    for coin, d in report["drift"].items():
        print(f"  {coin:<8} position {d['position']:<14g} target {d['target']:<14g} drift {_fmt(d['drift_usd'], '$')}")
    days = report["realized_days"]
    print(f"champion's backtest beside realized ({days:.2f} days recorded)" if days else "backtest vs realized")
    print(f"  {'metric':<24}{'backtest':>12}{'realized':>12}")
    for metric, pair in report["expectation"].items():
        kind = "%" if metric in ("total_return", "cagr", "max_drawdown", "annualized_volatility") else "g"
        print(f"  {metric:<24}{_fmt(pair['backtest'], kind):>12}{_fmt(pair['realized'], kind):>12}")


def print_champion(path) -> None:
    import json

    rec = json.loads(path.read_text(encoding="utf-8"))
    top = sorted(rec["weights"].items(), key=lambda kv: -abs(kv[1]))
    print("champion weights: " + ", ".join(f"{s} {w:.3f}" for s, w in top if abs(w) >= 5e-4))
    metrics = rec.get("metrics") or {}
    if "sharpe" in metrics:
        print(f"champion Sharpe (in sample) {metrics['sharpe']:.4f}")
