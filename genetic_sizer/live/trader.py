"""Live work against Hyperliquid: fetching history for evolution, and the live sizer as a service.

Orchestration only: the exchange adapter (:mod:`genetic_sizer.exchange.client`) talks to the SDK, the sizer
(:mod:`genetic_sizer.live.sizer`) computes plans, :mod:`genetic_sizer.live.guards` makes the pure decisions (periods,
identities, sanity guards, risk limits), :mod:`genetic_sizer.live.journal` is the loop's memory. Nothing here sees
the secret key; the journal records plans, orders, results, errors and equity, never credentials.

A **pass** moves the account to the champion's weights for one wall-clock period (:class:`Trader`):

1. with ``execute``, it first waits until any request of an earlier (killed) process whose outcome the
   journal does not know has expired, and looks those orders up on the exchange (journaled as results);
2. it reads the market and the account, records the equity and checks the kill switch (:class:`Limits`);
3. it plans (:func:`~genetic_sizer.live.sizer.plan_orders`) and refuses on stale or inconsistent data
   (:class:`Guards`). The champion's strategy decides whether the pass trades at all: with a drift band
   (``SizerSettings.drift_band``: the champion's ``strategy.threshold`` or ``--threshold``) the whole book
   trades back to target only when some coin drifted past the band, or when the champion's calendar
   rebalance is due (the first pass in a new period of its ``strategy.rebalance`` policy since the last pass
   that completed); otherwise the pass holds and sends nothing. The plan says which rule fired
   (``Plan.rule``: ``rebalance``, ``calendar``, ``drift`` or ``hold``), and a pass that decided to trade keeps
   that decision through its later rounds and a restart;
4. it sends reductions, then increases, as IOC orders whose client order ids derive from the account, the
   pass (champion and period), the coin, the leg and the attempt; before a request, the mids are read again
   (a move beyond the guard re-plans), every cloid is looked up on the exchange (one it knows is never sent
   again), and the orders and then the request's expiry are journaled and fsync'ed;
5. what is still missing afterwards (a partial fill, an IOC that did not match, a leg not sent) is planned
   again from freshly read positions and sent as a new attempt, up to ``pass_retries`` times;
6. it re-reads the account and journals how the pass ended, with the drift left per coin.

A restart in the same period resumes the pass (the journal gives the attempt numbers used); a pass that
ended "complete" is not repeated.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from genetic_sizer.data import prices as D
from genetic_sizer.errors import (
    ConfigError,
    ExchangeError,
    GeneticSizerError,
    KillSwitchTripped,
    PassRefused,
    RetryableExchangeError,
)
from genetic_sizer.exchange.client import ENV_ACCOUNT_ADDRESS, Credentials, check_address
from genetic_sizer.live.guards import (
    Guards,
    Limits,
    Period,
    champion_id,
    data_age_problem,
    gross_problem,
    limit_breach,
    order_cloid,
    pass_id,
    period_of_champion,
    price_problems,
)
from genetic_sizer.live.guards import parse_period as _parse_period
from genetic_sizer.live.journal import Journal, JournalState, jsonable, now_iso, read_journal
from genetic_sizer.live.sizer import DEFAULT_SLIPPAGE, Plan, PlannedOrder, SizerSettings, plan_orders
from genetic_sizer.runs.champion import Champion
from genetic_sizer.storage.files import check_new_file

__all__ = [
    "DEFAULT_SLIPPAGE",
    "EXIT_BAD_INPUT",
    "EXIT_EXCHANGE_ERROR",
    "EXIT_INCOMPLETE",
    "EXIT_KILLED",
    "EXIT_OK",
    "EXIT_REJECTED",
    "LiveConfig",
    "LoopResult",
    "SizeResult",
    "Trader",
    "append_journal",
    "calendar_of",
    "check_coins",
    "exit_code_for",
    "fetch_history",
    "jsonable",
    "live_status",
    "parse_period",
    "realized_metrics",
    "resolve_account",
    "size_once",
]

EXIT_OK = 0
"""Normal end: the pass completed (or had completed earlier in its period); the loop reached ``max_passes``,
was interrupted (Ctrl-C, SIGTERM) or found its stop file."""
EXIT_BAD_INPUT = 2
"""Bad input: a config, champion or sizing error that another pass would not fix."""
EXIT_REJECTED = 3
"""A single pass ended with an order the exchange rejected (insufficient margin, say; not an IOC that found
no match, which is retried)."""
EXIT_KILLED = 4
"""The kill switch fired (maximum drawdown or daily loss reached); positions were flattened if asked."""
EXIT_EXCHANGE_ERROR = 5
"""A permanent exchange error (refused request, bad signature, unauthorized wallet, unknown coin) stopped it."""
EXIT_INCOMPLETE = 6
"""A single pass did not complete: transient errors outlasted the retries, a guard refused stale or
inconsistent data, or fills stayed partial. Running it again in the same period resumes it."""

NO_MATCH = "could not immediately match"
"""What the exchange says of an IOC order that found nothing to trade against (the price moved away)."""


def parse_period(text: str) -> float:
    """'30s', '15m', '1h', '1d' -> seconds (the ``--every`` flag)."""
    return _parse_period(text, "--every")


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
    force: bool = False,
):
    """Fetch candles (and funding) for ``coins``, align them, save Parquet; return (Prices, report, paths).

    An existing ``out`` (or funding file next to it) is a :class:`ConfigError` before anything is fetched, unless
    ``force``."""
    check_new_file(out, "--out", force=force)
    if funding:
        check_new_file(D.funding_path_for(out), "funding file", force=force)
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
        paths.append(D.save_funding(rates, D.funding_path_for(out)))
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
# ---------------------------------------------------------------------------------------- results
@dataclass
class SizeResult:
    """One sizing pass: the plan, what was sent and what came back, and the drift left afterwards.

    ``plan`` is the pass's first plan; ``results`` holds every order whose outcome is known, over all rounds
    (including those accepted before a failure); ``unknown`` the orders whose outcome could not be
    established; ``rejected`` the coins with an order the exchange rejected for a reason other than an IOC
    finding no match; ``error`` what stopped the pass (None when it ended normally). ``status`` is "dry run",
    "complete", "partial" (something is still missing after the retries), "refused", "failed" or
    "killed"."""

    time: str
    network: str
    address: str
    executed: bool
    plan: Plan | None
    results: list = field(default_factory=list)
    drift: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    unknown: list = field(default_factory=list)
    error: str | None = None
    pass_id: str | None = None
    period: str | None = None
    status: str = "dry run"
    rounds: int = 0
    resumed: bool = False
    rejected: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    requested: dict = field(default_factory=dict)  # cloid -> size sent

    def partial(self, r) -> bool:
        """True when order result ``r`` filled only part of its size."""
        size = self.requested.get(r.cloid)
        return r.status == "filled" and size is not None and r.filled_size + 1e-12 < size

    def to_dict(self) -> dict:
        results = []
        for r in self.results:
            entry = asdict(r) if hasattr(r, "__dataclass_fields__") else dict(r)
            if hasattr(r, "cloid") and r.cloid in self.requested:
                entry["size"] = self.requested[r.cloid]
                entry["partial"] = self.partial(r)
            results.append(entry)
        return {
            "time": self.time,
            "network": self.network,
            "address": self.address,
            "executed": self.executed,
            "pass": self.pass_id,
            "period": self.period,
            "status": self.status,
            "resumed": self.resumed,
            "rounds": self.rounds,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "results": results,
            "drift": self.drift,
            "errors": self.errors,
            "rejected": self.rejected,
            "unknown": self.unknown,
            "notes": self.notes,
            "error": self.error,
        }


@dataclass(frozen=True)
class LoopResult:
    """How a run ended: passes run, the process exit code, the error that stopped it."""

    passes: int
    exit_code: int
    error: str | None = None


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code an error stops the loop with, or None when it is retried (within the period, then at the
    next one): :class:`KillSwitchTripped` -> 4; :class:`RetryableExchangeError` and :class:`PassRefused` ->
    None; any other :class:`ExchangeError` -> 5; any other project error (bad input) -> 2. Anything else is
    a bug and propagates."""
    if isinstance(exc, KillSwitchTripped):
        return EXIT_KILLED
    if isinstance(exc, (RetryableExchangeError, PassRefused)):
        return None
    if isinstance(exc, ExchangeError):
        return EXIT_EXCHANGE_ERROR
    if isinstance(exc, GeneticSizerError):
        return EXIT_BAD_INPUT
    raise exc


def append_journal(path: str | Path, record: dict) -> None:
    """Append one JSON line to ``path``, fsync'ed (plans and results only: no credentials reach this)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


# ---------------------------------------------------------------------------------------- the trader
def calendar_of(champion: Champion) -> Period | None:
    """The periods of the champion's calendar rebalance policy (``strategy.rebalance``) as wall-clock periods
    (:func:`~genetic_sizer.live.guards.period_of_champion`: a UTC day, a calendar week, month or quarter, or N bars of
    the champion's data), or None for a buy-and-hold champion (``once``: no calendar rebalance)."""
    from genetic_sizer import vocab as V

    if V.parse_rebalance(champion.rebalance, "strategy.rebalance") == "once":
        return None
    return period_of_champion(champion)


@dataclass(frozen=True)
class LiveConfig:
    """How the live sizer runs (see :class:`Trader`).

    execute : send orders (False: plan and report only).
    period : the wall-clock period a pass belongs to (``--every``, or ``--period`` / the champion's rebalance
        for a single pass).
    guards, limits : sanity guards and the kill switch's limits.
    pass_retries : rounds after the first in which a pass trades what is still missing (partial fills, IOCs
        that did not match), sized from freshly read positions (default 1).
    flatten_on_stop : when the kill switch fires or the stop file appears, close every position.
    stop_file : a path whose existence stops the loop gracefully (checked before every pass and while waiting).
    retry_base : first wait (seconds) before retrying a failed pass within its period, at most a tenth of the
        period; doubled each time, with jitter, and at least what an HTTP 429 asked for.
    round_pause : seconds between the rounds of a pass.
    """

    execute: bool = False
    period: Period = field(default_factory=lambda: Period("1d", 86400.0))
    guards: Guards = field(default_factory=Guards)
    limits: Limits = field(default_factory=Limits)
    pass_retries: int = 1
    flatten_on_stop: bool = False
    stop_file: str | None = None
    retry_base: float = 1.0
    round_pause: float = 0.25

    def __post_init__(self):
        if isinstance(self.pass_retries, bool) or not isinstance(self.pass_retries, int) or self.pass_retries < 0:
            raise ConfigError(f"pass_retries must be an integer >= 0, got {self.pass_retries!r}")
        for name in ("retry_base", "round_pause"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")


@dataclass
class _Snapshot:
    meta: dict
    mids: dict
    contexts: dict
    account: object
    read_at: float  # time.monotonic() when the reads finished
    wall: float  # this machine's clock then


class _StopRequested(Exception):
    """The stop file appeared."""


def _entry(order: Mapping | PlannedOrder, cloid: str, outcome=None, status: str | None = None) -> dict:
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


def _scrub_url(url: str | None) -> str | None:
    """``url`` without any user:password part (never journal credentials)."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Trader:
    """The live sizer for one account and one champion: single passes (:meth:`run_once`), the every-period loop
    (:meth:`run_loop`), and one pass of a given period (:meth:`run_pass`).

    ``client`` is a :class:`~genetic_sizer.exchange.client.HyperliquidClient` (with credentials to execute);
    ``journal`` an open :class:`~genetic_sizer.live.journal.Journal` (None keeps the memory in this process only);
    ``report`` receives one line of text per event worth telling; ``on_result`` every pass's
    :class:`SizeResult`. ``clock``, ``sleep`` and ``rng`` (the jitter) can be replaced in tests.
    """

    def __init__(
        self,
        client,
        champion: Champion,
        settings: SizerSettings,
        *,
        address: str,
        network: str,
        config: LiveConfig | None = None,
        journal: Journal | None = None,
        report: Callable[[str], None] = print,
        on_result: Callable[[SizeResult], None] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.client = client
        self.champion = champion
        self.settings = settings
        self.address = address
        self.network = network
        self.config = config or LiveConfig()
        self.journal = journal
        self.report = report
        self.on_result = on_result
        self.clock = clock
        self.sleep = sleep
        self.rng = rng if rng is not None else random.Random()
        self.weights = dict(zip(champion.assets, (float(w) for w in champion.weights), strict=True))
        self.champion_id = champion_id(champion.assets, champion.weights)
        self.calendar = calendar_of(champion)
        self._memory = JournalState()  # without a journal, this process's own records

    # ------------------------------------------------------------------ plumbing
    @property
    def state(self) -> JournalState:
        return self.journal.state if self.journal is not None else self._memory

    def _record(self, record: dict) -> None:
        now = self.clock()
        record = {"time": now_iso(now), "ts": round(now, 6), **record}
        if self.journal is not None:
            self.journal.append(record)
        else:
            self._memory.add(json.loads(json.dumps(jsonable(record))))

    def _tolerance(self) -> float:
        return float(getattr(self.client, "clock_tolerance", 2.0))

    def _stop_requested(self) -> bool:
        return self.config.stop_file is not None and os.path.exists(self.config.stop_file)

    def _wait_until(self, t: float) -> None:
        """Sleep until ``t`` (this machine's clock), looking for the stop file at least twice a second."""
        while True:
            if self._stop_requested():
                raise _StopRequested
            left = t - self.clock()
            if left <= 0:
                return
            self.sleep(min(left, 0.5))

    def _show(self, result: SizeResult | None) -> None:
        if result is not None and self.on_result is not None:
            self.on_result(result)

    def check_account(self) -> None:
        """With ``execute``, refuse unless the client trades ``address`` (before anything is read or sent)."""
        if not self.config.execute:
            return
        traded = getattr(self.client, "address", None)
        if traded is None:
            raise ConfigError("executing needs a client with credentials (the account it trades)")
        if traded.lower() != self.address.lower():
            raise ConfigError(
                f"address {self.address} is not the account this client trades ({traded}); refusing to send"
            )

    def start(self, mode: str, base_url: str | None = None) -> None:
        """Check the account and the journal's owner, report unreadable journal lines, journal a start record."""
        self.check_account()
        for start in self.state.starts:
            other = str(start.get("address") or "")
            if other and other.lower() != self.address.lower():
                raise ConfigError(
                    f"journal {self.journal.path if self.journal else ''} records account {other}, not "
                    f"{self.address}: use one journal per account (--journal)"
                )
            if start.get("network") and start.get("network") != self.network:
                raise ConfigError(
                    f"journal {self.journal.path if self.journal else ''} records network {start.get('network')!r}, "
                    f"not {self.network!r}: use one journal per account and network (--journal)"
                )
        for note in self.journal.notes if self.journal is not None else ():
            self.report(note)
        cfg = self.config
        self._record(
            {
                "event": "start",
                "mode": mode,
                "pid": os.getpid(),
                "network": self.network,
                "base_url": _scrub_url(base_url),
                "address": self.address,
                "executed": cfg.execute,
                "champion": {"path": os.path.abspath(self.champion.path), "id": self.champion_id},
                "strategy": {
                    "rebalance": self.champion.rebalance,
                    "calendar": None if self.calendar is None else self.calendar.spec,
                    "drift_band": self.settings.drift_band,
                    "leverage": self.settings.leverage,  # the champion's (perp) unless --leverage said otherwise
                },
                "period": cfg.period.spec,
                "settings": asdict(self.settings),
                "limits": asdict(cfg.limits),
                "guards": asdict(cfg.guards),
                "pass_retries": cfg.pass_retries,
                "flatten_on_stop": cfg.flatten_on_stop,
                "stop_file": cfg.stop_file,
            }
        )

    # ------------------------------------------------------------------ recovery
    def recover(self) -> None:
        """Settle the orders the journal sent without a known outcome (a killed process, a lost answer): wait
        until every request that carried one has expired (plus the clock tolerance), so that none can still
        execute, then look them up on the exchange and journal what it reports ("not_found": never executed)."""
        if not self.config.execute:
            return
        orders = self.state.unresolved()
        if not orders:
            return
        from genetic_sizer.exchange.client import OrderIntent

        wait = self.state.unresolved_expiry_ms() / 1000.0 + self._tolerance() - self.clock()
        if wait > 0:
            self.report(f"waiting {wait:.1f} s until the requests of an interrupted pass have expired")
            self.sleep(wait)
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
        found = self.client.lookup_orders(intents)
        groups: dict[tuple[str, int], list[dict]] = {}
        for o in orders:
            groups.setdefault((o["pass"], o["attempt"]), []).append(_entry(o, o["cloid"], found.get(o["cloid"])))
        for (pid, attempt), entries in groups.items():
            self._record({"event": "result", "pass": pid, "attempt": attempt, "source": "lookup", "results": entries})
        filled = [e for es in groups.values() for e in es if e["filled_size"]]
        self.report(
            f"settled {len(orders)} order(s) of an interrupted pass from the exchange's record: "
            f"{len(filled)} executed, {len(orders) - len(filled)} never executed"
        )

    # ------------------------------------------------------------------ reads and checks
    def _snapshot(self) -> _Snapshot:
        meta = self.client.meta()
        mids = self.client.mids()
        contexts = self.client.asset_contexts() if self.config.guards.max_mid_deviation is not None else {}
        account = self.client.account(self.address)
        return _Snapshot(meta, mids, contexts, account, time.monotonic(), self.clock())

    def _equity_check(self, pid: str, label: str, snap: _Snapshot, result: SizeResult) -> None:
        state = self.state
        high_water = state.high_water
        day_ref = state.day_reference(snap.wall)
        equity = float(snap.account.account_value)
        hwm = max(high_water if high_water is not None else equity, equity)
        self._record(
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
        reason = limit_breach(self.config.limits, equity, high_water, day_ref)
        if reason is None:
            return
        flatten = self.config.flatten_on_stop and self.config.execute
        self._record({"event": "kill", "pass": pid, "period": label, "reason": reason, "flatten": flatten})
        self.report(f"KILL SWITCH: {reason}; trading stops" + ("; flattening every position" if flatten else ""))
        if flatten:
            self._flatten(pid, label, result, snap)
        raise KillSwitchTripped(reason)

    # ------------------------------------------------------------------ the strategy's rules
    def _last_done(self) -> float | None:
        """When the last pass of this champion that completed (a dry run: that ended as a dry run) ended, from
        the journal (None: none yet)."""
        want = "complete" if self.config.execute else "dry run"
        prefix = f"{self.champion_id}/"
        times = [
            p.end.get("ts")
            for pid, p in self.state.passes.items()
            if pid.startswith(prefix) and not pid.endswith("/flatten") and p.end and p.end.get("status") == want
        ]
        times = [float(t) for t in times if isinstance(t, (int, float)) and not isinstance(t, bool)]
        return max(times, default=None)

    def calendar_due(self) -> bool:
        """Whether the champion's calendar rebalance is due now: with a drift band, when the last completed pass
        (see :meth:`_last_done`) lies in an earlier period of the champion's rebalance policy (:func:`calendar_of`)
        than now. Never for the first pass (the band decides, as in the simulation where the first bar's drift
        from nothing decides nothing: it always allocates, and a live account may already hold the book), nor for
        a buy-and-hold champion or without a band (every pass then trades)."""
        if self.settings.drift_band is None or self.calendar is None:
            return False
        last = self._last_done()
        return last is not None and self.calendar.index(self.clock()) != self.calendar.index(last)

    def _decided(self, pid: str) -> tuple[str, str] | None:
        """The rule of the first plan of pass ``pid`` that decided to trade (an earlier round, or a process that
        was interrupted in this pass), or None: the pass goes on trading what it decided."""
        for record in self.state.records:
            plan = record.get("plan") if record.get("event") == "plan" and record.get("pass") == pid else None
            if isinstance(plan, dict) and plan.get("rule") not in (None, "hold", "rebalance") and plan.get("orders"):
                return str(plan["rule"]), str(plan.get("rule_reason") or "")
        return None

    def _make_plan(
        self,
        weights,
        settings: SizerSettings,
        snap: _Snapshot,
        check: bool,
        record: dict,
        *,
        due: bool = False,
        decided: tuple[str, str] | None = None,
    ) -> Plan:
        account = (snap.account.account_value, snap.account.positions, snap.mids, snap.meta)
        if decided is not None and settings.drift_band is not None:
            # this pass decided to trade (drift or calendar): what is still missing trades, whatever the band says
            plan = plan_orders(
                weights, *account, replace(settings, drift_band=None), constraints=self.champion.constraints
            )
            plan = replace(plan, rule=decided[0], rule_reason=f"{decided[1]} (the pass completes what it started)")
        else:
            plan = plan_orders(weights, *account, settings, constraints=self.champion.constraints, rebalance_due=due)
        problems = []
        if check:
            guards = self.config.guards
            age = data_age_problem(getattr(snap.account, "time_ms", None), snap.wall, guards.max_data_age)
            problems += [age] if age else []
            problems += price_problems(
                [o.coin for o in plan.orders], snap.mids, snap.contexts, guards.max_mid_deviation
            )
            gross = gross_problem(plan, snap.meta)
            problems += [gross] if gross else []
        self._record({**record, "plan": plan.to_dict(), "refused": "; ".join(problems) or None})
        if problems:
            raise PassRefused("; ".join(problems))
        return plan

    def _presend_problem(self, snap: _Snapshot, group: list[PlannedOrder]) -> str | None:
        """Why a planned group should not go out as planned (re-plan instead), or None: the plan is older
        than ``max_data_age``, or a mid moved more than ``max_mid_deviation`` since it was read."""
        guards = self.config.guards
        age = time.monotonic() - snap.read_at
        if age > guards.max_data_age:
            return f"the plan is {age:.1f} s old (limit {guards.max_data_age:g} s)"
        if guards.max_mid_deviation is None:
            return None
        mids = self.client.mids()
        moved = []
        for o in group:
            now = mids.get(o.coin)
            if now is None or abs(float(now) / o.mid - 1.0) > guards.max_mid_deviation:
                moved.append(f"{o.coin} {o.mid:g} -> {now!r}")
        if moved:
            return f"mids moved more than {guards.max_mid_deviation:.2%} since the plan ({', '.join(moved)})"
        return None

    # ------------------------------------------------------------------ sending
    def _intents(self, pid: str, group: list[PlannedOrder], attempt: int):
        """The group's OrderIntents for ``attempt``, after checking that the exchange knows none of their
        cloids. Returns (intents, attempt, None), or (None, next free attempt, why) when it knows some: orders
        of this pass the journal does not record (another process, or a lost journal)."""
        from genetic_sizer.exchange.client import OrderIntent

        def build(a: int):
            return [
                OrderIntent(
                    o.coin,
                    o.is_buy,
                    o.size,
                    o.limit_px,
                    o.reduce_only,
                    order_cloid(self.address, pid, o.coin, o.leg, a),
                )
                for o in group
            ]

        intents = build(attempt)
        known = self.client.lookup_orders(intents)
        if not known:
            return intents, attempt, None
        a = attempt
        while known:
            self._record(
                {
                    "event": "result",
                    "pass": pid,
                    "attempt": a,
                    "source": "probe",
                    "results": [
                        _entry(o, i.cloid, known[i.cloid])
                        for o, i in zip(group, build(a), strict=True)
                        if i.cloid in known
                    ],
                }
            )
            a += 1
            if a - attempt > 64:
                raise ExchangeError(f"the exchange knows the client order ids of {a - attempt} attempts of pass {pid}")
            known = self.client.lookup_orders(build(a))
        why = (
            f"the exchange already knows orders of attempt {attempt} of this pass that the journal does not record; "
            f"they are not sent again (next attempt {a}); waiting {self.client.request_lifetime:.1f} s for any request "
            "of another process to expire, then re-planning"
        )
        self.report(why)
        self.sleep(self.client.request_lifetime)
        return None, a, why

    def _send(self, result: SizeResult, pid: str, label: str, attempt: int, group, intents) -> list:
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
        self._record({"event": "send", "pass": pid, "period": label, "attempt": attempt, "orders": orders})
        for i in intents:
            result.requested[i.cloid] = i.size

        def on_request(expires_ms: int, batch) -> None:
            self._record(
                {
                    "event": "request",
                    "pass": pid,
                    "attempt": attempt,
                    "expires_after_ms": int(expires_ms),
                    "cloids": [i.cloid for i in batch],
                }
            )

        try:
            outcomes = self.client.place_orders(intents, on_request=on_request)
        except BaseException as exc:
            known = getattr(exc, "results", None) or {}
            told = getattr(exc, "unknown", None)
            doubtful = set(told) if told is not None else {i.cloid for i in intents if i.cloid not in known}
            entries = []
            for o, i in zip(group, intents, strict=True):
                if i.cloid in known:
                    entries.append(_entry(o, i.cloid, known[i.cloid]))
                elif i.cloid not in doubtful:
                    entries.append(_entry(o, i.cloid, status="not_executed"))
            self._record(
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
        entries = [_entry(o, i.cloid, r) for o, i, r in zip(group, intents, outcomes, strict=True)]
        self._record({"event": "result", "pass": pid, "attempt": attempt, "source": "answer", "results": entries})
        result.results.extend(outcomes)
        result.errors.extend(f"{r.coin}: {r.error}" for r in outcomes if r.status == "rejected")
        return outcomes

    def _trade(
        self,
        result: SizeResult,
        pid: str,
        label: str,
        weights,
        settings: SizerSettings,
        snap: _Snapshot,
        *,
        check: bool = True,
        due: bool = False,
    ) -> str:
        """Plan and send in rounds until nothing is missing; returns the pass status. ``due``: the champion's
        calendar rebalance is due (see :meth:`calendar_due`)."""
        passes = self.state.passes
        attempt = passes[pid].next_attempt if pid in passes else 0
        decided = self._decided(pid) if settings.drift_band is not None else None
        hard: set[str] = set()
        rounds = 1 + (self.config.pass_retries if self.config.execute else 0)
        clashes = 0
        rnd = -1
        while rnd + 1 < rounds:
            rnd += 1
            if rnd:
                self.sleep(self.config.round_pause)
                snap = self._snapshot()
            record = {
                "event": "plan",
                "pass": pid,
                "period": label,
                "round": rnd,
                "executed": self.config.execute,
                "account_value": snap.account.account_value,
            }
            plan = self._make_plan(weights, settings, snap, check, record, due=due, decided=decided)
            if decided is None and plan.orders and plan.rule in ("calendar", "drift"):
                decided = (plan.rule, plan.rule_reason)
            if result.plan is None:
                result.plan = plan
            self._last_plan = plan
            result.rounds = rnd + 1
            orders = [o for o in plan.orders if o.coin not in hard]
            if not self.config.execute:
                return "dry run"
            if not orders:
                result.rejected = sorted(hard)
                return "complete" if not hard else "partial"
            done = True
            for group in ([o for o in orders if o.reduce_only], [o for o in orders if not o.reduce_only]):
                if not group:
                    continue
                problem = self._presend_problem(snap, group) if check else None
                if problem is not None:
                    result.notes.append(f"round {rnd + 1}: {problem}; re-planning")
                    self.report(f"{label}: {problem}; re-planning")
                    done = False
                    break
                intents, attempt, clash = self._intents(pid, group, attempt)
                if intents is None:  # re-plan from fresh positions; this round does not count
                    result.notes.append(f"round {rnd + 1}: {clash}")
                    clashes += 1
                    if clashes <= 3:
                        rounds += 1
                    done = False
                    break
                outcomes = self._send(result, pid, label, attempt, group, intents)
                attempt += 1
                for o, r in zip(group, outcomes, strict=True):
                    if r.status == "rejected":
                        done = False
                        if NO_MATCH not in (r.error or "").lower():
                            hard.add(o.coin)
                    elif r.status != "filled" or r.filled_size + 1e-12 < o.size:
                        done = False
                        result.notes.append(f"round {rnd + 1}: {o.coin} filled {r.filled_size:g} of {o.size:g}")
            if done:
                result.rejected = sorted(hard)
                return "complete"
        result.rejected = sorted(hard)
        return "partial"

    def _flatten(self, pid: str, label: str, result: SizeResult, snap: _Snapshot) -> None:
        """Close every position with reduce-only IOC orders (rounds as in a pass; guards off: this is the way
        out). A failure is reported and journaled, not raised."""
        fpid = f"{pid}/flatten"
        settings = SizerSettings(
            leverage=self.settings.leverage,
            min_trade_usd=self.settings.min_trade_usd,
            slippage=self.settings.slippage,
        )
        try:
            if snap.account.account_value <= 0:  # the sizer needs a positive value; closing does not use it
                snap = _Snapshot(
                    snap.meta,
                    snap.mids,
                    snap.contexts,
                    type(snap.account)(
                        snap.account.address, 1.0, snap.account.withdrawable, dict(snap.account.positions)
                    ),
                    snap.read_at,
                    snap.wall,
                )
            status = self._trade(result, fpid, label, {}, settings, snap, check=False)
            self._record({"event": "pass_end", "pass": fpid, "period": label, "status": status})
            self.report(f"flatten: {status}")
        except Exception as exc:
            self._record({"event": "pass_end", "pass": fpid, "period": label, "status": "failed", "error": str(exc)})
            self.report(f"flatten FAILED: {type(exc).__name__}: {exc}; close the positions by hand")

    def _drift(self, plan: Plan) -> dict:
        after = self.client.account(self.address)
        mids = self.client.mids()
        drift = {}
        for c in plan.coins:
            if c.coin in mids and math.isfinite(c.mid):
                now = after.positions.get(c.coin, 0.0)
                drift[c.coin] = {
                    "target": c.target,
                    "position": now,
                    "drift_usd": (c.target - now) * float(mids[c.coin]),
                }
        return drift

    # ------------------------------------------------------------------ a pass
    def run_pass(self, index: int) -> SizeResult:
        """The pass of period ``index``: see the module docstring. Journals a ``pass_end`` record however it
        ends; on failure the exception is raised again with the pass attached as ``size_result``."""
        period = self.config.period
        pid = pass_id(self.champion_id, period, index)
        label = period.label(index)
        before = self.state.passes.get(pid)
        result = SizeResult(
            now_iso(),
            self.network,
            self.address,
            self.config.execute,
            None,
            pass_id=pid,
            period=label,
            resumed=before is not None and bool(before.sent or before.plans),
        )
        self._last_plan = None
        failure: BaseException | None = None
        status = "failed"
        try:
            if self.config.execute:
                self.recover()
            snap = self._snapshot()
            self._equity_check(pid, label, snap, result)
            status = self._trade(result, pid, label, self.weights, self.settings, snap, due=self.calendar_due())
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
        if self.config.execute and not isinstance(failure, KeyboardInterrupt) and self._last_plan is not None:
            try:
                result.drift = self._drift(self._last_plan)
            except Exception as exc:
                result.errors.append(f"re-reading the account: {type(exc).__name__}: {exc}")
                if failure is None:
                    failure = exc
                    result.error = result.errors[-1]
                    result.status = status = "failed"
        filled = [r for r in result.results if getattr(r, "filled_size", 0)]
        self._record(
            {
                "event": "pass_end",
                "pass": pid,
                "period": label,
                "status": status,
                "executed": self.config.execute,
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

    # ------------------------------------------------------------------ single pass and loop
    def _backoff(self, failures: int, index: int, exc: BaseException) -> float:
        period = self.config.period
        length = period.end(index) - period.start(index)
        full = min(min(self.config.retry_base, length / 10) * 2 ** (failures - 1), 300.0)
        wait = full / 2 + self.rng.uniform(0.0, full / 2)
        asked = getattr(exc, "retry_after", None)
        return max(wait, asked) if asked else wait

    def _stop(self, passes: int, reason: str, code: int = EXIT_OK, error: str | None = None) -> LoopResult:
        self._record({"event": "stop", "reason": reason, "exit_code": code, "passes": passes})
        return LoopResult(passes, code, error)

    def _graceful_stop(self, passes: int) -> LoopResult:
        reason = f"stop file {self.config.stop_file} exists"
        self.report(f"{reason}: stopping")
        if self.config.flatten_on_stop and self.config.execute:
            index = self.config.period.index(self.clock())
            pid = pass_id(self.champion_id, self.config.period, index)
            result = SizeResult(now_iso(), self.network, self.address, True, None, pass_id=f"{pid}/flatten")
            try:
                self.recover()
                self._flatten(pid, self.config.period.label(index), result, self._snapshot())
            except Exception as exc:
                self.report(f"flatten FAILED: {type(exc).__name__}: {exc}; close the positions by hand")
            self._show(result)
        return self._stop(passes, reason)

    def _complete_note(self, index: int) -> str | None:
        period = self.config.period
        state = self.state.passes.get(pass_id(self.champion_id, period, index))
        if state is None or not state.complete:
            return None
        return (
            f"pass {period.label(index)}: completed at {state.end.get('time')}; nothing to do until the next period "
            f"({period.label(index + 1)})"
        )

    def run_once(self, base_url: str | None = None) -> LoopResult:
        """One pass of the current period, resumed if an earlier process left it unfinished, skipped if it
        completed. Exit codes: 0 complete (or completed earlier), 3 an order rejected, 4 kill switch,
        5 permanent exchange error, 2 bad input, 6 not complete (transient errors, a guard's refusal, partial
        fills): run it again in the same period to resume it."""
        self.start("single", base_url)
        if self._stop_requested():
            return self._graceful_stop(0)
        index = self.config.period.index(self.clock())
        note = self._complete_note(index)
        if note is not None:
            self.report(note)
            return self._stop(0, "the pass of this period had completed")
        try:
            result = self.run_pass(index)
        except GeneticSizerError as exc:
            self._show(getattr(exc, "size_result", None))
            code = exit_code_for(exc)
            code = EXIT_INCOMPLETE if code is None else code
            return self._stop(1, f"{type(exc).__name__}", code, f"{type(exc).__name__}: {exc}")
        except BaseException as exc:
            self._show(getattr(exc, "size_result", None))
            raise
        self._show(result)
        if result.rejected:
            code = EXIT_REJECTED
        elif result.status in ("complete", "dry run"):
            code = EXIT_OK
        else:
            code = EXIT_INCOMPLETE
        return self._stop(1, f"pass {result.status}", code)

    def _run_period(self, index: int) -> tuple[int, str] | None:
        """Run the pass of period ``index``, retrying transient failures within the period; None to go on, or
        (exit code, error) to stop."""
        period = self.config.period
        label = period.label(index)
        failures = 0
        while True:
            try:
                self._show(self.run_pass(index))
                return None
            except BaseException as exc:
                self._show(getattr(exc, "size_result", None))
                if not isinstance(exc, GeneticSizerError):
                    if not isinstance(exc, KeyboardInterrupt):
                        self._record(
                            {
                                "event": "stop",
                                "pass": pass_id(self.champion_id, period, index),
                                "reason": "bug",
                                "error_type": type(exc).__name__,
                                "error": str(exc),
                                "exit_code": None,
                            }
                        )
                    raise
                code = exit_code_for(exc)
                text = f"{type(exc).__name__}: {exc}"
                pid = pass_id(self.champion_id, period, index)
                if code is not None:
                    self.report(f"pass {label}: {text}; stopping (exit code {code})")
                    self._record(
                        {
                            "event": "stop",
                            "pass": pid,
                            "period": label,
                            "error_type": type(exc).__name__,
                            "error": str(exc),
                            "exit_code": code,
                        }
                    )
                    return code, text
                failures += 1
                delay = self._backoff(failures, index, exc)
                if self.clock() + delay >= period.end(index):
                    self.report(f"pass {label}: {text}; the period ends before another try: skipped")
                    self._record(
                        {
                            "event": "skipped",
                            "pass": pid,
                            "period": label,
                            "error_type": type(exc).__name__,
                            "error": str(exc),
                            "tries": failures,
                        }
                    )
                    return None
                self.report(f"pass {label}: {text}; trying again in {delay:.1f} s")
                self._record(
                    {
                        "event": "error",
                        "pass": pid,
                        "period": label,
                        "error_type": type(exc).__name__,
                        "error": str(exc),
                        "retry_in": round(delay, 3),
                    }
                )
                self._wait_until(self.clock() + delay)

    def run_loop(self, max_passes: int | None = None, base_url: str | None = None) -> LoopResult:
        """One pass per period until ``max_passes`` passes, Ctrl-C/SIGTERM, the stop file, the kill switch or a
        permanent error. The first pass is the current period's (resumed if unfinished; skipped if it
        completed); each next one starts when its period does. Missed periods are not made up for. A failing
        pass is retried within its period (exponential backoff with jitter, honouring Retry-After), then the
        period is recorded as skipped and the loop goes on. Exit codes as in :func:`exit_code_for`."""
        if max_passes is not None and (
            isinstance(max_passes, bool) or not isinstance(max_passes, int) or max_passes < 1
        ):
            raise ConfigError(f"max_passes must be an integer >= 1, got {max_passes!r}")
        self.start("loop", base_url)
        period = self.config.period
        passes = 0
        try:
            if self._stop_requested():
                raise _StopRequested
            if self.config.execute:
                self.recover()
            index = period.index(self.clock())
            while True:
                if self._stop_requested():
                    raise _StopRequested
                note = self._complete_note(index)
                if note is not None:
                    self.report(note)
                else:
                    stop = self._run_period(index)
                    passes += 1
                    if stop is not None:
                        return LoopResult(passes, stop[0], stop[1])
                    if max_passes is not None and passes >= max_passes:
                        break
                following = index + 1
                self._wait_until(period.start(following))
                now_index = period.index(self.clock())
                if now_index > following:
                    self.report(f"periods {period.label(following)} .. {period.label(now_index - 1)} missed")
                index = max(following, now_index)
        except _StopRequested:
            return self._graceful_stop(passes)
        except KeyboardInterrupt:
            self.report(f"interrupted after {passes} passes")
            return self._stop(passes, "interrupted")
        return self._stop(passes, f"{passes} passes (--max-passes)")


def size_once(
    client,
    champion: Champion,
    settings: SizerSettings,
    *,
    address: str,
    network: str,
    execute: bool = False,
    journal: str | Path | Journal | None = None,
    period: Period | None = None,
    config: LiveConfig | None = None,
) -> SizeResult:
    """One pass of the current period (see :class:`Trader`), without the single-pass bookkeeping: plan (and
    with ``execute``, send) the orders that move the account to the champion's weights.

    With ``execute``, ``address`` must be the account ``client`` trades (see :func:`resolve_account`),
    checked before anything is read. The pass is journaled whatever happens; when it fails, the orders
    accepted before the failure are in the result and the journal, and the exception is raised again with
    the pass attached as its ``size_result`` attribute."""
    cfg = config or LiveConfig(execute=execute, period=period or period_of_champion(champion))
    own = journal is not None and not isinstance(journal, Journal)
    j = Journal(journal) if own else journal
    try:
        trader = Trader(
            client, champion, settings, address=address, network=network, config=cfg, journal=j, report=lambda s: None
        )
        trader.check_account()
        return trader.run_pass(cfg.period.index(time.time()))
    finally:
        if own:
            j.close()


# ---------------------------------------------------------------------------------------- status
_YEAR = 365 * 86400.0  # crypto trades every day: a year of hourly bars is 8760, as the champion counts them
EXPECTATION_METRICS = ("total_return", "cagr", "annualized_volatility", "sharpe", "max_drawdown")


def realized_metrics(equity: list[tuple[float, float]]) -> dict:
    """Metrics of a recorded equity series ``[(ts, value), ...]`` with the champion's definitions (see
    :mod:`genetic_sizer.backtest.metrics`): total return, CAGR over the elapsed time (365-day years), volatility and
    Sharpe of the returns between records annualized by the median gap between them, max drawdown (<= 0).
    Deposits and withdrawals count as returns. Values are None where the series is too short."""
    points = sorted((t, v) for t, v in equity if v > 0)
    out: dict = {"points": len(points), "days": None, **{m: None for m in EXPECTATION_METRICS}}
    if not points:
        return out
    values = [v for _, v in points]
    peak, worst = values[0], 0.0
    for v in values:
        peak = max(peak, v)
        worst = min(worst, v / peak - 1.0)
    out["max_drawdown"] = worst
    elapsed = points[-1][0] - points[0][0]
    out["days"] = elapsed / 86400.0
    out["total_return"] = values[-1] / values[0] - 1.0
    if elapsed > 0:
        out["cagr"] = (values[-1] / values[0]) ** (_YEAR / elapsed) - 1.0
    if len(points) >= 3:
        rets = [b / a - 1.0 for a, b in itertools.pairwise(values)]
        gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(points))
        gap = gaps[len(gaps) // 2]
        if gap > 0:
            ppy = _YEAR / gap
            mean = sum(rets) / len(rets)
            std = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
            out["annualized_volatility"] = std * math.sqrt(ppy)
            out["sharpe"] = mean / std * math.sqrt(ppy) if std > 0 else 0.0
    return out


def live_status(
    journal: str | Path, *, client=None, champion: Champion | None = None, now: float | None = None
) -> dict:
    """What a journal says of a live run, and (with ``client``) how the account stands now.

    Returns a dict with: ``journal`` (path, records, unreadable lines), ``account``, ``network``,
    ``last_pass`` (the latest pass outcome: pass, period, status, time, orders, errors), ``interrupted``
    (passes that never ended), ``unresolved`` (orders without a known outcome), ``kill`` (the last kill
    switch record), ``equity`` (first, latest, high-water mark, drawdown, PnL since the start), ``drift``
    (coin -> target, position, drift in USD: planned from the account now with the champion and settings the
    loop runs with when ``client`` and the champion are available, else the last recorded), and
    ``expectation`` (metric -> backtest value from the champion file, realized value from the equity
    recorded). A ``client`` without credentials is enough: it reads the account the journal names."""
    path = Path(journal)
    state = read_journal(path)
    start = state.starts[-1] if state.starts else {}
    address = start.get("address")
    now = time.time() if now is None else now
    ends = [
        r for r in state.records if r.get("event") in ("pass_end", "skipped") and "/flatten" not in str(r.get("pass"))
    ]
    last = ends[-1] if ends else None
    last_pass = None
    if last is not None:
        last_pass = {
            k: last.get(k)
            for k in (
                "pass",
                "period",
                "time",
                "status",
                "orders_sent",
                "orders_filled",
                "partial_fills",
                "rejected",
                "error",
            )
        }
        if last.get("event") == "skipped":
            last_pass["status"] = "skipped"
    interrupted = [
        p.pass_id for p in state.passes.values() if p.end is None and p.skipped is None and (p.sent or p.plans)
    ]
    out: dict = {
        "journal": {"path": str(path), "records": len(state.records), "unreadable_lines": state.bad_lines},
        "account": address,
        "network": start.get("network"),
        "period": start.get("period"),
        "champion": (start.get("champion") or {}).get("path"),
        "last_pass": last_pass,
        "passes": len({r.get("pass") for r in ends}),
        "interrupted": interrupted,
        "unresolved": [{"pass": o["pass"], "coin": o["coin"], "cloid": o["cloid"]} for o in state.unresolved()],
        "kill": state.kills[-1] if state.kills else None,
    }
    equity = list(state.equity)
    current = None
    drift = dict(last.get("drift") or {}) if last is not None else {}
    drift_source = "journal" if drift else None
    if client is not None and address:
        account = client.account(address)
        current = float(account.account_value)
        if champion is not None:
            settings = SizerSettings(**(start.get("settings") or {}))
            mids = client.mids()
            weights = dict(zip(champion.assets, (float(w) for w in champion.weights), strict=True))
            plan = plan_orders(
                weights, current, account.positions, mids, client.meta(), settings, constraints=champion.constraints
            )
            drift = {
                c.coin: {
                    "target": c.target,
                    "position": c.current,
                    "drift_usd": (c.target - c.current) * c.mid,
                    "weight": c.weight,
                    "current_weight": c.current_weight,
                }
                for c in plan.coins
                if math.isfinite(c.mid)
            }
            drift_source = "exchange"
        equity.append((now, current))
    first = state.first_equity
    hwm = max((v for _, v in equity), default=None)
    latest = equity[-1] if equity else None
    out["equity"] = {
        "first": first[1] if first else None,
        "first_time": now_iso(first[0]) if first else None,
        "latest": latest[1] if latest else None,
        "latest_source": "exchange" if current is not None else "journal",
        "high_water": hwm,
        "drawdown": 1.0 - latest[1] / hwm if latest and hwm else None,
        "pnl": latest[1] - first[1] if latest and first else None,
        "pnl_pct": latest[1] / first[1] - 1.0 if latest and first and first[1] > 0 else None,
    }
    out["drift"] = drift
    out["drift_source"] = drift_source
    realized = realized_metrics(equity)
    backtest = dict(champion.metrics) if champion is not None else {}
    out["expectation"] = {m: {"backtest": backtest.get(m), "realized": realized.get(m)} for m in EXPECTATION_METRICS}
    out["realized_days"] = realized["days"]
    return out
