"""Publishing the example publication: collect → draft → publish → feeds, archive, events."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import feedparser
import icalendar
import pytest
import recurring_ical_events
import vobject
from lxml import etree
from lxml import html as lxml_html
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.store import issues
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
    # The plan holds the item it shows and only the keys of the ones capped out.
    assert news.more > 0 and news.rest == () and len(news.rest_keys) == news.more
    with factory() as session:
        full = pipeline.full_plan(settings, session, issues.by_number(session, drafted.number))
    rest = full.variant("en").sections[0].rest
    assert [i.key for i in rest] == list(news.rest_keys)
    assert all(i.title for i in rest)

    email = pipeline.preview(settings, factory, language="en")
    assert "more in the archive" in email.text
    pipeline.mark_published(settings, factory, drafted.number, now=MONDAY)
    pipeline.publish(settings, factory, now=MONDAY)
    page = (settings.publish.output_dir / "archive" / "en" / "1.html").read_text("utf-8")
    for item in (*news.items, *rest):
        assert item.title in lxml_html.fromstring(page).text_content()
    assert "more in the archive" not in page
    # The feed of issues shows what the email showed (a huge issue makes no huge feed)
    # and links the archive page for the rest.
    feed = feedparser.parse((settings.publish.output_dir / "feeds" / "en.atom").read_bytes())
    content = lxml_html.fromstring(feed.entries[0].content[0].value).text_content()
    assert news.items[0].title in content
    assert not any(item.title in content for item in rest)
    assert "/archive/en/1.html" in feed.entries[0].content[0].value


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
    for path in files:
        single = icalendar.Calendar.from_ical(path.read_bytes())
        assert len(single.walk("VEVENT")) == 1
    # Each confirmed upcoming occurrence has its add-to-calendar file; the feed holds them
    # all, the series as their master plus overrides.
    expanded = recurring_ical_events.of(calendar).between(MONDAY, MONDAY + timedelta(days=365))
    confirmed = [e for e in expanded if str(e.get("STATUS")) != "CANCELLED"]
    assert len(files) == len(confirmed)


def test_events_ics_keeps_series_whole_and_every_upcoming_event(
    published: Any, factory: sessionmaker[Session]
) -> None:
    """Series stay one VEVENT with RRULE and EXDATE plus overrides with the same UID, as the
    source wrote them; the window is [collect] calendar_window_days, not the issue's 30 days;
    a cancelled event stays, STATUS:CANCELLED with its SEQUENCE, so calendars drop it."""
    settings, _ = published
    pipeline.publish(settings, factory, now=MONDAY)
    data = (settings.publish.output_dir / "events.ics").read_bytes()
    calendar = icalendar.Calendar.from_ical(data)
    events = calendar.walk("VEVENT")
    by_uid: dict[str, list[Any]] = {}
    for event in events:
        by_uid.setdefault(str(event["UID"]), []).append(event)
    helpdesk = by_uid["permanence-juridique@brussels-migration.example.org"]
    master = [e for e in helpdesk if "RECURRENCE-ID" not in e]
    overrides = [e for e in helpdesk if "RECURRENCE-ID" in e]
    assert len(master) == 1 and len(overrides) == 1
    assert "RRULE" in master[0] and "EXDATE" in master[0]
    training = by_uid["training-academies-inclucities@brussels-migration.example.org"]
    assert len(training) == 1 and "RRULE" in training[0]
    # The final conference is 40 days out: past the issue's horizon, inside the calendar's.
    assert any(str(e["SUMMARY"]).startswith("Final conference") for e in events)
    lunch = by_uid["networking-lunch-urbact-cities@brussels-migration.example.org"]
    assert [(str(e["STATUS"]), int(e["SEQUENCE"])) for e in lunch] == [("CANCELLED", 2)]
    assert calendar["REFRESH-INTERVAL"].dt == timedelta(hours=12)
    assert "X-PUBLISHED-TTL" in calendar
    for event in events:
        assert "ORGANIZER" in event and "ATTENDEE" not in event
    # Thunderbird and Google expand the series; the override moved one instance.
    expanded = recurring_ical_events.of(calendar).between(MONDAY, MONDAY + timedelta(days=365))
    helpdesk_starts = sorted(
        e["DTSTART"].dt for e in expanded if str(e["UID"]).startswith("permanence")
    )
    assert len(helpdesk_starts) == 5  # 6 by the rule, one excluded by EXDATE
    assert len({e["UID"] for e in expanded}) == len(by_uid)
    # vobject, a second parser, validates the calendar against RFC 5545's rules.
    parsed = vobject.readOne(data.decode("utf-8"), validate=True)
    assert len(parsed.vevent_list) == len(events)


def test_a_calendar_per_language_and_per_topic(
    published: Any, factory: sessionmaker[Session]
) -> None:
    settings, _ = published
    pipeline.publish(settings, factory, now=MONDAY)
    out = settings.publish.output_dir
    for language in settings.publication.languages:
        calendar = icalendar.Calendar.from_ical(
            (out / "calendars" / f"{language}.ics").read_bytes()
        )
        assert calendar.walk("VEVENT")
    topics = sorted((out / "calendars").glob("topic-*.ics"))
    assert topics, "the example's calendar source has topics"
    index = lxml_html.fromstring((out / "archive" / "en" / "index.html").read_bytes())
    offered = index.xpath("//a[@type='text/calendar']/@href")
    for path in topics:
        assert f"{settings.publication.base_url}/calendars/{path.name}" in offered


# The W3C Feed Validation Service's rules that can be checked offline (its messages named):
# the RFC 4287 schema, unique entry ids, RFC 3339 dates, and in HTML content nothing it
# flags: DangerousStyleAttr, ContainsScript/ContainsEmbed/ContainsMeta, event handlers
# (ContainsEventAttr), javascript: URLs (ContainsUndeclaredURI) and relative links with no
# xml:base to resolve them (ContainsRelRef).
_FLAGGED_TAGS = {"script", "style", "iframe", "embed", "object", "applet", "meta", "link", "form"}


def w3c_problems(data: bytes) -> list[str]:
    root = etree.fromstring(data)
    problems = []
    schema = etree.RelaxNG(etree.parse(str(SCHEMA)))
    if not schema.validate(root):
        problems.append(f"schema: {schema.error_log}")
    ids = [e.findtext(f"{ATOM}id") for e in root.iter(f"{ATOM}entry")]
    if len(ids) != len(set(ids)):
        problems.append("DuplicateEntries")
    for when in root.iter(f"{ATOM}updated", f"{ATOM}published"):
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", when.text or ""):
            problems.append(f"InvalidRFC3339Date {when.text}")
    for content in root.iter(f"{ATOM}content"):
        html = lxml_html.fragment_fromstring(content.text or "", create_parent="div")
        has_base = content.get("{http://www.w3.org/XML/1998/namespace}base")
        for element in html.iter():
            if not isinstance(element.tag, str):
                problems.append("ContainsComment")
                continue
            if element.tag in _FLAGGED_TAGS:
                problems.append(f"Contains {element.tag}")
            for name, value in element.attrib.items():
                if name == "style":
                    problems.append("DangerousStyleAttr")
                if name.startswith("on"):
                    problems.append("ContainsEventAttr")
                if name in ("href", "src") and value.strip().lower().startswith("javascript:"):
                    problems.append("ContainsUndeclaredURI")
                relative = "://" not in value and not value.startswith(("mailto:", "#"))
                if name in ("href", "src") and relative and not has_base:
                    problems.append(f"ContainsRelRef {value}")
    return problems


def test_every_published_feed_passes_the_validators_rules(
    published: Any, factory: sessionmaker[Session]
) -> None:
    settings, drafted = published
    pipeline.mark_published(settings, factory, drafted.number, now=MONDAY)
    pipeline.publish(settings, factory, now=MONDAY)
    out = settings.publish.output_dir
    for language in settings.publication.languages:
        for name in (f"{language}.atom", f"{language}-items.atom"):
            data = (out / "feeds" / name).read_bytes()
            assert w3c_problems(data) == [], name
            # And a feed reader's parser takes it as it is.
            read = feedparser.parse(data)
            assert not read.bozo and read.version == "atom10", (name, read.get("bozo_exception"))
            for entry in read.entries:
                assert entry.link.startswith("https://") and entry.content[0].type == "text/html"
    # The rules catch what the email brought into feeds before.
    email = pipeline.preview(settings, factory, language="en").html
    assert "DangerousStyleAttr" in w3c_problems(_feed_with(email))


def _feed_with(html: str) -> bytes:
    """A minimal valid feed whose one entry holds `html` as content."""
    feed = etree.Element(f"{ATOM}feed", nsmap={None: ATOM[1:-1]})
    for name, text in (("id", "tag:x,2026:f"), ("title", "t"), ("updated", "2026-11-23T08:00:00Z")):
        etree.SubElement(feed, f"{ATOM}{name}").text = text
    etree.SubElement(etree.SubElement(feed, f"{ATOM}author"), f"{ATOM}name").text = "a"
    entry = etree.SubElement(feed, f"{ATOM}entry")
    for name, text in (("id", "tag:x,2026:e"), ("title", "t"), ("updated", "2026-11-23T08:00:00Z")):
        etree.SubElement(entry, f"{ATOM}{name}").text = text
    content = etree.SubElement(entry, f"{ATOM}content")
    content.set("type", "html")
    content.text = html
    return etree.tostring(feed)


def test_the_feed_of_items_has_each_story_once_linking_its_source(
    published: Any, factory: sessionmaker[Session]
) -> None:
    settings, drafted = published
    pipeline.mark_published(settings, factory, drafted.number, now=MONDAY)
    pipeline.publish(settings, factory, now=MONDAY)
    root = etree.parse(str(settings.publish.output_dir / "feeds" / "en-items.atom")).getroot()
    entries = root.findall(f"{ATOM}entry")
    plan = drafted.plan.complete().variant("en")
    stories = [item for section in plan.sections for item in section.items]
    assert len(entries) == len({item.key for item in stories})
    links = {e.find(f"{ATOM}link").get("href") for e in entries}  # type: ignore[union-attr]
    assert {item.link for item in stories if item.link} <= links
    self_link = root.find(f"{ATOM}link[@rel='self']")
    assert self_link is not None
    assert self_link.get("href") == "https://digest.example.org/feeds/en-items.atom"


def test_the_feed_of_issues_holds_the_last_n(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    from tests.test_draft import example_settings as base_settings

    settings = base_settings(make_settings, tmp_path)
    settings = replace(settings, publish=replace(settings.publish, feed_issues=2))
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    numbers = []
    for week in range(3):
        now = MONDAY + timedelta(days=7 * week)
        drafted = pipeline.draft(settings, factory, now=now)
        pipeline.mark_published(settings, factory, drafted.number, now=now)
        numbers.append(drafted.number)
    pipeline.publish(settings, factory, now=MONDAY + timedelta(days=14))
    out = settings.publish.output_dir
    root = etree.parse(str(out / "feeds" / "en.atom")).getroot()
    ids = [e.findtext(f"{ATOM}id") or "" for e in root.findall(f"{ATOM}entry")]
    assert [i.split("/")[-2] for i in ids] == [str(n) for n in reversed(numbers[1:])]
    # The archive keeps them all, newest first, each page linking its neighbours.
    index = lxml_html.fromstring((out / "archive" / "en" / "index.html").read_bytes())
    listed = index.xpath("//ol[@class='issues']/li/a/@href")
    assert listed == [f"https://digest.example.org/archive/en/{n}.html" for n in reversed(numbers)]
    middle = lxml_html.fromstring((out / "archive" / "en" / f"{numbers[1]}.html").read_bytes())
    assert middle.xpath("//head/link[@rel='prev']/@href") == [listed[2]]
    assert middle.xpath("//head/link[@rel='next']/@href") == [listed[0]]


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
