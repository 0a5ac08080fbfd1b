"""The champion file's records of how its weights were deployed (issue 23), checked by
:func:`genetic_sizer.runs.champion.load`.

* ``construction`` (optional): how the weights were built (:func:`genetic_sizer.evolution.robust.deploy`): an object
  with a ``method`` name.
* ``portfolio.min_effective_assets`` (optional): the norm constraint ``1 / sum(v^2) >= value`` (``v`` the
  gross-normalized weights) that the weights must meet.

Both were added to version 4 files without a version bump: a file without them was not built with them.
"""

from __future__ import annotations

import math

import numpy as np

from genetic_sizer.errors import ChampionError

__all__ = ["check_deployment"]

ENC_TOL = 1e-9
"""Tolerance of the effective number of assets (the same as :data:`genetic_sizer.evolution.robust.ENC_TOL`)."""


def check_deployment(where: str, raw: dict, w: np.ndarray) -> None:
    """Raise :class:`ChampionError` naming ``where`` and the field when ``construction`` is not an object with a
    method name, or when the weights break ``portfolio.min_effective_assets``."""
    built = raw.get("construction", {"method": ""})
    if not isinstance(built, dict) or not isinstance(built.get("method"), str):
        raise ChampionError(f"{where}: construction must be an object with a method name, got {built!r}")
    value = raw["portfolio"].get("min_effective_assets")
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 1:
        raise ChampionError(f"{where}: portfolio.min_effective_assets must be a number >= 1 or null, got {value!r}")
    v = w / np.abs(w).sum()
    enc = 1.0 / float((v * v).sum())
    if enc < value - ENC_TOL:
        raise ChampionError(
            f"{where}: the weights have {enc:.6g} effective assets (1 / sum(w^2)), under "
            f"portfolio.min_effective_assets {value:g}"
        )
