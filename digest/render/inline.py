"""Inline an email's CSS into `style` attributes: premailer's result, at a fraction of its cost.

premailer (3.10) spends an issue's render like this: it caches cssutils' parse of a
`<style>` body but walks and re-serializes every rule of it on each call
(`_parse_style_rules`, and `_css_rules_to_string` for the media queries that stay in
`<head>`), about two thirds of its time; then it matches each rule against the document
(XPath, fast), and for every matched element merges the rules' declarations with the
element's own `style` (`merge_styles`) and derives `bgcolor`/`width`/`align` attributes,
in Python, element by element. An issue's stylesheet is the template's, the same in every
issue, and its elements come in a few shapes repeated per item (the same classes, the same
MJML inline styles, so the same rules).

So `Inliner` keeps, per stylesheet text, premailer's parsed rules and leftover CSS, and per
element shape (its own `style` and the rules that matched it, in order) the merged style
and attributes. Matching the rules against each document is still premailer's XPath, and
every step left is premailer's own function, so the output is premailer's byte for byte
(`tests/render/test_inline.py` compares them on every built-in email). `transform` below
is premailer's, reduced to the options used here (no network, no external or extra CSS,
`<style>` tags replaced by their leftover rules, URLs untouched).
"""

from __future__ import annotations

import logging
import operator
import re
import threading
import warnings
from collections.abc import Callable
from typing import Any

import cssutils  # type: ignore[import-untyped]
import premailer
from lxml import etree
from premailer.merge_style import csstext_to_pairs, merge_styles
from premailer.premailer import (
    FILTER_PSEUDOSELECTORS,
    _create_cssselector,
    get_or_create_head,
)

from digest.render import selectors

_KEPT = 4096
"""Entries kept per cache (stylesheets: a handful; element shapes: a few hundred)."""

_Rules = tuple[list[tuple[Any, str, str]], list[Any]]
_parsed: dict[tuple[str, int], _Rules] = {}
_leftover_text: dict[int, tuple[list[Any], str]] = {}
_merged: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, tuple[tuple[str, str], ...]]] = {}
_floats: dict[str, str] = {}
_lock = threading.Lock()


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _KEPT:
        cache.clear()
    cache[key] = value


class Inliner(premailer.Premailer):  # type: ignore[misc]
    """premailer with the options of `inline`, its per-stylesheet and per-shape work cached."""

    def __init__(self) -> None:
        super().__init__(
            allow_network=False,
            disable_validation=True,
            strip_important=False,
            cssutils_logging_level=logging.CRITICAL,
        )

    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> _Rules:
        key = (css_body, ruleset_index)
        found = _parsed.get(key)
        if found is None:
            with _lock:  # cssutils is not thread-safe, and premailer mutates the media rules
                found = _parsed.get(key)
                if found is None:
                    rules, leftover = super()._parse_style_rules(css_body, ruleset_index)
                    text = super()._css_rules_to_string(leftover) if leftover else ""
                    if len(_parsed) >= _KEPT:
                        _parsed.clear()
                        _leftover_text.clear()
                    found = (rules, leftover)
                    _parsed[key] = found
                    _leftover_text[id(leftover)] = (leftover, text)
        # The caller extends its own list with the rules and only reads the leftovers.
        return found

    def _css_rules_to_string(self, rules: list[Any]) -> str:
        known = _leftover_text.get(id(rules))
        if known is not None and known[0] is rules:
            return known[1]
        text: str = super()._css_rules_to_string(rules)
        return text

    def transform(self, html: str, pretty_print: bool = False) -> str:
        """Return `html` with the rules of its `<style>` elements inlined (premailer's
        `Premailer.transform` for these options)."""
        stripped = html.strip()
        tree = etree.fromstring(stripped, etree.HTMLParser()).getroottree()
        page = tree.getroot()
        # lxml inserts a doctype if none exists: keep one only if the input had it.
        docinfo: Any = tree.docinfo
        root = tree if stripped.startswith(docinfo.doctype) else page
        get_or_create_head(tree)

        rules: list[tuple[Any, str, str]] = []
        index = 0
        for element in _create_cssselector("style")(page):
            media = element.attrib.get("media")
            if media and media not in ("all", "screen"):
                continue
            marker = element.attrib.get(self.attribute_name)
            if marker:
                if marker == "ignore":
                    del element.attrib[self.attribute_name]
                    continue
                warnings.warn(
                    f"Unrecognized {self.attribute_name} attribute ({marker!r})", stacklevel=2
                )
            these_rules, these_leftover = self._parse_style_rules(element.text, index)
            index += 1
            rules.extend(these_rules)
            if these_leftover:
                element.text = self._css_rules_to_string(these_leftover)
            else:
                element.getparent().remove(element)
        rules.sort(key=operator.itemgetter(0))

        document = selectors.Document.of(page)
        # Element (by id) → the element and the (declarations, pseudo-class) that match it.
        elements: dict[int, tuple[Any, list[tuple[str, str]]]] = {}
        for _, selector, style in rules:
            pseudo = ""
            bare = selector
            if ":" in selector:
                bare, pseudo = re.split(":", selector, maxsplit=1)
                pseudo = ":" + pseudo
            if pseudo in FILTER_PSEUDOSELECTORS or pseudo.startswith(":nth-child"):
                pseudo = ""
            else:
                selector = bare
            for item in _select(selector, page, document):
                found = elements.get(id(item))
                if found is None:
                    found = elements[id(item)] = (item, [])
                found[1].append((style, pseudo))

        for item, matched in elements.values():
            own = item.attrib.get("style", "")
            shape = (own, tuple(matched))
            merged = _merged.get(shape)
            if merged is None:
                merged = self._merge(own, matched)
                _remember(_merged, shape, merged)
            final, attributes = merged
            if final:
                item.attrib["style"] = final
            for name, value in attributes:
                item.attrib[name] = value

        # Outlook ignores CSS floats but knows <img align>.
        images: list[Any] = page.xpath("//img[@style]")  # type: ignore[assignment]
        for image in images:
            declared: str = image.attrib["style"]
            side = _floats.get(declared)
            if side is None:
                side = cssutils.parseStyle(declared).float
                _remember(_floats, declared, side)
            if side in ("left", "right"):
                image.attrib["align"] = side

        out: bytes = etree.tostring(
            root, method="html", pretty_print=pretty_print, encoding="utf-8"
        )
        return out.decode("utf-8")

    def _merge(
        self, own: str, matched: list[tuple[str, str]]
    ) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The element's merged style and the HTML attributes premailer derives from it."""
        styles = [csstext_to_pairs(style, validate=False) for style, _ in matched]
        final: str = merge_styles(
            own,
            styles,
            [pseudo for _, pseudo in matched],
            remove_unset_properties=self.remove_unset_properties,
        )
        probe = etree.Element("probe")
        self._style_to_basic_html_attributes(probe, final, force=True)
        return final, tuple((str(name), str(value)) for name, value in probe.attrib.items())


_inliner = Inliner()
_matchers: dict[str, Callable[[selectors.Document], list[Any]] | None] = {}


def _select(selector: str, page: Any, document: selectors.Document) -> list[Any]:
    """The elements `selector` matches, in document order: by the one-pass index when the
    selector is a plain one, else by premailer's XPath."""
    try:
        matcher = _matchers[selector]
    except KeyError:
        matcher = selectors.compile(selector)
        _remember(_matchers, selector, matcher)
    if matcher is None:
        found: list[Any] = _create_cssselector(selector)(page)
        return found
    return matcher(document)


def inline(html: str) -> str:
    """Return `html` with its `<style>` rules inlined into `style` attributes, for clients
    that drop `<style>`.

    MJML's media queries (responsive columns) stay in `<head>`, `!important` kept since
    they must win over the inlined widths; a `<style data-premailer="ignore">` (dark mode)
    is passed through untouched.
    """
    # lxml spells the doctype "<!DOCTYPE html>"; premailer keeps a doctype only when the
    # input starts with exactly that, and MRML writes it in lower case.
    if html[:15].lower() == "<!doctype html>":
        html = "<!DOCTYPE html>" + html[15:]
    return _inliner.transform(html)
