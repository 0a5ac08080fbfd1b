"""The command line's shared argument types and argument groups: argparse ``type`` functions that turn a flag's
text into a value or a parse error (exit code 2) saying what is allowed, and the flags several commands share."""

from __future__ import annotations

import argparse
import math

from genetic_sizer import vocab as V

__all__ = [
    "CHAMPION_PERIOD",
    "add_data_args",
    "add_network_args",
    "every_arg",
    "number_arg",
    "period_arg",
    "rebalance_arg",
    "run_overrides",
    "threshold_arg",
]


def rebalance_arg(text: str):
    """``--rebalance``: a calendar code or every N bars (see :func:`genetic_sizer.vocab.parse_rebalance`)."""
    from genetic_sizer.errors import ConfigError

    try:
        return V.parse_rebalance(text, "--rebalance")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def number_arg(
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    hint: str = "",
):
    """An argparse ``type`` for the size command's numbers: finite, within [low, high] (``low_open``: > low,
    ``high_open``: < high); anything else is a parse error (exit code 2) saying what is allowed."""
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    allowed = f"{'an integer' if integer else 'a number'}" + (f" {' and '.join(bounds)}" if bounds else "") + hint

    def parse(text: str):
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        ok = math.isfinite(value)
        ok = ok and (low is None or (value > low if low_open else value >= low))
        ok = ok and (high is None or (value < high if high_open else value <= high))
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        return value

    return parse


CHAMPION_PERIOD = "champion"
"""``--every`` without a period (argparse's ``const``): the champion's rebalance period."""


def every_arg(text: str):
    """``--every PERIOD``: a wall-clock period (30s, 5m, 1h, 1d), or True for :data:`CHAMPION_PERIOD` (the
    champion's rebalance period, see :func:`genetic_sizer.live.loop.size_run`)."""
    from genetic_sizer.errors import ConfigError
    from genetic_sizer.live.guards import Period
    from genetic_sizer.live.settings import parse_period

    if text == CHAMPION_PERIOD:  # --every without a value (argparse passes the const through here)
        return True
    try:
        return Period(str(text).strip(), parse_period(text))
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--every ")) from None


def threshold_arg(text: str):
    """``--threshold``: a drift band >= 0, or ``none`` (no band: every pass trades to target)."""
    if text.strip().lower() == "none":
        return "none"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a drift band >= 0 (0.05: 5 points) or none, got {text!r}")
    return value


def period_arg(text: str):
    """``--period``: a single pass's period (1h, 1d, W, M, Q ...)."""
    from genetic_sizer.errors import ConfigError
    from genetic_sizer.live.guards import Period

    try:
        return Period.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--period ")) from None


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The flags that select a price set (``data info``, ``backtest``)."""
    p.add_argument("--source", default="default", choices=V.DATA_SOURCES)
    p.add_argument("--path", default=None, help="price file for csv/parquet/hyperliquid (data fetch) sources")
    p.add_argument("--symbols", nargs="+", default=None, help="assets to select (default: all)")
    p.add_argument("--start", default=None, help="first bar (inclusive), e.g. 2015-01-01")
    p.add_argument("--end", default=None, help="last bar (inclusive)")
    p.add_argument("--leading-gaps", default="trim", choices=V.LEADING_GAP_POLICIES)


def add_network_args(p: argparse.ArgumentParser) -> None:
    """The flags that name the exchange's API (``data fetch``, ``size``)."""
    p.add_argument("--network", default="testnet", choices=V.NETWORKS)
    p.add_argument("--base-url", default=None, help="API URL (a local node or a test server); overrides --network")


def run_overrides(args) -> list[str]:
    """The config overrides (``key.path=value``) of a run's flags: every ``--set``, then ``--seed``, then
    ``--ray-address`` (Ray at that address) for the commands that have it."""
    overrides = list(args.set or [])
    if args.seed is not None:
        overrides.append(f"evolution.seed={args.seed}")
    ray_address = getattr(args, "ray_address", None)
    if ray_address is not None:
        overrides += ["parallel.backend=ray", f"parallel.address={ray_address}"]
    return overrides
