"""Publishing the example publication: collect → draft → publish → feeds, archive, events."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest
from lxml import etree
from lxml import html as lxml_html
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from tests.test_draft import MONDAY, example_settings

ATOM = "{http://www.w3.org/2005/Atom}"
SCHEMA = Path(__file__).parent / "publish" / "atom.rng"


@pytest.fixture
def published(make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]) -> Any:
    settings = example_settings(make_settings, tmp_path)
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    drafted = pipeline.draft(settings, factory, now=MONDAY)
    return settings, drafted


def test_a_draft_stays_out_of_the_feed_until_published(
    published: Any, factory: sessionmaker[Session]
) -> None:
    settings, drafted = published
    pipeline.publish(settings, factory, now=MONDAY)
    out = settings.publish.output_dir
    feed = etree.parse(str(out / "feeds" / "en.atom")).getroot()
    assert feed.findall(f"{ATOM}entry") == []
    assert not (out / "archive" / "en" / f"{drafted.number}.html").exists()

    pipeline.mark_published(settings, factory, drafted.number, now=MONDAY)
    report = pipeline.publish(settings, factory, now=MONDAY)
    assert "archive/en/1.html" in report.written
    for language in settings.publication.languages:
        feed = etree.parse(str(out / "feeds" / f"{language}.atom"))
        etree.RelaxNG(etree.parse(str(SCHEMA))).assertValid(feed)
        entries = feed.getroot().findall(f"{ATOM}entry")
        assert len(entries) == 1
        assert entries[0].find(f"{ATOM}id").text.startswith("tag:")  # type: ignore[union-attr]
        page = lxml_html.fromstring((out / "archive" / language / "1.html").read_bytes())
        assert page.get("lang") == language

    # Publishing again with nothing new leaves the files (and their Last-Modified) alone.
    again = pipeline.publish(settings, factory, now=MONDAY)
    assert "feeds/en.atom" in again.unchanged and "archive/en/1.html" in again.unchanged


def test_the_archive_page_shows_what_the_email_capped(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings = example_settings(make_settings, tmp_path)
    settings = replace(settings, issue=replace(settings.issue, max_items_per_section=1))
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    drafted = pipeline.draft(settings, factory, now=MONDAY)
    news = drafted.plan.variant("en").sections[0]
    assert news.more > 0 and len(news.rest) == news.more

    email = pipeline.preview(settings, factory, language="en")
    assert "more in the archive" in email.text
    pipeline.mark_published(settings, factory, drafted.number, now=MONDAY)
    pipeline.publish(settings, factory, now=MONDAY)
    page = (settings.publish.output_dir / "archive" / "en" / "1.html").read_text("utf-8")
    for item in (*news.items, *news.rest):
        assert item.title in lxml_html.fromstring(page).text_content()
    assert "more in the archive" not in page


def test_events_calendar_and_one_file_per_event(
    published: Any, factory: sessionmaker[Session]
) -> None:
    settings, _ = published
    pipeline.publish(settings, factory, now=MONDAY)
    out = settings.publish.output_dir
    calendar = icalendar.Calendar.from_ical((out / "events.ics").read_bytes())
    assert calendar["METHOD"] == "PUBLISH"
    summaries = [str(e["SUMMARY"]) for e in calendar.walk("VEVENT")]
    assert "Globale conferentie over steden en migratie" in summaries
    assert calendar.walk("VTIMEZONE"), "times in Europe/Brussels carry their VTIMEZONE"
    files = sorted((out / "events").glob("*.ics"))
    assert len(files) == len(summaries)
    for path in files:
        single = icalendar.Calendar.from_ical(path.read_bytes())
        assert len(single.walk("VEVENT")) == 1


def test_copied_images_are_served_from_base_url(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], http_server: Any
) -> None:
    """[render] images = "copy": the lead image is fetched once at publish time into
    public/media/, and the archive page and the feed show it from base_url, never from
    its source (tracking pixels: tests/render/test_agenda_images.py)."""
    from tests.render.test_browser import PHOTO

    http_server.route("/photo.png", body=PHOTO, headers={"Content-Type": "image/png"})
    photo = http_server.url("/photo.png")
    feed = tmp_path / "feed.rss"
    day = (MONDAY - timedelta(days=1)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0" '
        'xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Hub</title>'
        "<link>https://hub.example/</link><item><title>IncluCities closes</title>"
        "<link>https://hub.example/news/1</link>"
        f'<media:thumbnail url="{photo}"/><pubDate>{day}</pubDate>'
        "<description>The project ends with two training days in Brussels.</description>"
        "</item></channel></rss>",
        encoding="utf-8",
    )
    settings = make_settings(
        '[render]\nimages = "copy"\n'
        f'[[sources]]\nname = "hub"\nurl = "{feed}"\nkind = "feed"\nlanguage = "en"\n'
    )
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(hours=2))
    drafted = pipeline.draft(settings, factory, now=MONDAY)
    pipeline.mark_published(settings, factory, drafted.number, now=MONDAY)
    report = pipeline.publish(settings, factory, now=MONDAY)
    copied = [path for path in report.written if path.startswith("media/")]
    assert len(copied) == 1
    out = settings.publish.output_dir
    assert (out / copied[0]).read_bytes() == PHOTO
    page = (out / "archive" / "en" / "1.html").read_text(encoding="utf-8")
    base = settings.publication.base_url.rstrip("/")
    assert f'src="{base}/{copied[0]}"' in page
    assert "127.0.0.1" not in page
    assert "127.0.0.1" not in (out / "feeds" / "en.atom").read_text(encoding="utf-8")
    assert len(http_server.received_at("/photo.png")) == 1
    again = pipeline.publish(settings, factory, now=MONDAY)
    assert not [p for p in again.written if p.startswith("media/")]
    assert len(http_server.received_at("/photo.png")) == 1  # copied once
