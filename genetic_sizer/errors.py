"""The project's exception tree.

Every error raised at a boundary (config, price data, genomes, champion files, the exchange) is one of
these, and its message names the offending field and value. The data, config and genome errors are also
``ValueError`` so that generic callers can catch them the usual way.
"""

from __future__ import annotations


class GeneticSizerError(Exception):
    """Base class of every error raised by genetic_sizer."""


class ConfigError(GeneticSizerError, ValueError):
    """A run configuration or parameter is invalid; the message names the key and the value."""


class RunDirError(ConfigError):
    """A run directory cannot be used as asked: the path is a file, a non-empty directory that is not a run,
    a run that already started (resume it instead), or not a run at all; the message names the path."""


class CheckpointError(RunDirError):
    """A run's checkpoint is missing, damaged, of another version, or does not belong to this run; the
    message names the file and what is wrong."""


class DataError(GeneticSizerError, ValueError):
    """Price data is invalid; the message names the file, the symbol and the timestamp where known."""


class DataWarning(UserWarning):
    """Price data that loads but may not be what it seems (weekend bars in a weekday market, holes far longer than
    the usual spacing); the message names the file and the bars. The same text is in ``Prices.notes``."""


class GenomeError(GeneticSizerError, ValueError):
    """A weight genome is not a valid weight vector; the message names the genome and the value."""


class ChampionError(GeneticSizerError, ValueError):
    """A champion file is missing, malformed or inconsistent."""


class ParallelError(GeneticSizerError):
    """Distributed evaluation failed: a cluster cannot be reached, or workers keep dying."""


class JobError(GeneticSizerError):
    """A Ray job could not be submitted or followed: no address, an unreachable one, a refused token, a job
    the cluster does not know."""


class SizingError(GeneticSizerError, ValueError):
    """The champion cannot be sized on this account (unlisted or delisted coin, leverage, bad settings)."""


class ExchangeError(GeneticSizerError):
    """The exchange refused a whole request or answered something unexpected."""


class RetryableExchangeError(ExchangeError):
    """A transport failure (timeout, connection reset, HTTP 5xx or 429) that is safe to retry.

    ``retry_after`` (seconds or None) is how long the exchange asked to wait (an HTTP 429's Retry-After)."""

    retry_after: float | None = None


class PassRefused(GeneticSizerError):
    """A sanity guard refused a live pass before anything was sent (stale or inconsistent data); the message
    gives the reason. Another try, with fresh data, may succeed."""


class KillSwitchTripped(GeneticSizerError):
    """A risk limit of the live loop (maximum drawdown, maximum daily loss) is breached: trading stops. Once tripped
    it latches (journal and state directory) until a person runs ``genetic-sizer size --reset-kill``."""


class PositionMismatch(GeneticSizerError):
    """After a pass, the positions the exchange reports (read once its fills settled) differ from what the pass's
    settled fills imply: another trader, a liquidation or a lost order moved the account. Trading stops."""


class AnotherTrader(GeneticSizerError):
    """Another genetic_sizer trader acts on the same account and network: its lock is held on this machine, or the
    exchange shows fills or open orders whose client order ids carry another trader's id. Trading stops."""


class JournalCorrupted(ConfigError):
    """A journal line in the middle of the file is not a JSON record (not a torn last line): refusing to trade on
    it; the message names the file and the line."""


class OrderRejected(ExchangeError):
    """One order of a request was rejected by the exchange (a ``statuses[i].error``)."""

    def __init__(self, coin: str, message: str):
        super().__init__(f"order for {coin!r} rejected: {message}")
        self.coin = coin
        self.reason = message
