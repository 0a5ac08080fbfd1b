"""Order placement on Hyperliquid, never duplicating an order, and order lookups by client order id.

:meth:`OrderSender.place_orders` sends ONE bulk request of IOC limit orders, each carrying a client order
id (cloid) and an expiry (``expiresAfter``). Transport failures (timeouts, dropped connections, HTTP 5xx)
leave a request's outcome unknown; they are retried, but never blindly: the sender first waits until the
lost request has expired, then looks every unconfirmed order up (:class:`OrderLookup`: by cloid, in the
user's fills) and compares the positions with those before the request; only an order found nowhere, in a
coin whose position has not moved, is sent again. See :meth:`OrderSender.place_orders` for exactly what
this guarantees and on what it relies.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from genetic_sizer.errors import ConfigError, ExchangeError, RetryableExchangeError
from genetic_sizer.exchange.info import InfoReader
from genetic_sizer.exchange.retry import _check_garbled, _describe, _rate_limited, _retry_after, _transport_errors
from genetic_sizer.exchange.transport import Transport
from genetic_sizer.exchange.wire import (
    OrderIntent,
    OrderResult,
    _field,
    _from_fills,
    _integer,
    _number,
    _order_statuses,
    _parse_account,
    _result_from_status,
    _vwap,
)

__all__ = ["OrderLookup", "OrderSender"]


class OrderLookup:
    """What the exchange knows of orders, by cloid (orderStatus, else the user's fills), through
    ``transport``; and, after a lost request, which unconfirmed orders are safe to send again."""

    def __init__(self, transport: Transport):
        self._t = transport

    def lookup_orders(self, intents: Sequence[OrderIntent]) -> dict[str, OrderResult]:
        """What the exchange knows of these orders, by cloid: cloid -> OrderResult for every order it reports
        (orderStatus by cloid, else the user's fills carrying the cloid); orders it does not know are absent.

        Read-only and retried like every read. Used to settle orders whose outcome a lost answer or a killed
        process left unknown, and to check that a cloid is unused before an order is sent with it."""
        intents = list(intents)
        if not intents:
            return {}
        self._t.require_account()
        found: dict[str, OrderResult] = {}
        fills: list[Any] | None = None
        for intent in intents:
            hit = self._t.retrying("orderStatus", lambda intent=intent, fills=fills: self.find(intent, fills))
            if hit is not None:
                found[intent.cloid], fills = hit
        rest = [i for i in intents if i.cloid not in found]
        if rest:
            if fills is None:
                user = self._t.require_account()
                info = self._t.ensure()
                raw = self._t.retrying("userFills", lambda: info.user_fills(user))
                fills = raw if isinstance(raw, list) else []
            for intent in rest:
                result = _from_fills(intent, fills)
                if result is not None:
                    found[intent.cloid] = result
        return found

    def reconcile(
        self,
        intents: list[OrderIntent],
        pending: list[OrderIntent],
        results: dict[str, OrderResult],
        baseline: Mapping[str, float],
    ) -> tuple[list[OrderIntent], list[OrderIntent]]:
        """After a lost request: record the outcome of every pending order the exchange reports (orderStatus
        by cloid, else the user's fills by cloid) and split the rest into (never executed: safe to send
        again, in doubt: the coin's position moved although no order of it is reported). Transport errors
        propagate (to the retry loop of the caller)."""
        info = self._t.ensure()
        user = self._t.require_account()
        unseen: list[OrderIntent] = []
        fills: list[Any] | None = None
        for intent in pending:
            found = self.find(intent, fills)
            if found is None:
                unseen.append(intent)
                continue
            results[intent.cloid], fills = found
        if not unseen:
            return [], []
        if fills is None:
            raw = _check_garbled(info.user_fills(user))
            fills = raw if isinstance(raw, list) else []
        missing: list[OrderIntent] = []
        for intent in unseen:
            found = _from_fills(intent, fills)
            if found is None:
                missing.append(intent)
            else:
                results[intent.cloid] = found
        if not missing:
            return [], []
        positions = _parse_account(_check_garbled(info.user_state(user)), user).positions
        expected = dict(baseline)
        for intent in intents:
            result = results.get(intent.cloid)
            if result is not None and result.filled_size:
                signed = result.filled_size if intent.is_buy else -result.filled_size
                expected[intent.coin] = expected.get(intent.coin, 0.0) + signed
        fresh: list[OrderIntent] = []
        doubtful: list[OrderIntent] = []
        for intent in missing:
            now, then = positions.get(intent.coin, 0.0), expected.get(intent.coin, 0.0)
            (fresh if math.isclose(now, then, rel_tol=1e-9, abs_tol=1e-12) else doubtful).append(intent)
        return fresh, doubtful

    def find(self, intent: OrderIntent, fills: list[Any] | None = None) -> tuple[OrderResult, list[Any] | None] | None:
        """(OrderResult, the user's fills if fetched) for an order the exchange knows by cloid, None if
        it does not. Transport errors propagate (to the retry loop of the caller)."""
        from hyperliquid.utils.types import Cloid

        info = self._t.ensure()
        user = self._t.require_account()
        raw = _check_garbled(info.query_order_by_cloid(user, Cloid.from_str(intent.cloid)))
        state = _field(raw, "status", "orderStatus")
        if state == "unknownOid":
            return None
        if state != "order":
            raise ExchangeError(f"field orderStatus.status is {state!r}, expected 'order' or 'unknownOid'")
        wrapper = _field(raw, "order", "orderStatus")
        order = _field(wrapper, "order", "orderStatus.order")
        status = str(_field(wrapper, "status", "orderStatus.order"))
        where = "orderStatus.order.order"
        orig = _number(_field(order, "origSz", where), f"{where}.origSz")
        remaining = _number(_field(order, "sz", where), f"{where}.sz")
        oid = _integer(_field(order, "oid", where), f"{where}.oid")
        filled = max(orig - remaining, 0.0) if status != "filled" else orig
        avg_px = None
        if filled > 0:
            if fills is None:
                fills = _check_garbled(info.user_fills(user))
                fills = fills if isinstance(fills, list) else []
            avg_px = _vwap(fills, oid)
        if status == "open":
            result = OrderResult(intent.coin, intent.cloid, "resting", filled_size=filled, avg_px=avg_px, oid=oid)
        elif filled > 0:
            result = OrderResult(intent.coin, intent.cloid, "filled", filled_size=filled, avg_px=avg_px, oid=oid)
        else:
            result = OrderResult(intent.coin, intent.cloid, "rejected", oid=oid, error=f"order {status}")
        return result, fills


class OrderSender:
    """The order-sending part of :class:`~genetic_sizer.exchange.client.HyperliquidClient`: bulk IOC
    requests through ``transport``, positions read with ``reader``, lost requests settled with ``lookup``."""

    def __init__(self, transport: Transport, reader: InfoReader, lookup: OrderLookup):
        self._t = transport
        self._reader = reader
        self._lookup = lookup
        self._last_nonce_ms = 0
        self._expires_ms = 0
        self._on_request: Callable[[int, list[OrderIntent]], None] | None = None

    @property
    def last_expires_ms(self) -> int:
        """The ``expiresAfter`` (ms since the epoch) of the latest order request signed (0: none)."""
        return self._expires_ms

    def place_orders(
        self,
        intents: Sequence[OrderIntent],
        *,
        on_request: Callable[[int, list[OrderIntent]], None] | None = None,
    ) -> list[OrderResult]:
        """Send ``intents`` as ONE bulk request of IOC limit orders; one OrderResult per intent, in order.

        A per-order error (``statuses[i].error``, e.g. insufficient margin or under $10 notional) gives
        status "rejected" with the exchange's message; it does not raise. A whole-request refusal
        (``{"status": "err"}``) or HTTP 4xx raises ExchangeError.

        A transport failure (timeout, dropped connection, HTTP 5xx, garbled answer) leaves the request's
        outcome unknown: the exchange may have executed it, or may still. Every request therefore carries
        ``expiresAfter`` = send time + ``timeout`` + ``clock_tolerance`` (the exchange refuses it later
        than that), and after a failure the client, before anything is sent again:

        1. waits until that expiry + ``clock_tolerance`` has passed, so the lost request can no longer
           execute;
        2. looks every unconfirmed order up by cloid (orderStatus), then in the user's fills (by cloid);
        3. re-reads the positions and compares each coin's with its position before the first request
           plus the fills confirmed since.

        Only an order found nowhere whose coin's position has not moved is sent again (same cloid, new
        nonce and expiry). An order found nowhere whose coin's position did move is never resent: the
        client sends nothing, waits and looks again (lookups may trail the exchange). All of this is
        retried up to ``max_retries`` times with exponential backoff.

        The positions are read before the first request; when that answer carries the exchange's time, a
        clock more than ``clock_tolerance`` away from it raises ConfigError before anything is sent.

        What this relies on: the exchange honouring ``expiresAfter``, and an executed order showing up
        in orderStatus, the fills or the position by the time it is looked up. The exchange refusing a
        reused cloid is a further safeguard, not relied upon.

        ``on_request(expires_after_ms, intents)`` is called before every request goes on the wire, once its
        expiry is fixed (the live loop journals it, so that a restarted process knows how long a request
        of the killed one could still execute); an exception it raises stops the request from being sent.

        Raises RetryableExchangeError when the retries run out. Every ExchangeError raised here carries
        ``results`` (cloid -> OrderResult for every order whose outcome is known, including orders a
        lost request executed) and ``unknown`` (cloids whose outcome could not be established: the
        position moved but the exchange does not report the order, or the lookups failed)."""
        intents = list(intents)
        if not intents:
            return []
        self._t.require_account()
        for intent in intents:
            if not isinstance(intent, OrderIntent):
                raise TypeError(f"place_orders takes OrderIntent objects, got {type(intent).__name__}")
        cloids = [i.cloid for i in intents]
        if len(set(cloids)) != len(cloids):
            dup = next(c for c in cloids if cloids.count(c) > 1)
            raise ValueError(f"two orders share the cloid {dup}; every order needs its own")
        for intent in intents:
            self._t.coin(intent.coin)

        results: dict[str, OrderResult] = {}
        pending: list[OrderIntent] = []
        for intent in intents:
            problem = _unsendable(intent)
            if problem is None:
                pending.append(intent)
            else:
                results[intent.cloid] = OrderResult(intent.coin, intent.cloid, "rejected", error=problem)
        if not pending:
            return [results[i.cloid] for i in intents]
        try:
            baseline = self._baseline_positions()
        except ExchangeError as exc:  # nothing sent yet
            raise _with_results(exc, results) from exc.__cause__

        self._on_request = on_request
        try:
            return self._place(intents, pending, results, baseline)
        finally:
            self._on_request = None

    def _place(
        self,
        intents: list[OrderIntent],
        pending: list[OrderIntent],
        results: dict[str, OrderResult],
        baseline: dict[str, float],
    ) -> list[OrderResult]:
        from hyperliquid.utils.error import ClientError

        transport = _transport_errors()
        failures = 0
        in_doubt = False  # a request failed in transit: what it did is not known yet
        unknown: list[OrderIntent] = []
        deadline = 0.0
        last = "unknown failure"
        last_exc: BaseException | None = None
        while pending:
            if in_doubt:
                self._t.sleep(max(self._t.delay(failures, last_exc), deadline - time.time()))
                try:
                    fresh, doubtful = self._lookup.reconcile(intents, pending, results, baseline)
                except (*transport, ClientError) as exc:
                    if isinstance(exc, ClientError) and not _rate_limited(exc):
                        err = ExchangeError(f"looking orders up by cloid: {_describe(exc)}")
                        raise _with_results(err, results, pending) from None
                    last, last_exc, unknown = _describe(exc), exc, list(pending)
                    failures += 1
                    if failures > self._t.max_retries + 1:
                        break
                    continue
                except ExchangeError as exc:  # a malformed answer: what the lost request did stays unknown
                    raise _with_results(exc, results, [i for i in pending if i.cloid not in results]) from None
                pending = [i for i in pending if i in fresh or i in doubtful]
                if doubtful:
                    unknown = doubtful
                    coins = sorted({i.coin for i in doubtful})
                    last = f"the position in {', '.join(coins)} moved but the exchange does not report the order"
                    failures += 1
                    if failures > self._t.max_retries + 1:
                        break
                    continue
                in_doubt, unknown = False, []
                if not pending or failures > self._t.max_retries:
                    break
            try:
                response = _check_garbled(self._send_orders(pending))
            except (*transport, ClientError) as exc:
                if isinstance(exc, ClientError) and not _rate_limited(exc):
                    err = ExchangeError(f"order request refused: {_describe(exc)}")
                    raise _with_results(err, results) from None
                last, last_exc, unknown = _describe(exc), exc, list(pending)
                failures += 1
                in_doubt = True
                deadline = self._expires_ms / 1000 + self._t.clock_tolerance
                continue
            if isinstance(response, dict) and response.get("status") == "err":  # refused whole: nothing executed
                err = ExchangeError(f"the exchange refused the order request: {response.get('response')}")
                raise _with_results(err, results) from None
            try:
                statuses = _order_statuses(response, len(pending))
                for intent, status in zip(pending, statuses, strict=True):
                    result = _result_from_status(intent, status)
                    if result.status == "rejected" and "duplicate" in (result.error or "").lower():
                        # This cloid was placed before (an earlier call, or a request the lookup raced):
                        # report that order's outcome instead of a rejection.
                        known = self._t.retrying("orderStatus", lambda intent=intent: self._lookup.find(intent))
                        if known is not None:
                            result = known[0]
                    results[intent.cloid] = result
            except ExchangeError as exc:  # the request was processed but its answer is malformed: outcome unknown
                raise _with_results(exc, results, [i for i in pending if i.cloid not in results]) from None
            pending = []
        pending = [i for i in pending if i.cloid not in results]  # a lookup may have settled some
        unknown = [i for i in unknown if i.cloid not in results]
        if pending:
            text = (
                f"placing {len(intents)} orders at {self._t.base_url}: {last}; gave up after {failures} failed "
                f"attempts; {len(results)} of {len(intents)} orders have a known outcome"
            )
            if unknown:
                text += f"; outcome UNKNOWN for {', '.join(i.coin for i in unknown)} (not sent again)"
            unsent = [i for i in pending if i not in unknown]
            if unsent:
                text += f"; never executed, not sent again: {', '.join(i.coin for i in unsent)}"
            err = RetryableExchangeError(text)
            err.retry_after = _retry_after(last_exc)
            raise _with_results(err, results, unknown)
        return [results[i.cloid] for i in intents]

    def set_leverage(self, coin: str, leverage: int, *, cross: bool = True) -> None:
        """Set ``coin``'s margin mode (cross, or isolated with ``cross`` False) and leverage (an integer >= 1) on the
        account (the SDK's ``update_leverage``, one signed ``updateLeverage`` action).

        Setting a value is idempotent, so transport failures and HTTP 429 are retried (with the backoff of every
        request; the action carries an expiry like an order request). A refusal (``{"status": "err"}``, e.g. a
        leverage above the coin's maximum, or a margin mode the open position does not allow) raises ExchangeError
        naming the coin; RetryableExchangeError when the retries run out."""
        from hyperliquid.utils.error import ClientError

        if isinstance(leverage, bool) or not isinstance(leverage, int) or leverage < 1:
            raise ConfigError(
                f"leverage must be an integer >= 1 (updateLeverage takes whole numbers), got {leverage!r}"
            )
        self._t.require_account()
        self._t.coin(coin)
        self._baseline_positions()  # the clocks agree (the action carries an expiry like an order)
        mode = "cross" if cross else "isolated"
        transport = _transport_errors()
        last: BaseException | None = None
        for attempt in range(self._t.max_retries + 1):
            if attempt:
                self._t.sleep(self._t.delay(attempt, last))
            while int(time.time() * 1000) <= self._last_nonce_ms:
                time.sleep(0.001)
            self._t.exchange.set_expires_after(int((time.time() + self._t.timeout + self._t.clock_tolerance) * 1000))
            try:
                response = _check_garbled(self._t.exchange.update_leverage(leverage, coin, cross))
            except (*transport, ClientError) as exc:
                if isinstance(exc, ClientError) and not _rate_limited(exc):
                    raise ExchangeError(f"setting {coin} to {mode} margin at {leverage}x: {_describe(exc)}") from None
                last = exc
                continue
            finally:
                self._last_nonce_ms = int(time.time() * 1000)
            if not isinstance(response, dict) or response.get("status") != "ok":
                why = response.get("response") if isinstance(response, dict) else response
                raise ExchangeError(f"the exchange refused {mode} margin at {leverage}x for {coin}: {why}")
            return
        err = RetryableExchangeError(
            f"setting {coin} to {mode} margin at {leverage}x at {self._t.base_url}: {_describe(last)}; gave up after "
            f"{self._t.max_retries + 1} attempts"
        )
        err.retry_after = _retry_after(last)
        raise err from last

    def _baseline_positions(self) -> dict[str, float]:
        """The positions before an order request (what a lost request is measured against); checks that
        this machine's clock agrees with the exchange's within ``clock_tolerance``."""
        before = time.time()
        state = self._reader.account()
        after = time.time()
        if state.time_ms is not None:
            skew = state.time_ms / 1000 - (before + after) / 2
            if abs(skew) > self._t.clock_tolerance + (after - before) / 2:
                raise ConfigError(
                    f"this machine's clock is {abs(skew):.1f} s {'behind' if skew > 0 else 'ahead of'} the "
                    f"exchange's (clock_tolerance {self._t.clock_tolerance:g} s); synchronize it (NTP) before "
                    "trading: order retries rely on it to know when a lost request can no longer execute"
                )
        return dict(state.positions)

    def _send_orders(self, pending: list[OrderIntent]) -> Any:
        from hyperliquid.utils.types import Cloid

        requests_ = [
            {
                "coin": i.coin,
                "is_buy": i.is_buy,
                "sz": i.size,
                "limit_px": i.limit_px,
                "order_type": {"limit": {"tif": "Ioc"}},
                "reduce_only": i.reduce_only,
                "cloid": Cloid.from_str(i.cloid),
            }
            for i in pending
        ]
        # Nonces are millisecond timestamps per signer: never sign two actions in the same millisecond.
        while int(time.time() * 1000) <= self._last_nonce_ms:
            time.sleep(0.001)
        # The exchange refuses the request after this time: one that is lost in transit cannot execute later.
        self._expires_ms = int((time.time() + self._t.timeout + self._t.clock_tolerance) * 1000)
        if self._on_request is not None:
            self._on_request(self._expires_ms, list(pending))
        self._t.exchange.set_expires_after(self._expires_ms)
        try:
            return self._t.exchange.bulk_orders(requests_)
        finally:
            self._last_nonce_ms = int(time.time() * 1000)


def _with_results(
    err: ExchangeError, results: dict[str, OrderResult], unknown: Sequence[OrderIntent] = ()
) -> ExchangeError:
    err.results = dict(results)  # type: ignore[attr-defined]
    err.unknown = [i.cloid for i in unknown]  # type: ignore[attr-defined]
    return err


def _unsendable(intent: OrderIntent) -> str | None:
    """Why the SDK could not put this order on the wire exactly (it allows 8 decimals at most)."""
    from hyperliquid.utils.signing import float_to_wire

    for name, value in (("size", intent.size), ("price", intent.limit_px)):
        try:
            float_to_wire(value)
        except ValueError:
            return f"{name} {value!r} has more than 8 decimals; round it first (round_size / round_price)"
    return None
