"""Alerts from the live loop to a webhook (:class:`Alerts`): the kill switch, a stop that needs a person (a post-trade
mismatch, a permanent error, a bug) and repeated failures, each posted once as JSON.

The webhook's URL comes from the environment (:data:`ENV_ALERT_WEBHOOK`) and is a secret: a Slack or Discord
webhook URL is its own credential. It is never printed, journaled, logged or put in an error message; a failed
delivery is reported by its HTTP status or the error's type only. Posting runs in a background thread, so a slow
webhook never delays the loop (or a flatten), alerts arrive in the order they were raised, and
:meth:`Alerts.close` delivers what is queued.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

from genetic_sizer.errors import ConfigError

__all__ = ["ENV_ALERT_WEBHOOK", "Alerts"]

ENV_ALERT_WEBHOOK = "GENETIC_SIZER_ALERT_WEBHOOK"
"""The environment variable holding the alert webhook's URL (unset: no alerts)."""

_FAILED = ("failed", "refused")


class Alerts:
    """Posts alerts for the journal records it is shown (:meth:`observe`) to ``url``.

    What alerts: a ``kill`` record (the kill switch fired); a failed ``reconcile`` record (positions after a pass do
    not match its settled fills); an ``other_trader`` record (another trader acts on the account); a ``stop`` record
    with an exit code other than 0 (or a bug), which needs a person, unless one of those already said why;
    ``failures`` consecutive failed or refused tries of passes (once per run of failures, and a note when a pass
    completes again). Each alert is one POST of ``{"text", "content", "event", "account", "network", "time"}``
    (``text`` for Slack-style, ``content`` for Discord-style webhooks). ``report`` receives one line per delivery
    problem; ``timeout`` bounds each POST."""

    def __init__(
        self,
        url: str,
        *,
        report: Callable[[str], None] = print,
        failures: int = 3,
        timeout: float = 5.0,
    ):
        if not isinstance(url, str) or not url.strip().lower().startswith(("http://", "https://")):
            raise ConfigError(f"{ENV_ALERT_WEBHOOK} must be an http(s) URL (its value is a secret and is not shown)")
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise ConfigError(f"alert failures must be an integer >= 1, got {failures!r}")
        self.__url = url.strip()
        self.report = report
        self.failures = failures
        self.timeout = float(timeout)
        self.account: str | None = None
        self.network: str | None = None
        self.sent: list[dict] = []  # what was posted (payloads; never the URL)
        self._streak = 0
        self._alerted_streak = False
        self._announced: set[int] = set()  # exit codes whose reason was already posted (kill 4, mismatch 7, ...)
        self._queue: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **kwargs) -> Alerts | None:
        """Alerts to the URL in :data:`ENV_ALERT_WEBHOOK`, or None when it is unset or empty."""
        url = (env.get(ENV_ALERT_WEBHOOK) or "").strip()
        return cls(url, **kwargs) if url else None

    def __repr__(self) -> str:
        return "Alerts(webhook=<secret>)"

    __str__ = __repr__

    # ------------------------------------------------------------------ records
    def observe(self, record: dict) -> None:
        """Look at one journal record; post an alert if it calls for one."""
        event = record.get("event")
        if event == "start":
            self.account = record.get("address") or self.account
            self.network = record.get("network") or self.network
        elif event == "kill":
            self._announced.add(4)
            flatten = "flattening every position" if record.get("flatten") else "positions left open"
            self.send("kill", f"KILL SWITCH fired: {record.get('reason')}; trading stops, {flatten}", record)
        elif event == "reconcile" and record.get("ok") is False:
            self._announced.add(7)
            text = f"POST-TRADE MISMATCH in pass {record.get('pass')}: positions {record.get('positions')} are not "
            self.send("mismatch", text + f"what the settled fills imply {record.get('expected')}", record)
        elif event == "other_trader":
            self._announced.add(8)
            self.send("other_trader", f"ANOTHER TRADER acts on this account: {record.get('traders')}", record)
        elif event == "stop":
            code, reason = record.get("exit_code"), record.get("reason")
            if reason == "bug":
                self.send("stop", f"the live loop crashed ({record.get('error_type')}): {record.get('error')}", record)
            elif code not in (None, 0) and code not in self._announced:
                why = record.get("error") or reason
                self.send("stop", f"the live loop stopped with exit code {code}: {why}", record)
        elif event == "pass_end" and not str(record.get("pass", "")).endswith("/flatten"):
            status = record.get("status")
            if status in _FAILED:
                self._streak += 1
                if self._streak >= self.failures and not self._alerted_streak:
                    self._alerted_streak = True
                    self.send(
                        "failures",
                        f"{self._streak} failed tries in a row; the last: {record.get('error')} "
                        f"(pass {record.get('pass')})",
                        record,
                    )
            elif status in ("complete", "dry run"):
                if self._alerted_streak:
                    self.send("recovered", f"pass {record.get('pass')} completed after {self._streak} failures", record)
                self._streak = 0
                self._alerted_streak = False

    # ------------------------------------------------------------------ delivery
    def send(self, kind: str, text: str, record: dict | None = None) -> None:
        """Queue one alert; the delivery thread posts it."""
        who = f"[genetic_sizer {self.network or '?'} {self.account or '?'}] "
        payload = {
            "text": who + text,
            "content": who + text,
            "event": kind,
            "account": self.account,
            "network": self.network,
            "time": (record or {}).get("time"),
        }
        with self._lock:
            self.sent.append(payload)
            self._queue.put(payload)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._deliver, name="genetic-sizer-alerts", daemon=True)
                self._worker.start()

    def _deliver(self) -> None:
        """The delivery thread: posts the queued alerts one by one, in order, until :meth:`close`."""
        while True:
            payload = self._queue.get()
            if payload is None:
                return
            self._post(payload)

    def _post(self, payload: dict) -> None:
        data = json.dumps(payload, default=str).encode()
        request = urllib.request.Request(
            self.__url, data=data, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            self.report(f"alert webhook answered HTTP {exc.code}; the {payload['event']} alert was not delivered")
        except Exception as exc:  # never the URL: error texts can carry it
            self.report(
                f"alert webhook unreachable ({type(exc).__name__}); the {payload['event']} alert was not delivered"
            )

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued, then stop the delivery thread (waiting up to ``timeout`` seconds; default: the
        POST timeout plus one per queued alert)."""
        with self._lock:
            worker, self._worker = self._worker, None
            pending = self._queue.qsize()
            if worker is not None:
                self._queue.put(None)
        if worker is not None:
            worker.join((self.timeout + 1.0) * (pending + 1) if timeout is None else timeout)
