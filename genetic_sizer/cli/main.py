"""The ``genetic-sizer`` command line. Thin: parsing and printing; the work lives in the library.

One module per command group adds its subcommands (:mod:`~genetic_sizer.cli.data`, :mod:`~genetic_sizer.cli.evolve`,
:mod:`~genetic_sizer.cli.live`, :mod:`~genetic_sizer.cli.jobs`); :mod:`~genetic_sizer.cli.args` holds the shared
argument types and :mod:`~genetic_sizer.cli.show` what is printed. Heavy modules (vectorbt, ray, the exchange SDK)
are imported inside the commands that need them, so ``genetic-sizer --help`` starts fast.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from genetic_sizer._version import __version__
from genetic_sizer.cli import data, evolve, frontier, jobs, live, stress
from genetic_sizer.errors import DataWarning, GeneticSizerError, RetryableExchangeError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="genetic-sizer",
        description="Evolve portfolio weight genomes and size Hyperliquid positions from the champion.",
    )
    ap.add_argument("--version", action="version", version=f"genetic-sizer {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    data.add_data_parser(sub)
    data.add_backtest_parser(sub)
    evolve.add_evolve_parser(sub)
    evolve.add_walkforward_parser(sub)
    evolve.add_report_parser(sub)
    live.add_size_parser(sub)
    live.add_live_parser(sub)
    jobs.add_submit_parser(sub)
    jobs.add_jobs_parser(sub)
    evolve.add_export_parser(sub)
    stress.add_stress_parser(sub)
    frontier.add_frontier_parser(sub)
    return ap


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():  # restores Python's way of showing warnings on the way out
            warnings.showwarning = _show_warning
            return args.func(args)
    except GeneticSizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        # 6: transient (an exchange outage or rate limit outlasted the retries): running it again may succeed (the
        # live sizer's EXIT_INCOMPLETE); 2: bad input, which running it again does not fix
        return 6 if isinstance(exc, RetryableExchangeError) else 2


_python_show_warning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """A :class:`~genetic_sizer.errors.DataWarning` (weekend bars in a weekday market, a hole in the data) as
    ``warning: ...`` on stderr; any other warning as Python shows it."""
    if issubclass(category, DataWarning):
        print(f"warning: {message}", file=sys.stderr if file is None else file)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


if __name__ == "__main__":
    raise SystemExit(main())
