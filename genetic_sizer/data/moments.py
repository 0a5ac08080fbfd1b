"""Moments: mean returns and a covariance matrix, for mean-variance problems (``genetic-sizer frontier --moments``).

Three kinds of file, each read into one validated :class:`Moments` (errors name the file, the line and the value):

* **OR-Library** (Beasley's portfolio problems ``port1.txt`` .. ``port5.txt``, Chang, Meade, Beasley and Sharaiha
  2000): the number of assets ``N``; then ``N`` lines ``mean sd``; then one line ``i j correlation`` per pair
  (1-based, each unordered pair once, the diagonal ``i i 1`` included). ``Sigma_ij = rho_ij sd_i sd_j``. The assets
  are named ``1`` .. ``N``; the units are the file's (weekly returns, not annualized).
* **CSV moments**: a header ``asset,mu,A,B,...`` and one row per asset: its name, its mean return and its row of the
  covariance matrix (columns in the order of the rows). The matrix must be symmetric (to 1e-12 relative) and
  positive semi-definite.
* **CSV returns**: a header with a time (or any first) column and one column per asset, one row per period; the mean
  is the sample mean and the covariance the sample covariance (``estimator="sample"``, ``ddof=1``) or Ledoit and
  Wolf's shrinkage toward a scaled identity (``estimator="ledoit_wolf"``, scikit-learn's ``LedoitWolf``, the
  estimator skfolio's ``ShrunkCovariance`` family builds on). The units are the file's periods.

:func:`load_portef` reads an OR-Library unconstrained efficient frontier (``portef1.txt``: lines ``return variance``).
The five OR-Library problems (Hang Seng 31, DAX 100 85, FTSE 100 89, S&P 100 98 and Nikkei 225 assets) and their
frontiers ship with the package: :func:`example_path`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genetic_sizer.errors import DataError

__all__ = [
    "ESTIMATORS",
    "Moments",
    "example_path",
    "load_moments",
    "load_orlib",
    "load_portef",
    "moments_from_returns",
]

ESTIMATORS = ("sample", "ledoit_wolf")
"""How :func:`moments_from_returns` estimates the covariance matrix of a returns file."""

_EXAMPLES = {f"{kind}{k}": f"{kind}{k}.txt" for kind in ("port", "portef") for k in range(1, 6)}
_SYM_TOL = 1e-12
_PSD_TOL = 1e-10


@dataclass(frozen=True, eq=False)
class Moments:
    """Mean returns ``mu`` (n,) and covariance ``cov`` (n, n) of named assets, in the units of their source."""

    names: tuple[str, ...]
    mu: np.ndarray
    cov: np.ndarray
    source: str = ""
    kind: str = ""

    @property
    def n_assets(self) -> int:
        return len(self.names)

    def __post_init__(self):
        for a in (self.mu, self.cov):
            a.flags.writeable = False


def example_path(name: str = "port1") -> Path:
    """The path of a data file shipped with the package: ``port1`` .. ``port5`` (OR-Library problems 1 to 5) or
    ``portef1`` .. ``portef5`` (their unconstrained efficient frontiers)."""
    if name not in _EXAMPLES:
        raise DataError(f"no example data set {name!r}; there are {sorted(_EXAMPLES)}")
    return Path(__file__).with_name("orlib") / _EXAMPLES[name]


def _number(path, line_no: int, text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}: line {line_no}: {what} is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{path}: line {line_no}: {what} is {text!r}, not a finite number")
    return value


def _lines(path) -> list[tuple[int, list[str]]]:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: no such file")
    with p.open(encoding="utf-8") as f:
        return [(k, line.split()) for k, line in enumerate(f, start=1) if line.strip()]


def _check_psd(cov: np.ndarray, path, names) -> None:
    eig = np.linalg.eigvalsh((cov + cov.T) / 2.0)
    scale = max(float(np.abs(eig).max()), 1e-300)
    if eig[0] < -_PSD_TOL * scale:
        raise DataError(
            f"{path}: the covariance matrix of {len(names)} assets is not positive semi-definite "
            f"(smallest eigenvalue {eig[0]:.6g}, largest {eig[-1]:.6g})"
        )


def load_orlib(path) -> Moments:
    """Read an OR-Library portfolio file (see the module docstring); assets are named ``1`` .. ``N``."""
    rows = _lines(path)
    if not rows:
        raise DataError(f"{path}: empty file (expected the number of assets on line 1)")
    line_no, first = rows[0]
    if len(first) != 1 or not first[0].isdigit() or int(first[0]) < 2:
        raise DataError(
            f"{path}: line {line_no}: expected the number of assets (an integer >= 2), got {' '.join(first)!r}"
        )
    n = int(first[0])
    if len(rows) < 1 + n:
        raise DataError(f"{path}: {n} assets announced on line {line_no} but only {len(rows) - 1} lines follow")
    mu, sd = np.empty(n), np.empty(n)
    for a in range(n):
        line_no, parts = rows[1 + a]
        if len(parts) != 2:
            raise DataError(f"{path}: line {line_no}: expected 'mean sd' of asset {a + 1}, got {' '.join(parts)!r}")
        mu[a] = _number(path, line_no, parts[0], f"the mean return of asset {a + 1}")
        sd[a] = _number(path, line_no, parts[1], f"the standard deviation of asset {a + 1}")
        if sd[a] < 0:
            raise DataError(f"{path}: line {line_no}: the standard deviation of asset {a + 1} is {parts[1]}, below 0")
    corr = np.full((n, n), np.nan)
    for line_no, parts in rows[1 + n :]:
        if len(parts) != 3:
            raise DataError(f"{path}: line {line_no}: expected 'i j correlation', got {' '.join(parts)!r}")
        ij = []
        for text, what in ((parts[0], "i"), (parts[1], "j")):
            if not text.isdigit() or not 1 <= int(text) <= n:
                raise DataError(f"{path}: line {line_no}: asset index {what} is {text!r}, not an integer in 1..{n}")
            ij.append(int(text) - 1)
        i, j = ij
        rho = _number(path, line_no, parts[2], f"the correlation of assets {i + 1} and {j + 1}")
        if not -1.0 - 1e-12 <= rho <= 1.0 + 1e-12:
            raise DataError(f"{path}: line {line_no}: the correlation of assets {i + 1} and {j + 1} is {parts[2]}")
        if i == j and abs(rho - 1.0) > 1e-9:
            raise DataError(
                f"{path}: line {line_no}: the correlation of asset {i + 1} with itself is {parts[2]}, not 1"
            )
        if not np.isnan(corr[i, j]):
            raise DataError(f"{path}: line {line_no}: the pair {i + 1} {j + 1} is given a second time")
        corr[i, j] = corr[j, i] = rho
    iu, ju = np.triu_indices(n)
    missing = np.flatnonzero(np.isnan(corr[iu, ju]))
    if missing.size:
        i, j = int(iu[missing[0]]), int(ju[missing[0]])
        raise DataError(
            f"{path}: {missing.size} correlation(s) missing, the first for the pair {i + 1} {j + 1} "
            f"(every pair i <= j, the diagonal included, must be given)"
        )
    cov = corr * np.outer(sd, sd)
    np.fill_diagonal(cov, sd * sd)
    names = tuple(str(k) for k in range(1, n + 1))
    _check_psd(cov, path, names)
    return Moments(names, mu, cov, source=str(path), kind="orlib")


def load_portef(path) -> tuple[np.ndarray, np.ndarray]:
    """Read an OR-Library frontier file (lines ``return variance``): the returns and variances, in file order."""
    rows = _lines(path)
    if not rows:
        raise DataError(f"{path}: empty file (expected lines 'return variance')")
    ret, var = np.empty(len(rows)), np.empty(len(rows))
    for k, (line_no, parts) in enumerate(rows):
        if len(parts) != 2:
            raise DataError(f"{path}: line {line_no}: expected 'return variance', got {' '.join(parts)!r}")
        ret[k] = _number(path, line_no, parts[0], "the return")
        var[k] = _number(path, line_no, parts[1], "the variance")
        if var[k] < 0:
            raise DataError(f"{path}: line {line_no}: the variance is {parts[1]}, below 0")
    return ret, var


def _read_csv(path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: no such file")
    with p.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        rows = [(k, [c.strip() for c in r]) for k, r in enumerate(reader, start=1) if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise DataError(f"{path}: expected a header and at least one row")
    return rows[0][1], rows[1:]


def load_moments(path, estimator: str = "sample") -> Moments:
    """Read moments from an OR-Library file, a CSV of moments or a CSV of returns (see the module docstring).

    A CSV whose second column is named ``mu`` holds moments; any other CSV holds returns, estimated with
    ``estimator`` (one of :data:`ESTIMATORS`). Anything else is read as an OR-Library file.
    """
    if estimator not in ESTIMATORS:
        raise DataError(f"estimator must be one of {list(ESTIMATORS)}, got {estimator!r}")
    if Path(path).suffix.lower() != ".csv":
        return load_orlib(path)
    header, rows = _read_csv(path)
    if len(header) >= 2 and header[1].lower() == "mu":
        return _moments_csv(path, header, rows)
    return _returns_csv(path, header, rows, estimator)


def _moments_csv(path, header, rows) -> Moments:
    names = tuple(header[2:])
    n = len(names)
    if n < 2 or len(set(names)) != n or "" in names:
        raise DataError(f"{path}: line 1: expected 'asset,mu' then two or more distinct asset names, got {header!r}")
    if len(rows) != n:
        raise DataError(f"{path}: {len(rows)} asset rows for {n} covariance columns ({', '.join(names)})")
    mu, cov = np.empty(n), np.empty((n, n))
    for a, (line_no, r) in enumerate(rows):
        if len(r) != n + 2:
            raise DataError(f"{path}: line {line_no}: {len(r)} fields, expected {n + 2} (asset, mu, {n} covariances)")
        if r[0] != names[a]:
            raise DataError(f"{path}: line {line_no}: asset {r[0]!r} where the columns put {names[a]!r}")
        mu[a] = _number(path, line_no, r[1], f"mu of {r[0]!r}")
        for b in range(n):
            cov[a, b] = _number(path, line_no, r[2 + b], f"the covariance of {r[0]!r} and {names[b]!r}")
    diag = np.diag(cov)
    if (diag < 0).any():
        a = int(np.flatnonzero(diag < 0)[0])
        raise DataError(f"{path}: line {rows[a][0]}: the variance of {names[a]!r} is {diag[a]!r}, below 0")
    asym = np.abs(cov - cov.T) > _SYM_TOL * np.maximum(np.abs(cov), np.abs(cov.T)).clip(min=1e-300)
    if asym.any():
        a, b = (int(x) for x in np.argwhere(asym)[0])
        raise DataError(
            f"{path}: line {rows[a][0]}: the covariance matrix is not symmetric: ({names[a]}, {names[b]}) is "
            f"{cov[a, b]!r} but ({names[b]}, {names[a]}) is {cov[b, a]!r}"
        )
    _check_psd(cov, path, names)
    return Moments(names, mu, cov, source=str(path), kind="csv moments")


def _returns_csv(path, header, rows, estimator) -> Moments:
    names = tuple(header[1:])
    if len(names) < 2 or len(set(names)) != len(names) or "" in names:
        raise DataError(f"{path}: line 1: expected a time column then two or more distinct asset names, got {header!r}")
    x = np.empty((len(rows), len(names)))
    for t, (line_no, r) in enumerate(rows):
        if len(r) != len(header):
            raise DataError(f"{path}: line {line_no}: {len(r)} fields, expected {len(header)}")
        for a, name in enumerate(names):
            x[t, a] = _number(path, line_no, r[1 + a], f"the return of {name!r}")
    return moments_from_returns(x, names, estimator=estimator, source=str(path))


def moments_from_returns(returns, names, *, estimator: str = "sample", source: str = "") -> Moments:
    """Mean and covariance of a (periods, assets) array of returns: the sample covariance (``ddof=1``) or Ledoit
    and Wolf's shrinkage (scikit-learn's ``LedoitWolf`` on the demeaned returns, rescaled to ``ddof=1``)."""
    x = np.asarray(returns, dtype=np.float64)
    names = tuple(str(s) for s in names)
    where = source or "returns"
    if x.ndim != 2 or x.shape[1] != len(names):
        raise DataError(f"{where}: returns must be (periods, {len(names)}), got shape {x.shape}")
    if x.shape[0] < 2:
        raise DataError(f"{where}: {x.shape[0]} period(s) of returns; a covariance needs at least 2")
    if estimator not in ESTIMATORS:
        raise DataError(f"estimator must be one of {list(ESTIMATORS)}, got {estimator!r}")
    mu = x.mean(axis=0)
    if estimator == "sample":
        cov = np.cov(x, rowvar=False, ddof=1)
    else:
        from sklearn.covariance import LedoitWolf

        t = x.shape[0]
        cov = LedoitWolf(assume_centered=False).fit(x).covariance_ * (t / (t - 1))
    cov = (cov + cov.T) / 2.0
    return Moments(names, mu, cov, source=source, kind=f"returns ({estimator})")
