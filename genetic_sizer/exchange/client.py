"""Hyperliquid access through one object, :class:`HyperliquidClient`, and the API URLs of the networks.

The ``genetic_sizer.exchange`` package is the only one that imports the Hyperliquid SDK
(``hyperliquid-python-sdk``), and it does so lazily inside functions, so ``import genetic_sizer.exchange.client``
stays cheap. The client is made of parts sharing one :class:`~genetic_sizer.exchange.transport.Transport`
(settings, SDK objects, read retries): :class:`~genetic_sizer.exchange.info.InfoReader` (reads) and
:class:`~genetic_sizer.exchange.orders.OrderLookup` / :class:`~genetic_sizer.exchange.orders.OrderSender`
(orders, never duplicated). Credentials are loaded by :mod:`genetic_sizer.exchange.credentials`, answers
parsed into the records of :mod:`genetic_sizer.exchange.wire`, and sizes and prices rounded by
:mod:`genetic_sizer.exchange.rounding`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from genetic_sizer.errors import ConfigError, ExchangeError
from genetic_sizer.exchange.credentials import Credentials
from genetic_sizer.exchange.history import Fill, HistoryReader, LedgerFlow, OpenOrder
from genetic_sizer.exchange.info import InfoReader
from genetic_sizer.exchange.orders import OrderLookup, OrderSender
from genetic_sizer.exchange.roles import Role, Routing, route_orders
from genetic_sizer.exchange.transport import DEFAULT_CLOCK_TOLERANCE, Transport
from genetic_sizer.exchange.wire import AccountState, AssetContext, AssetMeta, OrderIntent, OrderResult

__all__ = [
    "DEFAULT_CLOCK_TOLERANCE",
    "MAINNET_API_URL",
    "NETWORKS",
    "TESTNET_API_URL",
    "HyperliquidClient",
    "is_mainnet",
    "resolve_base_url",
]

# Same values as hyperliquid.utils.constants (checked by a test); copied so that importing this
# module does not import the SDK.
MAINNET_API_URL = "https://api.hyperliquid.xyz"
TESTNET_API_URL = "https://api.hyperliquid-testnet.xyz"
NETWORKS: dict[str, str] = {"mainnet": MAINNET_API_URL, "testnet": TESTNET_API_URL}


# ---------------------------------------------------------------------------------------------- networks
def resolve_base_url(network: str = "testnet", base_url: str | None = None) -> str:
    """The API base URL: ``base_url`` when given (trailing slashes removed), else the URL of ``network``
    ("mainnet" or "testnet"). An unknown network raises ConfigError naming it."""
    if base_url is not None:
        url = str(base_url).strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must be an http(s) URL, got {base_url!r}")
        return url
    try:
        return NETWORKS[network]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown network {network!r}; choose one of {sorted(NETWORKS)}") from None


def is_mainnet(url: str) -> bool:
    """True only for the exact mainnet URL (the SDK signs for mainnet only then)."""
    return url == MAINNET_API_URL


class HyperliquidClient:
    """Typed, retrying access to one Hyperliquid API (``base_url``) through the official SDK.

    Reads (meta, mids, account, candles, funding) are retried on transport failures; orders need
    ``credentials`` and are retried without ever duplicating an order (see :meth:`place_orders`).
    The SDK objects are built on first use (two requests: ``meta`` and ``spotMeta``).

    Errors: :class:`RetryableExchangeError` when transport failures outlast ``max_retries`` retries,
    :class:`ExchangeError` for refused requests (``{"status": "err"}``, HTTP 4xx) and malformed answers.

    ``clock_tolerance`` (seconds) is the largest difference between this machine's clock and the
    exchange's that order placement accepts (default :data:`DEFAULT_CLOCK_TOLERANCE`, 15 s); it also pads every
    order request's expiry and the wait after a lost request (see :meth:`place_orders`).

    Retries back off exponentially with jitter: the n-th wait is drawn uniformly from
    [d/2, d] with d = ``backoff`` x 2^(n-1) (at most 30 s), and is at least the Retry-After an HTTP 429
    asked for (up to :data:`~genetic_sizer.exchange.retry.MAX_RETRY_AFTER`). ``rng`` (a ``random.Random``)
    makes the jitter reproducible.
    """

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.2,
        clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self._transport = Transport(
            base_url,
            credentials=credentials,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            clock_tolerance=clock_tolerance,
            sleep=sleep,
            rng=rng,
        )
        self._reader = InfoReader(self._transport)
        self._history = HistoryReader(self._transport)
        self._lookup = OrderLookup(self._transport)
        self._sender = OrderSender(self._transport, self._reader, self._lookup)
        self._routing: Routing | None = None

    # ------------------------------------------------------------------ settings (read-only)
    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def credentials(self) -> Credentials | None:
        return self._transport.credentials

    @property
    def timeout(self) -> float:
        return self._transport.timeout

    @property
    def max_retries(self) -> int:
        return self._transport.max_retries

    @property
    def backoff(self) -> float:
        return self._transport.backoff

    @property
    def clock_tolerance(self) -> float:
        return self._transport.clock_tolerance

    def __repr__(self) -> str:
        who = self.credentials.account_address if self.credentials else None
        return f"HyperliquidClient({self.base_url!r}, account={who!r})"

    @property
    def is_mainnet(self) -> bool:
        return is_mainnet(self.base_url)

    @property
    def address(self) -> str | None:
        """The traded account's address (None without credentials)."""
        return self.credentials.account_address if self.credentials else None

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> HyperliquidClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing
    @property
    def request_lifetime(self) -> float:
        """Seconds after which an order request sent now can no longer execute, as this machine's clock
        sees it: the request's own validity (``timeout`` + ``clock_tolerance``) plus ``clock_tolerance``."""
        return self.timeout + 2 * self.clock_tolerance

    @property
    def last_expires_ms(self) -> int:
        """The ``expiresAfter`` (ms since the epoch) of the latest order request this client signed (0: none)."""
        return self._sender.last_expires_ms

    # ------------------------------------------------------------------ reads
    def meta(self) -> dict[str, AssetMeta]:
        """The perpetual universe: name -> AssetMeta (delisted assets included, flagged)."""
        return self._reader.meta()

    def meta_document(self) -> dict:
        """The ``meta`` answer as the exchange sent it (universe, marginTables), checked (see
        :meth:`genetic_sizer.exchange.info.InfoReader.meta_document`)."""
        return self._reader.meta_document()

    def mids(self) -> dict[str, float]:
        """Mid prices of every traded coin (coin -> price)."""
        return self._reader.mids()

    def account(self, address: str | None = None) -> AccountState:
        """Margin summary and positions of ``address`` (default: the credentials' account)."""
        return self._reader.account(address)

    def asset_contexts(self) -> dict[str, AssetContext]:
        """Mark and oracle prices (and the book's mid when there is one) of every perpetual
        (``metaAndAssetCtxs``): coin -> :class:`~genetic_sizer.exchange.wire.AssetContext`."""
        return self._reader.asset_contexts()

    def candles(
        self,
        coin: str,
        interval: str,
        start_ms: int,
        end_ms: int,
        *,
        on_page: Callable[[int, int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Every candle with open time ``t`` in [start_ms, end_ms], ascending, each exactly once (paged; see
        :meth:`genetic_sizer.exchange.info.InfoReader.candles`)."""
        return self._reader.candles(coin, interval, start_ms, end_ms, on_page=on_page)

    def funding(
        self,
        coin: str,
        start_ms: int,
        end_ms: int,
        *,
        on_page: Callable[[int, int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Funding rows {coin, fundingRate, premium, time} with time in [start_ms, end_ms], ascending (paged;
        see :meth:`genetic_sizer.exchange.info.InfoReader.funding`)."""
        return self._reader.funding(coin, start_ms, end_ms, on_page=on_page)

    # ------------------------------------------------------------------ the account's identity and history
    def user_role(self, address: str) -> Role:
        """What the exchange says ``address`` is (``userRole``): user, agent (with its master), vault,
        subAccount (with its master) or missing."""
        return self._history.user_role(address)

    def route_orders(self) -> Routing:
        """Where this client's orders land, from the exchange's ``userRole`` answers (asked once, then kept):
        the credentials' account (``HL_ACCOUNT_ADDRESS``, else the key's own), with ``vaultAddress`` set on every
        action when that account is a sub-account or vault of the account the key acts for. ConfigError when
        orders signed by the key cannot land there (see :func:`~genetic_sizer.exchange.roles.route_orders`).
        :meth:`place_orders` asks this before its first order."""
        if self._routing is None:
            creds = self._transport.require_credentials()
            routing = route_orders(self.user_role, creds.signer_address, creds.account_address)
            self._transport.vault_address = routing.vault_address
            if self._transport.exchange is not None:
                self._transport.exchange.vault_address = routing.vault_address
            self._routing = routing
        return self._routing

    def fills(self, address: str | None = None) -> list[Fill]:
        """The account's most recent fills (at most 2000, newest first; default: the credentials' account)."""
        return self._history.fills(address)

    def open_orders(self, address: str | None = None) -> list[OpenOrder]:
        """The account's resting orders with their client order ids."""
        return self._history.open_orders(address)

    def ledger(self, start_ms: int, end_ms: int | None = None, address: str | None = None) -> list[LedgerFlow]:
        """Deposits, withdrawals and transfers since ``start_ms``, oldest first (``userNonFundingLedgerUpdates``)."""
        return self._history.ledger(start_ms, end_ms, address)

    def value_history(self, address: str | None = None) -> list[tuple[int, float]]:
        """The account values the exchange recorded (``portfolio``), as (ms, value), oldest first."""
        return self._history.value_history(address)

    # ------------------------------------------------------------------ orders
    def lookup_orders(self, intents: Sequence[OrderIntent]) -> dict[str, OrderResult]:
        """What the exchange knows of these orders, by cloid: cloid -> OrderResult for every order it reports
        (see :meth:`genetic_sizer.exchange.orders.OrderLookup.lookup_orders`)."""
        return self._lookup.lookup_orders(intents)

    def set_leverage(self, coin: str, leverage: int, *, cross: bool = True) -> None:
        """Set ``coin``'s margin mode (cross unless ``cross`` is False) and integer leverage on the traded account
        (see :meth:`genetic_sizer.exchange.orders.OrderSender.set_leverage`); like an order, only once
        :meth:`route_orders` says where the action lands."""
        self.route_orders()
        self._sender.set_leverage(coin, leverage, cross=cross)

    def place_orders(
        self,
        intents: Sequence[OrderIntent],
        *,
        on_request: Callable[[int, list[OrderIntent]], None] | None = None,
    ) -> list[OrderResult]:
        """Send ``intents`` as ONE bulk request of IOC limit orders; one OrderResult per intent, in order.

        Lost requests are retried without ever duplicating an order. What this guarantees, what it relies
        on, ``on_request`` and the errors raised: see
        :meth:`genetic_sizer.exchange.orders.OrderSender.place_orders`. Before the first order, where orders land
        is asked of the exchange (:meth:`route_orders`): nothing is sent unless that is the credentials' account."""
        if intents:
            try:
                self.route_orders()
            except ExchangeError as exc:  # nothing was sent
                exc.results, exc.unknown = {}, []  # type: ignore[attr-defined]
                raise
        return self._sender.place_orders(intents, on_request=on_request)
