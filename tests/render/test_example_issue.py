"""The example publication's issue, as a subscriber on a phone gets it: collected from the
seeds' feeds, page and calendar, drafted, rendered, and opened in headless Chromium.

It must read as a digest: each story once, excerpts only, no page furniture, the agenda
reached from the first screen, at most 6,000 px tall at 375 px, and not one request to
anyone when it opens (images default to "drop").
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.render import RenderedEmail
from digest.render.email import sent_size
from tests.render.test_browser import ARGS, CHROMIUM

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Request

MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
PHONE = (375, 667)
MAX_HEIGHT = 6000
FURNITURE = ("Who We Are", "WHO WE ARE", "Submitted by", "Our Work", "IOM Global", "Lees meer")


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A browser started after the example was collected: collecting runs its own event
    loop, which Playwright's sync API must not be holding at that moment."""
    required = bool(os.environ.get("CI") or os.environ.get("DIGEST_REQUIRE_BROWSER"))
    if not CHROMIUM.exists() and not required:
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def example(make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]) -> Any:
    """The example, collected the day before the Monday slot and drafted."""
    from examples.run import materialize

    materialize(tmp_path, MONDAY.date())
    text = (tmp_path / "digest.toml").read_text(encoding="utf-8")
    settings = make_settings(text[text.index("[[sources]]") :])
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    pipeline.draft(settings, factory, now=MONDAY)
    return settings


def english(settings: Any, factory: sessionmaker[Session]) -> RenderedEmail:
    return pipeline.preview(settings, factory, language="en")


def test_each_story_once_with_excerpts_and_no_furniture(
    example: Any, factory: sessionmaker[Session]
) -> None:
    email = english(example, factory)
    text = email.text
    for needle in FURNITURE:
        assert needle not in text, needle
    # The IncluCities close-out: told in nl and fr, shown once with a link to the other.
    assert text.count("Het doek valt over het IncluCities") == 1
    assert "Le rideau tombe" not in text
    assert text.count("PEM N'Zassa)") == 1  # in News and Projects: once
    assert text.count("Actiris Coordination Platform Project") == 1
    assert text.count("Training Academies IncluCities\n") == 1  # two days, one entry
    # Excerpts: no paragraph of an item is longer than 50 words.
    for paragraph in re.split(r"\n\s*\n", text):
        words = [w for w in paragraph.split() if not w.startswith("http")]
        assert len(words) <= 80, paragraph[:80]
    # Only our headings: one h1, an h2 per section, an h3 per item.
    sections = re.findall(r"^([A-Z][A-Z ]+)\n=+$", text, re.MULTILINE)
    assert email.html.count("<h1") == 1
    assert email.html.count("<h2") == len(sections)
    items = sum(1 for line in text.splitlines() if line.startswith("* "))
    assert email.html.count("<h3") == items
    assert email.html.count("<h4") == email.html.count("<h5") == 0


def test_the_example_reads_on_a_phone_and_loads_nothing(
    example: Any, factory: sessionmaker[Session]
) -> None:
    email = english(example, factory)
    with chromium() as browser:
        _look_at(browser, email)
    assert sent_size(email.html) < 102 * 1024


def _look_at(browser: Browser, email: RenderedEmail) -> None:
    page = browser.new_page(viewport={"width": PHONE[0], "height": PHONE[1]})
    requests: list[str] = []

    def record(request: Request) -> None:
        if not request.url.startswith(("data:", "about:")):
            requests.append(request.url)

    page.on("request", record)
    page.route("**/*", lambda route: route.abort())
    try:
        page.set_content(email.html, wait_until="load")
        height = page.evaluate("document.documentElement.scrollHeight")
        shots = os.environ.get("DIGEST_SCREENSHOT_DIR")
        if shots:
            page.screenshot(path=str(Path(shots) / "example-en-375.png"), full_page=True)
        assert height <= MAX_HEIGHT, f"the example is {height} px tall at 375 px"
        assert requests == [], f"opening the mail requested {requests}"
        # "In this issue" on the first screen links to the agenda.
        agenda = page.locator("a[href='#s-events']")
        box = agenda.bounding_box()
        assert box is not None and box["y"] + box["height"] <= PHONE[1]
        target = page.locator("#s-events")
        assert target.count() == 1
    finally:
        page.close()


def test_the_desk_shows_each_story_once_with_its_members(
    example: Any, factory: sessionmaker[Session]
) -> None:
    from digest.pipeline import editorial

    desk = editorial.issue_desk(example, factory, 1, language="en")
    titles = [item.title for item in desk.items]
    assert len(titles) == len(set(titles))
    close_out = [i for i in desk.items if i.title.startswith(("Het doek valt", "Le rideau"))]
    assert len(close_out) == 1
    (story,) = close_out
    assert len(story.members) == 2 and story.also == ("fr",)
    assert desk.rendered.moved == 0  # the example fits: nothing moves to the archive


def test_the_editor_splits_and_joins_stories(example: Any, factory: sessionmaker[Session]) -> None:
    from digest.pipeline import editorial

    def english_titles() -> list[str]:
        desk = editorial.issue_desk(example, factory, 1, language="en")
        return [item.title for item in desk.items]

    desk = editorial.issue_desk(example, factory, 1, language="en")
    (story,) = [i for i in desk.items if i.title.startswith(("Het doek valt", "Le rideau"))]
    editorial.curate(
        example, factory, 1, editorial.Changes(split=frozenset({story.key})), now=MONDAY
    )
    titles = english_titles()
    assert any(t.startswith("Het doek valt") for t in titles)
    assert any(t.startswith("Le rideau tombe") for t in titles)
    desk = editorial.issue_desk(example, factory, 1, language="en")
    keys = [i.key for i in desk.items if i.title.startswith(("Het doek valt", "Buddy's"))]
    editorial.curate(example, factory, 1, editorial.Changes(joined=tuple(keys)), now=MONDAY)
    desk = editorial.issue_desk(example, factory, 1, language="en")
    joined = [i for i in desk.items if set(keys) <= set(i.members)]
    assert len(joined) == 1
