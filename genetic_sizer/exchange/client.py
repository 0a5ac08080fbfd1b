"""Hyperliquid access: credentials, typed records, exchange rounding rules and a retrying client.

This is the only module that imports the Hyperliquid SDK (``hyperliquid-python-sdk``), and it does so
lazily inside functions, so ``import genetic_sizer.exchange.client`` stays cheap. Everything the API returns
arrives as strings; it is converted and validated here, and a missing or non-finite field raises
:class:`~genetic_sizer.errors.ExchangeError` naming the field.

Order placement (:meth:`HyperliquidClient.place_orders`) sends ONE bulk request of IOC limit orders,
each carrying a client order id (cloid) and an expiry (``expiresAfter``). Transport failures (timeouts,
dropped connections, HTTP 5xx) leave a request's outcome unknown; they are retried, but never blindly:
the client first waits until the lost request has expired, then looks every unconfirmed order up (by
cloid, in the user's fills) and compares the positions with those before the request; only an order
found nowhere, in a coin whose position has not moved, is sent again. See :meth:`place_orders` for
exactly what this guarantees and on what it relies.

Secrets: the signing key comes from ``HL_SECRET_KEY`` or an encrypted keystore file; no message,
``repr`` or log line written here contains the key or the keystore password.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import os
import random
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from genetic_sizer.data.prices import INTERVAL_MS
from genetic_sizer.errors import ConfigError, ExchangeError, RetryableExchangeError
from genetic_sizer.exchange.rounding import finite_positive as _finite_positive
from genetic_sizer.exchange.rounding import limit_price, round_price, round_size  # re-exported: the exchange's rules
from genetic_sizer.live.sizer import AssetInfo

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

__all__ = [
    "ENV_ACCOUNT_ADDRESS",
    "ENV_KEYSTORE",
    "ENV_KEYSTORE_PASSWORD",
    "ENV_SECRET_KEY",
    "MAINNET_API_URL",
    "NETWORKS",
    "TESTNET_API_URL",
    "AccountState",
    "AssetContext",
    "AssetMeta",
    "Credentials",
    "HyperliquidClient",
    "OrderIntent",
    "OrderResult",
    "account_address",
    "check_address",
    "create_keystore",
    "is_mainnet",
    "limit_price",
    "load_credentials",
    "load_wallet",
    "make_cloid",
    "resolve_base_url",
    "round_price",
    "round_size",
]

# Same values as hyperliquid.utils.constants (checked by a test); copied so that importing this
# module does not import the SDK.
MAINNET_API_URL = "https://api.hyperliquid.xyz"
TESTNET_API_URL = "https://api.hyperliquid-testnet.xyz"
NETWORKS: dict[str, str] = {"mainnet": MAINNET_API_URL, "testnet": TESTNET_API_URL}

ENV_SECRET_KEY = "HL_SECRET_KEY"
ENV_KEYSTORE = "HL_KEYSTORE"
ENV_KEYSTORE_PASSWORD = "HL_KEYSTORE_PASSWORD"
ENV_ACCOUNT_ADDRESS = "HL_ACCOUNT_ADDRESS"


_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_CLOID_RE = re.compile(r"0x[0-9a-f]{32}")

# Shortest possible length of each candle interval, to know when no further candle can start in a range.
_INTERVAL_MS = {**INTERVAL_MS, "1M": 28 * INTERVAL_MS["1d"]}


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


# ---------------------------------------------------------------------------------------------- credentials
@dataclass(frozen=True, repr=False)
class Credentials:
    """A signing wallet (the account itself or an API wallet) and the account it trades for.

    The ``repr`` shows addresses only, never the key."""

    wallet: LocalAccount
    account_address: str

    @property
    def signer_address(self) -> str:
        return self.wallet.address

    @property
    def is_agent(self) -> bool:
        """True when the wallet is an API wallet acting for a different (main) account."""
        return self.wallet.address.lower() != self.account_address.lower()

    def __repr__(self) -> str:
        return f"Credentials(signer={self.wallet.address!r}, account_address={self.account_address!r})"

    __str__ = __repr__


def _account_from_key(secret: str | bytes, source: str) -> LocalAccount:
    from eth_account import Account

    try:
        return Account.from_key(secret)
    except Exception:  # binascii.Error, ValueError, ...: never echo the value
        raise ConfigError(
            f"{source} is not a valid private key (expected 32 bytes as 64 hex digits, optionally 0x-prefixed)"
        ) from None


def _decrypt_keystore(path: Path, env: Mapping[str, str], password_prompt: Callable[[str], str]) -> LocalAccount:
    from eth_account import Account

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read keystore {str(path)!r}: {exc.strerror or type(exc).__name__}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError(f"keystore {str(path)!r} is not JSON") from None
    if not isinstance(data, dict) or not ({"crypto", "Crypto"} & set(data)):
        raise ConfigError(f"keystore {str(path)!r} is not an encrypted key file (no 'crypto' section)")
    password = env.get(ENV_KEYSTORE_PASSWORD)
    if password is None:
        password = password_prompt(f"Password for keystore {path}: ")
    try:
        key = Account.decrypt(data, password)
    except ValueError as exc:
        if "mac mismatch" in str(exc).lower():
            raise ConfigError(f"wrong password for keystore {str(path)!r}") from None
        raise ConfigError(f"keystore {str(path)!r} could not be decrypted ({type(exc).__name__})") from None
    except Exception as exc:
        raise ConfigError(f"keystore {str(path)!r} could not be decrypted ({type(exc).__name__})") from None
    return _account_from_key(bytes(key), f"keystore {str(path)!r}")


def load_wallet(
    keystore: str | Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    password_prompt: Callable[[str], str] = getpass.getpass,
) -> LocalAccount:
    """The signing wallet (an ``eth_account`` LocalAccount).

    Sources, first match wins: the ``keystore`` argument (an encrypted JSON key file), ``HL_SECRET_KEY``
    (hex private key), ``HL_KEYSTORE`` (path of a key file). A key file's password comes from
    ``HL_KEYSTORE_PASSWORD`` or else ``password_prompt``. Problems raise ConfigError; no message
    contains the key or the password."""
    if keystore is None:
        secret = (env.get(ENV_SECRET_KEY) or "").strip()
        if secret:
            return _account_from_key(secret, ENV_SECRET_KEY)
        keystore = (env.get(ENV_KEYSTORE) or "").strip() or None
    if keystore is None:
        raise ConfigError(
            f"no Hyperliquid signing key: set {ENV_SECRET_KEY}, or give an encrypted keystore file "
            f"(argument or {ENV_KEYSTORE}) with its password in {ENV_KEYSTORE_PASSWORD} or at the prompt"
        )
    return _decrypt_keystore(Path(keystore).expanduser(), env, password_prompt)


def account_address(wallet: LocalAccount, *, env: Mapping[str, str] = os.environ) -> str:
    """The account traded: ``HL_ACCOUNT_ADDRESS`` (the main account an API wallet acts for) or else the
    wallet's own address."""
    raw = (env.get(ENV_ACCOUNT_ADDRESS) or "").strip()
    if not raw:
        return wallet.address
    return check_address(raw, ENV_ACCOUNT_ADDRESS)


def check_address(raw: str, source: str) -> str:
    """``raw`` if it is an address (0x + 40 hex digits), else ConfigError naming ``source``.

    The value is not echoed: a private key pasted into the wrong place must not end up in a log."""
    raw = (raw or "").strip()
    if not _ADDRESS_RE.fullmatch(raw):
        raise ConfigError(f"{source} must be an address: 0x followed by 40 hex digits (got {len(raw)} characters)")
    return raw


def load_credentials(
    keystore: str | Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    password_prompt: Callable[[str], str] = getpass.getpass,
) -> Credentials:
    """:func:`load_wallet` and :func:`account_address` together."""
    wallet = load_wallet(keystore, env=env, password_prompt=password_prompt)
    return Credentials(wallet=wallet, account_address=account_address(wallet, env=env))


def create_keystore(
    path: str | Path,
    private_key: str | bytes,
    password: str,
    *,
    kdf: Literal["scrypt", "pbkdf2"] = "scrypt",
    iterations: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``private_key`` encrypted with ``password`` as an Ethereum keystore JSON file (mode 0600),
    readable by :func:`load_wallet`. Refuses to overwrite an existing file unless ``overwrite``."""
    from eth_account import Account

    path = Path(path).expanduser()
    wallet = _account_from_key(private_key, "private_key")
    data = Account.encrypt(wallet.key, password, kdf=kdf, iterations=iterations)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConfigError(f"keystore {str(path)!r} already exists") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    return path


# ---------------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class AssetMeta(AssetInfo):
    """One perpetual of the exchange's universe: what the sizer needs (:class:`~genetic_sizer.live.sizer.AssetInfo`)
    plus ``index``, the asset id used in orders."""

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
    refuse a cloid it has already seen (a safeguard :meth:`HyperliquidClient.place_orders` does not
    rely on), and lookups by cloid must find this rebalance's order, not an older one."""
    return "0x" + hashlib.sha256(seed_text.encode("utf-8")).hexdigest()[:32]


def _random_cloid() -> str:
    return "0x" + secrets.token_hex(16)


@dataclass(frozen=True)
class OrderIntent:
    """One IOC limit order to send. ``size`` > 0 in coins and ``limit_px`` > 0 should already be rounded
    (:func:`round_size`, :func:`limit_price`); ``cloid`` defaults to a random id."""

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


# ---------------------------------------------------------------------------------------------- client
class _GarbledResponse(Exception):
    """HTTP 200 whose body was not JSON (the SDK answers ``{"error": "Could not parse JSON: ..."}``)."""


def _transport_errors() -> tuple[type[BaseException], ...]:
    import requests
    from hyperliquid.utils.error import ServerError

    return (
        requests.exceptions.Timeout,
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        ServerError,
        _GarbledResponse,
    )


def _rate_limited(exc: BaseException) -> bool:
    """HTTP 429 (too many requests): the SDK raises it as a ClientError, but it is transient."""
    return getattr(exc, "status_code", None) == 429


MAX_RETRY_AFTER = 60.0
"""The longest Retry-After (seconds) honoured in one wait; a longer one is waited in several steps by the
caller (the live loop retries a pass within its period)."""


def _retry_after(exc: BaseException | None) -> float | None:
    """Seconds an HTTP 429 asked to wait (its Retry-After header: seconds or an HTTP date), else None.

    The SDK puts the headers in ``header`` for a JSON body and in ``error_data`` otherwise."""
    if exc is None or getattr(exc, "status_code", None) != 429:
        return None
    for headers in (getattr(exc, "header", None), getattr(exc, "error_data", None)):
        if not isinstance(headers, Mapping) and not hasattr(headers, "get"):
            continue
        try:
            raw = headers.get("Retry-After")
        except Exception:
            continue
        if raw is None:
            continue
        text = str(raw).strip()
        try:
            seconds = float(text)
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                seconds = parsedate_to_datetime(text).timestamp() - time.time()
            except (TypeError, ValueError):
                continue
        if math.isfinite(seconds):
            return min(max(seconds, 0.0), MAX_RETRY_AFTER)
    return None


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown failure"
    import requests

    if isinstance(exc, requests.exceptions.Timeout):
        return "request timed out"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"connection failed ({type(exc).__name__})"
    status = getattr(exc, "status_code", None)
    if status is not None:
        text = str(getattr(exc, "message", None) or getattr(exc, "error_message", None) or "")
        return f"HTTP {status} {text[:200]}".rstrip()
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _check_garbled(response: Any) -> Any:
    if (
        isinstance(response, dict)
        and set(response) == {"error"}
        and str(response["error"]).startswith("Could not parse JSON")
    ):
        raise _GarbledResponse(str(response["error"])[:200])
    return response


class HyperliquidClient:
    """Typed, retrying access to one Hyperliquid API (``base_url``) through the official SDK.

    Reads (meta, mids, account, candles, funding) are retried on transport failures; orders need
    ``credentials`` and are retried without ever duplicating an order (see :meth:`place_orders`).
    The SDK objects are built on first use (two requests: ``meta`` and ``spotMeta``).

    Errors: :class:`RetryableExchangeError` when transport failures outlast ``max_retries`` retries,
    :class:`ExchangeError` for refused requests (``{"status": "err"}``, HTTP 4xx) and malformed answers.

    ``clock_tolerance`` (seconds) is the largest difference between this machine's clock and the
    exchange's that order placement accepts; it also pads every order request's expiry and the wait
    after a lost request (see :meth:`place_orders`).

    Retries back off exponentially with jitter: the n-th wait is drawn uniformly from
    [d/2, d] with d = ``backoff`` x 2^(n-1) (at most 30 s), and is at least the Retry-After an HTTP 429
    asked for (up to :data:`MAX_RETRY_AFTER`). ``rng`` (a ``random.Random``) makes the jitter reproducible.
    """

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.2,
        clock_tolerance: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if not (isinstance(backoff, int | float) and math.isfinite(backoff) and backoff >= 0):
            raise ConfigError(f"backoff must be >= 0 seconds, got {backoff!r}")
        if not (isinstance(clock_tolerance, int | float) and math.isfinite(clock_tolerance) and clock_tolerance > 0):
            raise ConfigError(f"clock_tolerance must be > 0 seconds, got {clock_tolerance!r}")
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.clock_tolerance = float(clock_tolerance)
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._info: Any = None
        self._exchange: Any = None
        self._fresh_meta: Any = None
        self._last_nonce_ms = 0
        self._expires_ms = 0
        self._on_request: Callable[[int, list[OrderIntent]], None] | None = None

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
        for api in (self._info, self._exchange):
            if api is not None:
                api.session.close()
        if self._exchange is not None:
            self._exchange.info.session.close()

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
        return self._expires_ms

    def _delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """The wait before retry number ``attempt`` (1, 2, ...): exponential backoff with jitter, at least
        the Retry-After of an HTTP 429."""
        full = min(self.backoff * 2 ** (max(attempt, 1) - 1), 30.0)
        wait = full / 2 + self._rng.uniform(0.0, full / 2)
        asked = _retry_after(exc)
        return max(wait, asked) if asked is not None else wait

    def _retrying(self, what: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` (an idempotent read), retried on transport failures and HTTP 429; other 4xx -> ExchangeError."""
        from hyperliquid.utils.error import ClientError

        transport = _transport_errors()
        last: BaseException | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep(self._delay(attempt, last))
            try:
                return _check_garbled(fn())
            except transport as exc:
                last = exc
            except ClientError as exc:
                if not _rate_limited(exc):
                    raise ExchangeError(f"{what}: {_describe(exc)}") from None
                last = exc
        err = RetryableExchangeError(
            f"{what} at {self.base_url}: {_describe(last)}; gave up after {self.max_retries + 1} attempts"
        )
        err.retry_after = _retry_after(last)
        raise err from last

    def _ensure(self) -> Any:
        if self._info is not None:
            return self._info
        from hyperliquid.api import API
        from hyperliquid.info import Info

        raw = API(self.base_url, timeout=self.timeout)
        try:
            meta = self._retrying("meta", lambda: raw.post("/info", {"type": "meta", "dex": ""}))
            spot = self._retrying("spotMeta", lambda: raw.post("/info", {"type": "spotMeta"}))
        finally:
            raw.session.close()
        _parse_meta(meta)  # validates before the SDK indexes into it
        if not isinstance(spot, dict) or not isinstance(spot.get("universe"), list):
            raise ExchangeError("field spotMeta.universe is missing in the exchange's answer")
        if not isinstance(spot.get("tokens"), list):
            raise ExchangeError("field spotMeta.tokens is missing in the exchange's answer")
        try:
            info = Info(self.base_url, skip_ws=True, meta=meta, spot_meta=spot, timeout=self.timeout)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ExchangeError(f"spotMeta is malformed ({type(exc).__name__}: {exc})") from None
        if self.credentials is not None:
            from hyperliquid.exchange import Exchange

            self._exchange = Exchange(
                self.credentials.wallet,
                self.base_url,
                meta=meta,
                spot_meta=spot,
                account_address=self.credentials.account_address,
                timeout=self.timeout,
            )
        self._info = info
        self._fresh_meta = meta
        return info

    def _coin(self, coin: str) -> str:
        info = self._ensure()
        if coin not in info.name_to_coin:
            raise ExchangeError(f"unknown coin {coin!r}: not in the exchange's universe")
        return info.name_to_coin[coin]

    def _require_account(self) -> str:
        if self.credentials is None:
            raise ConfigError("this call needs credentials (HyperliquidClient(..., credentials=...))")
        return self.credentials.account_address

    # ------------------------------------------------------------------ reads
    def meta(self) -> dict[str, AssetMeta]:
        """The perpetual universe: name -> AssetMeta (delisted assets included, flagged)."""
        info = self._ensure()
        raw, self._fresh_meta = self._fresh_meta, None
        if raw is None:
            raw = self._retrying("meta", info.meta)
        assets = _parse_meta(raw)
        # Keep the SDK's name -> asset maps current (a new listing after the client was built).
        info.set_perp_meta(raw, 0)
        if self._exchange is not None:
            self._exchange.info.set_perp_meta(raw, 0)
        return assets

    def mids(self) -> dict[str, float]:
        """Mid prices of every traded coin (coin -> price)."""
        info = self._ensure()
        raw = self._retrying("allMids", info.all_mids)
        if not isinstance(raw, dict):
            raise ExchangeError(f"allMids must be an object, got {type(raw).__name__}")
        return {str(coin): _number(px, f"allMids.{coin}") for coin, px in raw.items()}

    def account(self, address: str | None = None) -> AccountState:
        """Margin summary and positions of ``address`` (default: the credentials' account)."""
        info = self._ensure()
        user = address if address is not None else self._require_account()
        raw = self._retrying("clearinghouseState", lambda: info.user_state(user))
        return _parse_account(raw, user)

    def asset_contexts(self) -> dict[str, AssetContext]:
        """Mark and oracle prices (and the book's mid when there is one) of every perpetual
        (``metaAndAssetCtxs``): coin -> :class:`AssetContext`."""
        info = self._ensure()
        raw = self._retrying("metaAndAssetCtxs", info.meta_and_asset_ctxs)
        if not isinstance(raw, list) or len(raw) != 2:
            raise ExchangeError(f"metaAndAssetCtxs must be a list [meta, contexts], got {type(raw).__name__}")
        assets = _parse_meta(raw[0])
        ctxs = _list(raw[1], "metaAndAssetCtxs[1]")
        if len(ctxs) != len(assets):
            raise ExchangeError(f"metaAndAssetCtxs has {len(ctxs)} contexts for {len(assets)} assets")
        out: dict[str, AssetContext] = {}
        for (name, _), ctx in zip(assets.items(), ctxs, strict=True):
            where = f"metaAndAssetCtxs.{name}"
            mid = ctx.get("midPx") if isinstance(ctx, Mapping) else None
            out[name] = AssetContext(
                coin=name,
                mark_px=_number(_field(ctx, "markPx", where), f"{where}.markPx"),
                oracle_px=_number(_field(ctx, "oraclePx", where), f"{where}.oraclePx"),
                mid_px=_number(mid, f"{where}.midPx") if mid is not None else None,
            )
        return out

    def candles(
        self,
        coin: str,
        interval: str,
        start_ms: int,
        end_ms: int,
        *,
        on_page: Callable[[int, int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Every candle with open time ``t`` in [start_ms, end_ms], ascending, each exactly once.

        candleSnapshot answers at most the newest 5000 candles of a range, so this pages: after each
        answer it asks again for the parts of the range the answer did not cover (before its oldest and
        after its newest candle), until a part is provably empty, answers nothing, or adds nothing new.
        Numbers are converted (t, T, n int; o, h, l, c, v float). ``on_page(pages, candles_so_far)``
        is called after each answer."""
        info = self._ensure()
        name = self._coin(coin)
        start, end = int(start_ms), int(end_ms)
        if start > end:
            raise ValueError(f"start_ms {start_ms} is after end_ms {end_ms}")
        step = _INTERVAL_MS.get(interval, 1)
        seen: dict[int, dict[str, Any]] = {}
        gaps = [(start, end)]
        pages = 0
        while gaps:
            lo, hi = gaps.pop()
            raw = self._retrying(
                f"candleSnapshot {coin} {interval}",
                lambda lo=lo, hi=hi: info.candles_snapshot(name, interval, lo, hi),
            )
            page = [
                _parse_candle(c, f"candleSnapshot[{k}]")
                for k, c in enumerate(_list(raw, f"candleSnapshot {coin} {interval}"))
            ]
            page = [c for c in page if lo <= c["t"] <= hi]
            new = [c for c in page if c["t"] not in seen]
            for c in new:
                seen[c["t"]] = c
            pages += 1
            if on_page is not None:
                on_page(pages, len(seen))
            if not new:
                continue
            oldest = min(c["t"] for c in page)
            newest = max(c["t"] for c in page)
            if newest + step <= hi:
                gaps.append((newest + 1, hi))
            if oldest - step >= lo:
                gaps.append((lo, oldest - 1))
        return [seen[t] for t in sorted(seen)]

    def funding(
        self,
        coin: str,
        start_ms: int,
        end_ms: int,
        *,
        on_page: Callable[[int, int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Funding rows {coin, fundingRate, premium, time} with time in [start_ms, end_ms], ascending.

        fundingHistory answers at most 500 rows, oldest first: pages forward from the newest row seen
        until an answer adds nothing. ``on_page(pages, rows_so_far)`` is called after each answer."""
        info = self._ensure()
        name = self._coin(coin)
        start, end = int(start_ms), int(end_ms)
        if start > end:
            raise ValueError(f"start_ms {start_ms} is after end_ms {end_ms}")
        seen: dict[int, dict[str, Any]] = {}
        cursor = start
        pages = 0
        while cursor <= end:
            raw = self._retrying(
                f"fundingHistory {coin}",
                lambda cursor=cursor: info.funding_history(name, cursor, end),
            )
            rows = [_parse_funding(r, f"fundingHistory[{k}]") for k, r in enumerate(_list(raw, "fundingHistory"))]
            new = [r for r in rows if cursor <= r["time"] <= end and r["time"] not in seen]
            for r in new:
                seen[r["time"]] = r
            pages += 1
            if on_page is not None:
                on_page(pages, len(seen))
            if not new:
                break
            cursor = max(r["time"] for r in new) + 1
        return [seen[t] for t in sorted(seen)]

    # ------------------------------------------------------------------ orders
    def lookup_orders(self, intents: Sequence[OrderIntent]) -> dict[str, OrderResult]:
        """What the exchange knows of these orders, by cloid: cloid -> OrderResult for every order it reports
        (orderStatus by cloid, else the user's fills carrying the cloid); orders it does not know are absent.

        Read-only and retried like every read. Used to settle orders whose outcome a lost answer or a killed
        process left unknown, and to check that a cloid is unused before an order is sent with it."""
        intents = list(intents)
        if not intents:
            return {}
        self._require_account()
        found: dict[str, OrderResult] = {}
        fills: list[Any] | None = None
        for intent in intents:
            hit = self._retrying("orderStatus", lambda intent=intent, fills=fills: self._lookup(intent, fills))
            if hit is not None:
                found[intent.cloid], fills = hit
        rest = [i for i in intents if i.cloid not in found]
        if rest:
            if fills is None:
                user = self._require_account()
                info = self._ensure()
                raw = self._retrying("userFills", lambda: info.user_fills(user))
                fills = raw if isinstance(raw, list) else []
            for intent in rest:
                result = self._from_fills(intent, fills)
                if result is not None:
                    found[intent.cloid] = result
        return found

    @staticmethod
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
        self._require_account()
        for intent in intents:
            if not isinstance(intent, OrderIntent):
                raise TypeError(f"place_orders takes OrderIntent objects, got {type(intent).__name__}")
        cloids = [i.cloid for i in intents]
        if len(set(cloids)) != len(cloids):
            dup = next(c for c in cloids if cloids.count(c) > 1)
            raise ValueError(f"two orders share the cloid {dup}; every order needs its own")
        for intent in intents:
            self._coin(intent.coin)

        results: dict[str, OrderResult] = {}
        pending: list[OrderIntent] = []
        for intent in intents:
            problem = self._unsendable(intent)
            if problem is None:
                pending.append(intent)
            else:
                results[intent.cloid] = OrderResult(intent.coin, intent.cloid, "rejected", error=problem)
        if not pending:
            return [results[i.cloid] for i in intents]
        try:
            baseline = self._baseline_positions()
        except ExchangeError as exc:  # nothing sent yet
            raise self._with_results(exc, results) from exc.__cause__

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
                self._sleep(max(self._delay(failures, last_exc), deadline - time.time()))
                try:
                    fresh, doubtful = self._reconcile(intents, pending, results, baseline)
                except (*transport, ClientError) as exc:
                    if isinstance(exc, ClientError) and not _rate_limited(exc):
                        err = ExchangeError(f"looking orders up by cloid: {_describe(exc)}")
                        raise self._with_results(err, results, pending) from None
                    last, last_exc, unknown = _describe(exc), exc, list(pending)
                    failures += 1
                    if failures > self.max_retries + 1:
                        break
                    continue
                except ExchangeError as exc:  # a malformed answer: what the lost request did stays unknown
                    raise self._with_results(exc, results, [i for i in pending if i.cloid not in results]) from None
                pending = [i for i in pending if i in fresh or i in doubtful]
                if doubtful:
                    unknown = doubtful
                    coins = sorted({i.coin for i in doubtful})
                    last = f"the position in {', '.join(coins)} moved but the exchange does not report the order"
                    failures += 1
                    if failures > self.max_retries + 1:
                        break
                    continue
                in_doubt, unknown = False, []
                if not pending or failures > self.max_retries:
                    break
            try:
                response = _check_garbled(self._send_orders(pending))
            except (*transport, ClientError) as exc:
                if isinstance(exc, ClientError) and not _rate_limited(exc):
                    err = ExchangeError(f"order request refused: {_describe(exc)}")
                    raise self._with_results(err, results) from None
                last, last_exc, unknown = _describe(exc), exc, list(pending)
                failures += 1
                in_doubt = True
                deadline = self._expires_ms / 1000 + self.clock_tolerance
                continue
            if isinstance(response, dict) and response.get("status") == "err":  # refused whole: nothing executed
                err = ExchangeError(f"the exchange refused the order request: {response.get('response')}")
                raise self._with_results(err, results) from None
            try:
                statuses = self._order_statuses(response, len(pending))
                for intent, status in zip(pending, statuses, strict=True):
                    result = self._result_from_status(intent, status)
                    if result.status == "rejected" and "duplicate" in (result.error or "").lower():
                        # This cloid was placed before (an earlier call, or a request the lookup raced):
                        # report that order's outcome instead of a rejection.
                        known = self._retrying("orderStatus", lambda intent=intent: self._lookup(intent))
                        if known is not None:
                            result = known[0]
                    results[intent.cloid] = result
            except ExchangeError as exc:  # the request was processed but its answer is malformed: outcome unknown
                raise self._with_results(exc, results, [i for i in pending if i.cloid not in results]) from None
            pending = []
        pending = [i for i in pending if i.cloid not in results]  # a lookup may have settled some
        unknown = [i for i in unknown if i.cloid not in results]
        if pending:
            text = (
                f"placing {len(intents)} orders at {self.base_url}: {last}; gave up after {failures} failed "
                f"attempts; {len(results)} of {len(intents)} orders have a known outcome"
            )
            if unknown:
                text += f"; outcome UNKNOWN for {', '.join(i.coin for i in unknown)} (not sent again)"
            unsent = [i for i in pending if i not in unknown]
            if unsent:
                text += f"; never executed, not sent again: {', '.join(i.coin for i in unsent)}"
            err = RetryableExchangeError(text)
            err.retry_after = _retry_after(last_exc)
            raise self._with_results(err, results, unknown)
        return [results[i.cloid] for i in intents]

    @staticmethod
    def _with_results(
        err: ExchangeError, results: dict[str, OrderResult], unknown: Sequence[OrderIntent] = ()
    ) -> ExchangeError:
        err.results = dict(results)  # type: ignore[attr-defined]
        err.unknown = [i.cloid for i in unknown]  # type: ignore[attr-defined]
        return err

    def _baseline_positions(self) -> dict[str, float]:
        """The positions before an order request (what a lost request is measured against); checks that
        this machine's clock agrees with the exchange's within ``clock_tolerance``."""
        before = time.time()
        state = self.account()
        after = time.time()
        if state.time_ms is not None:
            skew = state.time_ms / 1000 - (before + after) / 2
            if abs(skew) > self.clock_tolerance + (after - before) / 2:
                raise ConfigError(
                    f"this machine's clock is {abs(skew):.1f} s {'behind' if skew > 0 else 'ahead of'} the "
                    f"exchange's (clock_tolerance {self.clock_tolerance:g} s); synchronize it (NTP) before "
                    "trading: order retries rely on it to know when a lost request can no longer execute"
                )
        return dict(state.positions)

    @staticmethod
    def _unsendable(intent: OrderIntent) -> str | None:
        """Why the SDK could not put this order on the wire exactly (it allows 8 decimals at most)."""
        from hyperliquid.utils.signing import float_to_wire

        for name, value in (("size", intent.size), ("price", intent.limit_px)):
            try:
                float_to_wire(value)
            except ValueError:
                return f"{name} {value!r} has more than 8 decimals; round it first (round_size / round_price)"
        return None

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
        self._expires_ms = int((time.time() + self.timeout + self.clock_tolerance) * 1000)
        if self._on_request is not None:
            self._on_request(self._expires_ms, list(pending))
        self._exchange.set_expires_after(self._expires_ms)
        try:
            return self._exchange.bulk_orders(requests_)
        finally:
            self._last_nonce_ms = int(time.time() * 1000)

    @staticmethod
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

    @staticmethod
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

    def _reconcile(
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
        info = self._ensure()
        user = self._require_account()
        unseen: list[OrderIntent] = []
        fills: list[Any] | None = None
        for intent in pending:
            found = self._lookup(intent, fills)
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
            found = self._from_fills(intent, fills)
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

    def _lookup(
        self, intent: OrderIntent, fills: list[Any] | None = None
    ) -> tuple[OrderResult, list[Any] | None] | None:
        """(OrderResult, the user's fills if fetched) for an order the exchange knows by cloid, None if
        it does not. Transport errors propagate (to the retry loop of the caller)."""
        from hyperliquid.utils.types import Cloid

        info = self._ensure()
        user = self._require_account()
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
            avg_px = self._vwap(fills, oid)
        if status == "open":
            result = OrderResult(intent.coin, intent.cloid, "resting", filled_size=filled, avg_px=avg_px, oid=oid)
        elif filled > 0:
            result = OrderResult(intent.coin, intent.cloid, "filled", filled_size=filled, avg_px=avg_px, oid=oid)
        else:
            result = OrderResult(intent.coin, intent.cloid, "rejected", oid=oid, error=f"order {status}")
        return result, fills

    @staticmethod
    def _vwap(fills: list[Any], oid: int) -> float | None:
        notional = size = 0.0
        for f in fills:
            if isinstance(f, dict) and f.get("oid") == oid:
                px = _number(f.get("px"), "userFills.px")
                sz = _number(f.get("sz"), "userFills.sz")
                notional += px * sz
                size += sz
        return notional / size if size > 0 else None
