"""The connection to one Hyperliquid API that the client's parts share: its settings, the SDK objects
(built on first use) and the retry loop of idempotent reads.

The SDK is imported inside the methods, so importing this module stays cheap.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

from genetic_sizer.errors import ConfigError, ExchangeError, RetryableExchangeError
from genetic_sizer.exchange.credentials import Credentials
from genetic_sizer.exchange.retry import (
    _check_garbled,
    _describe,
    _harden,
    _rate_limited,
    _retry_after,
    _transport_errors,
)
from genetic_sizer.exchange.wire import _parse_meta

__all__ = ["DEFAULT_CLOCK_TOLERANCE", "Transport"]

DEFAULT_CLOCK_TOLERANCE = 15.0
"""Seconds this machine's clock may differ from the exchange's (``clock_tolerance``, ``--clock-tolerance``): wide
enough for an exchange clock (or an API node) 2-10 s behind, which is seen in practice; every order request's
expiry is padded by it, so a lost request is waited out for ``timeout`` + 2 x this before it is looked up."""


class Transport:
    """Settings, SDK objects and read retries of one API (``base_url``); see
    :class:`~genetic_sizer.exchange.client.HyperliquidClient` for what the settings mean.

    The SDK objects are built on first use (two requests: ``meta`` and ``spotMeta``): ``info`` (the SDK's
    Info) and, with ``credentials``, ``exchange`` (the SDK's Exchange, which signs). ``fresh_meta`` is the
    ``meta`` answer fetched while building them, until the first
    :meth:`~genetic_sizer.exchange.info.InfoReader.meta` call uses it."""

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
        self.sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self.info: Any = None
        self.exchange: Any = None
        self.fresh_meta: Any = None
        self.vault_address: str | None = None  # sent with every action: the sub-account or vault traded

    def close(self) -> None:
        for api in (self.info, self.exchange):
            if api is not None:
                api.session.close()
        if self.exchange is not None:
            self.exchange.info.session.close()

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """The wait before retry number ``attempt`` (1, 2, ...): exponential backoff with jitter, at least
        the Retry-After of an HTTP 429."""
        full = min(self.backoff * 2 ** (max(attempt, 1) - 1), 30.0)
        wait = full / 2 + self._rng.uniform(0.0, full / 2)
        asked = _retry_after(exc)
        return max(wait, asked) if asked is not None else wait

    def retrying(self, what: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` (an idempotent read), retried on transport failures and HTTP 429; other 4xx -> ExchangeError."""
        from hyperliquid.utils.error import ClientError

        transport = _transport_errors()
        last: BaseException | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.sleep(self.delay(attempt, last))
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

    def ensure(self) -> Any:
        """The SDK's Info object, built (with the Exchange object, given credentials) on first use."""
        if self.info is not None:
            return self.info
        from hyperliquid.api import API
        from hyperliquid.info import Info

        raw = _harden(API(self.base_url, timeout=self.timeout))
        try:
            meta = self.retrying("meta", lambda: raw.post("/info", {"type": "meta", "dex": ""}))
            spot = self.retrying("spotMeta", lambda: raw.post("/info", {"type": "spotMeta"}))
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

            self.exchange = Exchange(
                self.credentials.wallet,
                self.base_url,
                meta=meta,
                spot_meta=spot,
                account_address=self.credentials.account_address,
                vault_address=self.vault_address,
                timeout=self.timeout,
            )
        for api in (info, self.exchange, getattr(self.exchange, "info", None)):
            if api is not None:
                _harden(api)
        self.info = info
        self.fresh_meta = meta
        return info

    def coin(self, coin: str) -> str:
        """The SDK's name of ``coin``; ExchangeError if the exchange does not list it."""
        info = self.ensure()
        if coin not in info.name_to_coin:
            raise ExchangeError(f"unknown coin {coin!r}: not in the exchange's universe")
        return info.name_to_coin[coin]

    def require_credentials(self) -> Credentials:
        """The credentials; ConfigError without them."""
        if self.credentials is None:
            raise ConfigError("this call needs credentials (HyperliquidClient(..., credentials=...))")
        return self.credentials

    def require_account(self) -> str:
        """The traded account's address; ConfigError without credentials."""
        if self.credentials is None:
            raise ConfigError("this call needs credentials (HyperliquidClient(..., credentials=...))")
        return self.credentials.account_address
