"""Main content: every seed page of the example hub gives its title, date and first
sentence, without the page furniture around it.

The seeds (`golden/seeds/*.txt`, copied from the shared seed folder) are the hub's pages as
scraped to text, menus and Drupal bylines included. Each has `NAME.expected.json`; after a
deliberate change to the extractor, rewrite them and review the diff:

    DIGEST_REFRESH_GOLDEN=1 .venv/bin/pytest tests/collect/test_extract.py
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path

import pytest

from digest.collect.extract import extract_html, extract_text, first_sentence, main_text, unwrap

SEEDS = Path(__file__).parent / "golden" / "seeds"
CASES = sorted(SEEDS.glob("*.txt"))
FURNITURE = ("Submitted by", "WHO WE ARE", "Who We Are", "Our Work", "Take Action", "About")


def _summary(text: str) -> dict[str, object]:
    found = extract_text(text)
    return {
        "title": found.title,
        "date": found.date.isoformat() if found.date else None,
        "first_sentence": found.first_sentence,
    }


def test_there_are_seeds() -> None:
    assert len(CASES) >= 5


@pytest.mark.parametrize("case", CASES, ids=[c.name[:3] for c in CASES])
def test_golden_seed(case: Path) -> None:
    actual = _summary(case.read_text(encoding="utf-8"))
    expected_path = case.with_suffix(".expected.json")
    if os.environ.get("DIGEST_REFRESH_GOLDEN") == "1":
        expected_path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
    assert actual == json.loads(expected_path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[c.name[:3] for c in CASES])
def test_no_furniture_in_the_prose(case: Path) -> None:
    found = extract_text(case.read_text(encoding="utf-8"))
    assert found.paragraphs, case.name
    for paragraph in found.paragraphs[:3]:
        assert not paragraph.startswith(FURNITURE), (case.name, paragraph)
        assert paragraph not in {"-", "About", "IOM Global"}


@pytest.mark.parametrize("case", CASES, ids=[c.name[:3] for c in CASES])
def test_the_same_page_as_html_gives_the_same_first_sentence(case: Path) -> None:
    """The seeds as an HTML page (one block per line, wrapped lines joined as a browser
    would show them) go through trafilatura and our rules to the same first sentence."""
    text = case.read_text(encoding="utf-8")
    lines = unwrap(text.splitlines())  # a wrapped paragraph was one <p> on the page
    blocks = "".join(f"<p>{escape(line)}</p>" for line in lines if line.strip())
    page = f"<html><head><title>Hub</title></head><body><main>{blocks}</main></body></html>"
    from_html = extract_html(page)
    from_text = extract_text(text)
    assert from_html.first_sentence == from_text.first_sentence, case.name


def test_known_seed_expectations() -> None:
    """The points the issue names, spelled out (the golden files hold the rest)."""
    by_prefix = {c.name[:3]: extract_text(c.read_text(encoding="utf-8")) for c in CASES}
    assert by_prefix["000"].title == "URBACT Networks"
    assert by_prefix["000"].first_sentence.startswith("An URBACT Network is a safe space")
    assert by_prefix["004"].title == "Actiris Coordination Platform Project: Phase 2"
    assert by_prefix["003"].first_sentence.startswith("On Tuesday 6th and Wednesday 7th of June")
    assert by_prefix["003"].first_sentence.endswith("took place in Brussels.")


def test_a_date_leaking_into_the_first_sentence_is_taken_out() -> None:
    sentence = "On Tuesday the conference of the cities took place there, with many."
    found = extract_text(f"A title\n13 June 2011 – {sentence}")
    assert found.date is not None and found.date.isoformat() == "2011-06-13"
    assert found.first_sentence == sentence


def test_metadata_date_and_headings() -> None:
    html = (
        '<html><head><meta property="article:published_time" content="2024-03-01T10:00">'
        "</head><body><nav><ul><li>Home</li><li>About</li></ul></nav><article>"
        "<h1>Big title</h1><p>Para one is here and it is long enough to be content for sure.</p>"
        "<h2>A sub-heading</h2><ul><li>a list item that is not prose</li></ul>"
        "<p>Second paragraph, also prose of the article itself.</p></article></body></html>"
    )
    found = extract_html(html)
    assert found.title == "Big title"
    assert found.date is not None and found.date.isoformat() == "2024-03-01"
    assert "A sub-heading" not in found.text
    assert "a list item" not in found.text
    assert found.paragraphs[0].startswith("Para one")


def test_main_text_falls_back_for_a_short_teaser() -> None:
    assert main_text("<p>Short news.</p>") == "Short news."
    assert main_text("<ul><li>only a list</li></ul>") == "only a list"
    assert main_text("") == ""


def test_first_sentence() -> None:
    assert first_sentence("In 2013, Belgium launched it. Since then, more.") == (
        "In 2013, Belgium launched it."
    )
    assert first_sentence("No end") == "No end"


ATOM_WITH_ALTERNATES = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="nl">
  <title>Stad en migratie</title><id>urn:x</id><updated>2026-11-20T09:00:00Z</updated>
  <entry>
    <title>Het doek valt over IncluCities</title><id>urn:x:1</id>
    <updated>2026-11-20T09:00:00Z</updated>
    <link rel="alternate" href="https://hub.example/nl/nieuws/het-doek-valt"/>
    <link rel="alternate" hreflang="fr" href="https://hub.example/fr/actualites/le-rideau"/>
    <link rel="alternate" hreflang="en" href="/en/news/close-out"/>
    <summary>Op 7 en 8 december 2022 vonden de Training Academies plaats.</summary>
  </entry>
</feed>"""

PAGE_WITH_ALTERNATES = b"""<!DOCTYPE html><html lang="nl"><head><title>Oproep</title>
<link rel="canonical" href="https://hub.example/nl/oproep">
<link rel="alternate" hreflang="fr" href="/fr/appel">
<link rel="stylesheet" href="/style.css"></head>
<body><main><h1>Oproep 2027</h1><p>Steden kunnen tot 31 januari 2027 projecten indienen.</p>
</main></body></html>"""


def test_hreflang_alternates_are_read_from_feeds_and_pages() -> None:
    from digest.collect.feeds import parse_feed
    from digest.collect.pages import parse_page

    (entry,) = parse_feed(
        ATOM_WITH_ALTERNATES, content_type="application/atom+xml", url="https://hub.example/f"
    ).entries
    assert entry.link == "https://hub.example/nl/nieuws/het-doek-valt"
    assert entry.alternates == (
        "https://hub.example/fr/actualites/le-rideau",
        "https://hub.example/en/news/close-out",
    )
    (page,) = parse_page(
        PAGE_WITH_ALTERNATES, content_type="text/html", url="https://hub.example/nl/x"
    ).entries
    assert page.single_document
    assert page.alternates == ("https://hub.example/nl/oproep", "https://hub.example/fr/appel")
