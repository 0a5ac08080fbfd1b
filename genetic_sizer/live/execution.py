"""Executing a pass: plan and send in rounds (reductions, then increases) until nothing is missing, re-planning
what a partial fill or an IOC that did not match left, up to ``pass_retries`` rounds. A later round plans from the
positions the pass's settled fills imply (:class:`~genetic_sizer.live.reconcile.PassFills`: the start's positions
plus every fill the exchange reports by cloid), never from a read that may trail them; after a clash with orders the
journal does not know (:meth:`~genetic_sizer.live.orders.Orders.intents`), from a fresh read taken once their
requests have expired, since the start's positions lack their fills. Increases go out only once
every reduce-only order of the round has settled in full: a close that failed or was rejected holds them back, so
the gross exposure never exceeds the plan's. Flattening every position (kill switch, stop file) is coin by coin
(:func:`~genetic_sizer.live.flatten.flatten_positions`); the drift left."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from genetic_sizer.live.flatten import flatten_positions
from genetic_sizer.live.orders import Orders
from genetic_sizer.live.outcomes import SizeResult
from genetic_sizer.live.planning import Planner, Snapshot
from genetic_sizer.live.reconcile import PassFills
from genetic_sizer.live.session import Session
from genetic_sizer.live.sizer import Plan, SizerSettings

__all__ = ["NO_MATCH", "Executor"]

NO_MATCH = "could not immediately match"
"""What the exchange says of an IOC order that found nothing to trade against (the price moved away)."""


class Executor:
    """Trades plans in rounds for one account (the :class:`Session`), planning with a :class:`Planner` and
    sending through :class:`Orders`. ``last_plan`` is the latest plan a round made (None before any).
    ``checkpoint(snapshot, stage)``, when set (by the pass), is called with every later round's fresh snapshot
    before that round plans: the equity and drawdown check (it raises to stop the pass, flattening first if asked).
    Its positions are those the round plans from (the settled fills'), never a read that may trail them: a flatten
    must close what the pass bought."""

    def __init__(self, session: Session, planner: Planner, orders: Orders):
        self.session = session
        self.planner = planner
        self.orders = orders
        self.last_plan: Plan | None = None
        self.checkpoint: Callable[[Snapshot, str], None] | None = None
        self.fills: PassFills | None = None  # the last executed pass: its start's positions and settled fills

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
        if self.session.config.execute:
            self.fills = PassFills(dict(snap.account.positions))
        rounds = 1 + (self.session.config.pass_retries if self.session.config.execute else 0)
        clashes = 0
        rebase = False  # a clash: orders the journal does not know moved the account; the next round reads it afresh
        rnd = -1
        while rnd + 1 < rounds:
            rnd += 1
            if rnd:
                self.session.sleep(self.session.config.round_pause)
                snap = self.planner.snapshot()
                if self.fills is not None and rebase:  # read after the clash's wait: it has the unknown orders' fills
                    self.fills = PassFills(dict(snap.account.positions))
                    rebase = False
                elif self.fills is not None:  # plan from the settled fills: a fresh read of positions can trail them
                    snap = replace(snap, account=replace(snap.account, positions=self.fills.expected()))
                if self.checkpoint is not None:  # after the last round, before this one: equity and drawdown (and the
                    self.checkpoint(snap, f"round {rnd + 1}")  # positions a flatten closes: the settled fills')
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
            # coins whose reduce-only order did not settle in full (a rejected one stays so): increases wait for them
            held = [o.coin for o in plan.orders if o.reduce_only and o.coin in hard]
            for group in ([o for o in orders if o.reduce_only], [o for o in orders if not o.reduce_only]):
                if not group:
                    continue
                if held and not group[0].reduce_only:
                    why = (
                        f"increases held back: the reduce-only orders of {', '.join(sorted(set(held)))} did not settle"
                    )
                    result.notes.append(f"round {rnd + 1}: {why}")
                    self.session.report(f"{label}: {why}")
                    done = False
                    break
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
                    rebase = True
                    if clashes <= 3:
                        rounds += 1
                    done = False
                    break
                outcomes = self.orders.send(result, pid, label, attempt, group, intents)
                outcomes = self.orders.settle(pid, attempt, group, intents, outcomes)
                for i, r in zip(intents, outcomes, strict=True):
                    self.fills.add(i, r)
                attempt += 1
                for o, r in zip(group, outcomes, strict=True):
                    if r.status == "rejected":
                        done = False
                        if NO_MATCH not in (r.error or "").lower():
                            hard.add(o.coin)
                    elif r.status != "filled" or r.filled_size + 1e-12 < o.size:
                        done = False
                        result.notes.append(f"round {rnd + 1}: {o.coin} filled {r.filled_size:g} of {o.size:g}")
                    if o.reduce_only and (r.status != "filled" or r.filled_size + 1e-12 < o.size):
                        held.append(o.coin)
            if done:
                result.rejected = sorted(hard)
                return "complete"
        result.rejected = sorted(hard)
        return "partial"

    def flatten(self, pid: str, label: str, result: SizeResult, snap: Snapshot) -> dict[str, dict]:
        """Close every position, coin by coin (:func:`~genetic_sizer.live.flatten.flatten_positions`: a coin without
        a mid priced from its mark or oracle price, IOCs retried with widening slippage up to a cap; guards off:
        this is the way out). Returns what is left open (coin -> size, why); a failure is reported and journaled,
        not raised."""
        fpid = f"{pid}/flatten"
        checkpoint, self.checkpoint = self.checkpoint, None  # the way out is not stopped by the kill switch
        try:
            left = flatten_positions(self.session, self.orders, pid, label, result, snap)
            result.notes.extend(f"flatten: {c} left open ({v['size']:g}): {v['why']}" for c, v in left.items())
            return left
        except Exception as exc:
            self.session.record(
                {"event": "pass_end", "pass": fpid, "period": label, "status": "failed", "error": str(exc)}
            )
            self.session.report(f"flatten FAILED: {type(exc).__name__}: {exc}; close the positions by hand")
            return {c: {"size": s, "why": f"{type(exc).__name__}: {exc}"} for c, s in snap.account.positions.items()}
        finally:
            self.checkpoint = checkpoint

    def drift(self, plan: Plan, snap: Snapshot | None = None) -> dict:
        """coin -> target, position and drift in USD, from ``snap`` (a snapshot read after the pass) or fresh reads."""
        after = snap.account if snap is not None else self.session.client.account(self.session.address)
        mids = snap.mids if snap is not None else self.session.client.mids()
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
