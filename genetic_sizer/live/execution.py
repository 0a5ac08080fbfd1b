"""Executing a pass: plan and send in rounds (reductions, then increases) until nothing is missing, re-planning
what a partial fill or an IOC that did not match left from freshly read positions, up to ``pass_retries``
rounds; flattening every position when the kill switch or the stop file asks for it; the drift left."""

from __future__ import annotations

import math

from genetic_sizer.live.orders import Orders
from genetic_sizer.live.outcomes import SizeResult
from genetic_sizer.live.planning import Planner, Snapshot
from genetic_sizer.live.session import Session
from genetic_sizer.live.sizer import Plan, SizerSettings

__all__ = ["NO_MATCH", "Executor"]

NO_MATCH = "could not immediately match"
"""What the exchange says of an IOC order that found nothing to trade against (the price moved away)."""


class Executor:
    """Trades plans in rounds for one account (the :class:`Session`), planning with a :class:`Planner` and
    sending through :class:`Orders`. ``last_plan`` is the latest plan a round made (None before any)."""

    def __init__(self, session: Session, planner: Planner, orders: Orders):
        self.session = session
        self.planner = planner
        self.orders = orders
        self.last_plan: Plan | None = None

    def trade(
        self,
        result: SizeResult,
        pid: str,
        label: str,
        weights,
        settings: SizerSettings,
        snap: Snapshot,
        *,
        check: bool = True,
        due: bool = False,
    ) -> str:
        """Plan and send in rounds until nothing is missing; returns the pass status. ``due``: the champion's
        calendar rebalance is due (see :meth:`~genetic_sizer.live.planning.Planner.calendar_due`)."""
        passes = self.session.state.passes
        attempt = passes[pid].next_attempt if pid in passes else 0
        decided = self.planner.decided(pid) if settings.drift_band is not None else None
        hard: set[str] = set()
        rounds = 1 + (self.session.config.pass_retries if self.session.config.execute else 0)
        clashes = 0
        rnd = -1
        while rnd + 1 < rounds:
            rnd += 1
            if rnd:
                self.session.sleep(self.session.config.round_pause)
                snap = self.planner.snapshot()
            record = {
                "event": "plan",
                "pass": pid,
                "period": label,
                "round": rnd,
                "executed": self.session.config.execute,
                "account_value": snap.account.account_value,
            }
            plan = self.planner.make_plan(weights, settings, snap, check, record, due=due, decided=decided)
            if decided is None and plan.orders and plan.rule in ("calendar", "drift"):
                decided = (plan.rule, plan.rule_reason)
            if result.plan is None:
                result.plan = plan
            self.last_plan = plan
            result.rounds = rnd + 1
            orders = [o for o in plan.orders if o.coin not in hard]
            if not self.session.config.execute:
                return "dry run"
            if not orders:
                result.rejected = sorted(hard)
                return "complete" if not hard else "partial"
            done = True
            for group in ([o for o in orders if o.reduce_only], [o for o in orders if not o.reduce_only]):
                if not group:
                    continue
                problem = self.planner.presend_problem(snap, group) if check else None
                if problem is not None:
                    result.notes.append(f"round {rnd + 1}: {problem}; re-planning")
                    self.session.report(f"{label}: {problem}; re-planning")
                    done = False
                    break
                intents, attempt, clash = self.orders.intents(pid, group, attempt)
                if intents is None:  # re-plan from fresh positions; this round does not count
                    result.notes.append(f"round {rnd + 1}: {clash}")
                    clashes += 1
                    if clashes <= 3:
                        rounds += 1
                    done = False
                    break
                outcomes = self.orders.send(result, pid, label, attempt, group, intents)
                attempt += 1
                for o, r in zip(group, outcomes, strict=True):
                    if r.status == "rejected":
                        done = False
                        if NO_MATCH not in (r.error or "").lower():
                            hard.add(o.coin)
                    elif r.status != "filled" or r.filled_size + 1e-12 < o.size:
                        done = False
                        result.notes.append(f"round {rnd + 1}: {o.coin} filled {r.filled_size:g} of {o.size:g}")
            if done:
                result.rejected = sorted(hard)
                return "complete"
        result.rejected = sorted(hard)
        return "partial"

    def flatten(self, pid: str, label: str, result: SizeResult, snap: Snapshot) -> None:
        """Close every position with reduce-only IOC orders (rounds as in a pass; guards off: this is the way
        out). A failure is reported and journaled, not raised."""
        fpid = f"{pid}/flatten"
        settings = SizerSettings(
            leverage=self.session.settings.leverage,
            min_trade_usd=self.session.settings.min_trade_usd,
            slippage=self.session.settings.slippage,
        )
        try:
            if snap.account.account_value <= 0:  # the sizer needs a positive value; closing does not use it
                snap = Snapshot(
                    snap.meta,
                    snap.mids,
                    snap.contexts,
                    type(snap.account)(
                        snap.account.address, 1.0, snap.account.withdrawable, dict(snap.account.positions)
                    ),
                    snap.read_at,
                    snap.wall,
                )
            status = self.trade(result, fpid, label, {}, settings, snap, check=False)
            self.session.record({"event": "pass_end", "pass": fpid, "period": label, "status": status})
            self.session.report(f"flatten: {status}")
        except Exception as exc:
            self.session.record(
                {"event": "pass_end", "pass": fpid, "period": label, "status": "failed", "error": str(exc)}
            )
            self.session.report(f"flatten FAILED: {type(exc).__name__}: {exc}; close the positions by hand")

    def drift(self, plan: Plan) -> dict:
        after = self.session.client.account(self.session.address)
        mids = self.session.client.mids()
        drift = {}
        for c in plan.coins:
            if c.coin in mids and math.isfinite(c.mid):
                now = after.positions.get(c.coin, 0.0)
                drift[c.coin] = {
                    "target": c.target,
                    "position": now,
                    "drift_usd": (c.target - now) * float(mids[c.coin]),
                }
        return drift
