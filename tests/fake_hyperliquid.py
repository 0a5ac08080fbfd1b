"""A fake Hyperliquid HTTP API for tests: ``POST /info`` and ``POST /exchange`` on 127.0.0.1.

The server runs ``http.server.ThreadingHTTPServer`` on an ephemeral port in a daemon thread and is
driven by the real SDK classes (``Info``/``Exchange``) pointed at ``FakeHyperliquid.url``. State and
fault-injection knobs are plain attributes (or small methods) that tests set before the call::

    with FakeHyperliquid(account_address=user, agents=[agent]) as fake:
        fake.mids["BTC"] = 60000.0
        fake.reject_coins["ETH"] = "Insufficient margin to place order."
        client = HyperliquidClient(fake.url, credentials=creds)

Every ``/exchange`` request is verified with the SDK's ``recover_agent_or_user_from_l1_action``: the
signer must be the simulated account itself or one of its registered API wallets (``agents``).
Numbers are answered as strings, like the real API. Only one trading account is simulated; other
addresses can be given read-only state (``other_accounts``) and any other address is an empty account.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from genetic_sizer.vocab import INTERVAL_MS

ZERO_ADDRESS = "0x" + "0" * 40

DEFAULT_UNIVERSE: list[dict[str, Any]] = [
    {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
    {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
    {"name": "SOL", "szDecimals": 2, "maxLeverage": 20},
    {"name": "DOGE", "szDecimals": 0, "maxLeverage": 10},
]
DEFAULT_MIDS: dict[str, float] = {"BTC": 60000.0, "ETH": 3000.0, "SOL": 150.0, "DOGE": 0.15}

MIN_NOTIONAL_ERROR = "Order must have minimum value of $10."
INVALID_SIZE_ERROR = "Order has invalid size."
INVALID_PRICE_ERROR = "Order has invalid price."
DUPLICATE_CLOID_ERROR = "Duplicate cloid: order with this cloid already exists."
IOC_NO_MATCH_ERROR = "Order could not immediately match against any resting orders. asset={asset}"
REDUCE_ONLY_ERROR = "Reduce only order would increase position."


def _num(x: float) -> str:
    """A number as the API writes it: a plain decimal string."""
    text = f"{Decimal(repr(float(x))).normalize():f}"
    return "0.0" if text in ("0", "-0") else text


def make_candles(
    coin: str, interval: str, start_ms: int, n: int, *, price: float = 100.0, step: float = 0.1
) -> list[dict[str, Any]]:
    """``n`` consecutive candles as candleSnapshot returns them (t/T/n ints, prices/volume strings)."""
    width = INTERVAL_MS[interval]
    out = []
    for k in range(n):
        o = price + k * step
        c = o + step
        t = start_ms + k * width
        out.append(
            {
                "t": t,
                "T": t + width - 1,
                "s": coin,
                "i": interval,
                "o": _num(round(o, 6)),
                "c": _num(round(c, 6)),
                "h": _num(round(max(o, c) + 0.05, 6)),
                "l": _num(round(min(o, c) - 0.05, 6)),
                "v": _num(10.0 + k),
                "n": 5 + k % 7,
            }
        )
    return out


def make_funding(coin: str, start_ms: int, n: int, *, step_ms: int = 3_600_000) -> list[dict[str, Any]]:
    """``n`` hourly fundingHistory rows (rates and premiums as strings)."""
    return [
        {
            "coin": coin,
            "fundingRate": _num(round(1e-5 * ((k % 11) - 3), 10)),
            "premium": _num(round(2e-5 * ((k % 5) - 2), 10)),
            "time": start_ms + k * step_ms,
        }
        for k in range(n)
    ]


@dataclass
class ExchangeRecord:
    """One ``POST /exchange`` request as the fake saw it."""

    action: dict[str, Any]
    nonce: int
    signer: str | None  # recovered address (lower case) or None when recovery failed
    account: str | None  # the account the signer acts for, or None when unauthorized
    response: Any = None
    http_status: int = 200
    delayed: float = 0.0  # the answer was held back this long AFTER processing
    held: float = 0.0  # the request was held this long BEFORE processing (still in flight)
    expires_after: int | None = None  # the request's expiresAfter (ms), if any
    dropped: bool = False  # processed, but the connection was closed without an answer
    vault: str | None = None  # the request's vaultAddress (lower case), if any
    refused: str | None = None  # why the signer may not trade that account (when ``account`` is None)


@dataclass
class _Order:
    oid: int
    coin: str
    asset: int
    is_buy: bool
    limit_px: str
    orig_sz: float
    filled_sz: float
    avg_px: float | None
    cloid: str | None
    status: str  # "filled" | "open" | "canceled"
    timestamp: int
    tif: str
    fills: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Book:
    """One account the fake can trade: its margin, positions, orders (with their fills) and history.

    ``kind`` is its role: ``user`` (an account of its own), ``subAccount`` (traded by its ``master`` with
    ``vaultAddress``) or ``vault`` (traded by its leader, ``master``, with ``vaultAddress``). ``ledger`` holds
    userNonFundingLedgerUpdates rows (``{"time", "hash", "delta"}``), ``value_history`` the account values that
    ``portfolio`` reports (``[ms, value]``)."""

    address: str
    account_value: float
    withdrawable: float
    positions: dict[str, dict[str, float]] = field(default_factory=dict)
    orders: list[_Order] = field(default_factory=list)
    orders_by_cloid: dict[str, _Order] = field(default_factory=dict)
    kind: str = "user"
    master: str | None = None
    ledger: list[dict[str, Any]] = field(default_factory=list)
    value_history: list[list[Any]] = field(default_factory=list)


@dataclass
class _Fault:
    status: int
    body: str
    count: int
    path: str | None
    skip: int = 0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Partial:
    fraction: float
    coin: str | None
    count: int


@dataclass
class _Jump:
    changes: dict[str, float]  # coin -> factor
    after: str
    skip: int


@dataclass
class _Hook:
    kind: str  # an info type, or "order" for an /exchange order request
    action: Callable[[FakeHyperliquid], None]
    skip: int


@dataclass
class Chaos:
    """Random faults, drawn from ``seed``: each request suffers at most one. Probabilities per request
    (``partial``: per order; ``jump``: per ``allMids`` answer).

    - ``info_5xx`` / ``exchange_5xx``: HTTP 502 or 503, nothing processed;
    - ``info_429`` / ``exchange_429``: HTTP 429 with ``Retry-After: retry_after`` and the body ``body_429`` (the
      exchange's ``{"code", "msg"}`` by default; any other text works too), nothing processed;
    - ``drop``: an /exchange request is processed, then the connection is closed without an answer;
    - ``late``: an /exchange request is processed, its answer held ``late_delay`` s (the client times out);
    - ``held``: an /exchange request is held ``held_delay`` s BEFORE it is processed (still in flight when the
      client gives up; refused if it has expired by then);
    - ``partial``: an order fills only a random 20-90% of its size (IOC: the rest is cancelled);
    - ``jump``: right after an ``allMids`` answer, every mid moves by a random factor within +-``jump_size``.
    """

    seed: int = 0
    info_5xx: float = 0.0
    info_429: float = 0.0
    exchange_5xx: float = 0.0
    exchange_429: float = 0.0
    drop: float = 0.0
    late: float = 0.0
    held: float = 0.0
    partial: float = 0.0
    jump: float = 0.0
    retry_after: str = "1"
    body_429: str = '{"code": 429, "msg": "chaos: too many requests"}'
    late_delay: float = 1.0
    held_delay: float = 1.0
    jump_size: float = 0.02
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self, *kinds: tuple[str, float]) -> str | None:
        for kind, p in kinds:
            if p > 0 and self.rng.random() < p:
                return kind
        return None


@dataclass
class _Refusal:
    message: str
    count: int
    skip: int = 0


class FakeHyperliquid:
    """A fake Hyperliquid API server; see the module docstring.

    Constructor arguments seed the state; all of them are also public attributes that tests may
    change at any time (under ``fake.lock`` if a request may be in flight):

    - ``universe``: list of ``{"name", "szDecimals", "maxLeverage", optional "isDelisted"}``;
      the asset index is the list position.
    - ``mids``: coin -> mid price (float). Fills happen at the mid.
    - ``account_address``: the simulated trading account (lower-cased); ``agents``: API wallet
      addresses authorized to sign for it. ``accept_any_signer`` lets any signer trade the account.
    - ``account_value``, ``withdrawable``: floats for clearinghouseState.
    - ``positions``: coin -> ``{"szi": signed float, "entryPx": float}``; updated by fills.
    - ``other_accounts``: address -> ``{"account_value": float, "positions": {coin: szi}}``, read-only
      accounts that info queries answer (nobody can trade them here).
    - ``candles``: ``(coin, interval)`` -> list of candle dicts (see :func:`make_candles`);
      ``candle_limit`` (5000 like the real API): at most that many, the NEWEST in range, per answer
      (``candle_keep = "oldest"`` keeps the oldest instead, to test paging in the other direction).
    - ``funding``: coin -> list of rows; ``funding_limit`` (500): rows per answer, oldest first.
    - ``is_mainnet``: which chain the signatures are checked for (False, like any non-mainnet URL).

    Fault knobs:

    - ``reject_coins``: coin -> per-order error message (``statuses[i].error``).
    - ``info_overrides``: info type -> raw JSON answer to send instead (malformed-answer tests).
    - ``exchange_error``: when set, every ``/exchange`` answers ``{"status": "err", "response": msg}``.
    - :meth:`refuse_next_exchange` (message, skip, count): the same refusal for ``count`` requests after
      letting ``skip`` through.
    - ``refuse_duplicate_cloids`` (True): reject an order whose cloid is already known, as the project
      expects Hyperliquid to do. False accepts it as a NEW order (a second execution), to show that the
      client does not depend on that refusal.
    - ``info_lag`` (0.0 s): orderStatus and userFills do not show an order (or its fills) until this long
      after it was processed; positions (clearinghouseState) are current. Models lookups that trail the
      exchange, to exercise the client's position cross-check.
    - ``enforce_expiry`` (True): a request carrying ``expiresAfter`` (ms) that is processed later than that
      is refused with ``{"status": "err"}`` (the message is the fake's own) and changes nothing.
    - ``min_notional`` (10.0): per-order error below this notional (limit price x size).
    - ``validate_wire`` (True): per-order errors for sizes with more than szDecimals decimals and prices
      with more than 5 significant figures (non-integers) or more than 6 - szDecimals decimals.
    - :meth:`fail_next` (HTTP status, count, path): answer errors WITHOUT processing the request.
    - :meth:`timeout_next_exchange` (delay, count): PROCESS the next ``/exchange`` requests (orders
      fill, state changes, records kept) but hold the HTTP answer for ``delay`` seconds, so a client
      with a shorter timeout sees a timeout although its orders went through.
    - :meth:`hold_next_exchange` (delay, count): hold the next ``/exchange`` requests for ``delay``
      seconds BEFORE processing them (a request still in flight when the client gives up on it).
    - :meth:`drop_next` (count, path): PROCESS the next requests, then close the connection without an
      answer (the client sees a dropped connection although its orders went through).
    - :meth:`fail_next` with ``headers`` (e.g. ``{"Retry-After": "1"}`` on a 429).
    - :meth:`partial_fill` (fraction, coin, count): the next orders (of ``coin``) fill only ``fraction`` of
      their size, rounded down to szDecimals; an IOC's remainder is cancelled (orderStatus "canceled").
    - :meth:`jump_mids` (changes, after, skip): right after answering an ``after`` info request (default
      ``allMids``), multiply mids by the given factors: the price moves between the client's read and its
      order.
    - ``marks``, ``oracles``: coin -> price overriding what ``metaAndAssetCtxs`` reports (default: the mid).
    - ``spreads``: coin -> fraction: a thin book whose best bid and ask sit that far from the mid; an IOC matches
      only if its limit reaches them, and fills there (default: at the mid).
    - :meth:`after_request` (kind, action, skip): call ``action(fake)`` right after a request of ``kind``
      (an info type, or "order") was answered: e.g. an account value that falls at a chosen moment.
    - ``chaos``: a :class:`Chaos` drawing random faults for every request (None: off); every injected fault
      is appended to ``fault_log``.
    - ``clock_skew`` (0.0 s): how far the exchange's clock is ahead of this machine's (negative: behind); the
      ``time`` of clearinghouseState and the ``expiresAfter`` check use the exchange's clock.
    - :meth:`outage` (seconds, path): every request to ``path`` (None: any) is answered HTTP 503, unprocessed,
      for that long (a whole-API outage).
    - ``leverage``: coin -> ``{"type": "cross" | "isolated", "value": int}``, set by ``updateLeverage`` actions
      (which are checked: an integer from 1 to the coin's maxLeverage; ``leverage_refusals`` coin -> message refuses
      them); a coin not in it is at ``default_leverage`` (cross, 20x capped at its maxLeverage).
      clearinghouseState reports it per position.
    - ``fault_actions`` ({"order"}): the ``/exchange`` actions that the scheduled knobs (:meth:`fail_next`,
      :meth:`drop_next`, :meth:`timeout_next_exchange`, :meth:`hold_next_exchange`, :meth:`refuse_next_exchange`)
      apply to, so that "the next order request" means that even when other actions (``updateLeverage``) go
      first; None: every action. Random ``chaos`` and :meth:`outage` hit every request.
    - ``enforce_margin`` (False): an order that opens or increases a position is rejected with "Insufficient
      margin to place order." when the margin of all positions after it (|size| x mid / the coin's leverage)
      would exceed the account value.
    - ``position_lag`` (0.0 s): clearinghouseState shows positions without the fills of the last
      ``position_lag`` seconds (orderStatus and userFills are current): positions read right after a fill trail it.

    Accounts and who may trade them (``userRole``, ``vaultAddress``): every tradeable account is a :class:`Book`
    in ``books`` (``account_address``'s is ``book``; ``positions``, ``account_value``, ``orders`` ... are its
    fields). :meth:`add_account` adds another: a ``user`` (its own key trades it), a ``subAccount`` or a ``vault``
    (its master or leader trades it by signing with ``vaultAddress``); :meth:`add_agent` registers an API wallet
    of any user (``agents`` are those of ``account_address``). A request lands where the real exchange puts it:
    on the signer's own account, or its master's for an API wallet, or on ``vaultAddress`` when the signer's
    account is its master or leader (otherwise it is refused). ``roles`` (address -> answer) overrides what
    ``userRole`` says. ``ledger`` and ``value_history`` of a book answer ``userNonFundingLedgerUpdates`` and
    ``portfolio``; ``frontendOpenOrders`` lists a book's resting orders with their cloids.

    Records: ``exchange_requests`` (list of :class:`ExchangeRecord`), ``info_requests`` (request
    bodies), ``orders`` (accepted orders, by cloid in ``orders_by_cloid``: the latest one),
    ``duplicate_cloids`` (how many orders reused a known cloid, refused or not).
    """

    def __init__(
        self,
        *,
        universe: list[dict[str, Any]] | None = None,
        mids: dict[str, float] | None = None,
        account_address: str = ZERO_ADDRESS,
        agents: list[str] | tuple[str, ...] = (),
        accept_any_signer: bool = False,
        account_value: float = 100_000.0,
        withdrawable: float = 90_000.0,
        positions: dict[str, dict[str, float]] | None = None,
        other_accounts: dict[str, dict[str, Any]] | None = None,
        candles: dict[tuple[str, str], list[dict[str, Any]]] | None = None,
        funding: dict[str, list[dict[str, Any]]] | None = None,
        candle_limit: int = 5000,
        funding_limit: int = 500,
        is_mainnet: bool = False,
    ):
        self.lock = threading.RLock()
        self.universe = [dict(a) for a in (universe if universe is not None else DEFAULT_UNIVERSE)]
        self.mids = dict(mids if mids is not None else DEFAULT_MIDS)
        self.account_address = account_address.lower()
        self.agents = {a.lower() for a in agents}
        self.accept_any_signer = accept_any_signer
        self.books: dict[str, Book] = {
            self.account_address: Book(
                self.account_address,
                float(account_value),
                float(withdrawable),
                {c: dict(p) for c, p in (positions or {}).items()},
            )
        }
        self.agent_masters: dict[str, str] = {}  # API wallets of accounts other than account_address
        self.roles: dict[str, Any] = {}  # address -> a userRole answer overriding the derived one
        self.position_lag = 0.0
        self.other_accounts = {a.lower(): dict(v) for a, v in (other_accounts or {}).items()}
        self.candles = dict(candles or {})
        self.funding = dict(funding or {})
        self.candle_limit = candle_limit
        self.candle_keep = "newest"  # which end of a too-long range candleSnapshot keeps ("oldest" also works)
        self.funding_limit = funding_limit
        self.is_mainnet = is_mainnet

        self.reject_coins: dict[str, str] = {}
        self.info_overrides: dict[str, Any] = {}
        self.exchange_error: str | None = None
        self.min_notional = 10.0
        self.validate_wire = True
        self.refuse_duplicate_cloids = True
        self.info_lag = 0.0
        self.enforce_expiry = True
        self.marks: dict[str, float] = {}
        self.oracles: dict[str, float] = {}
        self.spreads: dict[str, float] = {}
        self.chaos: Chaos | None = None
        self.clock_skew = 0.0
        self.leverage: dict[str, dict[str, Any]] = {}
        self.default_leverage = 20
        self.leverage_refusals: dict[str, str] = {}
        self.enforce_margin = False
        self.fault_actions: set[str] | None = {"order"}
        self._outages: list[tuple[float, str | None]] = []
        self.fault_log: list[tuple[str, str]] = []
        self.received_exchange = 0  # /exchange requests that arrived (counted before any hold)
        self.received_actions: Counter[str] = Counter()  # the same, by action type ("order", "updateLeverage", ...)
        self._partials: list[_Partial] = []
        self._jumps: list[_Jump] = []
        self._hooks: list[_Hook] = []
        self._drops: list[str | None] = []
        self._faults: list[_Fault] = []
        self._refusals: list[_Refusal] = []
        self._timeouts: list[float] = []
        self._holds: list[float] = []

        self.exchange_requests: list[ExchangeRecord] = []
        self.info_requests: list[dict[str, Any]] = []
        self.duplicate_cloids = 0
        self._next_oid = 1000
        self._next_tid = 1
        self._nonces: dict[str, set[int]] = {}

        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeHyperliquid:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: a stopped fake is really gone

            def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
                pass

            def do_POST(self) -> None:
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-hyperliquid", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeHyperliquid:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ knobs
    def fail_next(
        self,
        status: int = 500,
        *,
        count: int = 1,
        path: str | None = "/exchange",
        body: str = "",
        skip: int = 0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``count`` requests to ``path`` (None: any path) with HTTP ``status`` (and ``headers``),
        unprocessed, after letting the next ``skip`` of them through."""
        with self.lock:
            self._faults.append(_Fault(status, body or f"fake error {status}", count, path, skip, dict(headers or {})))

    def outage(self, seconds: float, *, path: str | None = None) -> None:
        """Answer every request to ``path`` (None: any) with HTTP 503, unprocessed, for the next ``seconds``."""
        with self.lock:
            self._outages.append((time.monotonic() + seconds, path))

    def leverage_of(self, coin: str) -> dict[str, Any]:
        """The coin's margin mode and leverage: ``{"type": "cross" | "isolated", "value": int}``."""
        with self.lock:
            default = {"type": "cross", "value": min(self.default_leverage, self._max_leverage(coin))}
            return dict(self.leverage.get(coin, default))

    def _max_leverage(self, coin: str) -> int:
        meta = next((a for a in self.universe if a["name"] == coin), None)
        return int(meta["maxLeverage"]) if meta is not None else 1

    def drop_next(self, count: int = 1, *, path: str | None = "/exchange") -> None:
        """Process the next ``count`` requests to ``path`` (None: any), then drop the connection unanswered."""
        with self.lock:
            self._drops.extend([path] * count)

    def partial_fill(self, fraction: float, *, coin: str | None = None, count: int = 1) -> None:
        """The next ``count`` orders (of ``coin``, or any) fill only ``fraction`` of their size."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
        with self.lock:
            self._partials.append(_Partial(fraction, coin, count))

    def jump_mids(self, changes: dict[str, float], *, after: str = "allMids", skip: int = 0) -> None:
        """Right after answering the (``skip`` + 1)-th next ``after`` info request, multiply each coin's mid
        by its factor in ``changes``."""
        with self.lock:
            self._jumps.append(_Jump(dict(changes), after, skip))

    def after_request(self, kind: str, action: Callable[[FakeHyperliquid], None], *, skip: int = 0) -> None:
        """Call ``action(fake)`` right after answering the (``skip`` + 1)-th next request of ``kind`` (an info
        type, or "order" for an order request)."""
        with self.lock:
            self._hooks.append(_Hook(kind, action, skip))

    def refuse_next_exchange(self, message: str, *, count: int = 1, skip: int = 0) -> None:
        """Answer ``count`` ``/exchange`` requests with ``{"status": "err", "response": message}`` (nothing
        processed), after letting the next ``skip`` through."""
        with self.lock:
            self._refusals.append(_Refusal(message, count, skip))

    def hold_next_exchange(self, delay: float = 2.0, *, count: int = 1, skip: int = 0) -> None:
        """Hold the next ``count`` /exchange requests ``delay`` seconds before processing them, after letting
        ``skip`` through."""
        with self.lock:
            self._holds.extend([0.0] * skip + [delay] * count)

    def timeout_next_exchange(self, delay: float = 2.0, *, count: int = 1, skip: int = 0) -> None:
        """Process the next ``count`` /exchange requests but delay each answer by ``delay`` seconds, after
        letting ``skip`` through."""
        with self.lock:
            self._timeouts.extend([0.0] * skip + [delay] * count)

    # ------------------------------------------------------------------ accounts
    @property
    def book(self) -> Book:
        """The book of ``account_address``, the main simulated account."""
        return self.books[self.account_address]

    @property
    def positions(self) -> dict[str, dict[str, float]]:
        return self.book.positions

    @positions.setter
    def positions(self, value: dict[str, dict[str, float]]) -> None:
        self.book.positions = value

    @property
    def account_value(self) -> float:
        return self.book.account_value

    @account_value.setter
    def account_value(self, value: float) -> None:
        self.book.account_value = float(value)

    @property
    def withdrawable(self) -> float:
        return self.book.withdrawable

    @withdrawable.setter
    def withdrawable(self, value: float) -> None:
        self.book.withdrawable = float(value)

    @property
    def orders(self) -> list[_Order]:
        return self.book.orders

    @orders.setter
    def orders(self, value: list[_Order]) -> None:
        self.book.orders = value

    @property
    def orders_by_cloid(self) -> dict[str, _Order]:
        return self.book.orders_by_cloid

    @orders_by_cloid.setter
    def orders_by_cloid(self, value: dict[str, _Order]) -> None:
        self.book.orders_by_cloid = value

    def add_account(
        self,
        address: str,
        *,
        kind: str = "user",
        master: str | None = None,
        account_value: float = 0.0,
        withdrawable: float | None = None,
        positions: dict[str, float] | None = None,
    ) -> Book:
        """A tradeable account: ``kind`` "user" (its own key trades it), "subAccount" (of ``master``) or
        "vault" (led by ``master``); positions as coin -> signed size."""
        if kind not in ("user", "subAccount", "vault"):
            raise ValueError(f"kind must be user, subAccount or vault, got {kind!r}")
        if (kind == "user") != (master is None):
            raise ValueError("a sub-account or vault needs its master (leader); a user has none")
        with self.lock:
            book = Book(
                address.lower(),
                float(account_value),
                float(account_value if withdrawable is None else withdrawable),
                {c: {"szi": float(s), "entryPx": float(self.mids.get(c, 1.0))} for c, s in (positions or {}).items()},
                kind=kind,
                master=master.lower() if master else None,
            )
            self.books[book.address] = book
            return book

    def add_agent(self, agent: str, master: str) -> None:
        """Register ``agent`` as an API wallet acting for ``master``."""
        with self.lock:
            self.agent_masters[agent.lower()] = master.lower()

    def set_position(self, coin: str, szi: float, entry_px: float | None = None, *, account: str | None = None) -> None:
        with self.lock:
            px = entry_px if entry_px is not None else self.mids.get(coin, 0.0)
            book = self.books[(account or self.account_address).lower()]
            book.positions[coin] = {"szi": float(szi), "entryPx": float(px)}

    def position(self, coin: str, *, account: str | None = None) -> float:
        with self.lock:
            book = self.books[(account or self.account_address).lower()]
            return float(book.positions.get(coin, {}).get("szi", 0.0))

    def orders_for(self, cloid: str) -> int:
        """How many accepted orders carry this cloid (must never exceed 1)."""
        with self.lock:
            return sum(1 for o in self.orders if o.cloid == cloid)

    @property
    def order_requests(self) -> list[ExchangeRecord]:
        return [r for r in self.exchange_requests if r.action.get("type") == "order"]

    # ------------------------------------------------------------------ HTTP plumbing
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        try:
            peek = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            peek = None
        action = peek.get("action") if isinstance(peek, dict) else None
        kind = action.get("type") if isinstance(action, dict) else None
        with self.lock:
            # the scheduled knobs count order requests (fault_actions), not the other actions sent between them
            scheduled = req.path != "/exchange" or self.fault_actions is None or kind in self.fault_actions
            if req.path == "/exchange":
                self.received_exchange += 1
                self.received_actions[str(kind)] += 1
            queued = len(self._faults)
            chaos = self._draw_chaos(req.path)  # a drawn 5xx or 429 is queued in front of the faults
            fault = self._take_fault(req.path) if scheduled or len(self._faults) > queued else None
            now = time.monotonic()
            self._outages = [(end, p) for end, p in self._outages if end > now]
            if any(p is None or p == req.path for _, p in self._outages):
                fault = _Fault(503, "fake outage: service unavailable", 1, req.path)
        if fault is not None:
            self._reply(req, fault.status, fault.body, content_type="text/plain", headers=fault.headers)
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._reply(req, 400, "Failed to parse the request body as JSON", content_type="text/plain")
            return
        delay = 0.0
        with self.lock:
            drop = (scheduled and self._take_drop(req.path)) or chaos == "drop"
        if req.path == "/info":
            status, payload = self._info(body)
        elif req.path == "/exchange":
            with self.lock:
                delay = self._timeouts.pop(0) if self._timeouts and scheduled else 0.0
                held = self._holds.pop(0) if self._holds and scheduled else 0.0
                if chaos == "late":
                    delay = self.chaos.late_delay if self.chaos else 1.0
                if chaos == "held":
                    held = self.chaos.held_delay if self.chaos else 1.0
            if held:
                time.sleep(held)  # in flight: not processed yet
            status, payload = self._exchange(body, delay, held)
        else:
            self._reply(req, 404, "Not Found", content_type="text/plain")
            return
        self._after(req.path, body)
        if drop:  # processed, but the answer never leaves: the client sees the connection closed
            with self.lock:
                if self.exchange_requests and req.path == "/exchange":
                    self.exchange_requests[-1].dropped = True
            try:
                req.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            req.close_connection = True
            return
        if delay:
            time.sleep(delay)
        if isinstance(payload, str):
            self._reply(req, status, payload, content_type="text/plain")
        else:
            self._reply(req, status, json.dumps(payload))

    def _draw_chaos(self, path: str) -> str | None:
        """A random fault for this request (under the lock); 5xx and 429 become one-shot faults here."""
        c = self.chaos
        if c is None:
            return None
        if path == "/info":
            kind = c.draw(("5xx", c.info_5xx), ("429", c.info_429))
        else:
            kind = c.draw(
                ("5xx", c.exchange_5xx),
                ("429", c.exchange_429),
                ("drop", c.drop),
                ("late", c.late),
                ("held", c.held),
            )
        if kind is None:
            return None
        self.fault_log.append((kind, path))
        if kind == "5xx":
            self._faults.insert(0, _Fault(c.rng.choice((502, 503)), "chaos: bad gateway", 1, path))
            kind = None
        elif kind == "429":
            self._faults.insert(
                0,
                _Fault(429, c.body_429, 1, path, 0, {"Retry-After": c.retry_after}),
            )
            kind = None
        return kind

    def _take_drop(self, path: str) -> bool:
        for k, p in enumerate(self._drops):
            if p is None or p == path:
                del self._drops[k]
                return True
        return False

    def _after(self, path: str, body: dict[str, Any]) -> None:
        """Scheduled changes that happen right after a request was answered (mid jumps, hooks)."""
        kind = body.get("type") if path == "/info" else (body.get("action") or {}).get("type")
        with self.lock:
            for jump in list(self._jumps):
                if jump.after != kind:
                    continue
                if jump.skip > 0:
                    jump.skip -= 1
                    continue
                self._jumps.remove(jump)
                for coin, factor in jump.changes.items():
                    self.mids[coin] = self.mids[coin] * factor
                self.fault_log.append(("jump", ",".join(sorted(jump.changes))))
            c = self.chaos
            if c is not None and kind == "allMids" and c.jump > 0 and c.rng.random() < c.jump:
                for coin in self.mids:
                    self.mids[coin] = float(f"{self.mids[coin] * (1 + c.rng.uniform(-c.jump_size, c.jump_size)):.5g}")
                self.fault_log.append(("jump", "all"))
            for hook in list(self._hooks):
                if hook.kind != kind:
                    continue
                if hook.skip > 0:
                    hook.skip -= 1
                    continue
                self._hooks.remove(hook)
                hook.action(self)

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in list(self._faults):
            if fault.path is None or fault.path == path:
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _reply(
        req: BaseHTTPRequestHandler,
        status: int,
        text: str,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = text.encode()
        try:
            req.send_response(status)
            req.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                req.send_header(name, value)
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
        except OSError:  # the client gave up (timeout knob): nothing to answer to
            pass

    # ------------------------------------------------------------------ /info
    def _info(self, body: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            self.info_requests.append(body)
            kind = body.get("type")
            if kind in self.info_overrides:
                return 200, self.info_overrides[kind]
            if kind == "meta":
                return 200, {"universe": [dict(a) for a in self.universe]}
            if kind == "spotMeta":
                return 200, {"universe": [], "tokens": []}
            if kind == "allMids":
                return 200, {c: _num(px) for c, px in self.mids.items()}
            if kind == "metaAndAssetCtxs":
                return 200, [
                    {"universe": [dict(a) for a in self.universe]},
                    [self._ctx(a["name"]) for a in self.universe],
                ]
            if kind == "clearinghouseState":
                return 200, self._clearinghouse(str(body.get("user", "")).lower())
            if kind == "candleSnapshot":
                return 200, self._candle_snapshot(body.get("req") or {})
            if kind == "fundingHistory":
                return 200, self._funding_history(body)
            if kind == "orderStatus":
                return 200, self._order_status(str(body.get("user", "")).lower(), body.get("oid"))
            if kind == "userFills":
                return 200, self._user_fills(str(body.get("user", "")).lower())
            if kind == "userRole":
                return 200, self._user_role(str(body.get("user", "")).lower())
            if kind == "frontendOpenOrders":
                return 200, self._open_orders(str(body.get("user", "")).lower())
            if kind == "userNonFundingLedgerUpdates":
                return 200, self._ledger(body)
            if kind == "portfolio":
                return 200, self._portfolio(str(body.get("user", "")).lower())
            return 422, "Failed to deserialize the JSON body into the target type"

    def _shown_positions(self, book: Book) -> dict[str, dict[str, float]]:
        """The book's positions as clearinghouseState shows them: without the fills of the last ``position_lag`` s."""
        if self.position_lag <= 0:
            return book.positions
        cutoff = time.time() * 1000 - self.position_lag * 1000
        shown = {c: dict(p) for c, p in book.positions.items()}
        for order in book.orders:
            for f in order.fills:
                if f["time"] > cutoff:
                    signed = float(f["sz"]) if f["side"] == "B" else -float(f["sz"])
                    pos = shown.setdefault(f["coin"], {"szi": 0.0, "entryPx": float(f["px"])})
                    pos["szi"] = round(float(pos["szi"]) - signed, 10)
        return shown

    def _user_role(self, user: str) -> dict[str, Any]:
        if user in self.roles:
            return self.roles[user]
        book = self.books.get(user)
        if book is not None:
            if book.kind == "subAccount":
                return {"role": "subAccount", "data": {"master": book.master}}
            return {"role": book.kind}
        master = self._master_of(user)
        if master is not None:
            return {"role": "agent", "data": {"user": master}}
        if user in self.other_accounts:
            return {"role": "user"}
        if self.accept_any_signer:  # any signer trades account_address: an API wallet of it, as the exchange sees it
            return {"role": "agent", "data": {"user": self.account_address}}
        return {"role": "missing"}

    def _master_of(self, agent: str) -> str | None:
        if agent in self.agents:
            return self.account_address
        return self.agent_masters.get(agent)

    def _open_orders(self, user: str) -> list[dict[str, Any]]:
        book = self.books.get(user)
        if book is None:
            return []
        return [
            {
                "coin": o.coin,
                "side": "B" if o.is_buy else "A",
                "limitPx": o.limit_px,
                "sz": _num(max(o.orig_sz - o.filled_sz, 0.0)),
                "oid": o.oid,
                "timestamp": o.timestamp,
                "origSz": _num(o.orig_sz),
                "orderType": "Limit",
                "tif": o.tif,
                "reduceOnly": False,
                "isTrigger": False,
                "triggerPx": "0.0",
                "triggerCondition": "N/A",
                "isPositionTpsl": False,
                "children": [],
                **({"cloid": o.cloid} if o.cloid else {}),
            }
            for o in book.orders
            if o.status == "open"
        ]

    def _ledger(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        book = self.books.get(str(body.get("user", "")).lower())
        if book is None:
            return []
        start = int(body.get("startTime") or 0)
        end = body.get("endTime")
        end = int(end) if end is not None else 2**62
        return [dict(r) for r in sorted(book.ledger, key=lambda r: r["time"]) if start <= r["time"] <= end]

    def _portfolio(self, user: str) -> list[Any]:
        book = self.books.get(user)
        history = sorted(book.value_history) if book is not None else []
        now = time.time() * 1000
        out = []
        for name, span in (
            ("day", 86_400_000),
            ("week", 7 * 86_400_000),
            ("month", 30 * 86_400_000),
            ("allTime", None),
        ):
            points = [[int(t), _num(v)] for t, v in history if span is None or t >= now - span]
            out.append(
                [name, {"accountValueHistory": points, "pnlHistory": [[t, "0.0"] for t, _ in points], "vlm": "0.0"}]
            )
        return out

    def _clearinghouse(self, user: str) -> dict[str, Any]:
        book = self.books.get(user)
        other = self.other_accounts.get(user)
        asset_positions = []
        total_ntl = 0.0
        positions = self._shown_positions(book) if book is not None else {}
        if other is not None:
            positions = {c: {"szi": float(s), "entryPx": self.mids.get(c, 1.0)} for c, s in other["positions"].items()}
        if positions:
            for coin, pos in sorted(positions.items()):
                szi = float(pos["szi"])
                if szi == 0.0:
                    continue
                mid = self.mids.get(coin, float(pos["entryPx"]))
                value = abs(szi) * mid
                total_ntl += value
                asset_positions.append(
                    {
                        "type": "oneWay",
                        "position": {
                            "coin": coin,
                            "szi": _num(szi),
                            "entryPx": _num(pos["entryPx"]),
                            "positionValue": _num(round(value, 6)),
                            "unrealizedPnl": _num(round(szi * (mid - float(pos["entryPx"])), 6)),
                            "returnOnEquity": "0.0",
                            "liquidationPx": None,
                            "leverage": self.leverage_of(coin),
                            "marginUsed": _num(round(value / 5, 6)),
                        },
                    }
                )
        value = book.account_value if book is not None else float(other["account_value"]) if other is not None else 0.0
        summary = {
            "accountValue": _num(value),
            "totalNtlPos": _num(round(total_ntl, 6)),
            "totalRawUsd": _num(value),
            "totalMarginUsed": _num(round(total_ntl / 5, 6)),
        }
        return {
            "assetPositions": asset_positions,
            "marginSummary": summary,
            "crossMarginSummary": dict(summary),
            "crossMaintenanceMarginUsed": "0.0",
            "withdrawable": _num(book.withdrawable if book is not None else value if other is not None else 0.0),
            "time": int((time.time() + self.clock_skew) * 1000),
        }

    def _ctx(self, coin: str) -> dict[str, Any]:
        mid = self.mids.get(coin)
        mark = self.marks.get(coin, mid if mid is not None else 1.0)
        oracle = self.oracles.get(coin, mid if mid is not None else 1.0)
        return {
            "funding": "0.0000125",
            "openInterest": "1000.0",
            "prevDayPx": _num(mark),
            "dayNtlVlm": "1000000.0",
            "premium": "0.0",
            "oraclePx": _num(oracle),
            "markPx": _num(mark),
            "midPx": _num(mid) if mid is not None else None,
            "impactPxs": [_num(mid), _num(mid)] if mid is not None else None,
        }

    def _candle_snapshot(self, req: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.candles.get((req.get("coin"), req.get("interval")), [])
        start, end = int(req.get("startTime", 0)), int(req.get("endTime", 2**62))
        in_range = sorted((c for c in rows if start <= c["t"] <= end), key=lambda c: c["t"])
        if self.candle_limit <= 0:
            return []
        kept = in_range[-self.candle_limit :] if self.candle_keep == "newest" else in_range[: self.candle_limit]
        return [dict(c) for c in kept]

    def _funding_history(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self.funding.get(body.get("coin"), [])
        start = int(body.get("startTime", 0))
        end = body.get("endTime")
        end = int(end) if end is not None else 2**62
        in_range = sorted((r for r in rows if start <= r["time"] <= end), key=lambda r: r["time"])
        return [dict(r) for r in in_range[: self.funding_limit]]

    def _visible(self, timestamp_ms: int) -> bool:
        return timestamp_ms <= time.time() * 1000 - self.info_lag * 1000

    def _order_status(self, user: str, oid: Any) -> dict[str, Any]:
        order = None
        book = self.books.get(user)
        if book is not None:
            if isinstance(oid, str):
                order = book.orders_by_cloid.get(oid.lower())
            else:
                order = next((o for o in book.orders if o.oid == oid), None)
        if order is not None and not self._visible(order.timestamp):
            order = None
        if order is None:
            return {"status": "unknownOid"}
        # an open order, or an IOC cancelled after a partial fill, reports the size it did not fill
        remaining = max(order.orig_sz - order.filled_sz, 0.0) if order.status in ("open", "canceled") else 0.0
        return {
            "status": "order",
            "order": {
                "order": {
                    "coin": order.coin,
                    "side": "B" if order.is_buy else "A",
                    "limitPx": order.limit_px,
                    "sz": _num(remaining),
                    "oid": order.oid,
                    "timestamp": order.timestamp,
                    "origSz": _num(order.orig_sz),
                    "cloid": order.cloid,
                    "orderType": "Limit",
                    "tif": order.tif,
                    "reduceOnly": False,
                },
                "status": order.status,
                "statusTimestamp": order.timestamp,
            },
        }

    def _user_fills(self, user: str) -> list[dict[str, Any]]:
        book = self.books.get(user)
        if book is None:
            return []
        fills = [f for o in book.orders for f in o.fills if self._visible(f["time"])]
        return sorted(fills, key=lambda f: f["time"], reverse=True)[:2000]

    # ------------------------------------------------------------------ /exchange
    def _exchange(self, body: dict[str, Any], delay: float, held: float = 0.0) -> tuple[int, Any]:
        from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action

        action = body.get("action") or {}
        nonce = body.get("nonce")
        signer: str | None = None
        try:
            signer = recover_agent_or_user_from_l1_action(
                action,
                body["signature"],
                body.get("vaultAddress"),
                int(nonce),
                body.get("expiresAfter"),
                self.is_mainnet,
            ).lower()
        except Exception:
            signer = None
        expires_after = body.get("expiresAfter")
        with self.lock:
            vault = str(body["vaultAddress"]).lower() if body.get("vaultAddress") else None
            account, refused = self._account_for(signer, vault)
            record = ExchangeRecord(
                action=action,
                nonce=int(nonce or 0),
                signer=signer,
                account=account,
                delayed=delay,
                held=held,
                expires_after=int(expires_after) if expires_after is not None else None,
                vault=vault,
                refused=refused,
            )
            self.exchange_requests.append(record)
            payload = self._process(action, record)
            record.response = payload
        return 200, payload

    def _take_refusal(self) -> str | None:
        for refusal in self._refusals:
            if refusal.skip > 0:
                refusal.skip -= 1
                return None
            refusal.count -= 1
            if refusal.count <= 0:
                self._refusals.remove(refusal)
            return refusal.message
        return None

    def _account_for(self, signer: str | None, vault: str | None = None) -> tuple[str | None, str | None]:
        """(the account a request signed by ``signer`` with ``vaultAddress`` ``vault`` lands on, None), or (None,
        why it is refused): the signer's own account (a user), its master's (an API wallet), or ``vault`` when
        that is a sub-account or vault of the signer's account."""
        if signer is None:
            return None, None
        own = self.books.get(signer)
        acts_for = signer if own is not None and own.kind == "user" else self._master_of(signer)
        if acts_for is None and self.accept_any_signer:
            acts_for = self.account_address
        if acts_for is None:
            return None, None
        if vault is None:
            return (acts_for, None) if acts_for in self.books else (None, None)
        target = self.books.get(vault)
        if target is None or target.kind == "user" or target.master != acts_for:
            return None, f"Account {vault} is not a sub-account or vault of {acts_for}."
        return vault, None

    def _process(self, action: dict[str, Any], record: ExchangeRecord) -> dict[str, Any]:
        if record.signer is None:
            return {"status": "err", "response": "Invalid signature."}
        if record.account is None:
            return {
                "status": "err",
                "response": record.refused or f"User or API Wallet {record.signer} does not exist.",
            }
        seen = self._nonces.setdefault(record.signer, set())
        if record.nonce in seen:
            return {"status": "err", "response": f"Invalid nonce: duplicate nonce {record.nonce}"}
        seen.add(record.nonce)
        now = int((time.time() + self.clock_skew) * 1000)  # the exchange's clock
        if self.enforce_expiry and record.expires_after is not None and now > record.expires_after:
            return {"status": "err", "response": f"Action expired: expiresAfter {record.expires_after}, now {now}."}
        if self.exchange_error is not None:
            return {"status": "err", "response": self.exchange_error}
        scheduled = self.fault_actions is None or action.get("type") in self.fault_actions
        refusal = self._take_refusal() if scheduled else None
        if refusal is not None:
            return {"status": "err", "response": refusal}
        if action.get("type") == "updateLeverage":
            return self._update_leverage(action)
        if action.get("type") != "order":
            return {"status": "err", "response": f"Unsupported action type {action.get('type')!r} (fake server)"}
        book = self.books[record.account]
        statuses = [self._place(wire, record.nonce, book) for wire in action.get("orders", [])]
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    def _update_leverage(self, action: dict[str, Any]) -> dict[str, Any]:
        asset, value, cross = action.get("asset"), action.get("leverage"), action.get("isCross")
        if not isinstance(asset, int) or not 0 <= asset < len(self.universe):
            return {"status": "err", "response": f"Invalid asset {asset}"}
        coin = self.universe[asset]["name"]
        if coin in self.leverage_refusals:
            return {"status": "err", "response": self.leverage_refusals[coin]}
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= self._max_leverage(coin):
            return {"status": "err", "response": f"Invalid leverage value {value!r} for {coin}"}
        if not isinstance(cross, bool):
            return {"status": "err", "response": "isCross must be a boolean"}
        self.leverage[coin] = {"type": "cross" if cross else "isolated", "value": value}
        return {"status": "ok", "response": {"type": "default"}}

    def _margin_short(self, book: Book, coin: str, new_position: float) -> bool:
        """True when the margin of every position of ``book``, with ``coin`` at ``new_position``, exceeds its
        account value (the coins' leverage settings are the fake's, shared by its accounts)."""
        positions = {c: float(p["szi"]) for c, p in book.positions.items()}
        positions[coin] = new_position
        need = sum(
            abs(szi) * self.mids.get(c, 0.0) / self.leverage_of(c)["value"] for c, szi in positions.items() if szi
        )
        return need > book.account_value * (1 + 1e-9)

    def _place(self, wire: dict[str, Any], nonce: int, book: Book) -> dict[str, Any]:
        asset = wire.get("a")
        if not isinstance(asset, int) or not 0 <= asset < len(self.universe):
            return {"error": f"Invalid asset {asset}"}
        meta = self.universe[asset]
        coin, sz_decimals = meta["name"], int(meta["szDecimals"])
        cloid = wire.get("c")
        if cloid is not None:
            cloid = str(cloid).lower()
            if cloid in book.orders_by_cloid:
                self.duplicate_cloids += 1
                if self.refuse_duplicate_cloids:
                    return {"error": DUPLICATE_CLOID_ERROR}
        if meta.get("isDelisted"):
            return {"error": f"Trading is halted for {coin}."}
        if coin in self.reject_coins:
            return {"error": self.reject_coins[coin]}
        try:
            size, price = Decimal(wire["s"]), Decimal(wire["p"])
        except (KeyError, InvalidOperation, TypeError):
            return {"error": INVALID_SIZE_ERROR}
        if self.validate_wire:
            if size <= 0 or not _decimals_ok(size, sz_decimals):
                return {"error": INVALID_SIZE_ERROR}
            if price <= 0 or not _price_ok(price, sz_decimals):
                return {"error": INVALID_PRICE_ERROR}
        if float(size * price) < self.min_notional:
            return {"error": MIN_NOTIONAL_ERROR}
        is_buy = bool(wire.get("b"))
        tif = (wire.get("t") or {}).get("limit", {}).get("tif", "Gtc")
        mid = self.mids.get(coin)
        spread = self.spreads.get(coin, 0.0)
        touch = None if mid is None else float(mid) * (1 + spread if is_buy else 1 - spread)  # the book's best price
        fill_px = float(price) if touch is None else touch
        crosses = touch is None or (float(price) >= touch if is_buy else float(price) <= touch)
        now = int(time.time() * 1000)
        qty = float(size)
        if wire.get("r"):
            pos = float(book.positions.get(coin, {}).get("szi", 0.0))
            if pos == 0.0 or (pos > 0) == is_buy:
                return {"error": REDUCE_ONLY_ERROR}
            qty = min(qty, abs(pos))
        if self.enforce_margin and crosses and not wire.get("r"):
            pos = float(book.positions.get(coin, {}).get("szi", 0.0))
            after = pos + (qty if is_buy else -qty)
            if abs(after) > abs(pos) and self._margin_short(book, coin, after):
                return {"error": "Insufficient margin to place order."}
        fraction = self._take_partial(coin) if crosses else None
        if fraction is not None:
            qty = float(
                (Decimal(repr(qty)) * Decimal(repr(fraction))).quantize(Decimal(1).scaleb(-sz_decimals), ROUND_DOWN)
            )
            if qty <= 0.0:  # nothing matched
                return {"error": IOC_NO_MATCH_ERROR.format(asset=asset)} if tif == "Ioc" else {"error": "no fill"}
        if not crosses:
            if tif == "Ioc":
                return {"error": IOC_NO_MATCH_ERROR.format(asset=asset)}
            order = self._record(book, coin, asset, is_buy, wire["p"], float(size), 0.0, None, cloid, "open", now, tif)
            return {"resting": {"oid": order.oid, **({"cloid": cloid} if cloid else {})}}
        status = "filled" if qty >= float(size) or fraction is None else "canceled"  # IOC remainder cancelled
        order = self._record(book, coin, asset, is_buy, wire["p"], float(size), qty, fill_px, cloid, status, now, tif)
        start_pos = float(book.positions.get(coin, {}).get("szi", 0.0))
        self._apply_fill(book, coin, qty if is_buy else -qty, fill_px)
        order.fills.append(
            {
                "coin": coin,
                "px": _num(fill_px),
                "sz": _num(qty),
                "side": "B" if is_buy else "A",
                "time": now,
                "startPosition": _num(start_pos),
                "dir": ("Open Long" if is_buy else "Open Short"),
                "closedPnl": "0.0",
                "hash": "0x" + f"{nonce:064x}",
                "oid": order.oid,
                "crossed": True,
                "fee": _num(round(qty * fill_px * 0.00045, 6)),
                "tid": self._take_tid(),
                "feeToken": "USDC",
                **({"cloid": cloid} if cloid else {}),
            }
        )
        filled = {"totalSz": _num(qty), "avgPx": _num(fill_px), "oid": order.oid}
        if cloid:
            filled["cloid"] = cloid
        return {"filled": filled}

    def _take_partial(self, coin: str) -> float | None:
        for partial in self._partials:
            if partial.coin is None or partial.coin == coin:
                partial.count -= 1
                if partial.count <= 0:
                    self._partials.remove(partial)
                self.fault_log.append(("partial", coin))
                return partial.fraction
        c = self.chaos
        if c is not None and c.partial > 0 and c.rng.random() < c.partial:
            self.fault_log.append(("partial", coin))
            return c.rng.uniform(0.2, 0.9)
        return None

    def _take_tid(self) -> int:
        self._next_tid += 1
        return self._next_tid

    def _record(
        self,
        book: Book,
        coin: str,
        asset: int,
        is_buy: bool,
        limit_px: str,
        orig_sz: float,
        filled_sz: float,
        avg_px: float | None,
        cloid: str | None,
        status: str,
        now: int,
        tif: str,
    ) -> _Order:
        self._next_oid += 1
        order = _Order(
            self._next_oid, coin, asset, is_buy, limit_px, orig_sz, filled_sz, avg_px, cloid, status, now, tif
        )
        book.orders.append(order)
        if cloid:
            book.orders_by_cloid[cloid] = order
        return order

    def _apply_fill(self, book: Book, coin: str, delta: float, px: float) -> None:
        pos = book.positions.get(coin, {"szi": 0.0, "entryPx": px})
        old = float(pos["szi"])
        new = round(old + delta, 10)
        if old == 0.0 or ((old > 0) != (new > 0) and new != 0.0):
            entry = px  # opened or flipped
        elif abs(new) > abs(old):
            entry = (abs(old) * float(pos["entryPx"]) + abs(delta) * px) / abs(new)
        else:
            entry = float(pos["entryPx"])  # reduced
        book.positions[coin] = {"szi": new, "entryPx": entry}


def _decimals_ok(x: Decimal, max_decimals: int) -> bool:
    exponent = x.normalize().as_tuple().exponent
    return isinstance(exponent, int) and -exponent <= max_decimals


def _price_ok(px: Decimal, sz_decimals: int) -> bool:
    """5 significant figures at most (integers always allowed) and at most 6 - szDecimals decimals."""
    norm = px.normalize()
    if norm == norm.to_integral_value():
        return True
    if not _decimals_ok(norm, 6 - sz_decimals):
        return False
    return len(norm.as_tuple().digits) <= 5
