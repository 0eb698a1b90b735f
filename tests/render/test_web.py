"""The archive index: an accessible list of issues in one language, with its feeds."""

from __future__ import annotations

from datetime import date

from lxml import html as lxml_html

from digest import layout
from digest.render.environment import make_environment
from digest.render.web import ArchiveEntry, render_archive_index
from tests.render.plans import BASE_URL, LANGUAGES

ENTRIES = (
    ArchiveEntry(12, "Cities & Migration Digest — maandag 23 november 2026", date(2026, 11, 23),
                 layout.url(BASE_URL, layout.issue_page(12, "nl"))),
    ArchiveEntry(11, "Mechelen <ontvangt> de wereld", date(2026, 11, 16),
                 layout.url(BASE_URL, layout.issue_page(11, "nl"))),
)  # fmt: skip


def page(language: str = "nl", entries: tuple[ArchiveEntry, ...] = ENTRIES) -> str:
    return render_archive_index(
        entries,
        language=language,
        languages=LANGUAGES,
        title="Cities & Migration Digest",
        base_url=BASE_URL,
        env=make_environment(None),
    )


def test_lists_every_issue_in_order_with_a_localized_date() -> None:
    root = lxml_html.document_fromstring(page())
    assert root.get("lang") == "nl"
    items = root.xpath("//ol[@class='issues']/li")
    assert [i.xpath("string(a/@href)") for i in items] == [e.url for e in ENTRIES]
    assert [i.xpath("string(a)") for i in items] == [e.subject for e in ENTRIES]
    assert [i.xpath("string(time/@datetime)") for i in items] == ["2026-11-23", "2026-11-16"]
    assert items[0].xpath("string(time)") == "maandag 23 november 2026"
    assert items[0].xpath("normalize-space(span)") == "Editie 12"
    assert root.xpath("string(//h1)") == "Archief"
    assert root.xpath("string(//title)") == "Archief · Cities & Migration Digest"


def test_subjects_are_escaped() -> None:
    text = page()
    assert "Mechelen &lt;ontvangt&gt; de wereld" in text
    assert "<ontvangt>" not in text


def test_links_every_language_feed_and_its_own() -> None:
    root = lxml_html.document_fromstring(page("fr"))
    feeds = root.xpath("//head/link[@rel='alternate'][@type='application/atom+xml']")
    assert {f.get("hreflang"): f.get("href") for f in feeds} == {
        code: layout.url(BASE_URL, layout.feed(code)) for code in LANGUAGES
    }
    own = root.xpath("//main//a[@type='application/atom+xml']")
    assert [(a.get("href"), a.text_content()) for a in own] == [
        (layout.url(BASE_URL, layout.feed("fr")), "Suivre le flux Atom")
    ]


def test_links_the_archive_in_the_other_languages() -> None:
    root = lxml_html.document_fromstring(page("en"))
    nav = root.xpath("//nav")[0]
    assert nav.get("aria-label") == "Other languages"
    links = [(a.get("href"), a.get("hreflang"), a.get("lang"), a.text) for a in nav.iter("a")]
    assert links == [
        (layout.url(BASE_URL, layout.archive_index("nl")), "nl", "nl", "Nederlands"),
        (layout.url(BASE_URL, layout.archive_index("fr")), "fr", "fr", "français"),
    ]


def test_an_empty_archive_says_so() -> None:
    root = lxml_html.document_fromstring(page("fr", ()))
    assert not root.xpath("//ol")
    assert "Aucun numéro pour l’instant." in root.text_content()
