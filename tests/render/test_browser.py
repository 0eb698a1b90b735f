"""The email and the archive page in a real browser (headless Chromium via Playwright).

At 375 px (a phone) and 600 px (the email's width) nothing may overflow sideways, and dark
mode must reach the page after premailer. Screenshots go to a temporary folder, or to
`DIGEST_SCREENSHOT_DIR` when set, for a human to look at.

Needs Debian's `/usr/bin/chromium` (`apt-get install chromium`) and the `playwright`
package (no `playwright install`: we drive the system browser). Without Chromium the
tests skip, unless `CI` or `DIGEST_REQUIRE_BROWSER` is set: then they fail.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from digest.publish import search
from digest.publish.paging import archive_pages, page_path
from digest.render.email import render_email
from digest.render.environment import make_environment
from digest.render.web import (
    ArchiveEntry,
    Site,
    render_archive_index,
    render_issue_page,
    render_search_page,
)
from tests.render.plans import BASE_URL, LANGUAGES, SLOT, example_plan, links

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTHS = (375, 600, 1200)


def _png(width: int, height: int) -> bytes:
    """A plain grey PNG of the given size, standing in for the newsletter's photos."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x90\x98\xa0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PHOTO = _png(640, 360)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    required = bool(os.environ.get("CI") or os.environ.get("DIGEST_REQUIRE_BROWSER"))
    if not CHROMIUM.exists() and not required:
        pytest.skip(
            f"{CHROMIUM} is missing (apt-get install chromium); "
            "set DIGEST_REQUIRE_BROWSER=1 to make this a failure"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("DIGEST_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _offline(route: Route) -> None:
    """Serve photos locally and refuse everything else: an email must not need the web."""
    if route.request.resource_type == "image":
        route.fulfill(status=200, content_type="image/png", body=PHOTO)
    else:
        route.abort()


def _open(browser: Browser, html: str, width: int, scheme: str = "light") -> Page:
    page = browser.new_page(viewport={"width": width, "height": 800}, color_scheme=scheme)
    page.route("**/*", _offline)
    page.set_content(html, wait_until="load")
    return page


def _overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    width: int = page.evaluate(
        "document.documentElement.scrollWidth - window.innerWidth"
        " + Math.max(0, ...[...document.images].map("
        " i => Math.ceil(i.getBoundingClientRect().right - window.innerWidth)))"
    )
    return width


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("width", WIDTHS)
def test_email_fits_the_screen(browser: Browser, shots: Path, language: str, width: int) -> None:
    # With lead images shown (an operator who allows them), so that they are checked too.
    env = make_environment(None, images_policy="remote")
    email = render_email(example_plan(), language, links(language), env)
    page = _open(browser, email.html, width)
    try:
        page.screenshot(path=str(shots / f"email-{language}-{width}.png"), full_page=True)
        assert _overflow(page) <= 0, f"{language} overflows at {width} px"
        assert page.evaluate("document.documentElement.lang") == language
        images = page.evaluate("[...document.images].map(i => i.naturalWidth)")
        assert images and all(w == 640 for w in images)  # the photos loaded, and fit
        unsubscribe = page.locator(f"a[href='{links(language).unsubscribe_url}']")
        assert unsubscribe.is_visible()
    finally:
        page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_dark_mode_reaches_the_email(browser: Browser, shots: Path, scheme: str) -> None:
    email = render_email(example_plan(), "nl", links("nl"), make_environment(None))
    page = _open(browser, email.html, 600, scheme)
    try:
        page.screenshot(path=str(shots / f"email-nl-600-{scheme}.png"), full_page=True)
        card = page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")
        text = page.evaluate("getComputedStyle(document.querySelector('h1')).color")
        if scheme == "dark":
            assert (card, text) == ("rgb(27, 31, 36)", "rgb(230, 232, 235)")
        else:
            assert (card, text) == ("rgb(255, 255, 255)", "rgb(31, 35, 40)")
    finally:
        page.close()


# WCAG 2.x contrast of every rendered text against the first opaque background behind it.
LOW_CONTRAST = """() => {
  const rgba = c => c.match(/[\\d.]+/g).map(Number);
  const channel = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const behind = el => {
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.getClientRects().length === 0) continue;  // no text, or not rendered
    const style = getComputedStyle(el);
    if (style.opacity === "0" || style.display === "none") continue;  // the preheader
    const [hi, lo] = [luminance(rgba(style.color)), luminance(behind(el))].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const text = el.textContent.trim().slice(0, 40);
    if (ratio < 4.5) low.push(`${el.tagName}.${el.className} ${ratio.toFixed(2)}: ${text}`);
  }
  return low;
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_has_enough_contrast(browser: Browser, scheme: str) -> None:
    email = render_email(example_plan(), "fr", links("fr"), make_environment(None))
    page = _open(browser, email.html, 600, scheme)
    try:
        assert page.evaluate(LOW_CONTRAST) == []
    finally:
        page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_archive_index_fits_the_screen(browser: Browser, shots: Path, width: int) -> None:
    entries = [
        ArchiveEntry(
            12 - n,
            f"Cities & Migration Digest — issue {12 - n}",
            SLOT.date(),
            f"{BASE_URL}/archive/fr/{12 - n}.html",
        )
        for n in range(5)
    ]
    site = Site(base_url=BASE_URL, languages=LANGUAGES, titles={"fr": "Cities & Migration Digest"})
    html = render_archive_index(entries, language="fr", site=site, env=make_environment(None))
    page = _open(browser, html, width)
    try:
        page.screenshot(path=str(shots / f"archive-fr-{width}.png"), full_page=True)
        assert _overflow(page) <= 0
        assert page.locator("ol.issues > li").count() == len(entries)
        assert page.evaluate(LOW_CONTRAST) == []
    finally:
        page.close()


@pytest.mark.parametrize("width", [375, 600, 1200])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_archive_issue_page_fits_and_reads(
    browser: Browser, shots: Path, width: int, scheme: str
) -> None:
    site = Site(base_url=BASE_URL, languages=LANGUAGES, titles={"nl": "Cities & Migration Digest"})
    html = render_issue_page(
        example_plan().complete(),
        language="nl",
        site=site,
        published_at=SLOT,
        previous=None,
        following=None,
        env=make_environment(None),
    )
    page = _open(browser, html, width, scheme)
    try:
        page.screenshot(path=str(shots / f"archive-issue-nl-{width}-{scheme}.png"), full_page=True)
        assert page.evaluate("document.compatMode") == "CSS1Compat"  # standards mode
        assert _overflow(page) <= 0
        assert page.evaluate(LOW_CONTRAST) == []
    finally:
        page.close()


def test_the_static_search_page_finds_items_with_its_script(browser: Browser) -> None:
    site = Site(base_url=BASE_URL, languages=LANGUAGES, titles={"en": "Cities & Migration Digest"})
    files = {
        "/archive/en/search.html": (
            "text/html",
            render_search_page(language="en", site=site, env=make_environment(None)).encode(),
        ),
        "/archive/en/search.json": (
            "application/json",
            search.index_bytes(
                [
                    search.IndexedItem("École ouverte", "https://a.example/1", "u", 3, "d", ""),
                    search.IndexedItem("URBACT Networks", "https://a.example/2", "u", 2, "d", ""),
                ]
            ),
        ),
        "/archive/search.js": ("text/javascript", search.script()),
    }

    def serve(route: Route) -> None:
        path = route.request.url.removeprefix(BASE_URL).split("?")[0]
        if path in files:
            kind, body = files[path]
            route.fulfill(status=200, content_type=kind, body=body)
        else:
            route.abort()

    page = browser.new_page()
    page.route("**/*", serve)
    try:
        page.goto(f"{BASE_URL}/archive/en/search.html?q=ecole")
        page.wait_for_selector("ol.results li", timeout=30_000)
        assert page.locator("ol.results li a").first.inner_text() == "École ouverte"
        assert page.locator("ol.results li").count() == 1
        assert page.input_value("#q") == "ecole"
        page.goto(f"{BASE_URL}/archive/en/search.html?q=nothing+like+this")
        page.wait_for_selector("#results p", timeout=30_000)
        assert page.locator("#results p").inner_text() == "Nothing found."
    finally:
        page.close()


def _serving(files: dict[str, tuple[str, bytes]]) -> Callable[[Route], None]:
    def serve(route: Route) -> None:
        path = route.request.url.removeprefix(BASE_URL).split("?")[0]
        if path in files:
            kind, body = files[path]
            route.fulfill(status=200, content_type=kind, body=body)
        else:
            route.abort()

    return serve


def test_the_static_search_reads_the_parts_of_older_issues(browser: Browser) -> None:
    site = Site(base_url=BASE_URL, languages=LANGUAGES, titles={"en": "Cities & Migration Digest"})

    def item(title: str, number: int, summary: str = "") -> search.IndexedItem:
        return search.IndexedItem(title, f"https://a.example/{title}", "u", number, "d", summary)

    def records(*items: search.IndexedItem) -> list[dict[str, object]]:
        return [dataclasses.asdict(one) for one in items]

    files = {
        "/archive/en/search.html": (
            "text/html",
            render_search_page(language="en", site=site, env=make_environment(None)).encode(),
        ),
        "/archive/en/search.json": (
            "application/json",
            search.index_document(
                records(item("Harbour news", 9, "ferry"), item("Old school", 9, "newest")),
                ["search-2.json", "search-1.json"],
            ),
        ),
        "/archive/en/search-2.json": (
            "application/json",
            search.records_bytes(records(item("Ferry timetable", 4), item("Old school", 4, "x"))),
        ),
        "/archive/en/search-1.json": (
            "application/json",
            search.records_bytes(records(item("École ferry", 1), item("Old school", 1, "x"))),
        ),
        "/archive/search.js": ("text/javascript", search.script()),
    }
    page = browser.new_page()
    page.route("**/*", _serving(files))
    try:
        page.goto(f"{BASE_URL}/archive/en/search.html?q=ferry")
        page.wait_for_selector("ol.results li", timeout=30_000)
        titles = page.locator("ol.results li > a:first-child").all_inner_texts()
        assert titles == ["Harbour news", "Ferry timetable", "École ferry"]  # newest first
        # A story in several parts is found once, as its newest record says.
        page.goto(f"{BASE_URL}/archive/en/search.html?q=old+school+x")
        page.wait_for_selector("#results p", timeout=30_000)
        assert page.locator("#results p").inner_text() == "Nothing found."
    finally:
        page.close()


def test_a_reader_walks_the_archive_pages(browser: Browser) -> None:
    site = Site(base_url=BASE_URL, languages=LANGUAGES, titles={"en": "Cities & Migration Digest"})
    env = make_environment(None)
    pages = archive_pages(7, size=2)  # page 1: issues 1–2, page 2: 3–4, the index: 5–7

    def url(page: int) -> str:
        return f"{BASE_URL}/{page_path('en', page, pages[-1].last)}"

    files: dict[str, tuple[str, bytes]] = {}
    for one in pages:
        entries = [
            ArchiveEntry(n, f"Issue {n}", SLOT.date(), f"{BASE_URL}/archive/en/{n}.html")
            for n in range(one.stop, one.start, -1)
        ]
        html = render_archive_index(
            entries,
            language="en",
            site=site,
            env=env,
            page=None if one.is_index else one.page,
            newer=url(one.newer) if one.newer else None,
            older=url(one.older) if one.older else None,
        )
        files["/" + one.path("en")] = ("text/html", html.encode())
    page = browser.new_page()
    page.route("**/*", _serving(files))
    seen: list[str] = []
    try:
        page.goto(f"{BASE_URL}/archive/en/index.html")
        while True:
            seen += page.locator("ol.issues > li > a").all_inner_texts()
            older = page.locator("nav.pager a[rel=next]")
            if older.count() == 0:
                break
            older.click()
            page.wait_for_load_state()
        assert seen == [f"Issue {n}" for n in range(7, 0, -1)]
        assert page.url == f"{BASE_URL}/archive/en/page-1.html"
        assert "Page 1" in page.locator("h1").inner_text()
        page.locator("nav.pager a[rel=prev]").click()
        page.wait_for_load_state()
        assert page.url == f"{BASE_URL}/archive/en/page-2.html"
    finally:
        page.close()
