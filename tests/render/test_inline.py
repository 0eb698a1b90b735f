"""The inliner gives premailer's output byte for byte, on every built-in email and on
selectors chosen to find the edges of the one-pass matching."""

from __future__ import annotations

import logging

import premailer
import pytest
from lxml import etree
from lxml.cssselect import CSSSelector

from digest.render import email, notices, selectors
from digest.render.environment import make_environment
from digest.render.inline import inline
from tests.render.plans import example_plan, large_plan, links


def premailer_itself(html: str) -> str:
    """What `inline` replaced: premailer 3.10 with the same options, nothing cached."""
    if html[:15].lower() == "<!doctype html>":
        html = "<!DOCTYPE html>" + html[15:]
    result: str = premailer.Premailer(
        html,
        allow_network=False,
        disable_validation=True,
        strip_important=False,
        cache_css_parsing=False,
        cssutils_logging_level=logging.CRITICAL,
    ).transform(pretty_print=False)
    return result


@pytest.mark.parametrize("plan", [example_plan(), large_plan(60)], ids=["example", "60 items"])
def test_issues_inline_as_premailer_does(plan: object) -> None:
    env = make_environment(None)
    assert hasattr(plan, "variants")
    for variant in plan.variants:
        source = email.render_mjml(plan, variant.language, links(variant.language), env)  # type: ignore[arg-type]
        html = email.mjml_to_html(source)
        expected = premailer_itself(html)
        assert inline(html) == expected
        assert inline(html) == expected  # and again, from the caches


def test_notices_inline_as_premailer_does(monkeypatch: pytest.MonkeyPatch) -> None:
    compared = []

    def both(html: str) -> str:
        ours = inline(html)
        assert ours == premailer_itself(html)
        compared.append(html)
        return ours

    monkeypatch.setattr(notices, "inline_styles", both)
    env = make_environment(None)
    for language in ("en", "nl", "fr"):
        notices.render_confirmation(
            title="Town Digest",
            language=language,
            confirm_url="https://digest.example.org/confirm/abc",
            env=env,
            valid_days=7,
        )
        notices.render_links(
            title="Town Digest",
            language=language,
            preferences_url="https://digest.example.org/p/abc",
            unsubscribe_url="https://digest.example.org/u/abc",
            env=env,
            fresh_hours=24,
        )
    assert len(compared) == 6


EDGES = """<html id="root" class="top"><head><title>t</title></head><body class="b">
<!-- a comment --><div class="a\tb\nc  d" id="x"><p class="a">one</p>
<span class="A">case</span><p class="ab">two</p><table class="event"><tr><td>1</td>
<td class="when"><a href="#">in</a></td></tr></table></div><div class="a&#12;b"><p>f</p>
</div><p id="x">dup id</p><section><div class="cancelled"><h3><a>t</a></h3></div></section>
</body></html>"""

SELECTORS = [
    "p",
    "a",
    "td",
    "div",
    "span",
    "h3",
    "html",
    "body",
    "TD",
    "P",
    ".a",
    ".b",
    ".c",
    ".d",
    ".A",
    ".ab",
    ".top",
    ".event",
    ".when",
    ".cancelled",
    "#x",
    "#root",
    "p#x",
    "div#x.a.b",
    "p.a",
    "div.a.b.c.d",
    "div.a.e",
    ".event td",
    ".event td a",
    "#outlook a",
    "#x p",
    "#root p",
    ".top td",
    "html td",
    ".cancelled h3 a",
    ".a p",
    "div p",
    "body div p",
    "section h3",
    "td a",
    ".b .a",
    ".a .when a",
    "p p",
    "table a",
]


@pytest.mark.parametrize("selector", SELECTORS)
def test_plain_selectors_match_as_the_xpath_does(selector: str) -> None:
    page = etree.fromstring(EDGES, etree.HTMLParser())
    matcher = selectors.compile(selector)
    expected = CSSSelector(selector)(page)
    if selector[:1].isupper():
        assert matcher is None  # an upper-case tag name: left to the XPath
        return
    assert matcher is not None
    assert matcher(selectors.Document.of(page)) == expected


@pytest.mark.parametrize(
    "selector", ["a > b", "a[href]", "*", "p:first-child", "a + b", ".a\\:b", "p  a", ""]
)
def test_other_selectors_are_left_to_the_xpath(selector: str) -> None:
    assert selectors.compile(selector) is None


HANDMADE = """<!doctype html><html><head>
<style>
img.left { float: left } img.right { float: right; width: 80px }
td { background-color: #abc; text-align: center; vertical-align: top; width: 10px }
.box { color: red !important; padding: 2px } .box p { margin: 0 } p:first-child { color: blue }
a:hover { color: green } .gone { color: unset } #main .box { height: 5px }
@media (max-width: 480px) { .box { width: 100% } }
</style>
<style data-premailer="ignore">@media (prefers-color-scheme: dark) { p { color: #fff } }</style>
<style media="print">p { color: black }</style>
</head><body><div id="main"><div class="box" style="color: black; margin: 1px">
<p>first</p><p class="gone">second</p><a href="#">link</a></div>
<table><tr><td>cell</td><td style="width: 20px">cell</td></tr></table>
<img class="left" src="a.png"><img class="right" style="border: 0" src="b.png">
<img src="c.png" style="float: left"></div></body></html>"""


def test_a_handmade_page_inlines_as_premailer_does() -> None:
    # Media queries left in <head>, the dark-mode block passed through, print rules
    # skipped, pseudo-classes, :first-child, !important, unset, bgcolor/align/width
    # attributes and floating images: each a branch of premailer's transform.
    expected = premailer_itself(HANDMADE)
    assert 'align="left"' in expected and "prefers-color-scheme" in expected
    assert inline(HANDMADE) == expected
    assert inline(HANDMADE) == expected
