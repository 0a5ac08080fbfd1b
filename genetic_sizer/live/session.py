"""What every part of the live sizer shares (:class:`Session`): the exchange client, the champion and the sizer
settings, the account and network, the :class:`~genetic_sizer.live.settings.LiveConfig`, the journal (or this
process's memory of its own records), the account's state directory (its lock, the kill switch's latch, the
high-water mark, the trader id its orders carry), the report callback, the clock and the sleep; with the checks a run
starts with (where the client's orders land, the account's lock, the journal's owner and header, a latched kill
switch, another trader on the account) and the waits that look for the stop file."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from urllib.parse import urlsplit, urlunsplit

from genetic_sizer.errors import ConfigError, GeneticSizerError
from genetic_sizer.live.book import LiveBook
from genetic_sizer.live.guards import champion_id
from genetic_sizer.live.journal import JOURNAL_VERSION, Journal, JournalState, jsonable, now_iso
from genetic_sizer.live.latch import check_latch, keep
from genetic_sizer.live.others import MAX_LOOKBACK, check_other_traders
from genetic_sizer.live.settings import LiveConfig, calendar_of
from genetic_sizer.live.sizer import SizerSettings
from genetic_sizer.live.state import AccountStore, new_trader_id
from genetic_sizer.runs.champion import Champion

__all__ = ["Session", "StopRequested", "scrub_url"]


class StopRequested(Exception):
    """The stop file appeared."""


def scrub_url(url: str | None) -> str | None:
    """``url`` without any user:password part (never journal credentials)."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Session:
    """The live sizer's shared state for one account and one champion (see :class:`~genetic_sizer.live.loop.Trader`
    for the arguments). ``sleep`` may be replaced after construction: every part looks it up here when it waits.
    ``store`` is the account's :class:`~genetic_sizer.live.state.AccountStore` (executing without one: the default
    state directory's)."""

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
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        store: AccountStore | None = None,
    ):
        self.client = client
        self.champion = champion
        self.settings = settings
        self.address = address
        self.network = network
        self.config = config or LiveConfig()
        self.journal = journal
        self.report = report
        self.clock = clock
        self.sleep = sleep
        self.weights = dict(zip(champion.assets, (float(w) for w in champion.weights), strict=True))
        self.champion_id = champion_id(champion.assets, champion.weights)
        self.calendar = calendar_of(champion)
        self._memory = JournalState()  # without a journal, this process's own records
        # a multi-strategy allocation (its assets are strategies): its LiveBook sizes each pass, its state restored
        self.book = LiveBook(champion).bind(self) if champion.data.get("strategies") else None
        self.store = store if store is not None or not self.config.execute else AccountStore(network, address)
        self.started = False  # start() passed its checks
        self.started_at = time.time()  # the exchange's fills are on the real clock
        self._trader: str | None = None
        self.observers: list[Callable[[dict], None]] = []  # shown every record once it is journaled (metrics, alerts)

    @property
    def state(self) -> JournalState:
        return self.journal.state if self.journal is not None else self._memory

    def record(self, record: dict) -> None:
        now = self.clock()
        record = {"time": now_iso(now), "ts": round(now, 6), **record}
        if self.journal is not None:
            self.journal.append(record)
        else:
            self._memory.add(json.loads(json.dumps(jsonable(record))))
        keep(self, record)  # the state directory keeps a kill (its latch) and the high-water mark too
        for observe in self.observers:
            try:
                observe(record)
            except Exception as exc:  # metrics and alerts never stop the loop
                self.report(f"{type(exc).__name__} in a journal observer: {exc}")

    @property
    def trader_id(self) -> str:
        """The id every client order id of this trader carries: the state directory's for this account, else the
        journal header's, else a new one (then kept in the state directory)."""
        if self._trader is None:
            header = self.state.header or {}
            fallback = header.get("trader") if isinstance(header.get("trader"), str) else None
            self._trader = self.store.trader_id(fallback) if self.store is not None else (fallback or new_trader_id())
        return self._trader

    def lookback(self) -> float:
        """How far before this process started another trader's fills count (the period, at most a day)."""
        index = self.config.period.index(self.clock())
        return min(self.config.period.end(index) - self.config.period.start(index), MAX_LOOKBACK)

    def preflight(self) -> None:
        """Before a pass trades (executing): orders land on the account read (:meth:`check_route`), the kill switch
        is not latched, and no other trader acts on the account (its fills or resting orders on the exchange)."""
        if self.config.execute:
            self.check_account()
            check_latch(self)
            check_other_traders(self, self.started_at - self.lookback())

    def release(self) -> None:
        """Let go of the account's lock (held from :meth:`start` on)."""
        if self.store is not None:
            self.store.release()

    def tolerance(self) -> float:
        return float(getattr(self.client, "clock_tolerance", 2.0))

    def stop_requested(self) -> bool:
        return self.config.stop_file is not None and os.path.exists(self.config.stop_file)

    def wait_until(self, t: float) -> None:
        """Sleep until ``t`` (this machine's clock), looking for the stop file at least twice a second."""
        while True:
            if self.stop_requested():
                raise StopRequested
            left = t - self.clock()
            if left <= 0:
                return
            self.sleep(min(left, 0.5))

    def check_account(self) -> None:
        """With ``execute``, refuse unless the client trades ``address`` (before anything is read or sent), and unless
        the exchange says orders signed by the client's key land there (:meth:`check_route`)."""
        self._check_client()
        self.check_route()

    def _check_client(self) -> None:
        if not self.config.execute:
            return
        traded = getattr(self.client, "address", None)
        if traded is None:
            raise ConfigError("executing needs a client with credentials (the account it trades)")
        if traded.lower() != self.address.lower():
            raise ConfigError(
                f"address {self.address} is not the account this client trades ({traded}); refusing to send"
            )

    def check_route(self) -> None:
        """With ``execute``, refuse unless the exchange says orders signed by the client's key land on ``address``
        (``userRole``: the key's own account, its master's for an API wallet, or a sub-account or vault of that one,
        traded with ``vaultAddress``). Asked once per client, before the first order."""
        if not self.config.execute:
            return
        route = getattr(self.client, "route_orders", None)
        if route is None:
            return
        routing = route()
        if routing.account.lower() != self.address.lower():
            raise ConfigError(
                f"orders signed by this key land on {routing.account}, not on {self.address} (the account read); "
                "refusing to send"
            )
        if routing.vault_address is not None or routing.signer.lower() != routing.acts_for.lower():
            self.report(f"orders go to {routing.describe()}")

    def _header(self) -> None:
        """The journal's header (account, network, trader id): checked against this run, written on first use (a
        journal of version 1 gets one appended: it stays readable)."""
        header = self.state.header
        path = self.journal.path if self.journal is not None else ""
        if header is not None:
            if str(header.get("account") or self.address).lower() != self.address.lower():
                raise ConfigError(
                    f"journal {path} belongs to account {header.get('account')}, not {self.address}: use one journal "
                    "per account (--journal)"
                )
            if header.get("network") not in (None, self.network):
                raise ConfigError(
                    f"journal {path} belongs to network {header.get('network')!r}, not {self.network!r}: use one "
                    "journal per account and network (--journal)"
                )
            return
        if self.journal is None:
            return
        record = {
            "event": "journal",
            "version": JOURNAL_VERSION,
            "trader": self.trader_id,
            "account": self.address,
            "network": self.network,
        }
        if self.state.records:
            record["migrated_from"] = 1
            self.report(f"journal {path}: written by an earlier version; header added (trader {self.trader_id})")
        self.record(record)

    def start(self, mode: str, base_url: str | None = None) -> None:
        """Check the client's account, take the account's lock (executing), check the journal's owner and header,
        report unreadable journal lines, journal a start record; then (executing) refuse while the kill switch is
        latched. A refusal is raised with ``refused_at_start`` set. Where orders land and another trader on the
        account are asked of the exchange before every pass (:meth:`preflight`), under the loop's retries."""
        try:
            self._start(mode, base_url)
        except GeneticSizerError as exc:
            exc.refused_at_start = True  # type: ignore[attr-defined]
            raise

    def _start(self, mode: str, base_url: str | None) -> None:
        self._check_client()  # where the orders land is asked before the first pass reads (under its retries)
        if self.config.execute and self.store is not None:
            self.store.acquire()
            for note in self.store.notes:
                self.report(note)
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
        self._header()
        for note in self.journal.notes if self.journal is not None else ():
            self.report(note)
        cfg = self.config
        self.record(
            {
                "event": "start",
                "mode": mode,
                "pid": os.getpid(),
                "network": self.network,
                "base_url": scrub_url(base_url),
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
                "trader": self.trader_id,
                "state_file": str(self.store.path) if self.store is not None else None,
            }
        )
        if self.config.execute:
            check_latch(self)
        self.started = True
