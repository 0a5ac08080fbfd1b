"""Planning a pass: read the market and the account (:class:`Snapshot`), decide whether the champion's rules
trade (the drift band, the calendar rebalance, a decision an earlier round took), plan the orders with
:func:`~genetic_sizer.live.sizer.plan_orders`, and refuse stale or inconsistent data (the sanity guards of
:mod:`genetic_sizer.live.guards`), before the plan is made and again before each group is sent."""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, replace

from genetic_sizer.errors import PassRefused
from genetic_sizer.live.guards import data_age_problem, gross_problem, price_problems
from genetic_sizer.live.session import Session
from genetic_sizer.live.sizer import Plan, PlannedOrder, SizerSettings, plan_orders

__all__ = ["Planner", "Snapshot"]


@dataclass
class Snapshot:
    """What one read of the exchange saw: metadata, mids, asset contexts (for the price guard), the account."""

    meta: dict
    mids: dict
    contexts: dict
    account: object
    read_at: float  # time.monotonic() when the reads finished
    wall: float  # this machine's clock then
    clock_skew: float | None = None  # the exchange's clock minus this machine's (s), from the account's time stamp
    skew_error: float = 0.0  # how well that is known: half the account read's round trip (s)


def _period_start(label, ended) -> float | None:
    """When the period labelled ``label`` (``spec@YYYY-MM-DDTHH:MM:SS[.ffffff]Z``) started; else ``ended`` (a pass
    record's ``ts``), else None."""
    if isinstance(label, str) and "@" in label:
        try:
            stamp = _dt.datetime.fromisoformat(label.split("@", 1)[1].replace("Z", "+00:00"))
        except ValueError:
            stamp = None
        if stamp is not None:
            return stamp.replace(tzinfo=stamp.tzinfo or _dt.UTC).timestamp()
    if isinstance(ended, int | float) and not isinstance(ended, bool):
        return float(ended)
    return None


class Planner:
    """Reads, the strategy's rules and the plans of one account and champion (the :class:`Session`)."""

    def __init__(self, session: Session):
        self.session = session

    def snapshot(self) -> Snapshot:
        meta = self.session.client.meta()
        mids = self.session.client.mids()
        contexts = (
            self.session.client.asset_contexts() if self.session.config.guards.max_mid_deviation is not None else {}
        )
        before = time.time()  # the real clock, not the session's (replaced in tests): the skew is about this machine
        account = self.session.client.account(self.session.address)
        after = time.time()
        stamp = getattr(account, "time_ms", None)
        skew = stamp / 1000.0 - (before + after) / 2 if isinstance(stamp, int | float) else None
        return Snapshot(
            meta, mids, contexts, account, time.monotonic(), self.session.clock(), skew, (after - before) / 2
        )

    def last_done(self) -> float | None:
        """When the period of the last pass of this champion that completed (a dry run: that ended as a dry run)
        started, from the journal (None: none yet). A pass belongs to its period, not to the moment it ended: a pass
        of January 31st, 23:00-24:00 that ended at 00:00:05 on February 1st is a January pass (its period label,
        ``spec@start``, says when its period started; a record without one counts by when it ended)."""
        want = "complete" if self.session.config.execute else "dry run"
        prefix = f"{self.session.champion_id}/"
        times = [
            _period_start(p.end.get("period") or p.period, p.end.get("ts"))
            for pid, p in self.session.state.passes.items()
            if pid.startswith(prefix) and not pid.endswith("/flatten") and p.end and p.end.get("status") == want
        ]
        return max((t for t in times if t is not None), default=None)

    def calendar_due(self, index: int | None = None) -> bool:
        """Whether the champion's calendar rebalance is due for the pass of period ``index`` (default: the period
        now): with a drift band, when the last completed pass (see :meth:`last_done`) belongs to an earlier period
        of the champion's rebalance policy (:func:`calendar_of`) than this pass's period does (both judged by when
        their periods start, not by when a pass ended or runs). Never for the first pass (the band decides, as in
        the simulation where the first bar's drift from nothing decides nothing: it always allocates, and a live
        account may already hold the book), nor for a buy-and-hold champion or without a band (every pass then
        trades)."""
        if self.session.settings.drift_band is None or self.session.calendar is None:
            return False
        last = self.last_done()
        if last is None:
            return False
        period = self.session.config.period
        start = period.start(period.index(self.session.clock()) if index is None else index)
        return self.session.calendar.index(start) != self.session.calendar.index(last)

    def decided(self, pid: str) -> tuple[str, str] | None:
        """The rule of the first plan of pass ``pid`` that decided to trade (an earlier round, or a process that
        was interrupted in this pass), or None: the pass goes on trading what it decided."""
        for record in self.session.state.records:
            plan = record.get("plan") if record.get("event") == "plan" and record.get("pass") == pid else None
            if isinstance(plan, dict) and plan.get("rule") not in (None, "hold", "rebalance") and plan.get("orders"):
                return str(plan["rule"]), str(plan.get("rule_reason") or "")
        return None

    def make_plan(
        self,
        weights,
        settings: SizerSettings,
        snap: Snapshot,
        check: bool,
        record: dict,
        *,
        due: bool = False,
        decided: tuple[str, str] | None = None,
    ) -> Plan:
        account = (snap.account.account_value, snap.account.positions, snap.mids, snap.meta)
        constraints = self.session.champion.constraints
        if self.session.book is not None:  # the combined targets at this pass, sized as a champion's weights
            book = self.session.book.combine(snap)
            weights, settings, constraints = book.weights, replace(settings, leverage=book.leverage), None
            if not record.get("round"):
                self.session.report(self.session.book.describe(book))
            record = {**record, "book": {**book.to_dict(), "weights": book.weights, "leverage": book.leverage}}
        if decided is not None and settings.drift_band is not None:
            # this pass decided to trade (drift or calendar): what is still missing trades, whatever the band says
            plan = plan_orders(weights, *account, replace(settings, drift_band=None), constraints=constraints)
            plan = replace(plan, rule=decided[0], rule_reason=f"{decided[1]} (the pass completes what it started)")
        else:
            plan = plan_orders(weights, *account, settings, constraints=constraints, rebalance_due=due)
        problems = []
        if check:
            guards = self.session.config.guards
            age = data_age_problem(
                getattr(snap.account, "time_ms", None), snap.wall, guards.max_data_age, self.session.tolerance()
            )
            problems += [age] if age else []
            problems += price_problems(
                [o.coin for o in plan.orders], snap.mids, snap.contexts, guards.max_mid_deviation
            )
            gross = gross_problem(plan, snap.meta)
            problems += [gross] if gross else []
        self.session.record({**record, "plan": plan.to_dict(), "refused": "; ".join(problems) or None})
        if problems:
            raise PassRefused("; ".join(problems))
        return plan

    def presend_problem(self, snap: Snapshot, group: list[PlannedOrder]) -> str | None:
        """Why a planned group should not go out as planned (re-plan instead), or None: the plan is older
        than ``max_data_age``, or a mid moved more than ``max_mid_deviation`` since it was read."""
        guards = self.session.config.guards
        age = time.monotonic() - snap.read_at
        if age > guards.max_data_age:
            return f"the plan is {age:.1f} s old (limit {guards.max_data_age:g} s)"
        if guards.max_mid_deviation is None:
            return None
        mids = self.session.client.mids()
        moved = []
        for o in group:
            now = mids.get(o.coin)
            if now is None or abs(float(now) / o.mid - 1.0) > guards.max_mid_deviation:
                moved.append(f"{o.coin} {o.mid:g} -> {now!r}")
        if moved:
            return f"mids moved more than {guards.max_mid_deviation:.2%} since the plan ({', '.join(moved)})"
        return None
