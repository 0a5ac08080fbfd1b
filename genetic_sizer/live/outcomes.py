"""How live work ends: the exit codes, one pass's :class:`SizeResult`, a run's :class:`LoopResult`, and which
errors stop the loop with which code (:func:`exit_code_for`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from genetic_sizer.errors import (
    AnotherTrader,
    ExchangeError,
    GeneticSizerError,
    KillSwitchTripped,
    PassRefused,
    PositionMismatch,
    RetryableExchangeError,
)
from genetic_sizer.live.sizer import Plan

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_EXCHANGE_ERROR",
    "EXIT_INCOMPLETE",
    "EXIT_KILLED",
    "EXIT_MISMATCH",
    "EXIT_OK",
    "EXIT_OTHER_TRADER",
    "EXIT_REJECTED",
    "LoopResult",
    "SizeResult",
    "exit_code_for",
    "process_exit_code",
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
"""The kill switch fired (maximum drawdown or daily loss reached; positions were flattened if asked), or is latched
from an earlier trip: nothing trades until ``genetic-sizer size --reset-kill``."""
EXIT_EXCHANGE_ERROR = 5
"""A permanent exchange error (refused request, bad signature, unauthorized wallet, unknown coin) stopped it."""
EXIT_INCOMPLETE = 6
"""A single pass did not complete: transient errors outlasted the retries, a guard refused stale or
inconsistent data, or fills stayed partial. Running it again in the same period resumes it."""
EXIT_MISMATCH = 7
"""The post-trade check failed: positions read after the fills settled differ from what the pass's settled fills
imply (beyond rounding; partial fills are no mismatch). Something else moved the account: a person must look."""
EXIT_OTHER_TRADER = 8
"""Another trader acts on the same account and network: its lock is held on this machine, or the exchange shows
fills or open orders carrying another trader's id. Stop the other one before starting this one again."""


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
    None; :class:`PositionMismatch` -> 7; :class:`AnotherTrader` -> 8; any other :class:`ExchangeError` -> 5; any
    other project error (bad input) -> 2. Anything else is a bug and propagates."""
    if isinstance(exc, KillSwitchTripped):
        return EXIT_KILLED
    if isinstance(exc, PositionMismatch):
        return EXIT_MISMATCH
    if isinstance(exc, AnotherTrader):
        return EXIT_OTHER_TRADER
    if isinstance(exc, (RetryableExchangeError, PassRefused)):
        return None
    if isinstance(exc, ExchangeError):
        return EXIT_EXCHANGE_ERROR
    if isinstance(exc, GeneticSizerError):
        return EXIT_BAD_INPUT
    raise exc


def process_exit_code(exc: BaseException) -> int:
    """The exit code of a process that ``exc`` ended, wherever it was raised (a pass, the start of a loop, the
    settling of an earlier process's orders): :func:`exit_code_for`, with the errors a pass retries mapped to
    :data:`EXIT_INCOMPLETE` (6): transient, so a supervisor restarts it (a transient error is never exit code 2,
    which a supervisor treats as a configuration error and does not restart)."""
    code = exit_code_for(exc)
    return EXIT_INCOMPLETE if code is None else code
