"""Sending orders and settling them: a pass's orders go out as IOC orders with client order ids that derive
from the account, the pass, the coin, the leg and the attempt; before a request, every cloid is looked up on
the exchange (one it knows is never sent again), and the orders and then the request's expiry are journaled.
After a restart, the orders the journal sent without a known outcome are looked up once their requests
expired (:meth:`Orders.recover`)."""

from __future__ import annotations

from collections.abc import Mapping

from genetic_sizer.errors import ExchangeError
from genetic_sizer.exchange.wire import OrderIntent
from genetic_sizer.live.guards import order_cloid
from genetic_sizer.live.margin import Margin
from genetic_sizer.live.outcomes import SizeResult
from genetic_sizer.live.reconcile import settle_fills
from genetic_sizer.live.session import Session
from genetic_sizer.live.sizer import PlannedOrder

__all__ = ["Orders", "result_entry"]


def result_entry(order: Mapping | PlannedOrder, cloid: str, outcome=None, status: str | None = None) -> dict:
    """A journal result entry: the order (coin, leg, size) and its outcome."""
    get = order.get if isinstance(order, Mapping) else lambda k, d=None: getattr(order, k, d)
    entry = {"coin": get("coin"), "cloid": cloid, "leg": get("leg"), "size": get("size")}
    if outcome is None:
        entry.update(status=status or "not_found", filled_size=0.0, avg_px=None, oid=None, error=None, partial=False)
        return entry
    entry.update(
        status=outcome.status,
        filled_size=outcome.filled_size,
        avg_px=outcome.avg_px,
        oid=outcome.oid,
        error=outcome.error,
        partial=outcome.status == "filled" and outcome.filled_size + 1e-12 < float(get("size") or 0.0),
    )
    return entry


class Orders:
    """The orders of one account (the :class:`Session`): recovery, the cloid check before sending, sending."""

    def __init__(self, session: Session):
        self.session = session
        self.margin = Margin(session)  # cross margin and leverage per coin, before the first order that needs margin

    def recover(self) -> None:
        """Settle the orders the journal sent without a known outcome (a killed process, a lost answer): wait
        until every request that carried one has expired (plus the clock tolerance), so that none can still
        execute, then look them up on the exchange and journal what it reports ("not_found": never executed)."""
        if not self.session.config.execute:
            return
        orders = self.session.state.unresolved()
        if not orders:
            return
        wait = self.session.state.unresolved_expiry_ms() / 1000.0 + self.session.tolerance() - self.session.clock()
        if wait > 0:
            self.session.report(f"waiting {wait:.1f} s until the requests of an interrupted pass have expired")
            self.session.sleep(wait)
        intents = [
            OrderIntent(
                coin=o["coin"],
                is_buy=o.get("side") == "buy",
                size=o["size"],
                limit_px=o["limit_px"],
                reduce_only=bool(o.get("reduce_only")),
                cloid=o["cloid"],
            )
            for o in orders
        ]
        found = self.session.client.lookup_orders(intents)
        groups: dict[tuple[str, int], list[dict]] = {}
        for o in orders:
            groups.setdefault((o["pass"], o["attempt"]), []).append(result_entry(o, o["cloid"], found.get(o["cloid"])))
        for (pid, attempt), entries in groups.items():
            self.session.record(
                {"event": "result", "pass": pid, "attempt": attempt, "source": "lookup", "results": entries}
            )
        filled = [e for es in groups.values() for e in es if e["filled_size"]]
        self.session.report(
            f"settled {len(orders)} order(s) of an interrupted pass from the exchange's record: "
            f"{len(filled)} executed, {len(orders) - len(filled)} never executed"
        )

    def intents(self, pid: str, group: list[PlannedOrder], attempt: int):
        """The group's OrderIntents for ``attempt``, after checking that the exchange knows none of their
        cloids. Returns (intents, attempt, None), or (None, next free attempt, why) when it knows some: orders
        of this pass the journal does not record (another process, or a lost journal)."""

        def build(a: int):
            return [
                OrderIntent(
                    o.coin,
                    o.is_buy,
                    o.size,
                    o.limit_px,
                    o.reduce_only,
                    order_cloid(self.session.address, pid, o.coin, o.leg, a, trader=self.session.trader_id),
                )
                for o in group
            ]

        intents = build(attempt)
        known = self.session.client.lookup_orders(intents)
        if not known:
            return intents, attempt, None
        a = attempt
        while known:
            self.session.record(
                {
                    "event": "result",
                    "pass": pid,
                    "attempt": a,
                    "source": "probe",
                    "results": [
                        result_entry(o, i.cloid, known[i.cloid])
                        for o, i in zip(group, build(a), strict=True)
                        if i.cloid in known
                    ],
                }
            )
            a += 1
            if a - attempt > 64:
                raise ExchangeError(f"the exchange knows the client order ids of {a - attempt} attempts of pass {pid}")
            known = self.session.client.lookup_orders(build(a))
        why = (
            f"the exchange already knows orders of attempt {attempt} of this pass that the journal does not record; "
            f"they are not sent again (next attempt {a}); waiting {self.session.client.request_lifetime:.1f} s for any "
            "request of another process to expire, then re-planning"
        )
        self.session.report(why)
        self.session.sleep(self.session.client.request_lifetime)
        return None, a, why

    def send(self, result: SizeResult, pid: str, label: str, attempt: int, group, intents) -> list:
        margin = self.margin.prepare(group)  # before anything of this group is journaled as sent
        orders = [
            {
                "coin": o.coin,
                "leg": o.leg,
                "side": o.side,
                "size": o.size,
                "limit_px": o.limit_px,
                "mid": o.mid,
                "reduce_only": o.reduce_only,
                "cloid": i.cloid,
            }
            for o, i in zip(group, intents, strict=True)
        ]
        record = {"event": "send", "pass": pid, "period": label, "attempt": attempt, "orders": orders}
        self.session.record({**record, "margin": {"cross": True, "leverage": margin}} if margin else record)
        for i in intents:
            result.requested[i.cloid] = i.size

        def on_request(expires_ms: int, batch) -> None:
            self.session.record(
                {
                    "event": "request",
                    "pass": pid,
                    "attempt": attempt,
                    "expires_after_ms": int(expires_ms),
                    "cloids": [i.cloid for i in batch],
                }
            )

        try:
            outcomes = self.session.client.place_orders(intents, on_request=on_request)
        except BaseException as exc:
            known = getattr(exc, "results", None) or {}
            told = getattr(exc, "unknown", None)
            doubtful = set(told) if told is not None else {i.cloid for i in intents if i.cloid not in known}
            entries = []
            for o, i in zip(group, intents, strict=True):
                if i.cloid in known:
                    entries.append(result_entry(o, i.cloid, known[i.cloid]))
                elif i.cloid not in doubtful:
                    entries.append(result_entry(o, i.cloid, status="not_executed"))
            self.session.record(
                {
                    "event": "result",
                    "pass": pid,
                    "attempt": attempt,
                    "source": "answer",
                    "results": entries,
                    "unknown": sorted(doubtful),
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
            result.results.extend(known[i.cloid] for i in intents if i.cloid in known)
            result.unknown.extend({"coin": i.coin, "cloid": i.cloid} for i in intents if i.cloid in doubtful)
            result.errors.extend(f"{r.coin}: {r.error}" for r in known.values() if r.status == "rejected")
            raise
        entries = [result_entry(o, i.cloid, r) for o, i, r in zip(group, intents, outcomes, strict=True)]
        self.session.record(
            {"event": "result", "pass": pid, "attempt": attempt, "source": "answer", "results": entries}
        )
        result.results.extend(outcomes)
        result.errors.extend(f"{r.coin}: {r.error}" for r in outcomes if r.status == "rejected")
        return outcomes

    def settle(self, pid: str, attempt: int, group, intents, outcomes) -> list:
        """The settled outcome of each order just sent (:func:`~genetic_sizer.live.reconcile.settle_fills`: the
        exchange's record by cloid, waited for up to ``settle_timeout``); where it differs from the answer, it is
        journaled (a ``result`` record, source "settled") and wins."""
        settled = settle_fills(
            self.session.client.lookup_orders, intents, outcomes, timeout=self.session.config.settle_timeout
        )
        changed = [
            result_entry(o, i.cloid, s)
            for o, i, r, s in zip(group, intents, outcomes, settled, strict=True)
            if (s.status, s.filled_size) != (r.status, r.filled_size)
        ]
        if changed:
            self.session.record(
                {"event": "result", "pass": pid, "attempt": attempt, "source": "settled", "results": changed}
            )
        return settled
