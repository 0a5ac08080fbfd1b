"""What every part of the live sizer shares (:class:`Session`): the exchange client, the champion and the sizer
settings, the account and network, the :class:`~genetic_sizer.live.settings.LiveConfig`, the journal (or this
process's memory of its own records), the report callback, the clock and the sleep; with the checks a run starts
with (the account the client trades, the journal's owner) and the waits that look for the stop file."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from urllib.parse import urlsplit, urlunsplit

from genetic_sizer.errors import ConfigError
from genetic_sizer.live.guards import champion_id
from genetic_sizer.live.journal import Journal, JournalState, jsonable, now_iso
from genetic_sizer.live.settings import LiveConfig, calendar_of
from genetic_sizer.live.sizer import SizerSettings
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
    for the arguments). ``sleep`` may be replaced after construction: every part looks it up here when it waits."""

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
            }
        )
