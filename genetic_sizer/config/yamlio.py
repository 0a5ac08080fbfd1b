"""Reading configs: YAML with the config's rules and ``--set key.path=value`` overrides."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from genetic_sizer.errors import ConfigError

__all__ = ["apply_overrides", "parse_yaml", "read_yaml"]


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key.path=value, got {item!r}")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set: bad key {key!r}")
    value = parse_yaml(text, f"--set {key}") if text.strip() else None
    return parts, value


def apply_overrides(raw: dict, overrides) -> dict:
    """Apply ``key.path=value`` strings (values parsed as YAML) to a raw config mapping; returns a copy."""
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"a config is a mapping of sections (data:, portfolio:, ...), got {type(raw).__name__}")
    out = json.loads(json.dumps(raw or {}, default=str))
    for item in overrides or ():
        parts, value = _parse_override(item)
        node = out
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {'.'.join(parts)}: {p!r} is not a section")
            node = nxt
        node[parts[-1]] = value
    return out


class _Loader(yaml.SafeLoader):
    """YAML as users write it: ``1e-3`` is a number (YAML 1.2; PyYAML's 1.1 rules read it as a string), and
    dates stay text (``2015-02-30`` would otherwise fail inside the parser with no key to name); the
    config's own validation checks them and names the key."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, where: str):
    """Parse YAML text with the config's rules (see :class:`_Loader`); errors name ``where``."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: invalid YAML ({exc})") from None


def read_yaml(path: str | Path) -> dict:
    """The mapping of sections in a YAML config file; anything else is a ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 1]
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {bad!r})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    raw = parse_yaml(text, str(path))
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: a config is a mapping of sections (data:, portfolio:, ...), got a {type(raw).__name__}"
        )
    return raw
