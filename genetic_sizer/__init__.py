"""genetic_sizer: evolve normalized portfolio weight genomes and size Hyperliquid positions from the champion.

The pipeline is the package list, one package per stage (see the README's package map)::

    data -> backtest -> evolution -> runs -> validation          live (champion -> orders)
                        ^ allocators      ^ cluster (Ray)        exchange (the Hyperliquid SDK)

The public API below is loaded lazily (module-path strings resolved by ``importlib`` on first use), so
``import genetic_sizer`` stays fast and heavy dependencies (vectorbt, Ray, the Hyperliquid SDK) are imported
only by the one module that owns each of them, when it is used.
"""

from __future__ import annotations

import importlib

from genetic_sizer._version import __version__

# public name -> the module that defines it
_API = {
    "load": "genetic_sizer.data.loaders",
    "load_from_config": "genetic_sizer.data.loaders",
    "Prices": "genetic_sizer.data.prices",
    "simulate": "genetic_sizer.backtest.simulate",
    "compute_metrics": "genetic_sizer.backtest.metrics",
    "Evaluator": "genetic_sizer.evolution.evaluator",
    "evolve": "genetic_sizer.runs.evolve",
    "run_walkforward": "genetic_sizer.validation.walkforward",
    "load_config": "genetic_sizer.config",
    "Champion": "genetic_sizer.runs.champion",
    "load_champion": "genetic_sizer.runs.champion",
    "stats": "genetic_sizer.backtest.stats",
    "DataError": "genetic_sizer.errors",
    "ConfigError": "genetic_sizer.errors",
}
_ALIASES = {"load_champion": "load"}  # public name -> the name in its module
_MODULES = {"stats"}  # public names that are modules

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    try:
        path = _API[name]
    except KeyError:
        raise AttributeError(f"module 'genetic_sizer' has no attribute {name!r}") from None
    module = importlib.import_module(path)
    value = module if name in _MODULES else getattr(module, _ALIASES.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
