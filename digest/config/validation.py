"""Checks a loaded configuration must pass beyond each key's type: languages, time zone,
base URL, positive numbers, choices among fixed words, schedules, unique source names."""

from __future__ import annotations

import dataclasses
import re
import zoneinfo
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from digest.config.settings import SECTIONS, SOURCE_KINDS, Settings
from digest.errors import ConfigError

_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?")
"""language[-Script][-REGION]: the BCP 47 tags a publication's languages may use."""


def check_language(tag: str, where: str) -> None:
    """Raise ConfigError unless `tag` is a BCP 47 language tag Babel knows ("nl", "fr-BE")."""
    if not _LANGUAGE_TAG.fullmatch(tag):
        raise ConfigError(
            f"{where}: {tag!r} is not a language tag; use a BCP 47 tag such as "
            '"en", "nl" or "fr-BE"'
        )
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        raise ConfigError(
            f"{where}: {tag!r} is not a language Babel knows; use a BCP 47 tag such as "
            '"en", "nl" or "fr-BE"'
        ) from None


def _check_numbers(settings: Settings, where: str) -> None:
    """Counts and durations must be positive; where 0 means "off" (its default is 0, or
    the declaration says `minimum=0`), 0 is allowed too. Never negative."""
    sections: list[tuple[str, Any]] = [(name, getattr(settings, name)) for name in SECTIONS]
    for name, values in sections:
        for spec in dataclasses.fields(values):
            value = getattr(values, spec.name)
            if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
                continue
            default = spec.default
            zero_ok = spec.metadata.get("minimum") == 0 or default in (0, timedelta(0))
            amount = value.total_seconds() if isinstance(value, timedelta) else value
            if amount < 0 or (amount == 0 and not zero_ok):
                need = "0 or more" if zero_ok else "more than 0"
                raise ConfigError(f"{where} [{name}] {spec.name}: {value!r}; it must be {need}")


def _check_base_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{where} [publication] base_url: {url!r} is not an http(s) URL; "
            'write the public address, e.g. "https://digest.example.org"'
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(
            f"{where} [publication] base_url: {url!r} has a query, fragment or user name; "
            "write only scheme, host and (optionally) path"
        )
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ConfigError(f"{where} [publication] base_url: {url!r} holds spaces or controls")


def validate(settings: Settings, where: str) -> None:
    """Checks that span keys or need more than a type."""
    pub = settings.publication
    if not pub.languages:
        raise ConfigError(f"{where} [publication] languages: list at least one language")
    for tag in pub.languages:
        check_language(tag, f"{where} [publication] languages")
    if len(set(pub.languages)) != len(pub.languages):
        raise ConfigError(f"{where} [publication] languages: a language is listed twice")
    _check_base_url(pub.base_url, where)
    _check_numbers(settings, where)
    try:
        zoneinfo.ZoneInfo(pub.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"{where} [publication] timezone: {pub.timezone!r} is not an IANA time zone "
            '(e.g. "Europe/Brussels")'
        ) from exc
    _validate_languages(settings, where)
    if settings.issue.approval not in ("auto", "editor"):
        raise ConfigError(f'{where} [issue] approval: expected "auto" or "editor"')
    if settings.issue.other_languages not in ("show", "hide"):
        raise ConfigError(f'{where} [issue] other_languages: expected "show" or "hide"')
    if settings.issue.excerpt_words < 1:
        raise ConfigError(f"{where} [issue] excerpt_words: must be 1 or more (default 50)")
    if settings.render.images not in ("drop", "copy", "remote"):
        raise ConfigError(f'{where} [render] images: expected "drop", "copy" or "remote"')
    from digest.compose.slots import parse_daily, parse_weekly  # slots own the syntax

    for key, parse in (("schedule", parse_weekly), ("daily_schedule", parse_daily)):
        try:
            parse(getattr(settings.issue, key))
        except ValueError as exc:
            raise ConfigError(f"{where} [issue] {key}: {exc}") from exc
    if settings.issue.unapproved not in ("skip", "send"):
        raise ConfigError(f'{where} [issue] unapproved: expected "skip" or "send"')
    if settings.delivery.transport not in ("outbox", "smtp"):
        raise ConfigError(f'{where} [delivery] transport: expected "outbox" or "smtp"')
    delivery = settings.delivery
    if delivery.connections < 1 or delivery.rate_per_second < 0 or delivery.max_attempts < 1:
        raise ConfigError(
            f"{where} [delivery]: connections and max_attempts must be at least 1, "
            "rate_per_second 0 (unlimited) or more"
        )
    if delivery.record not in ("journal", "commit"):
        raise ConfigError(f'{where} [delivery] record: expected "journal" or "commit"')
    if not 0 < delivery.max_failure_rate <= 1 or delivery.failure_window < 1:
        raise ConfigError(
            f"{where} [delivery]: max_failure_rate must be above 0 and at most 1, "
            "failure_window at least 1"
        )
    if bool(delivery.dkim_selector) != bool(delivery.dkim_key_file):
        raise ConfigError(
            f"{where} [delivery]: DKIM needs both dkim_selector and dkim_key_file (or neither)"
        )
    if settings.collect.timeout_seconds <= 0 or settings.collect.max_bytes <= 0:
        raise ConfigError(f"{where} [collect]: timeout_seconds and max_bytes must be positive")
    from digest.collect.networks import parse_networks  # the guard's CIDR parsing

    try:
        parse_networks(settings.collect.allow_networks)
    except ValueError as exc:
        raise ConfigError(f"{where} [collect] allow_networks: {exc}") from exc
    seen: set[str] = set()
    for i, source in enumerate(settings.sources):
        label = f"{where} [[sources]] #{i + 1}"
        if not source.name or not source.url:
            raise ConfigError(f"{label}: every source needs a name and a url")
        if source.name in seen:
            raise ConfigError(f"{label}: the name {source.name!r} is used twice; names are unique")
        seen.add(source.name)
        if source.language:
            check_language(source.language, f"{label} ({source.name}) language")
        if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in source.name):
            raise ConfigError(f"{label}: the name {source.name!r} holds control characters")
        if source.kind not in SOURCE_KINDS:
            raise ConfigError(
                f"{label} ({source.name}) kind: {source.kind!r} is not one of "
                + ", ".join(SOURCE_KINDS)
            )


def _validate_languages(settings: Settings, where: str) -> None:
    """Titles, sender names and labels may only be given for the publication's languages."""
    known = settings.publication.languages
    tables: list[tuple[str, dict[str, str]]] = [
        ("[publication] titles", settings.publication.titles),
        ("[publication] sender_names", settings.publication.sender_names),
    ]
    for kind in ("sections", "topics"):
        for name, labels in getattr(settings.labels, kind).items():
            tables.append((f"[labels.{kind}.{name}]", labels))
    for label, table in tables:
        for language in table:
            if language not in known:
                raise ConfigError(
                    f"{where} {label}: {language!r} is not one of [publication] languages "
                    f"({', '.join(known)}); add it there or remove this line"
                )
    if settings.publish.feed_issues < 1 or settings.publish.feed_items < 1:
        raise ConfigError(f"{where} [publish]: feed_issues and feed_items must be at least 1")
