"""The commented configuration `digest init` writes, straight from the declarations in
`digest.config.settings`, so no key can go undocumented."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from digest.config.settings import SECTIONS, Secret, SourceSettings


def _toml_value(value: Any) -> str:
    if isinstance(value, Secret):
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        minutes = int(value.total_seconds() // 60)
        return f'"{minutes // 60}h"' if minutes % 60 == 0 else f'"{minutes}m"'
    if isinstance(value, Path):
        return f'"{value.as_posix()}"'
    if value is None:
        return '""'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }" if value else "{}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _table(
    cls: type[Any], values: Any | None = None, chosen: Mapping[str, Any] | None = None
) -> list[str]:
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
        value = getattr(values, f.name) if values is not None else default
        if chosen and f.name in chosen:
            value = chosen[f.name]
        lines.append(f"# {f.metadata['help']}")
        line = f"{f.name} = {_toml_value(value)}"
        if isinstance(default, Secret):
            line = "# " + line + "   # secret: digest.secrets.toml or the environment"
        lines.append(line)
    return lines


def example_toml(
    sources: tuple[SourceSettings, ...] = (),
    chosen: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """Return the commented configuration `digest init` writes: every key, default and help,
    with the values in `chosen` ({section: {key: value}}) instead of the defaults."""
    out = [
        "# digest configuration. Every key is shown with its default and what it does.",
        "# Environment variables DIGEST_<SECTION>__<KEY> override this file;",
        "# secrets belong in digest.secrets.toml beside this file (written by `digest init`,",
        "# mode 0600) or in DIGEST_<SECTION>__<KEY> / DIGEST_<SECTION>__<KEY>_FILE, not here.",
        "",
    ]
    for name, cls in SECTIONS.items():
        out.append(f"[{name}]")
        out.extend(_table(cls, chosen=(chosen or {}).get(name)))
        out.append("")
    out.append(
        "# Sources: add as many [[sources]] tables as you like, or use `digest sources add`."
    )
    for source in sources:
        out.append("[[sources]]")
        out.extend(_table(SourceSettings, source))
        out.append("")
    if not sources:
        example = SourceSettings(name="example-news", url="https://example.org/feed")
        out.append("# [[sources]]")
        out.extend("# " + line.lstrip("# ") for line in _table(SourceSettings, example))
        out.append("")
    return "\n".join(out)
