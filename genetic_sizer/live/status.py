"""What a journal says of a live run, and how the account stands now (:func:`live_status`, the ``status``
command), with the realized metrics of the recorded equity next to the champion's backtest
(:func:`realized_metrics`)."""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

from genetic_sizer.errors import ExchangeError
from genetic_sizer.exchange.client import HyperliquidClient, resolve_base_url
from genetic_sizer.live.journal import now_iso, read_journal
from genetic_sizer.live.sizer import SizerSettings, plan_orders
from genetic_sizer.runs import champion as C
from genetic_sizer.runs.champion import Champion

__all__ = ["EXPECTATION_METRICS", "journal_status", "live_status", "realized_metrics"]

_YEAR = 365 * 86400.0  # crypto trades every day: a year of hourly bars is 8760, as the champion counts them
EXPECTATION_METRICS = ("total_return", "cagr", "annualized_volatility", "sharpe", "max_drawdown")


def realized_metrics(equity: list[tuple[float, float]]) -> dict:
    """Metrics of a recorded equity series ``[(ts, value), ...]`` with the champion's definitions (see
    :mod:`genetic_sizer.backtest.metrics`): total return, CAGR over the elapsed time (365-day years), volatility and
    Sharpe of the returns between records annualized by the median gap between them, max drawdown (<= 0).
    Deposits and withdrawals count as returns. Values are None where the series is too short."""
    points = sorted((t, v) for t, v in equity if v > 0)
    out: dict = {"points": len(points), "days": None, **{m: None for m in EXPECTATION_METRICS}}
    if not points:
        return out
    values = [v for _, v in points]
    peak, worst = values[0], 0.0
    for v in values:
        peak = max(peak, v)
        worst = min(worst, v / peak - 1.0)
    out["max_drawdown"] = worst
    elapsed = points[-1][0] - points[0][0]
    out["days"] = elapsed / 86400.0
    out["total_return"] = values[-1] / values[0] - 1.0
    if elapsed > 0:
        out["cagr"] = (values[-1] / values[0]) ** (_YEAR / elapsed) - 1.0
    if len(points) >= 3:
        rets = [b / a - 1.0 for a, b in itertools.pairwise(values)]
        gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(points))
        gap = gaps[len(gaps) // 2]
        if gap > 0:
            ppy = _YEAR / gap
            mean = sum(rets) / len(rets)
            std = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
            out["annualized_volatility"] = std * math.sqrt(ppy)
            out["sharpe"] = mean / std * math.sqrt(ppy) if std > 0 else 0.0
    return out


def live_status(
    journal: str | Path, *, client=None, champion: Champion | None = None, now: float | None = None
) -> dict:
    """What a journal says of a live run, and (with ``client``) how the account stands now.

    Returns a dict with: ``journal`` (path, records, unreadable lines), ``account``, ``network``,
    ``last_pass`` (the latest pass outcome: pass, period, status, time, orders, errors), ``interrupted``
    (passes that never ended), ``unresolved`` (orders without a known outcome), ``kill`` (the last kill
    switch record), ``equity`` (first, latest, high-water mark, drawdown, PnL since the start), ``drift``
    (coin -> target, position, drift in USD: planned from the account now with the champion and settings the
    loop runs with when ``client`` and the champion are available, else the last recorded), and
    ``expectation`` (metric -> backtest value from the champion file, realized value from the equity
    recorded). A ``client`` without credentials is enough: it reads the account the journal names."""
    path = Path(journal)
    state = read_journal(path)
    start = state.starts[-1] if state.starts else {}
    address = start.get("address")
    now = time.time() if now is None else now
    ends = [
        r for r in state.records if r.get("event") in ("pass_end", "skipped") and "/flatten" not in str(r.get("pass"))
    ]
    last = ends[-1] if ends else None
    last_pass = None
    if last is not None:
        last_pass = {
            k: last.get(k)
            for k in (
                "pass",
                "period",
                "time",
                "status",
                "orders_sent",
                "orders_filled",
                "partial_fills",
                "rejected",
                "error",
            )
        }
        if last.get("event") == "skipped":
            last_pass["status"] = "skipped"
    interrupted = [
        p.pass_id for p in state.passes.values() if p.end is None and p.skipped is None and (p.sent or p.plans)
    ]
    out: dict = {
        "journal": {"path": str(path), "records": len(state.records), "unreadable_lines": state.bad_lines},
        "account": address,
        "network": start.get("network"),
        "period": start.get("period"),
        "champion": (start.get("champion") or {}).get("path"),
        "last_pass": last_pass,
        "passes": len({r.get("pass") for r in ends}),
        "interrupted": interrupted,
        "unresolved": [{"pass": o["pass"], "coin": o["coin"], "cloid": o["cloid"]} for o in state.unresolved()],
        "kill": state.kills[-1] if state.kills else None,
        "kill_latched": state.latched is not None,  # tripped and not reset (`size --reset-kill`)
    }
    equity = list(state.equity)
    current = None
    drift = dict(last.get("drift") or {}) if last is not None else {}
    drift_source = "journal" if drift else None
    if client is not None and address:
        account = client.account(address)
        current = float(account.account_value)
        if champion is not None:
            settings = SizerSettings(**(start.get("settings") or {}))
            mids = client.mids()
            weights = dict(zip(champion.assets, (float(w) for w in champion.weights), strict=True))
            plan = plan_orders(
                weights, current, account.positions, mids, client.meta(), settings, constraints=champion.constraints
            )
            drift = {
                c.coin: {
                    "target": c.target,
                    "position": c.current,
                    "drift_usd": (c.target - c.current) * c.mid,
                    "weight": c.weight,
                    "current_weight": c.current_weight,
                }
                for c in plan.coins
                if math.isfinite(c.mid)
            }
            drift_source = "exchange"
        equity.append((now, current))
    first = state.first_equity
    hwm = max((v for _, v in equity), default=None)
    latest = equity[-1] if equity else None
    out["equity"] = {
        "first": first[1] if first else None,
        "first_time": now_iso(first[0]) if first else None,
        "latest": latest[1] if latest else None,
        "latest_source": "exchange" if current is not None else "journal",
        "high_water": hwm,
        "drawdown": 1.0 - latest[1] / hwm if latest and hwm else None,
        "pnl": latest[1] - first[1] if latest and first else None,
        "pnl_pct": latest[1] / first[1] - 1.0 if latest and first and first[1] > 0 else None,
    }
    out["drift"] = drift
    out["drift_source"] = drift_source
    realized = realized_metrics(equity)
    backtest = dict(champion.metrics) if champion is not None else {}
    out["expectation"] = {m: {"backtest": backtest.get(m), "realized": realized.get(m)} for m in EXPECTATION_METRICS}
    out["realized_days"] = realized["days"]
    return out


def journal_status(
    journal: str | Path,
    *,
    champion: str | Path | None = None,
    network: str | None = None,
    base_url: str | None = None,
    offline: bool = False,
    timeout: float = 10.0,
    on_exchange_error: Callable[[ExchangeError], None] | None = None,
) -> dict:
    """``genetic-sizer live status``: :func:`live_status` of ``journal`` with the champion file ``champion`` (None:
    the one the journal's last start records, when it still exists) and, unless ``offline``, the account read from
    the exchange at ``base_url`` / ``network`` (None: the journal's). When the exchange cannot be read,
    ``on_exchange_error(exc)`` is told and the status comes from the journal only."""
    state = read_journal(journal)
    start = state.starts[-1] if state.starts else {}
    champ_path = champion or (start.get("champion") or {}).get("path")
    champ = C.load(champ_path) if champ_path and (champion or os.path.exists(champ_path)) else None
    client = None
    if not offline and start.get("address"):
        if base_url or network:
            url = resolve_base_url(network or "testnet", base_url)
        elif start.get("base_url"):
            url = start["base_url"]
        else:
            url = resolve_base_url(start.get("network") or "testnet")
        client = HyperliquidClient(url, timeout=timeout)
    try:
        try:
            return live_status(journal, client=client, champion=champ)
        except ExchangeError as exc:
            if on_exchange_error is not None:
                on_exchange_error(exc)
            return live_status(journal, champion=champ)
    finally:
        if client is not None:
            client.close()
