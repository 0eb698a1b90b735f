"""Feeds → entries: golden cases carry their own expectation; hostile inputs their precise outcome.

Golden cases live in `tests/collect/golden/feeds/`: `NAME.xml` or `NAME.json` is a feed as
served, `NAME.expected.json` what `parse_feed` makes of it (feed title, language, warnings
and every entry). After a deliberate change to the output, rewrite the expectations and
review the diff before committing:

    DIGEST_REFRESH_GOLDEN=1 .venv/bin/pytest tests/collect/test_feeds.py

To add a case, drop the feed in the folder and run the same command.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest.collect import Entry, Parsed
from digest.collect.bounded import run_bounded
from digest.collect.feeds import SUMMARY_LIMIT, parse_feed
from digest.errors import ParseError, ParseTimeout

GOLDEN = Path(__file__).parent / "golden" / "feeds"
CASES = sorted(
    path
    for path in GOLDEN.iterdir()
    if path.suffix in {".xml", ".json"} and not path.name.endswith(".expected.json")
)
CONTENT_TYPES = {".xml": "application/xml", ".json": "application/feed+json"}
BASE = "https://brussels-migration.example.org/feeds/"
URL = "https://feeds.example.org/feed"


def parse_case(name: str) -> Parsed:
    """Parse one golden input the way the pipeline would, served from BASE + its name."""
    path = GOLDEN / name
    return parse_feed(
        path.read_bytes(), content_type=CONTENT_TYPES[path.suffix], url=BASE + path.name
    )


def as_json(parsed: Parsed) -> dict[str, Any]:
    """The golden form of a Parsed: plain JSON, datetimes as ISO 8601."""

    def entry(e: Entry) -> dict[str, Any]:
        fields = dataclasses.asdict(e)
        for key in ("published_at", "updated_at"):
            fields[key] = fields[key].isoformat() if fields[key] else None
        fields["categories"] = list(e.categories)
        fields["alternates"] = list(e.alternates)
        return fields

    return {
        "title": parsed.title,
        "language": parsed.language,
        "warnings": list(parsed.warnings),
        "entries": [entry(e) for e in parsed.entries],
    }


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_golden_feed(case: Path) -> None:
    actual = as_json(parse_case(case.name))
    expected_path = case.with_name(case.stem + ".expected.json")
    if os.environ.get("DIGEST_REFRESH_GOLDEN") == "1":
        text = json.dumps(actual, indent=2, ensure_ascii=False) + "\n"
        expected_path.write_text(text, encoding="utf-8")
    assert expected_path.exists(), (
        f"{expected_path.name} is missing: run DIGEST_REFRESH_GOLDEN=1 pytest {__file__}"
        " and review the file it writes"
    )
    assert actual == json.loads(expected_path.read_text(encoding="utf-8"))


def test_every_expectation_has_its_feed() -> None:
    expectations = {p.name.removesuffix(".expected.json") for p in GOLDEN.glob("*.expected.json")}
    assert expectations == {case.stem for case in CASES}


# What the golden files pin down, said out loud so a careless refresh cannot hide it.


def test_drupal_rss_items_keep_their_text_and_lose_the_byline() -> None:
    parsed = parse_case("migration-governance-rss2.xml")
    assert (parsed.title, parsed.language, parsed.warnings) == ("Migration Governance", "en", ())
    assert [e.title for e in parsed.entries][:3] == [
        "URBACT Networks",
        "Belgian Resettlement Programme",
        "Project for Entrepreneurial Mobility between Ivory Coast and Belgium (PEM N'Zassa)",
    ]
    first = parsed.entries[0]
    assert first.guid == "1201 at https://brussels-migration.example.org"
    assert first.link == "https://brussels-migration.example.org/resources/urbact-networks"
    assert first.author == "Costanza Bindi"
    assert first.categories == ("Migration Governance",)
    assert first.published_at == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert first.summary_text.startswith("An URBACT Network is a safe space for a group of cities")
    for entry in parsed.entries:
        assert "Submitted by" not in entry.summary_html + entry.summary_text
        assert entry.language == "en"
    last = parsed.entries[-1]
    assert last.published_at is None  # the item has no pubDate
    pdf = "https://brussels-migration.example.org/sites/default/files/resources/A_69_277.pdf"
    assert f'<a href="{pdf}"' in last.summary_html


def test_iom_atom_broken_fragments_are_gone_and_real_images_resolved() -> None:
    parsed = parse_case("iom-belgium-atom.xml")
    actiris, conference = parsed.entries
    assert actiris.title == "Actiris Coordination Platform Project: Phase 2"
    # The text comes from the feed's summary, not from the menu at the top of the content.
    assert actiris.summary_text.startswith("Brussels – Since the successful conclusion")
    assert (
        'href="https://belgium.iom.int/projects/actiris-coordination-platform"'
        in actiris.summary_html
    )
    assert actiris.categories == ("Labour market integration", "Brussels-Capital Region")
    assert actiris.author == "IOM Belgium and Luxembourg"  # the feed's author (RFC 4287)
    assert conference.author == "IOM Brussels"
    assert conference.published_at == datetime(2011, 6, 13, 8, 0, tzinfo=UTC)
    assert conference.summary_text.startswith("On Tuesday 6th and Wednesday 7th of June")
    assert "<h2>" not in conference.summary_html  # the heading repeated the title
    for garbage in (
        "src=\n",
        '"&gt;',
        "be20110613_1.jpg",
        "paragraph-link-no-underline",
        '"mailto:',
    ):
        assert garbage not in conference.summary_html
    assert "JDeBacker@iom.int" in conference.summary_html
    assert (
        '<img alt="Final Conference of the Joint IOM, UNHCR and ICMC Project on Practical '
        'Cooperation in EU Resettlement, 6th and 7th of June 2011, Brussels" src="https://'
        'belgium.iom.int/jahia/webdav/shared/shared/mainsite/media/photos/pbn/be20110613_logos.jpg">'
    ) in conference.summary_html


def test_dutch_feed_with_a_french_item_and_hostile_markup() -> None:
    parsed = parse_case("stad-en-migratie-rss2-nl.xml")
    assert (parsed.title, parsed.language) == ("Stad en migratie", "nl")
    assert [e.language for e in parsed.entries] == ["nl", "nl", "nl", "fr"]
    french = parsed.entries[-1]
    assert french.link == (
        "https://brussels-migration.example.org/fr/actualites/le-rideau-tombe-sur-le-projet-inclucities"
    )
    assert french.guid == "stad-en-migratie-2214-fr"
    buddies = parsed.entries[1]
    assert buddies.title.startswith(
        "Buddy's voor inclusieve steden en gemeenten: lessen uit lokale &"
    )
    for hostile in ("<script", "onerror", "javascript:", "document.cookie"):
        assert hostile not in buddies.summary_html
    assert buddies.summary_html.endswith(
        '<img alt="" src="https://evil.example/pixel.gif">\n'
        '<p><a rel="noopener noreferrer">Schrijf je hier in voor de inspiratiedag</a></p>'
    )


def test_json_feed_11_uses_its_summary_authors_and_language() -> None:
    parsed = parse_case("villes-et-migration-jsonfeed11.json")
    assert (parsed.title, parsed.language, parsed.warnings) == ("Villes et migration", "fr", ())
    first = parsed.entries[0]
    assert first.guid == "https://brussels-migration.example.org/node/2214"
    assert first.summary_text.startswith("Les Training Academies IncluCities à l’hôtel Manos ont")
    assert first.image_url and first.image_url.endswith("inclucities-training-academies-manos.jpg")
    assert [e.author for e in parsed.entries] == ["Villes et migration"] * 2 + ["Costanza Bindi"]


def test_json_feed_10_resolves_urls_and_reports_what_it_skipped() -> None:
    parsed = parse_case("jsonfeed10.json")
    working_party, partnerships = parsed.entries
    assert working_party.guid == "1187"  # a number in the feed
    assert working_party.link == (
        "https://brussels-migration.example.org/en/agenda/working-party-external-aspects"
    )
    assert working_party.summary_html.count("<p>") == 2  # content_text paragraphs
    assert working_party.categories == ("EU", "Asylum policy")
    assert working_party.author == "Brussels Migration Hub"  # the feed's author
    assert (
        partnerships.title
        == "A Global Skill Partnership is a bilateral labor migration agreement between…"
    )
    assert partnerships.link == "https://www.cgdev.example.org/global-skill-partnerships"
    assert partnerships.published_at == datetime(2026, 11, 10, tzinfo=UTC)
    assert partnerships.image_url == "https://www.cgdev.example.org/sites/default/files/gsp.png"
    assert parsed.warnings == (
        "item 3 has no title, link or text and was skipped",
        "item 4 has no title, link or text and was skipped",
    )


def test_rss_091_and_rss_10() -> None:
    netscape = parse_case("rss091-netscape.xml")
    assert (netscape.title, netscape.language) == ("Fedasil – Réinstallation", "fr")
    assert netscape.entries[1].title == "Accueil des réfugiés réinstallés & intégration locale"
    rdf = parse_case("rss10-rdf.xml")
    assert (rdf.title, rdf.language) == ("Myria – Publicaties", "nl")
    annual, myriatics = rdf.entries
    assert annual.published_at == datetime(2024, 6, 20, 7, 0, tzinfo=UTC)  # dc:date
    assert (annual.author, annual.categories) == ("Myria", ("Jaarverslag",))
    assert annual.summary_html == (
        "Het jaarverslag bundelt de cijfers over <em>migratie</em>, asiel en gezinshereniging"
        " in België."
    )
    assert myriatics.published_at == datetime(2024, 3, 5, tzinfo=UTC)


def test_a_feed_without_dates_titles_or_text() -> None:
    parsed = parse_case("no-dates.xml")
    assert [(e.published_at, e.updated_at) for e in parsed.entries] == [(None, None)] * 3
    goals, untitled, link_only = parsed.entries
    assert goals.summary_text == (
        "Brusselse steden en gemeenten informeren en uitrusten op het gebied van opvang en"
        " integratie;\nHet delen van de acties en resultaten van het Europese project IncluCities;"
    )
    assert (
        untitled.title
        == "De laatste jaren heeft de omvang van vluchtelingenstromen en migratiecrises…"
    )
    assert link_only.title == "https://brussels-migration.example.org/nl/contact"
    assert parsed.warnings == ("entry 4 has no title, link or text and was skipped",)


def test_xml_base_resolves_links_images_and_content() -> None:
    parsed = parse_case("xml-base-relative.xml")
    assert (parsed.title, parsed.language) == ("IOM Belgium & Luxembourg", "en")
    conference, actiris = parsed.entries
    assert conference.title == "Final Conference Practical Cooperation in EU Resettlement"
    assert conference.link == "https://www.belgium.iom.example.int/news/2011/final-conference"
    assert conference.image_url == (
        "https://www.belgium.iom.example.int/jahia/webdav/shared/be20110613_1.jpg"
    )
    assert conference.summary_html == (
        '<p>Read the <a href="https://www.belgium.iom.example.int/news/2011/paving-the-way.pdf"'
        ' rel="noopener noreferrer">handbook</a> or <a href="https://www.belgium.iom.example.int/'
        'contact" rel="noopener noreferrer">contact us</a>.</p><p><img alt="Logos" src="https://'
        'www.belgium.iom.example.int/img/logos.jpg"></p>'
    )
    assert actiris.language == "nl"
    assert actiris.link == "https://www.belgium.iom.example.int/nl/nieuws/actiris-fase-2"
    assert actiris.image_url == "https://www.belgium.iom.example.int/nl/thumbs/actiris.jpg"
    assert actiris.published_at == datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
    assert actiris.updated_at == datetime(2021, 3, 2, 8, 0, tzinfo=UTC)
    assert 'href="https://www.belgium.iom.example.int/nl/projecten/actiris"' in actiris.summary_html


def test_bozo_feeds_still_yield_their_entries() -> None:
    undefined = parse_case("bozo-undefined-entity.xml")
    assert [e.title for e in undefined.entries] == [
        "URBACT Networks",
        "Belgian Resettlement Programme – 2013",
    ]
    assert (
        "similar challenges to share experiences é to develop" in undefined.entries[0].summary_text
    )
    assert undefined.warnings == (
        "not well-formed XML (<unknown>:10:100: undefined entity); read with feedparser's"
        " lenient parser",
    )
    truncated = parse_case("bozo-truncated.xml")
    assert [e.title for e in truncated.entries] == [
        "Global Skill Partnerships",
        "EU Working Party on External Aspects of Asylum and Migration",
    ]
    assert truncated.entries[1].summary_text == ""  # feedparser loses the unclosed description
    assert truncated.warnings[0].startswith("not well-formed XML (")


# Hostile and broken input: each has one precise outcome.


def rss(items: str, *, head: str = "", encoding: str = "utf-8") -> bytes:
    """A minimal RSS 2.0 document around `items` (with `head` between declaration and root)."""
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n{head}<rss version="2.0"><channel>'
        f"<title>Test</title>{items}</channel></rss>"
    ).encode(encoding, "xmlcharrefreplace")


LAUGHS = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))


@pytest.mark.parametrize("newline", ["\n", ""], ids=["one-per-line", "all-on-one-line"])
def test_billion_laughs_does_not_expand(newline: str) -> None:
    head = f'<!DOCTYPE rss [\n<!ENTITY lol0 "lol">\n{LAUGHS}]>\n'.replace("\n", newline)
    body = rss(
        "<item><title>&lol9;</title><link>https://e.example/1</link>"
        "<description>a &lol9; b</description></item>",
        head=head,
    )
    started = time.monotonic()
    parsed = parse_feed(body, content_type="application/rss+xml", url=URL)
    assert time.monotonic() - started < 10
    (entry,) = parsed.entries
    assert (entry.title, entry.summary_text) == ("&lol9;", "a &lol9 b")
    assert parsed.warnings[0].startswith("not well-formed XML (")


@pytest.mark.parametrize(
    "head",
    [
        '<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file://{path}">\n]>\n',
        '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{path}">]>',
        '<!DOCTYPE rss [\n<!ENTITY % xxe SYSTEM "file://{path}">\n%xxe;\n]>\n',
        '<!DOCTYPE rss SYSTEM "file://{path}">\n',
    ],
    ids=["general-entity", "one-line", "parameter-entity", "external-dtd"],
)
@pytest.mark.parametrize("target", ["secret", "/etc/passwd"])
def test_xxe_never_reads_local_files(head: str, target: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4711")
    path = secret if target == "secret" else Path(target)
    body = rss(
        "<item><title>a&xxe;b</title><link>https://e.example/1</link>"
        "<description>&xxe;</description></item>",
        head=head.format(path=path),
    )
    parsed = parse_feed(body, content_type="application/rss+xml", url=URL)
    everything = repr(parsed)
    assert "TOP-SECRET" not in everything
    assert "root:" not in everything
    assert [e.link for e in parsed.entries] == ["https://e.example/1"]


DEJA_VU = "<item><title>Déjà vu – “quotes”</title></item>"


@pytest.mark.parametrize(
    ("encoding", "declared", "content_type"),
    [
        # windows-1252 bytes, but the header says UTF-8
        ("cp1252", "utf-8", "application/rss+xml; charset=utf-8"),
        # UTF-8 bytes, but the header (or, lacking one, the declaration) says windows-1252
        ("utf-8", "utf-8", "application/rss+xml; charset=windows-1252"),
        ("utf-8", "iso-8859-1", "application/xml"),
        ("utf-8", "windows-1252", "text/xml"),
    ],
)
def test_wrong_charset_declaration_still_reads_the_text(
    encoding: str, declared: str, content_type: str
) -> None:
    body = rss(DEJA_VU, encoding=encoding).replace(
        f'encoding="{encoding}"'.encode(), f'encoding="{declared}"'.encode()
    )
    parsed = parse_feed(body, content_type=content_type, url=URL)
    assert [e.title for e in parsed.entries] == ["Déjà vu – “quotes”"]
    (warning,) = parsed.warnings
    assert warning.startswith("wrong character encoding declared: ")


def test_an_html_page_is_not_a_feed_and_the_error_says_what_to_do() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>IOM Belgium</title>"
        b'<link rel="alternate" type="application/atom+xml" href="/news/feed.atom">'
        b"</head><body><h1>News</h1><p>Hello</p></body></html>"
    )
    with pytest.raises(ParseError) as error:
        parse_feed(page, content_type="text/html; charset=utf-8", url="https://belgium.iom.int/")
    assert str(error.value) == (
        "https://belgium.iom.int/: this is an HTML page, not a feed; point the source at its"
        ' feed URL or use kind = "page" (the page links to a feed:'
        " https://belgium.iom.int/news/feed.atom)"
    )


NOT_READABLE = "this is not a feed we can read (not well-formed XML"
BROKEN_JSON = "this looks like JSON but does not parse"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", "application/rss+xml", "the response is empty, not a feed"),
        (b" \r\n\t", None, "the response is empty, not a feed"),
        (b"<html><body>Moved</body></html>", "application/xml", "this is an HTML page, not a feed"),
        (b'<?xml version="1.0"?><rss versi', "application/rss+xml", NOT_READABLE),
        (b"\x00\x01\x02\xff binary", "application/octet-stream", NOT_READABLE),
        (b'<?xml version="1.0"?><svg/>', "image/svg+xml", "no RSS, Atom or JSON Feed found"),
        (b'{"hello": "world"}', "application/json", "this is JSON, but not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', None, BROKEN_JSON),
        (b"[" * 100_000, "application/json", BROKEN_JSON),
    ],
    ids=[
        "empty", "whitespace", "html-as-xml", "truncated-early", "binary", "other-xml",
        "plain-json", "broken-json", "deeply-nested-json",
    ],
)  # fmt: skip
def test_documents_that_are_no_feed(body: bytes, content_type: str | None, message: str) -> None:
    with pytest.raises(ParseError) as error:
        parse_feed(body, content_type=content_type, url=URL)
    assert str(error.value).startswith(f"{URL}: {message}")


def test_truncated_xml_keeps_the_complete_entries() -> None:
    body = rss(
        "<item><title>One</title><link>https://e.example/1</link></item><item><title>Tw"
    ).removesuffix(b"</channel></rss>")
    parsed = parse_feed(body, content_type="application/rss+xml", url=URL)
    assert [e.title for e in parsed.entries] == ["One"]
    assert parsed.warnings == (
        "not well-formed XML (<unknown>:2:125: no element found); read with feedparser's"
        " lenient parser",
        "entry 2 has no title, link or text and was skipped",
    )


def test_a_valid_feed_without_entries_is_not_an_error() -> None:
    parsed = parse_feed(rss(""), content_type="application/rss+xml", url=URL)
    assert parsed == Parsed(title="Test")


INJECTION = """<p style="color:red" onclick="steal()">Hi <a href="javascript:alert(1)">j</a>
<a href="data:text/html;base64,PHNjcmlwdD4=">d</a> <a href="file:///etc/passwd">f</a>
<a href="/ok" onmouseover="x()">ok</a></p><script>alert(1)</script><style>body{display:none}</style>
<form action="https://evil.example/"><input name="pw" type="password"><button>Log in</button></form>
<iframe src="https://evil.example/"></iframe><img src="x.png" onerror="alert(1)">
<img src="data:image/png;base64,AAAA"><object data="x.swf"></object><embed src="x.swf">"""


@pytest.mark.parametrize("where", ["rss-description", "atom-content", "json-content"])
def test_injected_markup_is_stripped(where: str) -> None:
    if where == "rss-description":
        body = rss(
            f"<item><title>x</title><description><![CDATA[{INJECTION}]]></description></item>"
        )
        content_type = "application/rss+xml"
    elif where == "atom-content":
        body = (
            '<feed xmlns="http://www.w3.org/2005/Atom"><title>Test</title><entry><title>x</title>'
            f'<content type="html"><![CDATA[{INJECTION}]]></content></entry></feed>'
        ).encode()
        content_type = "application/atom+xml"
    else:
        document = {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [{"id": "1", "title": "x", "content_html": INJECTION}],
        }
        body, content_type = json.dumps(document).encode(), "application/feed+json"
    (entry,) = parse_feed(body, content_type=content_type, url=URL).entries
    assert entry.summary_html == (
        '<p>Hi <a rel="noopener noreferrer">j</a>\n<a rel="noopener noreferrer">d</a>'
        ' <a rel="noopener noreferrer">f</a>\n<a href="https://feeds.example.org/ok"'
        ' rel="noopener noreferrer">ok</a></p>\n\n<img src="https://feeds.example.org/x.png">'
    )
    assert entry.summary_text == "Hi j d f ok"


def test_javascript_and_overlong_links_and_ids_are_not_kept() -> None:
    long_guid = "g" * 5000
    body = rss(
        f"<item><title>a</title><link>javascript:alert(1)</link>"
        f'<guid isPermaLink="false">{long_guid}</guid></item>'
        f"<item><title>b</title><link>https://e.example/{'x' * 3000}</link></item>"
    )
    first, second = parse_feed(body, content_type="application/rss+xml", url=URL).entries
    assert first.link is None
    assert first.guid == "sha256:" + hashlib.sha256(long_guid.encode()).hexdigest()
    assert second.link is None


def test_dates_become_aware_utc_and_odd_dates_do_not_crash() -> None:
    body = rss(
        "<item><title>far future</title><pubDate>Fri, 31 Dec 9999 23:59:59 -1200</pubDate></item>"
        "<item><title>next year</title><pubDate>Tue, 01 Jun 2100 10:00:00 +0200</pubDate></item>"
        "<item><title>nonsense</title><pubDate>the day after tomorrow</pubDate></item>"
    )
    parsed = parse_feed(body, content_type="application/rss+xml", url=URL)
    assert [e.published_at for e in parsed.entries] == [
        None,  # past year 9999 in UTC: not representable, dropped rather than crashing
        datetime(2100, 6, 1, 8, 0, tzinfo=UTC),  # suspicious, but kept
        None,
    ]


def test_redos_author_is_bounded_by_run_bounded() -> None:
    # feedparser issue #562: its e-mail regex is quadratic in the author's length; 100 KB
    # takes minutes. run_bounded must stop it, and this test must not hang.
    author = "x@" + "a." * 50_000
    body = rss(f"<item><title>t</title><author>{author}</author></item>")
    parse = functools.partial(parse_feed, content_type="application/rss+xml", url=URL)
    started = time.monotonic()
    with pytest.raises(ParseTimeout, match=r"parsing took longer than 1s and was stopped"):
        run_bounded(parse, body, timeout=1.0, what=URL)
    assert time.monotonic() - started < 15


def test_a_short_author_goes_through_run_bounded() -> None:
    body = rss("<item><title>t</title><author>jo@iom.int (Jo de Backer)</author></item>")
    parse = functools.partial(parse_feed, content_type="application/rss+xml", url=URL)
    (entry,) = run_bounded(parse, body, timeout=30, what=URL).entries
    assert entry.author == "Jo de Backer"


def test_a_huge_body_is_parsed_with_short_summaries() -> None:
    paragraph = "<p>" + "Resettlement is a durable solution for refugees. " * 40 + "</p>"
    items = "".join(
        f"<item><title>Item {n}</title><link>https://e.example/{n}</link>"
        f"<description><![CDATA[{paragraph * (100 if n == 0 else 1)}]]></description></item>"
        for n in range(1000)
    )
    body = rss(items)
    assert len(body) > 2_000_000
    parsed = parse_feed(body, content_type="application/rss+xml", url=URL)
    assert len(parsed.entries) == 1000
    assert all(len(e.summary_text) <= SUMMARY_LIMIT for e in parsed.entries)
    assert parsed.entries[0].summary_text.endswith("…")
    assert parsed.entries[0].summary_html.count("<p>") == 100
