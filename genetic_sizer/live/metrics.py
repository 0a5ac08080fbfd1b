"""The live loop's ``/metrics`` in the Prometheus text format (:class:`Metrics`), fed by the journal's records.

The only module that imports ``prometheus_client`` (an import-linter contract says so). Every record the loop
journals passes through :meth:`Metrics.observe`, so the metrics say what the journal says: equity, drawdown and
gross exposure at every check, the time and status of the last pass, the orders sent, filled and rejected, the
kill switch, the clock skew and the run of consecutive failures. The registry is this object's own (never the
process-wide default), and the HTTP server binds 127.0.0.1 unless told otherwise: the metrics name the account's
equity, which is nobody else's business.
"""

from __future__ import annotations

import math

from genetic_sizer.errors import ConfigError

__all__ = ["DEFAULT_METRICS_HOST", "Metrics"]

DEFAULT_METRICS_HOST = "127.0.0.1"
_FAILED = ("failed", "refused", "partial")


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


class Metrics:
    """Prometheus metrics of one live loop. :meth:`observe` takes journal records; :meth:`serve` starts the HTTP
    endpoint (``/metrics``, any path answers) and :meth:`close` stops it; :meth:`text` renders them.

    Gauges: ``genetic_sizer_equity_usd``, ``genetic_sizer_high_water_usd``, ``genetic_sizer_drawdown_ratio`` (0.05 is
    5% below the high-water mark), ``genetic_sizer_gross_exposure_usd`` (sum of |position| x mid),
    ``genetic_sizer_clock_skew_seconds`` (the exchange's clock minus this machine's), ``genetic_sizer_last_check_
    timestamp_seconds``, ``genetic_sizer_last_pass_timestamp_seconds`` and ``genetic_sizer_last_pass_complete`` (1 when
    the last pass completed), ``genetic_sizer_kill_switch_tripped`` (1 once the kill switch has fired),
    ``genetic_sizer_consecutive_failures`` (failed tries since the last completed pass). Counters (since this process
    started): ``genetic_sizer_orders_sent_total``, ``genetic_sizer_orders_filled_total`` (an order counts once, however
    many times it is reported), ``genetic_sizer_orders_rejected_total``, ``genetic_sizer_passes_total{status}``."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.equity = Gauge("genetic_sizer_equity_usd", "Account value at the last check (USD)", registry=r)
        self.high_water = Gauge("genetic_sizer_high_water_usd", "Equity high-water mark (USD)", registry=r)
        self.drawdown = Gauge("genetic_sizer_drawdown_ratio", "1 - equity / high-water mark", registry=r)
        self.gross = Gauge(
            "genetic_sizer_gross_exposure_usd", "Sum of |position| x mid at the last check (USD)", registry=r
        )
        self.skew = Gauge(
            "genetic_sizer_clock_skew_seconds", "The exchange's clock minus this machine's, last measured", registry=r
        )
        self.last_check = Gauge(
            "genetic_sizer_last_check_timestamp_seconds", "When equity was last checked (Unix time)", registry=r
        )
        self.last_pass = Gauge(
            "genetic_sizer_last_pass_timestamp_seconds", "When the last pass ended (Unix time)", registry=r
        )
        self.last_complete = Gauge(
            "genetic_sizer_last_pass_complete", "1 when the last pass ended complete, else 0", registry=r
        )
        self.kill = Gauge("genetic_sizer_kill_switch_tripped", "1 once the kill switch has fired", registry=r)
        self.failures = Gauge(
            "genetic_sizer_consecutive_failures", "Failed tries of passes since the last complete pass", registry=r
        )
        self.sent = Counter("genetic_sizer_orders_sent", "Orders sent by this process", registry=r)
        self.filled = Counter("genetic_sizer_orders_filled", "Orders with a fill, as reported", registry=r)
        self.rejected = Counter("genetic_sizer_orders_rejected", "Orders the exchange rejected", registry=r)
        self.passes = Counter("genetic_sizer_passes", "Passes ended, by status", ["status"], registry=r)
        self._counted: dict[str, set[str]] = {"filled": set(), "rejected": set()}
        self._server = None
        self._thread = None
        self.address: tuple[str, int] | None = None

    # ------------------------------------------------------------------ records
    def observe(self, record: dict, *, replay: bool = False) -> None:
        """Fold one journal record in. ``replay``: a record of an earlier process (the journal read at start):
        the gauges take it, the counters (this process's) do not."""
        event = record.get("event")
        if event == "equity":
            self._equity(record)
        elif event == "pass_end" and not str(record.get("pass", "")).endswith("/flatten"):
            ts = _number(record.get("ts"))
            if ts is not None:
                self.last_pass.set(ts)
            status = str(record.get("status"))
            self.last_complete.set(1.0 if status in ("complete", "dry run") else 0.0)
            if status in ("complete", "dry run"):
                self.failures.set(0)
            elif status in _FAILED:
                self.failures.inc()
            if not replay:
                self.passes.labels(status=status).inc()
        elif event == "kill" or (event == "stop" and record.get("exit_code") == 4):
            self.kill.set(1)
        elif event in ("kill_reset", "reset_kill"):
            self.kill.set(0)
        if replay:
            return
        if event == "send":
            self.sent.inc(len(record.get("orders") or []))
        elif event == "result":
            for entry in record.get("results") or []:
                if not isinstance(entry, dict) or not isinstance(entry.get("cloid"), str):
                    continue
                cloid = entry["cloid"]
                if (_number(entry.get("filled_size")) or 0.0) > 0 and cloid not in self._counted["filled"]:
                    self._counted["filled"].add(cloid)
                    self.filled.inc()
                if entry.get("status") == "rejected" and cloid not in self._counted["rejected"]:
                    self._counted["rejected"].add(cloid)
                    self.rejected.inc()

    def _equity(self, record: dict) -> None:
        for gauge, key in (
            (self.equity, "account_value"),
            (self.high_water, "high_water"),
            (self.drawdown, "drawdown"),
            (self.gross, "gross_exposure"),
            (self.skew, "clock_skew"),
            (self.last_check, "ts"),
        ):
            value = _number(record.get(key))
            if value is not None:
                gauge.set(value)

    # ------------------------------------------------------------------ exposition
    def text(self) -> str:
        """The metrics in the Prometheus text format (what ``/metrics`` answers)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()

    def serve(self, port: int, host: str = DEFAULT_METRICS_HOST) -> tuple[str, int]:
        """Serve ``/metrics`` on ``host``:``port`` (0: any free port) in a daemon thread; returns the bound address.
        A port that cannot be bound is a ConfigError naming it."""
        from prometheus_client import start_http_server

        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"--metrics-port must be an integer in [0, 65535], got {port!r}")
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port} (--metrics-host/--metrics-port): {exc.strerror or exc}"
            ) from None
        bound = self._server.server_address
        self.address = (str(bound[0]), int(bound[1]))
        return self.address

    def close(self) -> None:
        """Stop the HTTP endpoint (if serving)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
