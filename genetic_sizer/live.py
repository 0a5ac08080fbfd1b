"""Live work against Hyperliquid: fetching history for evolution, and sizing positions from a champion.

Orchestration only: the exchange adapter (:mod:`genetic_sizer.exchange`) talks to the SDK, the sizer
(:mod:`genetic_sizer.sizer`) computes the plan, :mod:`genetic_sizer.data` owns the files. Nothing here
sees the secret key; the journal records plans and results, never credentials.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from genetic_sizer import data as D
from genetic_sizer.champion import Champion
from genetic_sizer.errors import ConfigError, ExchangeError, GeneticSizerError, RetryableExchangeError
from genetic_sizer.exchange import ENV_ACCOUNT_ADDRESS, Credentials, check_address
from genetic_sizer.sizer import DEFAULT_SLIPPAGE, Plan, SizerSettings, plan_orders

__all__ = [
    "DEFAULT_SLIPPAGE",
    "EXIT_BAD_INPUT",
    "EXIT_EXCHANGE_ERROR",
    "EXIT_OK",
    "LoopResult",
    "SizeResult",
    "append_journal",
    "check_coins",
    "fetch_history",
    "jsonable",
    "parse_period",
    "resolve_account",
    "run_every",
    "size_once",
]

EXIT_OK = 0
"""The loop ended normally (Ctrl-C or ``max_passes``)."""
EXIT_BAD_INPUT = 2
"""Bad input: a config, champion or sizing error that another pass would not fix."""
EXIT_EXCHANGE_ERROR = 5
"""A permanent exchange error (refused request, bad signature, unknown coin) stopped the loop."""


def _ms(value, name: str) -> int:
    try:
        ts = D._parse_bound(value, name)
    except Exception:
        raise ConfigError(f"--{name} must be a date or time, got {value!r}") from None
    return int(ts.value // 1_000_000)


def check_coins(coins, listed) -> None:
    """Raise ConfigError for coins the exchange does not list, naming the nearest valid names."""
    for coin in coins:
        if coin not in listed:
            near = difflib.get_close_matches(coin, list(listed), n=3, cutoff=0.4) or difflib.get_close_matches(
                coin.upper(), list(listed), n=3, cutoff=0.4
            )
            raise ConfigError(f"unknown coin {coin!r}; nearest listed names: {near or sorted(listed)[:5]}")


def fetch_history(
    client,
    coins,
    interval: str,
    start,
    end=None,
    out: str | Path = "data/hyperliquid.parquet",
    *,
    funding: bool = True,
    on_progress: Callable[[str, int], None] | None = None,
):
    """Fetch candles (and funding) for ``coins``, align them, save Parquet; return (Prices, report, paths)."""
    if interval not in D.INTERVAL_MS:
        raise ConfigError(f"--interval must be one of {list(D.INTERVAL_MS)}, got {interval!r}")
    start_ms = _ms(start, "start")
    end_ms = _ms(end, "end") if end is not None else int(time.time() * 1000)
    if end_ms <= start_ms:
        raise ConfigError(f"--end ({end}) must be after --start ({start})")
    check_coins(coins, client.meta())
    candles, rates = {}, {}
    for coin in coins:
        candles[coin] = client.candles(
            coin,
            interval,
            start_ms,
            end_ms,
            on_page=(lambda pages, n, c=coin: on_progress(c, n)) if on_progress else None,
        )
        if funding:
            rates[coin] = client.funding(coin, start_ms, end_ms)
    prices, report = D.prices_from_candles(candles, interval, source=f"hyperliquid:{Path(out).name}")
    paths = [D.save_parquet(prices, out)]
    if funding:
        paths.append(D.save_funding(rates, Path(out).with_suffix(".funding.parquet")))
    return prices, report, paths


# ---------------------------------------------------------------------------------------- accounts
def _mismatch(given: str, credentials: Credentials) -> str:
    whose = (
        f"{ENV_ACCOUNT_ADDRESS}, the account this API wallet ({credentials.signer_address}) acts for"
        if credentials.is_agent
        else "the key's own account"
    )
    return (
        f"--address {given} is not the account this key trades: its orders go to {credentials.account_address} "
        f"({whose}). Executing trades only the key's account, so sizing another one would trade on the wrong "
        f"equity and positions. To trade {given}, use its key, or an API wallet authorized for it with "
        f"{ENV_ACCOUNT_ADDRESS}={given}; to preview {given}, drop --execute"
    )


def resolve_account(
    address: str | None,
    credentials: Credentials | None,
    *,
    execute: bool,
    env: Mapping[str, str] = os.environ,
) -> str:
    """The account a sizing pass reads and, with ``execute``, trades.

    Executing trades the account the key acts for, and only that one: ``credentials.account_address``
    (``HL_ACCOUNT_ADDRESS`` for an API wallet, else the key's own address), since that is where the
    exchange books the signed orders. An ``address`` (``--address``) naming another account is refused
    with ConfigError: the pass would size that account's equity and positions but trade the key's.
    A dry run reads ``address`` if given, else the credentials' account, else ``HL_ACCOUNT_ADDRESS``.
    Messages name addresses only, never the key; an ``address`` that is not one is not echoed."""
    given = check_address(address, "--address") if address else None
    if execute:
        if credentials is None:
            raise ConfigError("--execute needs a signing key: set HL_SECRET_KEY or pass --keystore")
        if given is not None and given.lower() != credentials.account_address.lower():
            raise ConfigError(_mismatch(given, credentials))
        return credentials.account_address
    if given is not None:
        return given
    if credentials is not None:
        return credentials.account_address
    raw = (env.get(ENV_ACCOUNT_ADDRESS) or "").strip()
    if raw:
        return check_address(raw, ENV_ACCOUNT_ADDRESS)
    raise ConfigError(
        "no account to read: pass --address, set HL_ACCOUNT_ADDRESS, or provide a key (HL_SECRET_KEY or --keystore)"
    )


# ---------------------------------------------------------------------------------------- sizing
@dataclass
class SizeResult:
    """One sizing pass: the plan, what was sent and what came back, and the drift left afterwards.

    ``results`` holds every order whose outcome is known, including those accepted before a failure;
    ``unknown`` the coins of orders whose outcome could not be established; ``error`` what stopped
    the pass (None when it completed)."""

    time: str
    network: str
    address: str
    executed: bool
    plan: Plan
    results: list = field(default_factory=list)
    drift: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    unknown: list = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return {
            "time": self.time,
            "network": self.network,
            "address": self.address,
            "executed": self.executed,
            "plan": self.plan.to_dict(),
            "results": [asdict(r) if hasattr(r, "__dataclass_fields__") else r for r in self.results],
            "drift": self.drift,
            "errors": self.errors,
            "unknown": self.unknown,
            "error": self.error,
        }


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plan(client, champion: Champion, settings: SizerSettings, address: str, rebalance_due: bool = False):
    meta = client.meta()
    mids = client.mids()
    state = client.account(address)
    weights = dict(zip(champion.assets, (float(w) for w in champion.weights), strict=True))
    plan = plan_orders(weights, state.account_value, state.positions, mids, meta, settings, rebalance_due=rebalance_due)
    return plan, meta


def size_once(
    client,
    champion: Champion,
    settings: SizerSettings,
    *,
    address: str,
    network: str,
    execute: bool = False,
    journal: str | Path | None = None,
    run_id: str | None = None,
    rebalance_due: bool = False,
) -> SizeResult:
    """Plan (and with ``execute``, send) the orders that move the account to the champion's weights.

    With a drift band (``settings.drift_band``, the champion's threshold) the pass trades only when a coin has
    drifted past it or ``rebalance_due`` (the champion's calendar rebalance); otherwise it sends nothing. The
    plan records which rule fired (:class:`~genetic_sizer.sizer.Plan`).

    Reductions go in a first request and increases in a second, so the margin freed by the first funds the
    second. Every order is an IOC limit at the plan's limit price and carries a client order id derived from
    ``run_id``, the coin and its leg; a request lost in transit is never blindly resent (see
    :meth:`genetic_sizer.exchange.HyperliquidClient.place_orders`). After sending, the account is re-read
    and the residual drift per coin (target - position, in USD) is reported.

    With ``execute``, ``address`` must be the account ``client`` trades (see :func:`resolve_account`).

    The pass is journaled whatever happens once orders may have been sent. When sending fails (or is
    interrupted), the orders accepted before the failure are in the result and the journal, the failure
    is recorded in ``errors`` and ``error``, and the exception is raised again with the pass attached as
    its ``size_result`` attribute.
    """
    if execute:
        traded = getattr(client, "address", None)
        if traded is None:
            raise ConfigError("executing needs a client with credentials (the account it trades)")
        if traded.lower() != address.lower():
            raise ConfigError(f"address {address} is not the account this client trades ({traded}); refusing to send")
    plan, meta = _plan(client, champion, settings, address, rebalance_due)
    result = SizeResult(_now(), network, address, execute, plan)
    failure: BaseException | None = None
    try:
        if execute and plan.orders:
            from genetic_sizer.exchange import OrderIntent, make_cloid

            run_id = run_id or result.time
            intents = [
                OrderIntent(
                    coin=o.coin,
                    is_buy=o.is_buy,
                    size=o.size,
                    limit_px=o.limit_px,
                    reduce_only=o.reduce_only,
                    cloid=make_cloid(f"{run_id}:{o.coin}:{o.leg}"),
                )
                for o in plan.orders
            ]
            for group in ([i for i in intents if i.reduce_only], [i for i in intents if not i.reduce_only]):
                if not group:
                    continue
                try:
                    result.results.extend(client.place_orders(group))
                except BaseException as exc:  # keep what the exchange accepted, then fail the pass
                    known = getattr(exc, "results", None) or {}
                    result.results.extend(known[i.cloid] for i in group if i.cloid in known)
                    unknown = set(getattr(exc, "unknown", None) or ())
                    result.unknown = [{"coin": i.coin, "cloid": i.cloid} for i in group if i.cloid in unknown]
                    failure = exc
                    break
            result.errors = [f"{r.coin}: {r.error}" for r in result.results if getattr(r, "status", "") == "rejected"]
            if failure is not None:
                result.error = f"{type(failure).__name__}: {failure}"
                result.errors.append(result.error)
            if not isinstance(failure, KeyboardInterrupt):
                try:
                    result.drift = _drift(client, plan, meta, address)
                except Exception as exc:
                    result.errors.append(f"re-reading the account: {type(exc).__name__}: {exc}")
                    if failure is None:
                        failure = exc
                        result.error = result.errors[-1]
    finally:
        if journal is not None:
            append_journal(journal, result.to_dict())
    if failure is not None:
        failure.size_result = result  # type: ignore[attr-defined]
        raise failure
    return result


def _drift(client, plan: Plan, meta, address: str) -> dict:
    after = client.account(address)
    mids = client.mids()
    drift = {}
    for c in plan.coins:
        if c.coin in meta and c.coin in mids:
            now = after.positions.get(c.coin, 0.0)
            drift[c.coin] = {"target": c.target, "position": now, "drift_usd": (c.target - now) * float(mids[c.coin])}
    return drift


def jsonable(value):
    """``value`` with every non-finite float (a mid that does not exist, say) replaced by None, so that it
    serializes as standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def append_journal(path: str | Path, record: dict) -> None:
    """Append one JSON line (plans and results only: no credentials ever reach this function)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_period(text: str) -> float:
    """'30s', '15m', '1h', '1d' -> seconds."""
    text = str(text).strip()
    if len(text) >= 2 and text[-1] in _UNITS and text[:-1].replace(".", "", 1).isdigit():
        seconds = float(text[:-1]) * _UNITS[text[-1]]
        if seconds > 0:
            return seconds
    raise ConfigError(f"--every must be a period like 30s, 15m, 1h or 1d, got {text!r}")


@dataclass(frozen=True)
class LoopResult:
    """How :func:`run_every` ended: passes started, the process exit code, the error that stopped it."""

    passes: int
    exit_code: int
    error: str | None = None


def run_every(
    period_s: float,
    once: Callable[[int], SizeResult],
    *,
    report: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    max_passes: int | None = None,
    journal: str | Path | None = None,
) -> LoopResult:
    """Call ``once(k)`` every ``period_s`` seconds (anchored at the start, no drift) until Ctrl-C,
    ``max_passes`` passes, or a permanent error.

    * :class:`RetryableExchangeError` (timeouts, connection resets, HTTP 5xx and 429, an order whose
      outcome is unknown) is reported, journaled (``"event": "retry"``) and retried at the next period;
      the next pass plans from the account as it then is.
    * Any other :class:`ExchangeError` (a refused request, a bad signature or unauthorized wallet, an
      unknown coin) stops the loop: journaled (``"event": "stopped"``), exit code
      :data:`EXIT_EXCHANGE_ERROR` (5).
    * Any other project error (:class:`SizingError`, :class:`ConfigError`, ...) is bad input another
      pass will not fix: journaled, exit code :data:`EXIT_BAD_INPUT` (2).
    * Anything else is a bug: journaled, then raised.

    Ctrl-C, or ``max_passes`` passes, end the loop with :data:`EXIT_OK` (0).
    """
    if max_passes is not None and (isinstance(max_passes, bool) or not isinstance(max_passes, int) or max_passes < 1):
        raise ConfigError(f"max_passes must be an integer >= 1, got {max_passes!r}")

    def record(event: str, k: int, exc: BaseException, exit_code: int | None) -> None:
        if journal is not None:
            append_journal(
                journal,
                {
                    "time": _now(),
                    "event": event,
                    "pass": k,
                    "error_type": type(exc).__name__,
                    "error": str(exc),
                    "exit_code": exit_code,
                },
            )

    passes = 0
    next_at = time.monotonic()
    try:
        while max_passes is None or passes < max_passes:
            k = passes
            try:
                once(k)
            except RetryableExchangeError as exc:
                report(f"pass {k}: {type(exc).__name__}: {exc}; trying again next period")
                record("retry", k, exc, None)
            except GeneticSizerError as exc:
                code = EXIT_EXCHANGE_ERROR if isinstance(exc, ExchangeError) else EXIT_BAD_INPUT
                report(f"pass {k}: {type(exc).__name__}: {exc}; stopping (exit code {code})")
                record("stopped", k, exc, code)
                return LoopResult(k + 1, code, f"{type(exc).__name__}: {exc}")
            except Exception as exc:
                record("stopped", k, exc, None)
                raise
            passes += 1
            if max_passes is not None and passes >= max_passes:
                break
            next_at += period_s
            sleep(max(0.0, next_at - time.monotonic()))
    except KeyboardInterrupt:
        report(f"stopped after {passes} passes")
    return LoopResult(passes, EXIT_OK)
