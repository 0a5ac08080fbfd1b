"""Hyperliquid's records, typed: what the exchange's answers are parsed into and what orders are made of.

The API sends every number as a string; the ``_parse_*`` helpers convert and validate each answer, and a
missing or non-finite field raises :class:`~genetic_sizer.errors.ExchangeError` naming the field.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from genetic_sizer.errors import ExchangeError
from genetic_sizer.exchange.rounding import finite_positive as _finite_positive

__all__ = [
    "AccountState",
    "AssetContext",
    "AssetInfo",
    "AssetMeta",
    "OrderIntent",
    "OrderResult",
    "make_cloid",
]

_CLOID_RE = re.compile(r"0x[0-9a-f]{32}")


# ---------------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class AssetInfo:
    """What the sizer needs to know of a perpetual (the exchange adapter's metadata has the same fields)."""

    name: str
    sz_decimals: int
    max_leverage: float
    delisted: bool = False


@dataclass(frozen=True)
class AssetMeta(AssetInfo):
    """One perpetual of the exchange's universe: what the sizer needs (:class:`AssetInfo`) plus ``index``,
    the asset id used in orders."""

    index: int = -1


@dataclass(frozen=True)
class AccountState:
    """Margin summary and open positions (coin -> signed size; shorts negative; zero sizes omitted).

    ``time_ms`` is the exchange's clock when it answered (None if the answer has no ``time``)."""

    address: str
    account_value: float
    withdrawable: float
    positions: dict[str, float] = field(default_factory=dict)
    time_ms: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class AssetContext:
    """The exchange's reference prices of one perpetual (metaAndAssetCtxs): mark and oracle price, and the
    mid when the book has one (None otherwise)."""

    coin: str
    mark_px: float
    oracle_px: float
    mid_px: float | None = None


def make_cloid(seed_text: str) -> str:
    """A deterministic client order id ("0x" + 32 hex digits) from ``seed_text``.

    The same seed always gives the same id, so a retried order reuses it and can be looked up by it.
    Put a rebalance identifier in the seed (e.g. ``f"{run_id}:{coin}"``): Hyperliquid is expected to
    refuse a cloid it has already seen (a safeguard
    :meth:`~genetic_sizer.exchange.client.HyperliquidClient.place_orders` does not rely on), and lookups
    by cloid must find this rebalance's order, not an older one."""
    return "0x" + hashlib.sha256(seed_text.encode("utf-8")).hexdigest()[:32]


def _random_cloid() -> str:
    return "0x" + secrets.token_hex(16)


@dataclass(frozen=True)
class OrderIntent:
    """One IOC limit order to send. ``size`` > 0 in coins and ``limit_px`` > 0 should already be rounded
    (:func:`~genetic_sizer.exchange.rounding.round_size`,
    :func:`~genetic_sizer.exchange.rounding.limit_price`); ``cloid`` defaults to a random id."""

    coin: str
    is_buy: bool
    size: float
    limit_px: float
    reduce_only: bool = False
    cloid: str = field(default_factory=_random_cloid)

    def __post_init__(self) -> None:
        if not isinstance(self.coin, str) or not self.coin:
            raise ValueError(f"OrderIntent.coin must be a non-empty string, got {self.coin!r}")
        object.__setattr__(self, "size", _finite_positive(self.size, f"OrderIntent({self.coin}).size"))
        object.__setattr__(self, "limit_px", _finite_positive(self.limit_px, f"OrderIntent({self.coin}).limit_px"))
        cloid = self.cloid.lower() if isinstance(self.cloid, str) else self.cloid
        if not isinstance(cloid, str) or not _CLOID_RE.fullmatch(cloid):
            raise ValueError(f"OrderIntent({self.coin}).cloid must be '0x' + 32 hex digits, got {self.cloid!r}")
        object.__setattr__(self, "cloid", cloid)


OrderStatus = Literal["filled", "resting", "rejected"]


@dataclass(frozen=True)
class OrderResult:
    """What became of one :class:`OrderIntent`. ``filled`` may be partial (IOC): compare ``filled_size``
    with the intent's size. ``rejected`` carries the exchange's message in ``error``; ``avg_px`` is None
    when nothing filled or the fill price could not be recovered."""

    coin: str
    cloid: str
    status: OrderStatus
    filled_size: float = 0.0
    avg_px: float | None = None
    oid: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "rejected"


# ---------------------------------------------------------------------------------------------- parsing
_MISSING = object()


def _field(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise ExchangeError(f"{where} must be an object, got {type(mapping).__name__}")
    value = mapping.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise ExchangeError(f"field {where}.{key} is missing in the exchange's answer")
    return value


def _number(value: Any, name: str) -> float:
    if value is None:
        raise ExchangeError(f"field {name} is missing in the exchange's answer")
    if isinstance(value, bool):
        raise ExchangeError(f"field {name} is not a number: {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ExchangeError(f"field {name} is not a number: {value!r}") from None
    if not math.isfinite(x):
        raise ExchangeError(f"field {name} is not finite: {value!r}")
    return x


def _integer(value: Any, name: str) -> int:
    x = _number(value, name)
    if x != int(x):
        raise ExchangeError(f"field {name} is not an integer: {value!r}")
    return int(x)


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ExchangeError(f"field {name} must be a list, got {type(value).__name__}")
    return value


def _parse_meta(raw: Any) -> dict[str, AssetMeta]:
    universe = _list(_field(raw, "universe", "meta"), "meta.universe")
    out: dict[str, AssetMeta] = {}
    for index, entry in enumerate(universe):
        where = f"meta.universe[{index}]"
        name = _field(entry, "name", where)
        if not isinstance(name, str) or not name:
            raise ExchangeError(f"field {where}.name is not a name: {name!r}")
        out[name] = AssetMeta(
            name=name,
            index=index,
            sz_decimals=_integer(_field(entry, "szDecimals", where), f"{where}.szDecimals"),
            max_leverage=_integer(_field(entry, "maxLeverage", where), f"{where}.maxLeverage"),
            delisted=bool(entry.get("isDelisted", False)),
        )
    return out


def _parse_account(raw: Any, user: str) -> AccountState:
    summary = _field(raw, "marginSummary", "clearinghouseState")
    positions: dict[str, float] = {}
    entries = _list(_field(raw, "assetPositions", "clearinghouseState"), "clearinghouseState.assetPositions")
    for k, entry in enumerate(entries):
        where = f"clearinghouseState.assetPositions[{k}]"
        pos = _field(entry, "position", where)
        coin = str(_field(pos, "coin", f"{where}.position"))
        szi = _number(_field(pos, "szi", f"{where}.position"), f"{where}.position.szi")
        if szi != 0.0:
            positions[coin] = positions.get(coin, 0.0) + szi
    stamp = raw.get("time")
    return AccountState(
        address=user,
        account_value=_number(
            _field(summary, "accountValue", "clearinghouseState.marginSummary"),
            "clearinghouseState.marginSummary.accountValue",
        ),
        withdrawable=_number(_field(raw, "withdrawable", "clearinghouseState"), "clearinghouseState.withdrawable"),
        positions=positions,
        time_ms=_integer(stamp, "clearinghouseState.time") if stamp is not None else None,
    )


def _parse_candle(raw: Any, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("t", "T", "n"):
        out[key] = _integer(_field(raw, key, where), f"{where}.{key}")
    for key in ("o", "h", "l", "c", "v"):
        out[key] = _number(_field(raw, key, where), f"{where}.{key}")
    out["s"] = str(raw.get("s", ""))
    out["i"] = str(raw.get("i", ""))
    return out


def _parse_funding(raw: Any, where: str) -> dict[str, Any]:
    return {
        "coin": str(_field(raw, "coin", where)),
        "fundingRate": _number(_field(raw, "fundingRate", where), f"{where}.fundingRate"),
        "premium": _number(_field(raw, "premium", where), f"{where}.premium"),
        "time": _integer(_field(raw, "time", where), f"{where}.time"),
    }


# ---------------------------------------------------------------------------------------------- order answers
def _order_statuses(response: Any, n: int) -> list[Any]:
    if not isinstance(response, dict):
        raise ExchangeError(f"order answer must be an object, got {type(response).__name__}")
    status = response.get("status")
    if status == "err":
        raise ExchangeError(f"the exchange refused the order request: {response.get('response')}")
    if status != "ok":
        raise ExchangeError(f"field status of the order answer is {status!r}, expected 'ok'")
    body = _field(response, "response", "order answer")
    data = _field(body, "data", "order answer.response")
    statuses = _list(_field(data, "statuses", "order answer.response.data"), "order answer statuses")
    if len(statuses) != n:
        raise ExchangeError(f"the exchange answered {len(statuses)} order statuses for {n} orders")
    return statuses


def _result_from_status(intent: OrderIntent, status: Any) -> OrderResult:
    where = f"statuses[{intent.coin}]"
    if not isinstance(status, dict):
        raise ExchangeError(f"{where} must be an object, got {status!r}")
    if "error" in status:
        return OrderResult(intent.coin, intent.cloid, "rejected", error=str(status["error"]))
    if "filled" in status:
        filled = status["filled"]
        return OrderResult(
            intent.coin,
            intent.cloid,
            "filled",
            filled_size=_number(_field(filled, "totalSz", f"{where}.filled"), f"{where}.filled.totalSz"),
            avg_px=_number(_field(filled, "avgPx", f"{where}.filled"), f"{where}.filled.avgPx"),
            oid=_integer(_field(filled, "oid", f"{where}.filled"), f"{where}.filled.oid"),
        )
    if "resting" in status:
        resting = status["resting"]
        return OrderResult(
            intent.coin,
            intent.cloid,
            "resting",
            oid=_integer(_field(resting, "oid", f"{where}.resting"), f"{where}.resting.oid"),
        )
    raise ExchangeError(f"{where} has no filled/resting/error entry: {status!r}")


def _from_fills(intent: OrderIntent, fills: list[Any]) -> OrderResult | None:
    mine = [f for f in fills if isinstance(f, dict) and str(f.get("cloid") or "").lower() == intent.cloid]
    if not mine:
        return None
    sizes = [_number(f.get("sz"), "userFills.sz") for f in mine]
    prices = [_number(f.get("px"), "userFills.px") for f in mine]
    size = sum(sizes)
    oid = mine[0].get("oid")
    return OrderResult(
        intent.coin,
        intent.cloid,
        "filled",
        filled_size=size,
        avg_px=sum(p * q for p, q in zip(prices, sizes, strict=True)) / size if size > 0 else None,
        oid=_integer(oid, "userFills.oid") if oid is not None else None,
    )


def _vwap(fills: list[Any], oid: int) -> float | None:
    notional = size = 0.0
    for f in fills:
        if isinstance(f, dict) and f.get("oid") == oid:
            px = _number(f.get("px"), "userFills.px")
            sz = _number(f.get("sz"), "userFills.sz")
            notional += px * sz
            size += sz
    return notional / size if size > 0 else None
