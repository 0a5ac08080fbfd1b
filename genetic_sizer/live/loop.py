"""The live sizer as a service: single passes, the every-period loop and its error policy (:class:`Trader`).

Orchestration only: the exchange adapter (:mod:`genetic_sizer.exchange.client`) talks to the SDK, the sizer
(:mod:`genetic_sizer.live.sizer`) computes plans, :mod:`genetic_sizer.live.guards` makes the pure decisions (periods,
identities, sanity guards, risk limits), :mod:`genetic_sizer.live.journal` is the loop's memory. A :class:`Trader`
owns the parts of a pass: a :class:`~genetic_sizer.live.session.Session` (what they share), a
:class:`~genetic_sizer.live.planning.Planner` (reads, rules, plans, guards), :class:`~genetic_sizer.live.orders.Orders`
(sending and settling), an :class:`~genetic_sizer.live.execution.Executor` (rounds, flatten) and a
:class:`~genetic_sizer.live.passes.PassRunner` (one pass); it keeps the loop and its error policy. Nothing here sees
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
4. it sends reductions, then increases (only once every reduction of the round settled in full), as IOC orders
   whose client order ids derive from the account, the pass (champion and period), the coin, the leg, the attempt
   and carry the trader's id; before a request, the mids are read again
   (a move beyond the guard re-plans), every cloid is looked up on the exchange (one it knows is never sent
   again), and the orders and then the request's expiry are journaled and fsync'ed;
5. what is still missing afterwards (a partial fill, an IOC that did not match, a leg not sent) is planned
   again from the positions the pass's settled fills imply (a fresh read can trail them) and sent as a new
   attempt, up to ``pass_retries`` times;
6. it reads the account until its positions agree with the settled fills (the post-trade check: a mismatch
   stops the loop, exit code 7) and journals how the pass ended, with the drift left per coin.

Before all of this, executing, the exchange is asked where the key's orders land (refused unless on the account
read), the account's lock is held (one trader per account and network), a latched kill switch refuses the pass,
and another trader's fills or orders on the account stop it (exit code 8).

A restart in the same period resumes the pass (the journal gives the attempt numbers used); a pass that
ended "complete" is not repeated.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from genetic_sizer.errors import ConfigError, GeneticSizerError
from genetic_sizer.exchange.client import DEFAULT_CLOCK_TOLERANCE, HyperliquidClient, is_mainnet, resolve_base_url
from genetic_sizer.exchange.credentials import ENV_SECRET_KEY, load_credentials
from genetic_sizer.live.account import resolve_account
from genetic_sizer.live.book import LiveBook
from genetic_sizer.live.execution import Executor
from genetic_sizer.live.guards import Guards, Limits, Period, pass_id, period_of_champion
from genetic_sizer.live.journal import Journal, JournalState, now_iso
from genetic_sizer.live.orders import Orders
from genetic_sizer.live.outcomes import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_REJECTED,
    LoopResult,
    SizeResult,
    exit_code_for,
    process_exit_code,
)
from genetic_sizer.live.passes import PassRunner
from genetic_sizer.live.planning import Planner
from genetic_sizer.live.service import sigterm_as_interrupt, watch
from genetic_sizer.live.session import Session, StopRequested
from genetic_sizer.live.settings import LiveConfig, calendar_of
from genetic_sizer.live.sizer import DEFAULT_SLIPPAGE, EXCHANGE_MIN_NOTIONAL, SizerSettings
from genetic_sizer.live.state import AccountStore
from genetic_sizer.runs import champion as C
from genetic_sizer.runs.champion import Champion

__all__ = ["DEFAULT_JOURNAL", "Trader", "sigterm_as_interrupt", "size_once", "size_run"]

DEFAULT_JOURNAL = "size-journal.jsonl"
"""The journal ``size`` keeps when it executes or loops and none is named."""


def _holding_the_account(method):
    """A run of the :class:`Trader` (:meth:`~Trader.run_once`, :meth:`~Trader.run_loop`): the account's lock, taken
    by its start, is let go of however it ends; a refusal at the start (where orders land, another trader, a latched
    kill switch) ends it with that error's exit code, journaled, instead of an exception."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except GeneticSizerError as exc:
            if not getattr(exc, "refused_at_start", False) or isinstance(exc, ConfigError):
                raise  # bad input raises, as ever (exit code 2)
            return self._refused(exc)
        finally:
            self.session.release()

    return run


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
        store: AccountStore | None = None,
    ):
        self.session = Session(
            client,
            champion,
            settings,
            address=address,
            network=network,
            config=config,
            journal=journal,
            report=report,
            clock=clock,
            sleep=sleep,
            store=store,
        )
        self.planner = Planner(self.session)
        self.orders = Orders(self.session)
        self.executor = Executor(self.session, self.planner, self.orders)
        self.passes = PassRunner(self.session, self.planner, self.orders, self.executor)
        self.on_result = on_result
        self.rng = rng if rng is not None else random.Random()

    # ------------------------------------------------------------------ what callers read of the session
    @property
    def config(self) -> LiveConfig:
        return self.session.config

    @property
    def champion(self) -> Champion:
        return self.session.champion

    @property
    def journal(self) -> Journal | None:
        return self.session.journal

    @property
    def state(self) -> JournalState:
        return self.session.state

    @property
    def sleep(self) -> Callable[[float], None]:
        return self.session.sleep

    @sleep.setter
    def sleep(self, sleep: Callable[[float], None]) -> None:
        self.session.sleep = sleep

    def check_account(self) -> None:
        """With ``execute``, refuse unless the client trades ``address`` (before anything is read or sent)."""
        self.session.check_account()

    def start(self, mode: str, base_url: str | None = None) -> None:
        """Check the account and the journal's owner, report unreadable journal lines, journal a start record."""
        self.session.start(mode, base_url)

    def calendar_due(self) -> bool:
        """Whether the champion's calendar rebalance is due now
        (:meth:`~genetic_sizer.live.planning.Planner.calendar_due`)."""
        return self.planner.calendar_due()

    def run_pass(self, index: int) -> SizeResult:
        """The pass of period ``index`` (:meth:`~genetic_sizer.live.passes.PassRunner.run`): journals a ``pass_end``
        record however it ends; on failure the exception is raised again with the pass attached as ``size_result``."""
        return self.passes.run(index)

    def _show(self, result: SizeResult | None) -> None:
        if result is not None and self.on_result is not None:
            self.on_result(result)

    # ------------------------------------------------------------------ single pass and loop
    def _backoff(self, failures: int, index: int, exc: BaseException) -> float:
        period = self.config.period
        length = period.end(index) - period.start(index)
        full = min(min(self.config.retry_base, length / 10) * 2 ** (failures - 1), 300.0)
        wait = full / 2 + self.rng.uniform(0.0, full / 2)
        asked = getattr(exc, "retry_after", None)
        return max(wait, asked) if asked else wait

    def _stop(self, passes: int, reason: str, code: int = EXIT_OK, error: str | None = None) -> LoopResult:
        self.session.record({"event": "stop", "reason": reason, "exit_code": code, "passes": passes})
        return LoopResult(passes, code, error)

    def _graceful_stop(self, passes: int) -> LoopResult:
        reason = f"stop file {self.config.stop_file} exists"
        self.session.report(f"{reason}: stopping")
        if self.config.flatten_on_stop and self.config.execute:
            index = self.config.period.index(self.session.clock())
            pid = pass_id(self.session.champion_id, self.config.period, index)
            result = SizeResult(
                now_iso(), self.session.network, self.session.address, True, None, pass_id=f"{pid}/flatten"
            )
            try:
                self.orders.recover()
                self.executor.flatten(pid, self.config.period.label(index), result, self.planner.snapshot())
            except Exception as exc:
                self.session.report(f"flatten FAILED: {type(exc).__name__}: {exc}; close the positions by hand")
            self._show(result)
        return self._stop(passes, reason)

    def _complete_note(self, index: int) -> str | None:
        period = self.config.period
        state = self.state.passes.get(pass_id(self.session.champion_id, period, index))
        if state is None or not state.complete:
            return None
        return (
            f"pass {period.label(index)}: completed at {state.end.get('time')}; nothing to do until the next period "
            f"({period.label(index + 1)})"
        )

    def _refused(self, exc: GeneticSizerError) -> LoopResult:
        code = process_exit_code(exc)
        text = f"{type(exc).__name__}: {exc}"
        self.session.report(f"not started: {text} (exit code {code})")
        self.session.record(
            {
                "event": "stop",
                "reason": "refused at start",
                "error_type": type(exc).__name__,
                "error": str(exc),
                "exit_code": code,
            }
        )
        return LoopResult(0, code, text)

    @_holding_the_account
    def run_once(self, base_url: str | None = None) -> LoopResult:
        """One pass of the current period, resumed if an earlier process left it unfinished, skipped if it
        completed. Exit codes: 0 complete (or completed earlier), 3 an order rejected, 4 kill switch,
        5 permanent exchange error, 2 bad input, 6 not complete (transient errors, a guard's refusal, partial
        fills): run it again in the same period to resume it; 7 the post-trade check failed, 8 another trader acts
        on the account."""
        self.session.start("single", base_url)
        self.orders.margin.check_market()
        if self.session.stop_requested():
            return self._graceful_stop(0)
        index = self.config.period.index(self.session.clock())
        note = self._complete_note(index)
        if note is not None:
            self.session.report(note)
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
                        self.session.record(
                            {
                                "event": "stop",
                                "pass": pass_id(self.session.champion_id, period, index),
                                "reason": "bug",
                                "error_type": type(exc).__name__,
                                "error": str(exc),
                                "exit_code": None,
                            }
                        )
                    raise
                code = exit_code_for(exc)
                text = f"{type(exc).__name__}: {exc}"
                pid = pass_id(self.session.champion_id, period, index)
                if code is not None:
                    self.session.report(f"pass {label}: {text}; stopping (exit code {code})")
                    self.session.record(
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
                if self.session.clock() + delay >= period.end(index):
                    self.session.report(f"pass {label}: {text}; the period ends before another try: skipped")
                    self.session.record(
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
                self.session.report(f"pass {label}: {text}; trying again in {delay:.1f} s")
                self.session.record(
                    {
                        "event": "error",
                        "pass": pid,
                        "period": label,
                        "error_type": type(exc).__name__,
                        "error": str(exc),
                        "retry_in": round(delay, 3),
                    }
                )
                self.session.wait_until(self.session.clock() + delay)

    @_holding_the_account
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
        self.session.start("loop", base_url)
        self.orders.margin.check_market()
        period = self.config.period
        passes = 0
        try:
            if self.session.stop_requested():
                raise StopRequested
            # Orders an earlier process left without a known outcome are settled by the first pass (run_pass), under
            # the loop's retry policy: an exchange outage at a restart is waited out, not a reason to exit.
            index = period.index(self.session.clock())
            while True:
                if self.session.stop_requested():
                    raise StopRequested
                note = self._complete_note(index)
                if note is not None:
                    self.session.report(note)
                else:
                    stop = self._run_period(index)
                    passes += 1
                    if stop is not None:
                        return LoopResult(passes, stop[0], stop[1])
                    if max_passes is not None and passes >= max_passes:
                        break
                following = index + 1
                self.session.wait_until(period.start(following))
                now_index = period.index(self.session.clock())
                if now_index > following:
                    self.session.report(f"periods {period.label(following)} .. {period.label(now_index - 1)} missed")
                index = max(following, now_index)
        except StopRequested:
            return self._graceful_stop(passes)
        except KeyboardInterrupt:
            self.session.report(f"interrupted after {passes} passes")
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

    With ``execute``, ``address`` must be the account ``client`` trades (see
    :func:`~genetic_sizer.live.account.resolve_account`), checked before anything is read, and the account's lock
    is held while the pass runs (:class:`~genetic_sizer.errors.AnotherTrader` while another trader holds it). The pass
    is journaled whatever happens; when it fails, the orders accepted before the failure are in the result and the
    journal, and the exception is raised again with the pass attached as its ``size_result`` attribute."""
    cfg = config or LiveConfig(execute=execute, period=period or period_of_champion(champion))
    own = journal is not None and not isinstance(journal, Journal)
    j = Journal(journal) if own else journal
    try:
        trader = Trader(
            client, champion, settings, address=address, network=network, config=cfg, journal=j, report=lambda s: None
        )
        trader.check_account()
        trader.orders.margin.check_market()
        store = trader.session.store
        if cfg.execute and store is not None:
            store.acquire()  # one trader per account and network, as for run_once and run_loop
        try:
            return trader.run_pass(cfg.period.index(time.time()))
        finally:
            trader.session.release()
    finally:
        if own:
            j.close()


def size_run(
    champion_path: str | Path,
    *,
    network: str = "testnet",
    base_url: str | None = None,
    leverage: float | None = None,
    allow_leverage_mismatch: bool = False,
    min_trade_usd: float = EXCHANGE_MIN_NOTIONAL,
    min_weight_change: float = 0.0,
    keep_unlisted: bool = False,
    max_notional_per_asset: float | None = None,
    slippage: float = DEFAULT_SLIPPAGE,
    address: str | None = None,
    keystore: str | None = None,
    timeout: float = 10.0,
    execute: bool = False,
    yes: bool = False,
    journal: str | Path | None = None,
    every: Period | bool | None = None,
    threshold: float | str | None = None,
    max_passes: int | None = None,
    period: Period | None = None,
    max_drawdown: float | None = None,
    max_daily_loss: float | None = None,
    flatten_on_stop: bool = False,
    stop_file: str | None = None,
    max_mid_deviation: float = 0.02,
    max_data_age: float = 10.0,
    pass_retries: int = 1,
    clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE,
    accept_spot_champion: bool = False,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    report: Callable[[str], None] = print,
    on_result: Callable[[SizeResult], None] | None = None,
    confirm: Callable[[str], bool] | None = None,
) -> LoopResult | None:
    """``genetic-sizer size``: size the account from the champion file at ``champion_path``, one pass
    (:meth:`Trader.run_once`) or, with ``every``, one pass per period (:meth:`Trader.run_loop`, at most
    ``max_passes``). The arguments are the command's flags; returns how it ended, or None when the mainnet
    confirmation was declined (nothing sent).

    The champion's strategy applies unless a flag overrides it: its drift band unless ``threshold`` (a band >= 0,
    or ``"none"``: every pass trades to target), and for ``every=True`` its calendar rebalance period (a
    buy-and-hold champion has none: ConfigError); a single pass belongs to ``period``, else the champion's
    rebalance period. A key is loaded (``HL_SECRET_KEY`` or ``keystore``) when executing or when one is given; the
    account is :func:`~genetic_sizer.live.account.resolve_account`'s. Executing on mainnet without ``yes`` asks
    ``confirm(address)`` (None: ConfigError); False aborts. The journal is ``journal``, else
    :data:`DEFAULT_JOURNAL` when executing or looping, else none. While passes run, SIGTERM stops them as Ctrl-C
    does (:func:`sigterm_as_interrupt`); ``report`` and ``on_result`` are the :class:`Trader`'s. A spot champion is
    executed only with ``accept_spot_champion`` (:meth:`~genetic_sizer.live.margin.Margin.check_market`); an
    allocation over strategies trades their combined book (:mod:`genetic_sizer.live.book`). A loop with
    ``metrics_port`` serves ``/metrics`` on ``metrics_host``, and posts alerts when the alert webhook's URL is in the
    environment (:func:`~genetic_sizer.live.service.watch`).
    """
    if max_passes is not None and every is None:
        raise ConfigError("--max-passes needs --every")
    if metrics_port is not None and every is None:
        raise ConfigError("--metrics-port needs --every (a single pass ends before anyone scrapes it)")
    if period is not None and every is not None:
        raise ConfigError("--period sets a single pass's period; with --every, the period is --every's")
    champ = C.load(champion_path)
    book = LiveBook(champ) if champ.data.get("strategies") else None  # an allocation over strategies: one book
    if book is not None and leverage is not None:
        raise ConfigError(f"--leverage {leverage:g}: a multi-strategy book trades at sum(allocation x leverage)")
    # the champion's strategy, unless a flag overrides it: its drift band, and its rebalance period for --every
    band = champ.threshold if threshold is None else (None if threshold == "none" else threshold)
    pf = champ.portfolio  # its rebalancing policy: the backtest's minimum trade and turnover cap apply here too
    vol = pf.get("vol_target")
    if vol is not None or champ.strategy.get("vol_target") is not None:  # fixed, or an evolved gene
        where = (
            f"portfolio.vol_target {vol:g}"
            if vol is not None
            else f"strategy.vol_target {champ.strategy['vol_target']:g}"
        )
        raise ConfigError(
            f"the champion targets a volatility ({where}), which needs the price history the live sizer does not "
            "read: size it from a champion evolved without vol_target"
        )
    settings = SizerSettings(
        leverage=book.leverage if book else C.resolve_leverage(champ, leverage, allow_mismatch=allow_leverage_mismatch),
        min_trade_usd=max(min_trade_usd, float(pf.get("min_trade_value", 0.0))),
        min_weight_change=min_weight_change,
        close_unlisted=not keep_unlisted,
        max_notional_per_asset=max_notional_per_asset,
        slippage=slippage,
        drift_band=band,
        min_trade=float(pf.get("min_trade", 0.0)),
        max_turnover=pf.get("max_turnover"),
    )
    loop_period = every
    if every is True:  # --every alone: the champion's rebalance period
        if calendar_of(champ) is None:
            raise ConfigError(
                "the champion buys and holds (rebalance once): give --every a period (e.g. --every 1d) for its "
                "drift-band checks"
            )
        loop_period = period_of_champion(champ)
    config = LiveConfig(
        execute=execute,
        period=loop_period or period or period_of_champion(champ),
        guards=Guards(max_mid_deviation=max_mid_deviation or None, max_data_age=max_data_age),
        limits=Limits(max_drawdown=max_drawdown, max_daily_loss=max_daily_loss),
        pass_retries=pass_retries,
        flatten_on_stop=flatten_on_stop,
        stop_file=stop_file,
        accept_spot_champion=accept_spot_champion,
    )
    url = resolve_base_url(network, base_url)
    mainnet = is_mainnet(url)
    label = "mainnet" if mainnet else (url if base_url else network)
    credentials = None
    if execute or keystore or os.environ.get(ENV_SECRET_KEY):
        credentials = load_credentials(keystore)
    account = resolve_account(address, credentials, execute=execute)
    if execute and mainnet and not yes:
        if confirm is None:
            raise ConfigError("sending real orders on mainnet needs --yes (or an interactive confirmation)")
        if not confirm(account):
            return None
    path = journal or (DEFAULT_JOURNAL if execute or every else None)
    log = Journal(path) if path else None
    client = HyperliquidClient(
        url, credentials=credentials if execute else None, timeout=timeout, clock_tolerance=clock_tolerance
    )
    try:
        trader = Trader(
            client,
            champ,
            settings,
            address=account,
            network=label,
            config=config,
            journal=log,
            report=report,
            on_result=on_result,
        )
        watcher = watch(trader.session, metrics_port=metrics_port, metrics_host=metrics_host, report=report)
        with sigterm_as_interrupt(), watcher:
            if every is not None:
                return trader.run_loop(max_passes, base_url=url)
            return trader.run_once(base_url=url)
    finally:
        client.close()
        if log is not None:
            log.close()
