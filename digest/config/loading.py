"""Reading the settings: the TOML file, its secrets file beside it and `DIGEST_*`
environment overrides, each key checked against its declared type and converted (paths made
absolute against the config file, durations, secrets); then `validation` checks the whole.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from digest.config.settings import (
    DEFAULT_FILE,
    SECRETS_SUFFIX,
    SECTIONS,
    Secret,
    Settings,
    SourceSettings,
    nearest,
)
from digest.config.validation import validate
from digest.errors import ConfigError


def find_config(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """Return the config file to use: --config, then DIGEST_CONFIG, then ./digest.toml."""
    chosen = explicit or env.get("DIGEST_CONFIG") or DEFAULT_FILE
    return Path(chosen).expanduser().resolve()


def load(
    explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, override from the environment, validate and return the settings."""
    env = os.environ if env is None else env
    path = find_config(explicit, env)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} not found; run `digest init {path.parent}` to create one, "
            "or pass --config PATH (or set DIGEST_CONFIG)"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file and retry") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc}); save it as UTF-8") from exc
    return from_mapping(_with_secrets(data, secrets_path(path)), env=env, path=path)


def secrets_path(config_path: Path) -> Path:
    """The secrets file beside a config file: `digest.toml` → `digest.secrets.toml`."""
    return config_path.with_name(config_path.stem + SECRETS_SUFFIX)


def _with_secrets(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Merge the secrets file's tables over the config's (the environment still wins)."""
    if not path.is_file():
        return data
    try:
        secrets = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the secrets file ({exc}); fix its owner") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the secrets file") from exc
    merged = dict(data)
    for section, table in secrets.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise ConfigError(
                f"{path}: [{section}] is not a settings table; the secrets file holds tables "
                "like [web] secret_key = …"
            )
        merged[section] = {**data.get(section, {}), **table}
    return merged


def from_mapping(
    data: Mapping[str, Any], *, env: Mapping[str, str] | None = None, path: Path | None = None
) -> Settings:
    """Build settings from parsed TOML data plus environment overrides."""
    env = {} if env is None else env
    where = str(path) if path else "config"
    root = path.parent if path else Path.cwd()
    unknown = set(data) - set(SECTIONS) - {"sources"}
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(
            f"{where}: unknown section [{name}]{nearest(name, [*SECTIONS, 'sources'])}; "
            "known sections: " + ", ".join(sorted([*SECTIONS, "sources"]))
        )
    overrides = _env_overrides(env)
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
        sections[name] = _build(cls, table, overrides.get(name, {}), f"{where} [{name}]", root)
    raw_sources = data.get("sources", [])
    if not isinstance(raw_sources, list):
        raise ConfigError(f"{where}: sources must be written as [[sources]] tables")
    sources = tuple(
        _build(SourceSettings, raw, {}, f"{where} [[sources]] #{i + 1}", root)
        for i, raw in enumerate(raw_sources)
    )
    settings = Settings(**sections, sources=sources, path=path)
    validate(settings, where)
    # Logged by the web app when it starts (`digest serve`), not here: settings are
    # loaded by every command and test.
    return dataclasses.replace(settings, notes=tuple(_secrets_in_file(data, where)))


def _secrets_in_file(data: Mapping[str, Any], where: str) -> list[str]:
    """A warning for every secret written into the file itself."""
    found = []
    for name, cls in SECTIONS.items():
        table = data.get(name, {})
        hints = typing.get_type_hints(cls)
        for key, value in table.items() if isinstance(table, dict) else ():
            if hints.get(key) is Secret and value:
                var = f"DIGEST_{name.upper()}__{key.upper()}"
                found.append(
                    f"{where}: [{name}] {key} is written in the file; anyone who can read it "
                    f"has the secret: set {var} or {var}_FILE (a file only the service reads) "
                    "instead, and remove it from the file"
                )
    return found


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, tuple[str, str]]]:
    """Collect DIGEST_SECTION__KEY (and _FILE) variables as {section: {key: (var, text)}}."""
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for var, text in env.items():
        if not var.startswith("DIGEST_") or "__" not in var:
            continue
        section, _, key = var[len("DIGEST_") :].partition("__")
        section, key = section.lower(), key.lower()
        if section not in SECTIONS:
            raise ConfigError(
                f"environment variable {var}: unknown section [{section}]"
                f"{nearest(section, SECTIONS)}"
            )
        names = {f.name for f in dataclasses.fields(SECTIONS[section])}
        if key.endswith("_file") and key not in names and key[: -len("_file")] in names:
            key = key[: -len("_file")]
            try:
                text = Path(text).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"environment variable {var}: cannot read {text}: {exc}") from exc
        if key not in names:
            raise ConfigError(
                f"environment variable {var}: [{section}] has no key {key!r}"
                f"{nearest(key, names)}; known keys: {', '.join(sorted(names))}"
            )
        found.setdefault(section, {})[key] = (var, text)
    return found


def _build(
    cls: type[Any],
    table: Mapping[str, Any],
    env: Mapping[str, tuple[str, str]],
    where: str,
    root: Path,
) -> Any:
    """Instantiate one settings dataclass, checking every key and its type."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(table) - set(fields)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            f"{where}: unknown key {key!r}{nearest(key, fields)}; known keys: {', '.join(fields)}"
        )
    values: dict[str, Any] = {}
    for name, value in table.items():
        values[name] = _coerce(hints[name], value, f"{where} {name}", root)
    for name, (var, text) in env.items():
        values[name] = _coerce(hints[name], _parse_env(hints[name], text), var, root)
    for name, spec in fields.items():
        # A default path ("public") is relative to the config file as a written one is.
        if name not in values and isinstance(spec.default, Path):
            values[name] = _coerce(hints[name], spec.default, f"{where} {name}", root)
    return cls(**values)


def _parse_env(hint: Any, text: str) -> Any:
    """Turn an environment string into the value its key's type expects."""
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        return text
    if typing.get_origin(hint) is dict:
        try:
            return tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            return text
    if typing.get_origin(hint) is list:
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                return tomllib.loads(f"v = {stripped}")["v"]
            except tomllib.TOMLDecodeError:
                return text
        return [part.strip() for part in stripped.split(",") if part.strip()]
    if hint is int:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            return text
    if hint is float:
        try:
            return float(text)
        except ValueError:
            return text
    return text


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """Parse "90s", "30m", "2h" or "1d"; raise ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h or 1d")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def _coerce(hint: Any, value: Any, where: str, root: Path) -> Any:
    """Check `value` against the declared type and convert paths, durations and secrets."""
    optional = False
    if isinstance(hint, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, args[0]
        if value in ("", None):
            return None
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if hint is Secret:
        if isinstance(value, str):
            return Secret(value)
        raise ConfigError(f"{where}: expected a string")
    if hint is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        path = Path(value).expanduser()
        return path if path.is_absolute() else root / path
    if hint is timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    if typing.get_origin(hint) is list:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
        raise ConfigError(f'{where}: expected a list of strings like ["a", "b"], got {value!r}')
    if typing.get_origin(hint) is dict:
        return _coerce_table(typing.get_args(hint)[1], value, where)
    del optional
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")  # pragma: no cover


def _coerce_table(inner: Any, value: Any, where: str) -> dict[str, Any]:
    """Check a table of strings (`inner` is str) or of tables of strings (dict[str, str])."""
    if not isinstance(value, dict):
        raise ConfigError(f'{where}: expected a table like {{ nl = "…", fr = "…" }}, got {value!r}')
    table: dict[str, Any] = {}
    for key, item in value.items():
        if inner is str:
            if not isinstance(item, str):
                raise ConfigError(f"{where}.{key}: expected a string, got {item!r}")
            table[key] = item
        else:
            table[key] = _coerce_table(str, item, f"{where}.{key}")
    return table


def database_url(settings: Settings) -> str:
    """Return the database URL with a relative sqlite path made relative to the config file."""
    url = settings.database.url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        rest = url[len(prefix) :]
        return prefix + str(settings.root / rest)
    return url


def source_location(settings: Settings, url: str) -> str:
    """Return a source URL unchanged, or a local path made absolute against the config file."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
        return url
    path = Path(url).expanduser()
    return str(path if path.is_absolute() else settings.root / path)
