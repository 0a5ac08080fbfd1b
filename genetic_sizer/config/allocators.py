"""The ``allocators:`` section: the inputs of the allocators that need more than the prices.

Every key is optional; at the defaults a config fingerprints as before the section existed::

    allocators: {budgets: null,         # risk_budgeting: relative risk budgets {SYMBOL: b, default: b} (normalized
                                        # to sum 1 over the run's assets); null: equal budgets (= risk_parity)
                 views: [],             # black_litterman: [{view: "AAPL = 0.10", confidence: 0.6},
                                        #                   {view: "MSFT - KO = 0.02", confidence: 0.3}]
                                        # absolute ("SYM = r") or relative ("SYM1 - SYM2 = r") views on ANNUAL
                                        # expected returns; confidence in [0, 1] (Idzorek), on every view or on none
                                        # (none: the uncertainty tau x P Sigma P' of He and Litterman)
                 tau: 0.05,             # black_litterman: the uncertainty of the equilibrium
                 risk_aversion: 2.5,    # black_litterman: delta of the implied returns delta x Sigma x w_eq
                 market_caps: null,     # a market-cap file in the price layout (one column per asset, CSV or
                                        # Parquet): market_cap weights, and black_litterman's equilibrium (else 1/N)
                 benchmark: equal_weight}   # the champion's attribution benchmark: an allocator's name, or a price
                                        # column of a file {path: FILE, column: NAME} (CSV or Parquet, a time column)

The symbols named are checked against the data when the allocators are fitted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from genetic_sizer import vocab as V

__all__ = ["VIEW_PATTERN", "AllocatorsConfig", "parse_view"]

_SYM = r"[^\s=+\-]+"
VIEW_PATTERN = re.compile(rf"^\s*({_SYM})\s*(?:-\s*({_SYM})\s*)?=\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")
"""``SYM = r`` (absolute) or ``SYM1 - SYM2 = r`` (relative); r an annual return."""


def parse_view(key: str, text) -> tuple[str, str | None, float]:
    """``(asset, other asset or None, annual return)`` of a view; a ConfigError naming ``key`` otherwise."""
    m = VIEW_PATTERN.match(text) if isinstance(text, str) else None
    if m is None:
        V.must_be(key, text, "a view 'SYMBOL = annual return' or 'SYMBOL1 - SYMBOL2 = annual return'")
    value = float(m.group(3))
    if not math.isfinite(value) or abs(value) > 10.0:
        V.must_be(key, text, "a view whose annual return is a finite number between -10 and 10")
    if m.group(2) is not None and m.group(2) == m.group(1):
        V.must_be(key, text, "a relative view between two different assets")
    return m.group(1), m.group(2), value


def _views(value) -> tuple[dict, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        V.must_be("allocators.views", value, "a list of {view: 'SYMBOL = return', confidence: c}")
    out = []
    for i, item in enumerate(value):
        key = f"allocators.views[{i}]"
        if isinstance(item, str):
            item = {"view": item}
        if not isinstance(item, dict) or "view" not in item:
            V.must_be(key, item, "a mapping {view: 'SYMBOL = return', confidence: c}")
        bad = sorted(set(item) - {"view", "confidence"})
        if bad:
            V.must_be(f"{key}.{bad[0]}", item[bad[0]], "absent: a view takes 'view' and 'confidence'")
        parse_view(f"{key}.view", item["view"])
        conf = item.get("confidence")
        if conf is not None:
            conf = V.check_number(f"{key}.confidence", conf, lo=0.0, hi=1.0)
        out.append({"view": item["view"].strip(), "confidence": conf})
    has = [v["confidence"] is not None for v in out]
    if any(has) and not all(has):
        i = has.index(False)
        V.must_be(
            f"allocators.views[{i}].confidence", None, "a number in [0, 1]: give a confidence on every view or none"
        )
    views = [re.sub(r"\s+", "", v["view"]) for v in out]
    if len(set(views)) != len(views):
        V.must_be("allocators.views", [v["view"] for v in out], "a list without duplicate views")
    return tuple(out)


def _budgets(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        V.must_be("allocators.budgets", value, "null or a mapping {SYMBOL: budget, default: budget}")
    out = {}
    for sym, b in value.items():
        out[str(sym)] = V.check_number(f"allocators.budgets.{sym}", b, lo=0.0, lo_open=True, hi=1e6)
    return out


def _benchmark(value):
    from genetic_sizer.config.robust import CLASSICAL

    if isinstance(value, str):
        return V.check_choice("allocators.benchmark", value, CLASSICAL)
    if not isinstance(value, dict) or not isinstance(value.get("path"), str) or not value["path"].strip():
        V.must_be("allocators.benchmark", value, f"one of {list(CLASSICAL)} or {{path: FILE, column: NAME}}")
    bad = sorted(set(value) - {"path", "column"})
    if bad:
        V.must_be(f"allocators.benchmark.{bad[0]}", value[bad[0]], "absent: a benchmark file takes path and column")
    column = value.get("column")
    if column is not None and not isinstance(column, str):
        V.must_be("allocators.benchmark.column", column, "the name of a price column (or null: the file's only one)")
    return {"path": value["path"], "column": column}


@dataclass(frozen=True)
class AllocatorsConfig:
    budgets: Any = None
    views: Any = field(default_factory=tuple)
    tau: float = 0.05
    risk_aversion: float = 2.5
    market_caps: str | None = None
    benchmark: Any = "equal_weight"

    def __post_init__(self):
        object.__setattr__(self, "budgets", _budgets(self.budgets))
        object.__setattr__(self, "views", _views(self.views))
        tau = V.check_number("allocators.tau", self.tau, lo=0.0, hi=10.0, lo_open=True)
        object.__setattr__(self, "tau", tau)
        delta = V.check_number("allocators.risk_aversion", self.risk_aversion, lo=0.0, hi=1000.0, lo_open=True)
        object.__setattr__(self, "risk_aversion", delta)
        mc = self.market_caps
        if mc is not None and (not isinstance(mc, str) or not mc.strip()):
            V.must_be("allocators.market_caps", mc, "null or the path of a market-cap file (CSV or Parquet)")
        object.__setattr__(self, "benchmark", _benchmark(self.benchmark))
