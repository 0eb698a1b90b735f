"""Feedless pages: listings become entries, boilerplate goes, a lone page is tracked whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.collect.pages import parse_page
from digest.errors import ParseError

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "examples/publication/pages/iom-belgium-projects.html"
)
URL = "https://belgium.iom.int/projects"


def test_scraped_listing_yields_one_entry_per_linked_heading() -> None:
    body = EXAMPLE.read_bytes().replace(b"{{iso_days_ago:3}}", b"2026-11-20T09:00:00+01:00")
    parsed = parse_page(body, content_type="text/html; charset=utf-8", url=URL)
    titles = [entry.title for entry in parsed.entries]
    assert titles == [
        "Actiris Coordination Platform Project: Phase 2",
        "Project for Entrepreneurial Mobility between Ivory Coast and Belgium (PEM N'Zassa)",
        "Linking in EU Resettlement",
    ]
    first = parsed.entries[0]
    assert (
        first.link == "https://belgium.iom.int/news/actiris-coordination-platform-project-phase-2"
    )
    assert first.guid == first.link
    assert first.language == "en"
    assert first.summary_text.startswith("Brussels – Since the successful conclusion")
    everything = " ".join(e.summary_html + e.summary_text for e in parsed.entries)
    for boilerplate in ("WHO WE ARE", "Take Action", "cookies", "trackVisitor", "funded by"):
        assert boilerplate not in everything
    assert parsed.title == "Projects | IOM Belgium and Luxembourg"


def test_articles_become_entries_with_their_dates() -> None:
    body = b"""<html lang="fr-BE"><body>
      <article><h2><a href="/a">Villes et migration</a></h2>
        <time datetime="2026-11-20T10:00:00+01:00">20/11</time><p>Texte A</p></article>
      <article><h3>Sans lien</h3><p>Voir <a href="https://example.org/b">ici</a></p></article>
    </body></html>"""
    parsed = parse_page(body, content_type="text/html", url="https://example.org/fr/")
    assert [(e.title, e.link, e.language) for e in parsed.entries] == [
        ("Villes et migration", "https://example.org/a", "fr"),
        ("Sans lien", "https://example.org/b", "fr"),
    ]
    assert parsed.entries[0].published_at is not None
    assert parsed.entries[0].published_at.isoformat() == "2026-11-20T09:00:00+00:00"


def test_single_page_is_one_entry_identified_by_its_url() -> None:
    body = b"""<html><head><title>Stad en migratie</title></head><body><nav>Menu</nav>
      <main><h1>Doelstellingen van Stad en migratie</h1>
      <p>Brusselse steden en gemeenten informeren en uitrusten.</p>
      <script>alert(1)</script><img src=x onerror="alert(2)"></main></body></html>"""
    parsed = parse_page(body, content_type="text/html", url="https://brulocalis.example/stad")
    (entry,) = parsed.entries
    assert entry.guid == entry.link == "https://brulocalis.example/stad"
    assert entry.title == "Doelstellingen van Stad en migratie"
    assert "Brusselse steden" in entry.summary_text
    assert "alert" not in entry.summary_html and "onerror" not in entry.summary_html
    assert "Menu" not in entry.summary_text


def test_declared_charset_is_honoured() -> None:
    body = "<html><body><main><p>Côte d'Ivoire et Belgique</p></main></body></html>".encode(
        "windows-1252"
    )
    parsed = parse_page(body, content_type="text/html; charset=windows-1252", url="https://x.org/")
    assert "Côte d'Ivoire" in parsed.entries[0].summary_text


@pytest.mark.parametrize("body", [b"", b"   ", b"<html><body><nav>only menu</nav></body></html>"])
def test_empty_pages_are_errors_that_name_the_url(body: bytes) -> None:
    with pytest.raises(ParseError, match=r"https://x\.org/empty"):
        parse_page(body, content_type="text/html", url="https://x.org/empty")
