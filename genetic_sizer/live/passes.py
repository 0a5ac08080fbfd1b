"""One pass of a wall-clock period: settle what an earlier process left unknown, read the account and check
the kill switch (:class:`~genetic_sizer.live.guards.Limits`), trade (:class:`~genetic_sizer.live.execution.Executor`),
re-read the account for the drift left, and journal how the pass ended (see :mod:`genetic_sizer.live.loop`)."""

from __future__ import annotations

from genetic_sizer.errors import KillSwitchTripped, PassRefused
from genetic_sizer.live.execution import Executor
from genetic_sizer.live.guards import limit_breach, pass_id
from genetic_sizer.live.journal import now_iso
from genetic_sizer.live.orders import Orders
from genetic_sizer.live.outcomes import SizeResult
from genetic_sizer.live.planning import Planner, Snapshot
from genetic_sizer.live.session import Session

__all__ = ["PassRunner"]


class PassRunner:
    """Runs the pass of a period for one account (the :class:`Session`) with its planner, orders and executor."""

    def __init__(self, session: Session, planner: Planner, orders: Orders, executor: Executor):
        self.session = session
        self.planner = planner
        self.orders = orders
        self.executor = executor

    def _equity_check(self, pid: str, label: str, snap: Snapshot, result: SizeResult) -> None:
        state = self.session.state
        high_water = state.high_water
        day_ref = state.day_reference(snap.wall)
        equity = float(snap.account.account_value)
        hwm = max(high_water if high_water is not None else equity, equity)
        self.session.record(
            {
                "event": "equity",
                "pass": pid,
                "period": label,
                "account_value": equity,
                "high_water": hwm,
                "drawdown": 1.0 - equity / hwm if hwm > 0 else 0.0,
                "day_reference": day_ref if day_ref is not None else equity,
            }
        )
        reason = limit_breach(self.session.config.limits, equity, high_water, day_ref)
        if reason is None:
            return
        flatten = self.session.config.flatten_on_stop and self.session.config.execute
        self.session.record({"event": "kill", "pass": pid, "period": label, "reason": reason, "flatten": flatten})
        self.session.report(
            f"KILL SWITCH: {reason}; trading stops" + ("; flattening every position" if flatten else "")
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
        failure: BaseException | None = None
        status = "failed"
        try:
            if self.session.config.execute:
                self.orders.recover()
            snap = self.planner.snapshot()
            self._equity_check(pid, label, snap, result)
            status = self.executor.trade(
                result, pid, label, self.session.weights, self.session.settings, snap, due=self.planner.calendar_due()
            )
        except KillSwitchTripped as exc:
            status, failure = "killed", exc
        except PassRefused as exc:
            status, failure = "refused", exc
        except BaseException as exc:
            failure = exc
        result.status = status
        if failure is not None:
            result.error = f"{type(failure).__name__}: {failure}"
            result.errors.append(result.error)
        if (
            self.session.config.execute
            and not isinstance(failure, KeyboardInterrupt)
            and self.executor.last_plan is not None
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
