"""The live loop as a service: what watches it from outside (:func:`watch`: the Prometheus ``/metrics`` endpoint,
:class:`~genetic_sizer.live.metrics.Metrics`, and the alert webhook, :class:`~genetic_sizer.live.alerts.Alerts`,
both fed the journal's records as the loop writes them), and a supervisor's SIGTERM taken as Ctrl-C
(:func:`sigterm_as_interrupt`)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from genetic_sizer.live.alerts import ENV_ALERT_WEBHOOK, Alerts
from genetic_sizer.live.session import Session

__all__ = ["Watchers", "sigterm_as_interrupt", "watch"]


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While active (main thread only), SIGTERM (a process supervisor's stop) raises KeyboardInterrupt, so the
    loop stops as after Ctrl-C: journaled, exit code 0."""
    old = None
    if threading.current_thread() is threading.main_thread():

        def handler(signum, frame):
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


@dataclass
class Watchers:
    """What :func:`watch` started: the metrics (None without a port) and the alerts (None without a webhook)."""

    metrics: object | None = None
    alerts: Alerts | None = None


@contextlib.contextmanager
def watch(
    session: Session,
    *,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    env: Mapping[str, str] = os.environ,
    report: Callable[[str], None] = print,
) -> Iterator[Watchers]:
    """While active: with ``metrics_port`` (0: any free port), ``/metrics`` is served on ``metrics_host`` (the
    journal's earlier records set the gauges first: the last equity, a kill switch that fired); with the alert
    webhook's URL in ``env`` (:data:`~genetic_sizer.live.alerts.ENV_ALERT_WEBHOOK`), alerts are posted. Both are
    stopped on exit (alerts in flight are delivered first). Yields the :class:`Watchers`."""
    alerts = Alerts.from_env(env, report=report)
    metrics = None
    observers: list = []
    try:
        if metrics_port is not None:
            from genetic_sizer.live.metrics import Metrics  # prometheus-client: only when asked for

            metrics = Metrics()
            for record in session.state.records:
                metrics.observe(record, replay=True)
            host, port = metrics.serve(metrics_port, metrics_host)
            report(f"metrics: http://{host}:{port}/metrics")
            observers.append(metrics.observe)
        if alerts is not None:
            report(f"alerts: posting to the webhook in {ENV_ALERT_WEBHOOK} (its URL is a secret: not shown)")
            observers.append(alerts.observe)
        session.observers.extend(observers)
        yield Watchers(metrics, alerts)
    finally:
        for observe in observers:
            if observe in session.observers:
                session.observers.remove(observe)
        if metrics is not None:
            metrics.close()
        if alerts is not None:
            alerts.close()
