"""``data.strategies``: run directories of earlier champions as the assets of a run (multi-strategy allocation).

Checked here (types, names, the data keys that must stay unset); the runs are read a layer up, by
:mod:`genetic_sizer.runs.strategies`.
"""

from __future__ import annotations

from genetic_sizer import vocab as V

__all__ = ["check_strategies", "strategy_dirs"]


def _text(key, value) -> str:
    if not isinstance(value, str) or not value.strip():
        V.must_be(key, value, "a non-empty string")
    return value


def _name_of(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def check_strategies(dc) -> tuple:
    """``data.strategies`` of the DataConfig ``dc``: a non-empty list of run directories (a path or a storage URL; the
    strategy is named by the directory's base name) or ``{name: run directory}`` single-key mappings, names unique;
    the data then come from the runs (``data.source`` default, no ``data.path``, ``data.kind`` prices, no funding
    file). Returns the entries as a tuple; errors name the key and the value."""
    raw = dc.strategies
    if isinstance(raw, str) or not isinstance(raw, (list, tuple)) or not raw:
        V.must_be("data.strategies", raw, "a non-empty list of run directories (or {name: run directory}) or null")
    out, names = [], []
    for i, item in enumerate(raw):
        key = f"data.strategies[{i}]"
        if isinstance(item, dict):
            if len(item) != 1:
                V.must_be(key, item, "a run directory or one {name: run directory} pair")
            ((name, path),) = item.items()
            name = _text(f"{key} name", name)
            path = _text(f"{key}.{name}", path)
            out.append({name: path})
        else:
            path = _text(key, item)
            name = _name_of(path)
            if not name or name in (".", ".."):
                V.must_be(key, item, "a run directory with a name (or {name: run directory})")
            out.append(path)
        if name in names:
            V.must_be(key, item, f"a strategy not named {name!r} again (give {{name: run directory}} to rename)")
        names.append(name)
    for field_, value, neutral in (
        ("source", dc.source, "default"),
        ("path", dc.path, None),
        ("kind", dc.kind, "prices"),
        ("funding_path", dc.funding_path, None),
    ):
        if value != neutral and not (field_ == "funding_path" and value is False):
            V.must_be(f"data.{field_}", value, f"{neutral!r} (unset) with data.strategies: the runs are the data")
    return tuple(out)


def strategy_dirs(strategies) -> tuple[tuple[str, str], ...]:
    """``(name, run directory)`` of each checked entry of ``data.strategies``, in order (empty for None)."""
    return tuple(
        next(iter(item.items())) if isinstance(item, dict) else (_name_of(item), item) for item in strategies or ()
    )
