"""``genetic-sizer size`` and ``live status``: size Hyperliquid positions from a champion, and read a live loop's
records. Each command calls one library function (:func:`genetic_sizer.live.loop.size_run`,
:func:`genetic_sizer.live.status.journal_status`) and prints what it reports."""

from __future__ import annotations

import sys

from genetic_sizer import vocab as V
from genetic_sizer.cli.args import CHAMPION_PERIOD, add_network_args, every_arg, number_arg, period_arg, threshold_arg
from genetic_sizer.cli.show import print_plan, print_status
from genetic_sizer.errors import GeneticSizerError
from genetic_sizer.exchange.client import DEFAULT_CLOCK_TOLERANCE
from genetic_sizer.live.sizer import EXCHANGE_MIN_NOTIONAL, MAX_SLIPPAGE

__all__ = ["add_live_parser", "add_size_parser", "cmd_live_status", "cmd_size"]


def _confirm_mainnet(address: str) -> bool:
    """Ask on the terminal before sending real orders on mainnet."""
    answer = input(f"Send orders for account {address} on MAINNET? Type 'yes' to continue: ")
    return answer.strip().lower() == "yes"


def _confirm_reset(question: str) -> bool:
    return input(question).strip().lower() == "reset"


def _reset_kill(args) -> int:
    """``size --reset-kill``: clear a latched kill switch (no champion needed); 0 when reset or not tripped, 1 when
    declined."""
    from genetic_sizer.live.reset import size_reset_kill

    if args.execute or args.every is not None:
        print("error: --reset-kill only resets the kill switch; run size again without it to trade", file=sys.stderr)
        return 2
    done = size_reset_kill(
        network=args.network,
        base_url=args.base_url,
        address=args.address,
        keystore=args.keystore,
        journal=args.journal,
        yes=args.yes,
        confirm=_confirm_reset if sys.stdin is not None and sys.stdin.isatty() else None,
        report=lambda line: print(line, flush=True),
    )
    return 1 if done is False else 0  # declined: 1 (as a declined mainnet confirmation)


def cmd_size(args) -> int:
    from genetic_sizer.live.loop import size_run
    from genetic_sizer.live.outcomes import process_exit_code

    if args.reset_kill:
        try:
            return _reset_kill(args)
        except GeneticSizerError as exc:  # size's exit codes: 8 while a trader holds the lock, 6 transient, 2 ...
            print(f"error: {exc}", file=sys.stderr)
            return process_exit_code(exc)
    if args.champion is None:
        print("error: size needs --champion (except with --reset-kill)", file=sys.stderr)
        return 2

    out = sys.stderr if args.json else sys.stdout  # --json keeps stdout for the JSON documents
    try:
        outcome = _size(args, size_run, out)
    except GeneticSizerError as exc:  # before or outside a pass: the same exit codes as a pass (6: run it again)
        code = process_exit_code(exc)
        print(f"error: {exc} (exit code {code})", file=sys.stderr)
        return code
    if outcome is None:
        print("aborted; nothing sent")
        return 1
    if args.every is None and outcome.error:
        print(f"error: {outcome.error} (exit code {outcome.exit_code})", file=sys.stderr)
    return outcome.exit_code


def _size(args, size_run, out):
    return size_run(
        args.champion,
        network=args.network,
        base_url=args.base_url,
        leverage=args.leverage,
        allow_leverage_mismatch=args.allow_leverage_mismatch,
        min_trade_usd=args.min_trade_usd,
        min_weight_change=args.min_weight_change,
        keep_unlisted=args.keep_unlisted,
        max_notional_per_asset=args.max_notional_per_asset,
        slippage=args.slippage,
        address=args.address,
        keystore=args.keystore,
        timeout=args.timeout,
        execute=args.execute,
        yes=args.yes,
        journal=args.journal,
        every=args.every,
        threshold=args.threshold,
        max_passes=args.max_passes,
        period=args.period,
        max_drawdown=args.max_drawdown,
        max_daily_loss=args.max_daily_loss,
        flatten_on_stop=args.flatten_on_stop,
        stop_file=args.stop_file,
        max_mid_deviation=args.max_mid_deviation,
        max_data_age=args.max_data_age,
        pass_retries=args.pass_retries,
        clock_tolerance=args.clock_tolerance,
        accept_spot_champion=args.accept_spot_champion,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        report=lambda line: print(line, file=out, flush=True),
        on_result=lambda result: print_plan(result, args.json),
        confirm=_confirm_mainnet if sys.stdin is not None and sys.stdin.isatty() else None,
    )


def cmd_live_status(args) -> int:
    import json

    from genetic_sizer.live.journal import jsonable
    from genetic_sizer.live.status import journal_status

    def on_exchange_error(exc) -> None:
        print(f"could not read the exchange ({exc}); showing the journal only", file=sys.stderr)

    report = journal_status(
        args.journal,
        champion=args.champion,
        network=args.network,
        base_url=args.base_url,
        offline=args.offline,
        timeout=args.timeout,
        on_exchange_error=on_exchange_error,
    )
    if args.json:
        print(json.dumps(jsonable(report), indent=2, allow_nan=False))
    else:
        print_status(report)
    return 0


def add_size_parser(sub) -> None:
    sz = sub.add_parser("size", help="size Hyperliquid positions from a champion (a dry run unless --execute)")
    sz.add_argument("--champion", default=None, help="champion.json (required, except with --reset-kill)")
    add_network_args(sz)
    sz.add_argument(
        "--leverage",
        type=number_arg(low=0, low_open=True),
        default=None,
        help="gross leverage, > 0 (default: a perp champion's own leverage, else 1)",
    )
    sz.add_argument(
        "--allow-leverage-mismatch",
        action="store_true",
        help="size a perp champion at a --leverage other than the one it was evolved at",
    )
    sz.add_argument(
        "--min-trade-usd",
        type=number_arg(low=EXCHANGE_MIN_NOTIONAL, hint=" (the exchange's minimum order)"),
        default=EXCHANGE_MIN_NOTIONAL,
        help="smallest order in USD at its limit price, >= 10 (default 10)",
    )
    sz.add_argument(
        "--min-weight-change",
        type=number_arg(low=0, high=1, high_open=True),
        default=0.0,
        help="drift band in weight units, in [0, 1) (default 0)",
    )
    sz.add_argument("--keep-unlisted", action="store_true", help="leave positions in coins the champion lacks")
    sz.add_argument(
        "--max-notional-per-asset", type=number_arg(low=0, low_open=True), default=None, help="USD cap, > 0"
    )
    sz.add_argument(
        "--slippage",
        type=number_arg(low=0, low_open=True, high=MAX_SLIPPAGE, hint=" (a fraction of the mid: 0.01 is 1%)"),
        default=0.01,
        help=f"IOC limit distance from mid, in (0, {MAX_SLIPPAGE:g}] (default 0.01)",
    )
    sz.add_argument("--address", default=None, help="account to read (default: HL_ACCOUNT_ADDRESS or the key's)")
    sz.add_argument("--keystore", default=None, help="encrypted keystore file (password: HL_KEYSTORE_PASSWORD)")
    sz.add_argument(
        "--timeout",
        type=number_arg(low=0, low_open=True),
        default=10.0,
        help="seconds per request before retrying, > 0 (default 10)",
    )
    sz.add_argument("--execute", action="store_true", help="send the orders (default: preview only)")
    sz.add_argument("--yes", action="store_true", help="confirm mainnet execution (or --reset-kill) without a prompt")
    sz.add_argument(
        "--reset-kill",
        action="store_true",
        help="clear the account's latched kill switch (prints what tripped it and asks; no champion needed): "
        "after a kill switch stop nothing trades until this is run",
    )
    sz.add_argument("--json", action="store_true", help="print the plan as JSON")
    sz.add_argument(
        "--every",
        type=every_arg,
        nargs="?",
        const=CHAMPION_PERIOD,
        default=None,
        help="keep running: one pass per wall-clock period (30s, 5m, 1h, 1d; alone: the champion's rebalance "
        "period). With a drift band, the first pass in a new period of the champion's rebalance policy is its "
        "calendar rebalance; the others trade only when a coin drifted past the band",
    )
    sz.add_argument(
        "--threshold",
        type=threshold_arg,
        default=None,
        help="drift band: trade the whole book back to target only when a coin's weight drifts this far from it "
        "(default: the champion's strategy.threshold; none: every pass trades to target)",
    )
    sz.add_argument(
        "--max-passes", type=number_arg(low=1, integer=True), default=None, help="with --every: stop after N passes"
    )
    sz.add_argument(
        "--period",
        type=period_arg,
        default=None,
        help="a single pass's period (1h, 1d, W, M, Q ...; default: the champion's rebalance); a rerun in the "
        "same period resumes or skips the pass",
    )
    sz.add_argument(
        "--journal",
        default=None,
        help="JSONL journal, the loop's memory (default size-journal.jsonl with --execute or --every)",
    )
    sz.add_argument(
        "--max-drawdown",
        type=number_arg(low=0, high=1, low_open=True, high_open=True),
        default=None,
        help="kill switch: stop when equity is this fraction below its recorded high-water mark (e.g. 0.2)",
    )
    sz.add_argument(
        "--max-daily-loss",
        type=number_arg(low=0, high=1, low_open=True, high_open=True),
        default=None,
        help="kill switch: stop when equity is this fraction below the day's reference equity (e.g. 0.05)",
    )
    sz.add_argument(
        "--flatten-on-stop", action="store_true", help="close every position when the kill switch or stop file stops it"
    )
    sz.add_argument("--stop-file", default=None, help="stop gracefully (exit 0) while this file exists")
    sz.add_argument(
        "--max-mid-deviation",
        type=number_arg(low=0, high=1, high_open=True),
        default=0.02,
        help="refuse a pass when a traded coin's mid is this fraction from its mark or oracle price "
        "(default 0.02; 0 turns the check off)",
    )
    sz.add_argument(
        "--max-data-age",
        type=number_arg(low=0, low_open=True),
        default=10.0,
        help="refuse account data older than this many seconds; re-plan when the plan is older (default 10)",
    )
    sz.add_argument(
        "--pass-retries",
        type=number_arg(low=0, integer=True),
        default=1,
        help="rounds after the first in which a pass trades what is still missing (partial fills), default 1",
    )
    sz.add_argument(
        "--clock-tolerance",
        type=number_arg(low=0, low_open=True),
        default=DEFAULT_CLOCK_TOLERANCE,
        help="largest accepted gap between this clock and the exchange's, in seconds, measured every pass: a warning "
        f"past 1 s, a stop past this (default {DEFAULT_CLOCK_TOLERANCE:g})",
    )
    sz.add_argument(
        "--accept-spot-champion",
        action="store_true",
        help="execute a champion evolved on the spot account model as perpetuals (its backtest paid no funding)",
    )
    sz.add_argument(
        "--metrics-port",
        type=number_arg(low=0, high=65535, integer=True),
        default=None,
        help="with --every: serve Prometheus /metrics on this port (0: any free port)",
    )
    sz.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address /metrics binds to (default 127.0.0.1: this machine only)",
    )
    sz.set_defaults(func=cmd_size)


def add_live_parser(sub) -> None:
    live = sub.add_parser("live", help="the live sizer's records")
    live_sub = live.add_subparsers(dest="live_command", required=True)
    st = live_sub.add_parser("status", help="last pass, drift per coin, PnL and the champion's expectation")
    st.add_argument("--journal", required=True, help="the journal of a live loop (size --journal)")
    st.add_argument("--champion", default=None, help="champion.json (default: the one the journal records)")
    st.add_argument("--network", default=None, choices=V.NETWORKS, help="default: the journal's")
    st.add_argument("--base-url", default=None, help="API URL (default: the journal's)")
    st.add_argument("--offline", action="store_true", help="from the journal only; do not read the exchange")
    st.add_argument("--timeout", type=number_arg(low=0, low_open=True), default=10.0, help="seconds per request")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.set_defaults(func=cmd_live_status)
