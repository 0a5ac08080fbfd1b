"""An account's history and identity, read through the SDK and typed: its role (``userRole``), its fills
(``userFills``), its resting orders with their client order ids (``frontendOpenOrders``), its deposits,
withdrawals and transfers (``userNonFundingLedgerUpdates``) and its account-value history (``portfolio``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from genetic_sizer.errors import ExchangeError
from genetic_sizer.exchange.roles import Role, parse_role
from genetic_sizer.exchange.transport import Transport
from genetic_sizer.exchange.wire import _field, _integer, _list, _number

__all__ = ["Fill", "HistoryReader", "LedgerFlow", "OpenOrder", "ledger_flow"]


@dataclass(frozen=True)
class Fill:
    """One fill of the account (``userFills``): ``size`` > 0, ``is_buy`` its side, ``cloid`` None when the order
    carried none."""

    coin: str
    is_buy: bool
    size: float
    px: float
    time_ms: int
    oid: int | None = None
    cloid: str | None = None

    @property
    def signed(self) -> float:
        return self.size if self.is_buy else -self.size


@dataclass(frozen=True)
class OpenOrder:
    """A resting order of the account (``frontendOpenOrders``)."""

    coin: str
    is_buy: bool
    size: float
    oid: int
    time_ms: int
    cloid: str | None = None


@dataclass(frozen=True)
class LedgerFlow:
    """Money that entered (``usd`` > 0) or left (< 0) the account at ``time_ms``: a deposit, withdrawal or transfer
    (``kind``: the ledger's delta type)."""

    time_ms: int
    kind: str
    usd: float


def _cloid(raw: Any) -> str | None:
    return str(raw).lower() if isinstance(raw, str) and raw else None


def _usd(delta: Mapping, *keys: str) -> float:
    for key in keys:
        if delta.get(key) is not None:
            return _number(delta[key], f"userNonFundingLedgerUpdates.delta.{key}")
    return 0.0


def ledger_flow(delta: Any, user: str) -> tuple[str, float] | None:
    """(kind, signed USD into ``user``'s account) of one ``userNonFundingLedgerUpdates`` delta, or None when it
    moves no money in or out (a liquidation, a funding-free internal event, a spot token that is not USDC).

    deposit +usdc; withdraw -(usdc + fee); accountClassTransfer +usdc to perp, -usdc from it; internalTransfer,
    subAccountTransfer, send, spotTransfer (USDC only): +usdc to ``user``, -(usdc + fee) from it; vaultDeposit -usdc
    (into a vault) and vaultWithdraw +netWithdrawnUsd, or the reverse for the vault itself."""
    if not isinstance(delta, Mapping) or not isinstance(delta.get("type"), str):
        raise ExchangeError(f"field userNonFundingLedgerUpdates.delta.type is missing: {delta!r}")
    kind = delta["type"]
    me = user.lower()
    if kind == "deposit":
        return kind, _usd(delta, "usdc")
    if kind == "withdraw":
        return kind, -(_usd(delta, "usdc") + _usd(delta, "fee"))
    if kind == "accountClassTransfer":
        amount = _usd(delta, "usdc")
        return kind, amount if delta.get("toPerp") else -amount
    if kind in ("internalTransfer", "subAccountTransfer", "send", "spotTransfer"):
        token = delta.get("token")
        if kind in ("send", "spotTransfer") and token not in (None, "USDC"):
            return None
        amount = _usd(delta, "usdc", "usdcValue", "amount")
        source, destination = str(delta.get("user") or "").lower(), str(delta.get("destination") or "").lower()
        if destination == me and source != me:
            return kind, amount
        if source == me and destination != me:
            return kind, -(amount + _usd(delta, "fee"))
        return None
    if kind in ("vaultDeposit", "vaultCreate"):
        amount = _usd(delta, "usdc")
        return kind, amount if str(delta.get("vault") or "").lower() == me else -amount
    if kind in ("vaultWithdraw", "vaultDistribution"):
        amount = _usd(delta, "netWithdrawnUsd", "usdc")
        return kind, -amount if str(delta.get("vault") or "").lower() == me else amount
    return None


class HistoryReader:
    """The history part of :class:`~genetic_sizer.exchange.client.HyperliquidClient`: every read goes through
    ``transport`` (retried on transport failures)."""

    def __init__(self, transport: Transport):
        self._t = transport

    def _user(self, address: str | None) -> str:
        return address if address is not None else self._t.require_account()

    def user_role(self, address: str) -> Role:
        info = self._t.ensure()
        raw = self._t.retrying("userRole", lambda: info.user_role(address))
        return parse_role(raw, address)

    def fills(self, address: str | None = None) -> list[Fill]:
        """The account's most recent fills (the exchange answers at most 2000), newest first."""
        info = self._t.ensure()
        user = self._user(address)
        raw = _list(self._t.retrying("userFills", lambda: info.user_fills(user)), "userFills")
        out = []
        for k, f in enumerate(raw):
            where = f"userFills[{k}]"
            side = _field(f, "side", where)
            oid = f.get("oid")
            out.append(
                Fill(
                    coin=str(_field(f, "coin", where)),
                    is_buy=side == "B",
                    size=_number(_field(f, "sz", where), f"{where}.sz"),
                    px=_number(_field(f, "px", where), f"{where}.px"),
                    time_ms=_integer(_field(f, "time", where), f"{where}.time"),
                    oid=_integer(oid, f"{where}.oid") if oid is not None else None,
                    cloid=_cloid(f.get("cloid")),
                )
            )
        return out

    def open_orders(self, address: str | None = None) -> list[OpenOrder]:
        """The account's resting orders, with their client order ids (``frontendOpenOrders``)."""
        info = self._t.ensure()
        user = self._user(address)
        raw = _list(self._t.retrying("frontendOpenOrders", lambda: info.frontend_open_orders(user)), "openOrders")
        out = []
        for k, o in enumerate(raw):
            where = f"frontendOpenOrders[{k}]"
            out.append(
                OpenOrder(
                    coin=str(_field(o, "coin", where)),
                    is_buy=_field(o, "side", where) == "B",
                    size=_number(_field(o, "sz", where), f"{where}.sz"),
                    oid=_integer(_field(o, "oid", where), f"{where}.oid"),
                    time_ms=_integer(_field(o, "timestamp", where), f"{where}.timestamp"),
                    cloid=_cloid(o.get("cloid")),
                )
            )
        return out

    def ledger(self, start_ms: int, end_ms: int | None = None, address: str | None = None) -> list[LedgerFlow]:
        """Deposits, withdrawals and transfers of the account since ``start_ms`` (ms), oldest first: the moves of
        ``userNonFundingLedgerUpdates`` that bring money in or take it out (see :func:`ledger_flow`)."""
        info = self._t.ensure()
        user = self._user(address)
        raw = _list(
            self._t.retrying(
                "userNonFundingLedgerUpdates", lambda: info.user_non_funding_ledger_updates(user, start_ms, end_ms)
            ),
            "userNonFundingLedgerUpdates",
        )
        out = []
        for k, row in enumerate(raw):
            where = f"userNonFundingLedgerUpdates[{k}]"
            flow = ledger_flow(_field(row, "delta", where), user)
            if flow is not None:
                out.append(LedgerFlow(_integer(_field(row, "time", where), f"{where}.time"), flow[0], flow[1]))
        return sorted(out, key=lambda f: f.time_ms)

    def value_history(self, address: str | None = None) -> list[tuple[int, float]]:
        """The account values the exchange recorded (``portfolio``: its day, week, month and all-time series
        merged), as (ms, value), oldest first."""
        info = self._t.ensure()
        user = self._user(address)
        raw = _list(self._t.retrying("portfolio", lambda: info.portfolio(user)), "portfolio")
        points: dict[int, float] = {}
        for k, entry in enumerate(raw):
            if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[1], Mapping):
                raise ExchangeError(f"portfolio[{k}] must be [period, {{...}}], got {entry!r}")
            if str(entry[0]).startswith("perp"):
                continue  # the perp-only series repeat the account's
            history = _list(entry[1].get("accountValueHistory", []), f"portfolio[{k}].accountValueHistory")
            for j, point in enumerate(history):
                where = f"portfolio[{k}].accountValueHistory[{j}]"
                if not isinstance(point, list) or len(point) != 2:
                    raise ExchangeError(f"{where} must be [time, value], got {point!r}")
                points[_integer(point[0], where)] = _number(point[1], where)
        return sorted(points.items())
