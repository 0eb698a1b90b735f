"""Inline an email's CSS into `style` attributes with premailer, parsing each stylesheet once.

premailer caches cssutils' parse of a `<style>` body, but then walks and re-serializes every
rule of it on each call (its `_parse_style_rules` and, for the media queries that stay in
`<head>`, `_css_rules_to_string`): about two thirds of its time on an issue, for a
stylesheet that is the same in every issue (it comes from the template). `Inliner` keeps
both results per stylesheet text, so a render pays only for matching the rules against
its document and merging the styles. The output is premailer's, byte for byte: both
steps are deterministic functions of the stylesheet text and the options, which are fixed
here.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import premailer

_RULES_KEPT = 64
"""Distinct stylesheets kept (built-in and operator templates have a handful)."""

_Parsed = tuple[list[tuple[Any, str, str]], list[Any], str]
_parsed: dict[tuple[str, int], _Parsed] = {}
_leftover_text: dict[int, tuple[list[Any], str]] = {}
_lock = threading.Lock()


class _Inliner(premailer.Premailer):  # type: ignore[misc]
    """premailer with its per-stylesheet work cached (see the module's docstring)."""

    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[list[Any], list[Any]]:
        key = (css_body, ruleset_index)
        found = _parsed.get(key)
        if found is None:
            with _lock:  # cssutils is not thread-safe, and the media rules are mutated once
                found = _parsed.get(key)
                if found is None:
                    rules, leftover = super()._parse_style_rules(css_body, ruleset_index)
                    text = super()._css_rules_to_string(leftover) if leftover else ""
                    if len(_parsed) >= _RULES_KEPT:
                        _parsed.clear()
                        _leftover_text.clear()
                    found = (rules, leftover, text)
                    _parsed[key] = found
                    _leftover_text[id(leftover)] = (leftover, text)
        # premailer extends its own list with the rules and only reads the leftovers.
        return found[0], found[1]

    def _css_rules_to_string(self, rules: list[Any]) -> str:
        known = _leftover_text.get(id(rules))
        if known is not None and known[0] is rules:
            return known[1]
        text: str = super()._css_rules_to_string(rules)
        return text


def inline(html: str) -> str:
    """Return `html` with its `<style>` rules inlined, as `premailer.Premailer` does with
    the options of the module's docstring.

    MJML's media queries (responsive columns) stay in `<head>`, `!important` kept since
    they must win over the inlined widths; a `<style data-premailer="ignore">` (dark mode)
    is passed through untouched.
    """
    # lxml spells the doctype "<!DOCTYPE html>"; premailer keeps a doctype only when the
    # input starts with exactly that, and MRML writes it in lower case.
    if html[:15].lower() == "<!doctype html>":
        html = "<!DOCTYPE html>" + html[15:]
    inliner = _Inliner(
        html,
        allow_network=False,
        disable_validation=True,
        strip_important=False,
        cssutils_logging_level=logging.CRITICAL,
    )
    result: str = inliner.transform(pretty_print=False)
    return result
