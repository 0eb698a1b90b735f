"""Hostile bytes in every kind of source: cleaned once at ingest, never stopping an issue.

Form feeds, vertical tabs, NUL, U+FFFE, lone surrogates and right-to-left overrides come
in through RSS (CDATA), Atom, JSON Feed and iCalendar from a real local HTTP server; the
items are collected into a real database, drafted, and sent to a real SMTP server.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import collect, pipeline
from digest.collect.clean import clean_text, clean_title
from digest.pipeline import sending
from digest.store import items
from digest.store.models import DeliveryState, Entry, Event, Source
from tests.httpserver import LocalServer
from tests.smtpserver import SmtpServer
from tests.test_draft import MONDAY
from tests.test_send import SECRETS, add_people, ledger, parsed, smtp_factory

BAD = "\x00\x0b\x0c\ufffe\u202e\x1b[31m"
"""NUL, VT, FF, a non-character, an RTL override and an ANSI escape."""

RSS = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Hostile RSS</title><language>en</language>
<item><title><![CDATA[Rss{BAD}title]]></title><link>https://rss.example.org/1</link>
<guid>rss-1</guid><pubDate>Sun, 22 Nov 2026 09:00:00 +0100</pubDate>
<description><![CDATA[<p>Body{BAD}text</p>]]></description></item>
<item><title>Plain RSS item</title><link>https://rss.example.org/2</link>
<pubDate>Sun, 22 Nov 2026 08:00:00 +0100</pubDate><description>fine</description></item>
</channel></rss>"""

ATOM = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title>Hostile Atom</title>
<id>tag:atom.example.org,2026:feed</id><updated>2026-11-22T09:00:00Z</updated>
<entry><title>Atom&#x202E;{BAD}title</title><id>tag:atom.example.org,2026:1</id>
<link href="https://atom.example.org/1"/><updated>2026-11-22T09:00:00Z</updated>
<author><name>Evil&#x2066;{BAD}author</name></author>
<summary>Atom{BAD}summary</summary></entry>
<entry><title>Plain Atom item</title><id>tag:atom.example.org,2026:2</id>
<link href="https://atom.example.org/2"/><updated>2026-11-22T08:00:00Z</updated>
<summary>fine</summary></entry></feed>"""

# json.dumps escapes the controls; "\\ud800" is a lone surrogate once json.loads reads it.
JSON_FEED = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Hostile JSON",
        "language": "en",
        "items": [
            {
                "id": "json-1",
                "url": "https://json.example.org/1",
                "title": f"Json{BAD}title\ud800",
                "content_text": f"Json{BAD}text\udfff",
                "date_published": "2026-11-22T09:00:00Z",
                "tags": [f"tag{BAD}", "\u202e"],
                "language": f"en{BAD}" + "x" * 40,
            },
            {
                "id": "json-2",
                "url": "https://json.example.org/2",
                "title": "Plain JSON item",
                "content_text": "fine",
                "date_published": "2026-11-22T08:00:00Z",
            },
        ],
    }
)

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hostile//EN\r\n"
    "BEGIN:VEVENT\r\nUID:ics-1@example.org\r\nDTSTAMP:20261101T000000Z\r\n"
    "DTSTART:20261126T180000Z\r\nDTEND:20261126T200000Z\r\n"
    f"SUMMARY:Ics{BAD}title\r\nLOCATION:Hall\u202e{BAD}B\r\n"
    f"DESCRIPTION:Ics{BAD}description\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:ics-2@example.org\r\nDTSTAMP:20261101T000000Z\r\n"
    "DTSTART:20261127T180000Z\r\nDTEND:20261127T200000Z\r\n"
    "SUMMARY:Plain event\r\nLOCATION:Town hall\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def _is_clean(text: str | None) -> bool:
    if not text:
        return True
    return (
        not any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r" for c in text)
        and "\ufffe" not in text
        and unicodedata.is_normalized("NFC", text)
    )


def _settings(make_settings: Any, server: LocalServer) -> Any:
    served = {
        "rss": ("/h.rss", RSS.encode("utf-8"), "application/rss+xml", "feed"),
        "atom": ("/h.atom", ATOM.encode("utf-8"), "application/atom+xml", "feed"),
        "json": ("/h.json", JSON_FEED.encode("utf-8"), "application/feed+json", "feed"),
        "ics": ("/h.ics", ICS.encode("utf-8"), "text/calendar", "calendar"),
    }
    toml = ""
    for name, (path, body, mime, kind) in served.items():
        server.route(path, body=body, headers={"Content-Type": mime})
        section = "events" if kind == "calendar" else "news"
        toml += (
            f'[[sources]]\nname = "{name}"\nurl = "{server.url(path)}"\nkind = "{kind}"\n'
            f'section = "{section}"\n'
        )
    return make_settings(
        '[delivery]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\n'
        + SECRETS.replace("[web]", '[publication]\nlanguages = ["en"]\n[web]')
        + toml
    )


def test_hostile_text_in_every_format_is_cleaned_and_the_issue_goes_out(
    make_settings: Any,
    http_server: LocalServer,
    smtp_server: SmtpServer,
    factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    settings = _settings(make_settings, http_server)
    settings = replace(settings, delivery=replace(settings.delivery, smtp_port=smtp_server.port))
    report = pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    outcome = {r.name: r for r in report.sources}
    assert not report.failed, [r.error for r in report.sources]
    for name in ("rss", "atom", "json", "ics"):
        assert outcome[name].counts.new == 2, (name, outcome[name].counts)

    with factory() as session:
        entries = session.scalars(sa.select(Entry)).all()
        events = session.scalars(sa.select(Event)).all()
        names = session.scalars(sa.select(Source.name)).all()
    assert len(entries) == 6 and len(events) == 2
    for entry in entries:
        for value in (entry.title, entry.summary_html, entry.summary_text, entry.author):
            assert _is_clean(value), (entry.title, value)
        assert "\u202e" not in entry.title and "\u2066" not in (entry.author or "")
        assert all(_is_clean(c) and "\u202e" not in c for c in entry.categories)
        assert entry.language == "en"
    for event in events:
        for value in (event.summary, event.description, event.location):
            assert _is_clean(value), (event.summary, value)
        assert "\u202e" not in event.summary and "\u202e" not in event.location
    assert sorted(names) == ["atom", "ics", "json", "rss"]
    titles = sorted(e.title for e in entries)
    # U+FFFE and the lone surrogate became U+FFFD; the controls and the override are gone.
    for stem in ("Atom", "Json", "Rss"):
        assert any(t.startswith(stem) and "\ufffd[31mtitle" in t for t in titles), titles

    add_people(settings, factory, [("ana@example.net", "en", ())])
    number = pipeline.draft(settings, factory, now=MONDAY).number
    sending.approve(settings, factory, number, now=MONDAY)
    sent = sending.send(settings, factory, now=MONDAY, make_sender=smtp_factory(smtp_server))
    assert sent.finished and ledger(factory)[DeliveryState.SENT] == 1
    message = parsed(smtp_server.messages[0].data)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for title in ("Plain RSS item", "Plain Atom item", "Plain JSON item", "Plain event"):
        assert title in text
    assert text.count("\ufffd[31mtitle") >= 4, text
    assert "\x00" not in text and "\x0c" not in text and "\x1b" not in text
    # Overrides are gone from titles (bodies keep them: quotes in Arabic or Hebrew need them).
    assert all("\u202e" not in line for line in text.splitlines() if "title" in line)


def test_one_item_the_database_refuses_leaves_the_others_stored(
    session: Session,
) -> None:
    from datetime import UTC, datetime

    from digest.store.models import SourceKind, SourceOrigin

    now = datetime(2026, 11, 23, tzinfo=UTC)
    source = Source(
        name="s",
        url="https://example.org/feed",
        kind=SourceKind.FEED,
        language="en",
        origin=SourceOrigin.CLI,
        created_at=now,
    )
    session.add(source)
    session.flush()
    good = collect.Entry(title="Good", link="https://example.org/1", guid="1")
    # A title of None breaks the NOT NULL constraint: the database itself refuses it.
    bad = collect.Entry(title=None, link="https://example.org/2", guid="2")  # type: ignore[arg-type]
    other = collect.Entry(title="Other", link="https://example.org/3", guid="3")
    counts = items.record_entries(
        session,
        source,
        [good, bad, other],
        now=now,
        first_collection=False,
        news_window=timedelta(days=14),
    )
    session.commit()
    assert (counts.new, len(counts.skipped)) == (2, 1)
    assert "skipped" in str(counts)
    assert sorted(session.scalars(sa.select(Entry.title))) == ["Good", "Other"]


def test_clean_text_and_titles() -> None:
    assert clean_text("a\x00b\x0bc\x0cd\x85e\x7f") == "abcde"
    assert clean_text("keep\ttab\nand\r\nbreaks") == "keep\ttab\nand\r\nbreaks"
    assert clean_text("x\ufffey\uffff\ud800\U0001fffe") == "x\ufffdy\ufffd\ufffd\ufffd"
    assert clean_text("e\u0301") == "\u00e9"
    assert clean_text("\u202eflip") == "\u202eflip"  # kept in bodies (Arabic, Hebrew quotes)
    bidi = "\u202aa\u202bb\u202cc\u202dd\u202ee\u2066f\u2067g\u2068h\u2069"
    assert clean_title(bidi) == "abcdefgh"
    assert clean_title("") == ""


def test_an_item_that_does_not_render_is_left_out_and_the_rest_is_sent(
    make_settings: Any,
    tmp_path: Path,
    factory: sessionmaker[Session],
    smtp_server: SmtpServer,
) -> None:
    from digest.store import issues
    from digest.store.models import Issue
    from tests.render.test_isolation import BROKEN_MJML, html_showing_override
    from tests.test_send import PEOPLE, settings_for

    settings = settings_for(make_settings, tmp_path, smtp_server)
    overrides = html_showing_override(tmp_path / "overrides")
    settings = dataclasses.replace(
        settings, render=dataclasses.replace(settings.render, templates_dir=overrides)
    )
    add_people(settings, factory)
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    number = pipeline.draft(settings, factory, now=MONDAY).number
    # The stored plan's first English news item now breaks the MJML around it.
    with factory() as session, session.begin():
        issue = session.scalars(sa.select(Issue)).one()
        plan = json.loads(issue.plan)
        variant = next(v for v in plan["variants"] if v["language"] == "en")
        item = variant["sections"][0]["items"][0]
        item["summary_html"] = BROKEN_MJML
        issue.plan = json.dumps(plan)
        broken_title = item["title"]
        kept_titles = [i["title"] for s in variant["sections"] for i in s["items"]][1:3]
        issue.render_problems = pipeline.render_check(settings, issues.plan_of(issue))
    with factory() as session:
        recorded = issues.render_problems(session.scalars(sa.select(Issue)).one())
    assert any(broken_title[:40] in line and line.startswith("[en]") for line in recorded)

    sending.approve(settings, factory, number, now=MONDAY)
    report = sending.send(settings, factory, now=MONDAY, make_sender=smtp_factory(smtp_server))
    assert report.finished and ledger(factory)[DeliveryState.SENT] == len(PEOPLE)
    english = next(m for m in smtp_server.messages if m.rcpt_tos == ("ana@example.net",))
    text = parsed(english.data).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    flat = " ".join(text.split())
    assert " ".join(broken_title.split()) not in flat
    assert kept_titles and all(" ".join(t.split()) in flat for t in kept_titles)
    assert "mj-oops" not in parsed(english.data).as_string()
