"""One pass of a wall-clock period: settle what an earlier process left unknown, read the account, check the clocks
and the kill switch (:class:`~genetic_sizer.live.guards.Limits`), trade
(:class:`~genetic_sizer.live.execution.Executor`, which checks the kill switch again before every later round),
re-read the account for the drift left and check the kill switch once more, and journal how the pass ended (see
:mod:`genetic_sizer.live.loop`)."""

from __future__ import annotations

import math

from genetic_sizer.errors import KillSwitchTripped, PassRefused, PositionMismatch
from genetic_sizer.live.execution import Executor
from genetic_sizer.live.guards import clock_problem, limit_breach, pass_id
from genetic_sizer.live.highwater import high_water as high_water_mark
from genetic_sizer.live.journal import now_iso
from genetic_sizer.live.orders import Orders
from genetic_sizer.live.outcomes import SizeResult
from genetic_sizer.live.planning import Planner, Snapshot
from genetic_sizer.live.reconcile import check_pass
from genetic_sizer.live.session import Session

__all__ = ["PassRunner"]


class PassRunner:
    """Runs the pass of a period for one account (the :class:`Session`) with its planner, orders and executor."""

    def __init__(self, session: Session, planner: Planner, orders: Orders, executor: Executor):
        self.session = session
        self.planner = planner
        self.orders = orders
        self.executor = executor

    def _clock_check(self, snap: Snapshot, result: SizeResult) -> None:
        """Measure the clocks on every pass (journaled with the equity) and warn past a second (or half the
        tolerance). Past the tolerance nothing is sent: the order request's own check stops the loop (ConfigError,
        exit code 2) before the first order, and account data too old even for the tolerance is refused as stale
        (:func:`~genetic_sizer.live.guards.data_age_problem`)."""
        found = clock_problem(snap.clock_skew, snap.skew_error, self.session.tolerance())
        if found is None:
            return
        result.notes.append(found[1])
        self.session.report(f"WARNING: {found[1]}")

    def _equity_check(
        self, pid: str, label: str, snap: Snapshot, result: SizeResult, stage: str = "pass start"
    ) -> None:
        """Journal the equity, the drawdown and the gross exposure (``stage``: pass start, round N, after the pass)
        and fire the kill switch when a limit is reached (flattening first if asked)."""
        state = self.session.state
        high_water = high_water_mark(self.session, float(snap.account.account_value))  # journal, state dir, exchange
        day_ref = state.day_reference(snap.wall)
        equity = float(snap.account.account_value)
        hwm = max(high_water if high_water is not None else equity, equity)
        gross = sum(
            abs(size) * float(snap.mids[coin])
            for coin, size in snap.account.positions.items()
            if coin in snap.mids and math.isfinite(float(snap.mids[coin]))
        )
        self.session.record(
            {
                "event": "equity",
                "pass": pid,
                "period": label,
                "stage": stage,
                "account_value": equity,
                "high_water": hwm,
                "drawdown": 1.0 - equity / hwm if hwm > 0 else 0.0,
                "day_reference": day_ref if day_ref is not None else equity,
                "gross_exposure": gross,
                "clock_skew": snap.clock_skew,
            }
        )
        reason = limit_breach(self.session.config.limits, equity, high_water, day_ref)
        if reason is None:
            return
        flatten = self.session.config.flatten_on_stop and self.session.config.execute
        self.session.record({"event": "kill", "pass": pid, "period": label, "reason": reason, "flatten": flatten})
        self.session.report(
            f"KILL SWITCH: {reason} ({stage}); trading stops" + ("; flattening every position" if flatten else "")
        )
        if flatten:
            self.executor.flatten(pid, label, result, snap)
        raise KillSwitchTripped(reason)

    def run(self, index: int) -> SizeResult:
        """The pass of period ``index``: see :mod:`genetic_sizer.live.loop`. Journals a ``pass_end`` record however it
        ends; on failure the exception is raised again with the pass attached as ``size_result``."""
        period = self.session.config.period
        pid = pass_id(self.session.champion_id, period, index)
        label = period.label(index)
        before = self.session.state.passes.get(pid)
        result = SizeResult(
            now_iso(),
            self.session.network,
            self.session.address,
            self.session.config.execute,
            None,
            pass_id=pid,
            period=label,
            resumed=before is not None and bool(before.sent or before.plans),
        )
        self.executor.last_plan = None
        self.executor.fills = None
        failure: BaseException | None = None
        status = "failed"
        try:
            self.session.preflight()  # executing: a latched kill switch, another trader on the account
            if self.session.config.execute:
                self.orders.recover()
            snap = self.planner.snapshot()
            self._clock_check(snap, result)
            self._equity_check(pid, label, snap, result)
            self.executor.checkpoint = lambda s, stage: self._equity_check(pid, label, s, result, stage)
            due = self.planner.calendar_due(index)  # judged by this pass's period, not by when it runs
            status = self.executor.trade(result, pid, label, self.session.weights, self.session.settings, snap, due=due)
            self.executor.checkpoint = None
            if self.session.config.execute and self.executor.fills is not None:  # the post-trade check
                check_pass(self.session, self.executor.fills, snap.meta, pid, label)
            if self.session.config.execute and result.requested and self.executor.last_plan is not None:
                after = self.planner.snapshot()  # equity and drawdown after the last round, and the drift left
                result.drift = self.executor.drift(self.executor.last_plan, after)
                self._equity_check(pid, label, after, result, "after the pass")
            if self.session.book is not None and status in ("complete", "dry run"):
                self.session.book.commit()  # the parts this pass set: the next pass's state
        except KillSwitchTripped as exc:
            status, failure = "killed", exc
        except PassRefused as exc:
            status, failure = "refused", exc
        except PositionMismatch as exc:
            status, failure = "mismatch", exc
        except BaseException as exc:
            failure = exc
        finally:
            self.executor.checkpoint = None
        result.status = status
        if failure is not None:
            result.error = f"{type(failure).__name__}: {failure}"
            result.errors.append(result.error)
        if (
            self.session.config.execute
            and not isinstance(failure, KeyboardInterrupt)
            and self.executor.last_plan is not None
            and not result.drift
        ):
            try:
                result.drift = self.executor.drift(self.executor.last_plan)
            except Exception as exc:
                result.errors.append(f"re-reading the account: {type(exc).__name__}: {exc}")
                if failure is None:
                    failure = exc
                    result.error = result.errors[-1]
                    result.status = status = "failed"
        filled = [r for r in result.results if getattr(r, "filled_size", 0)]
        self.session.record(
            {
                "event": "pass_end",
                "pass": pid,
                "period": label,
                "status": status,
                "executed": self.session.config.execute,
                "rounds": result.rounds,
                "orders_sent": len(result.requested),
                "orders_filled": len(filled),
                "partial_fills": sum(1 for r in result.results if result.partial(r)),
                "rejected": result.rejected,
                "unknown": result.unknown,
                "drift": result.drift,
                "errors": result.errors,
                "error": result.error,
            }
        )
        if failure is not None:
            failure.size_result = result  # type: ignore[attr-defined]
            raise failure
        return result
