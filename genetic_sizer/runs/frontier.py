"""``genetic-sizer frontier``'s files: a traced constrained frontier, checked row by row, written to a new directory.

:func:`frontier_from_moments` is the moments mode end to end (load, trace, the unconstrained frontier from skfolio, the
error measures against a reference, the files); :func:`write_frontier` writes any traced frontier (the backtest mode
of :mod:`genetic_sizer.validation.frontier` uses it too). Files in ``DIR``:

* ``frontier.csv``: one row per point, lowest risk first: ``return``, ``variance``, then one weight column per asset
  (OR-Library assets are named ``1`` .. ``N``), every number at full precision (Python's shortest repr that reads back
  to the same float), unheld weights exactly ``0``, in the units of the input (OR-Library moments are weekly).
* ``unconstrained.csv``: the unconstrained frontier (skfolio, weights in ``[0, max_weight]``), the same columns.
* ``frontier.json``: the settings, the evaluations per point and in all, the wall time, and with ``--reference`` the
  error measures (:mod:`genetic_sizer.evolution.frontier_errors`, their definitions included).
* ``frontier.png``: the frontiers in (variance, return).

Every row is checked before anything is written: weights sum to 1 within 1e-12, at most K held (exactly K with
``exact``), each held weight within ``[min_weight, max_weight]`` within 1e-12. Nothing in ``DIR`` is overwritten: if
any of these files exists the command stops before computing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genetic_sizer.errors import ConfigError
from genetic_sizer.evolution.frontier import FrontierOptions, FrontierResult, moments_evaluator, trace_frontier
from genetic_sizer.evolution.frontier_errors import DEFINITIONS, FrontierErrors, frontier_errors
from genetic_sizer.storage.files import check_new_file, write_text

__all__ = ["FILES", "FrontierRun", "check_rows", "frontier_csv", "frontier_from_moments", "write_frontier"]

FILES = ("frontier.csv", "unconstrained.csv", "frontier.json", "frontier.png")
FEAS_TOL = 1e-12

ERROR_DEFINITIONS = DEFINITIONS


@dataclass
class FrontierRun:
    """What :func:`frontier_from_moments` computed and where it wrote it."""

    result: FrontierResult
    errors: FrontierErrors | None
    directory: Path
    files: list[Path]


def _targets(out) -> list[Path]:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file, not a directory")
    return [check_new_file(out / f, "frontier file", flag="a new --out directory") for f in FILES]


def check_rows(W: np.ndarray, *, k: int | None, exact: bool, min_weight: float, max_weight: float) -> None:
    """Raise :class:`ConfigError` naming the first row that breaks the constraints by more than 1e-12."""
    W = np.asarray(W, dtype=np.float64)
    for p, w in enumerate(W):
        held = w != 0.0
        count = int(held.sum())
        if not np.isfinite(w).all() or (w < 0).any():
            why = "has a negative or non-finite weight"
        elif abs(float(w.sum()) - 1.0) > FEAS_TOL:
            why = f"sums to {float(w.sum())!r}"
        elif k is not None and (count > k or (exact and count != k)):
            why = f"holds {count} assets ({'exactly' if exact else 'at most'} {k} allowed)"
        elif (w[held] < min_weight - FEAS_TOL).any() or (w[held] > max_weight + FEAS_TOL).any():
            why = f"has a held weight outside [{min_weight:g}, {max_weight:g}]"
        else:
            continue
        raise ConfigError(f"frontier point {p} is not feasible within {FEAS_TOL:g}: it {why}")


def _finite(d: dict) -> dict:
    """``d`` with its non-finite numbers (a measure no point covers) as ``None`` (JSON has no NaN)."""
    return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in d.items()}


def _num(x: float) -> str:
    return "0" if x == 0.0 else repr(float(x))


def frontier_csv(names, ret, var, W, risk_column: str = "variance") -> str:
    """The text of ``frontier.csv``: ``return,variance,NAME...``, one row per point, full precision."""
    lines = [",".join(["return", risk_column, *names])]
    for r, v, w in zip(ret, var, W, strict=True):
        lines.append(",".join([_num(r), _num(v), *(_num(x) for x in w)]))
    return "\n".join(lines) + "\n"


def write_frontier(
    out,
    result: FrontierResult,
    *,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    unconstrained: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    extra: dict | None = None,
    extra_curves: list | None = None,
    risk_label: str = "variance of return",
    risk_column: str = "variance",
) -> tuple[FrontierErrors | None, list[Path]]:
    """Check every row, then write the files of the module docstring into the directory ``out``."""
    from genetic_sizer.runs import plots

    targets = _targets(out)
    s = result.settings
    check_rows(result.weights, k=s["k"], exact=s["exact"], min_weight=s["min_weight"], max_weight=s["max_weight"])
    errors = None
    if reference is not None:
        errors = frontier_errors(result.returns, result.risks, reference[0], reference[1])
    Path(out).mkdir(parents=True, exist_ok=True)
    text = frontier_csv(result.names, result.returns, result.risks, result.weights, risk_column)
    written = [write_text(targets[0], text)]
    curves = []
    if reference is not None:
        curves.append(("reference (unconstrained)", reference[1], reference[0], "line"))
    if unconstrained is not None:
        uw, ur, uv = unconstrained
        written.append(write_text(targets[1], frontier_csv(result.names, ur, uv, uw)))
        curves.append(("unconstrained (skfolio)", uv, ur, "line"))
    curves.append((f"constrained ({result.method})", result.risks, result.returns, "points"))
    curves.extend(extra_curves or [])
    record = {
        "method": result.method,
        "settings": s,
        "points": len(result.returns),
        "lambdas": [None if np.isnan(x) else float(x) for x in result.lambdas],
        "evaluations": {"total": result.total_evaluations, "per_point": [int(x) for x in result.evaluations]},
        "seconds": result.seconds,
        "errors": None if errors is None else {**_finite(errors.as_dict()), "definitions": ERROR_DEFINITIONS},
        **(extra or {}),
    }
    written.append(write_text(targets[2], json.dumps(record, indent=2, allow_nan=False) + "\n"))
    written.append(plots.frontier(curves, targets[3], xlabel=risk_label))
    return errors, written


def frontier_from_moments(
    moments_path,
    out,
    options: FrontierOptions | None = None,
    *,
    reference=None,
    estimator: str = "sample",
) -> FrontierRun:
    """The moments mode: trace the constrained frontier of a moments file and write ``out`` (see the module
    docstring) with ``options`` (the defaults: no cardinality limit, weights in [0, 1], 50 points); ``reference``: an
    OR-Library ``portef`` file to measure against."""
    from genetic_sizer.allocators.frontier import unconstrained_frontier
    from genetic_sizer.data.moments import load_moments, load_portef

    _targets(out)  # refuse an existing file before the work
    m = load_moments(moments_path, estimator=estimator)
    ref = None if reference is None else load_portef(reference)
    options = options or FrontierOptions()
    result = trace_frontier(m.names, moments_evaluator(m.mu, m.cov), **options.kwargs(), mu=m.mu, cov=m.cov)
    unc = unconstrained_frontier(m.mu, m.cov, max(options.points, 100), min_weight=0.0, max_weight=options.max_weight)
    extra = {
        "moments": {"source": m.source, "kind": m.kind, "n_assets": m.n_assets, "estimator": estimator},
        "reference": None if reference is None else str(reference),
    }
    errors, files = write_frontier(out, result, reference=ref, unconstrained=unc, extra=extra)
    return FrontierRun(result, errors, Path(out), files)
