"""The archive website and what feed readers get: pages with the site's navigation, no email
chrome, every language linked, labels instead of slugs."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from lxml import html as lxml_html

from digest import layout
from digest.compose import Labels
from digest.publish.atom import body_fragment
from digest.render.environment import make_environment
from digest.render.feed import render_issue_entry, render_item_entry
from digest.render.web import (
    ArchiveEntry,
    CalendarLink,
    Site,
    render_archive_index,
    render_issue_page,
    render_search_page,
)
from tests.render.plans import BASE_URL, LANGUAGES, NOW, example_plan

SITE = Site(
    base_url=BASE_URL,
    languages=LANGUAGES,
    titles={"en": "Cities & Migration Digest", "nl": "Digest Steden & Migratie", "fr": "Digest"},
    calendars=(CalendarLink("calendars/nl.ics", {"nl": "Agenda (nl)", "en": "Calendar (nl)"}),),
)
ENTRIES = (
    ArchiveEntry(12, "Cities & Migration Digest — maandag 23 november 2026", date(2026, 11, 23),
                 layout.url(BASE_URL, layout.issue_page(12, "nl")), ("URBACT Networks", "Buddy's")),
    ArchiveEntry(11, "Mechelen <ontvangt> de wereld", date(2026, 11, 16),
                 layout.url(BASE_URL, layout.issue_page(11, "nl"))),
)  # fmt: skip
ENV = make_environment(None)
LABELS = Labels(
    titles={"nl": "Digest Steden & Migratie"},
    sections={"projects": {"nl": "Lopende projecten"}},
    topics={"local-policy": {"nl": "Lokaal beleid", "fr": "Politique locale"}},
)


def index(language: str = "nl", entries: tuple[ArchiveEntry, ...] = ENTRIES) -> str:
    return render_archive_index(entries, language=language, site=SITE, env=ENV)


def issue_page(language: str = "nl") -> lxml_html.HtmlElement:
    plan = replace(example_plan().complete(), labels=LABELS)
    html = render_issue_page(
        plan,
        language=language,
        site=SITE,
        published_at=NOW,
        previous=ENTRIES[1],
        following=None,
        env=ENV,
    )
    assert html.startswith("<!DOCTYPE html>")
    return lxml_html.document_fromstring(html)


def test_the_index_lists_issues_newest_first_with_date_and_first_titles() -> None:
    root = lxml_html.document_fromstring(index())
    assert root.get("lang") == "nl"
    items = root.xpath("//ol[@class='issues']/li")
    assert [i.xpath("string(a/@href)") for i in items] == [e.url for e in ENTRIES]
    assert [i.xpath("string(a)") for i in items] == [e.subject for e in ENTRIES]
    assert [i.xpath("string(.//time/@datetime)") for i in items] == ["2026-11-23", "2026-11-16"]
    assert items[0].xpath("string(.//time)") == "maandag 23 november 2026"
    assert "Editie 12" in items[0].xpath("string(div)")
    assert items[0].xpath(".//ul/li/text()") == ["URBACT Networks", "Buddy's"]
    assert root.xpath("string(//h1)") == "Archief"
    assert root.xpath("string(//title)") == "Archief · Digest Steden & Migratie"


def test_subjects_are_escaped() -> None:
    text = index()
    assert "Mechelen &lt;ontvangt&gt; de wereld" in text
    assert "<ontvangt>" not in text


def test_every_page_has_the_site_navigation_and_the_other_languages() -> None:
    root = lxml_html.document_fromstring(index("fr"))
    nav = root.xpath("//nav[@class='site-nav']//a")
    assert [(a.text, a.get("href")) for a in nav] == [
        ("Archives", f"{BASE_URL}/archive/fr/index.html"),
        ("Rechercher", f"{BASE_URL}/archive/fr/search.html"),
        ("S’abonner", f"{BASE_URL}/fr/"),
        ("Flux", f"{BASE_URL}/feeds/fr.atom"),
        ("Agenda", f"{BASE_URL}/calendars/fr.ics"),
    ]
    feeds = root.xpath("//head/link[@rel='alternate'][@type='application/atom+xml'][@hreflang]")
    assert {f.get("hreflang"): f.get("href") for f in feeds} == {
        code: layout.url(BASE_URL, layout.feed(code)) for code in LANGUAGES
    }
    stream = root.xpath("//head/link[@rel='alternate'][not(@hreflang)]/@href")
    assert stream == [f"{BASE_URL}/feeds/fr-items.atom"]
    others = root.xpath("//head/link[@rel='alternate'][not(@type)]")
    assert {o.get("hreflang"): o.get("href") for o in others} == {
        "en": f"{BASE_URL}/archive/en/index.html",
        "nl": f"{BASE_URL}/archive/nl/index.html",
    }
    assert root.xpath("string(//meta[@property='og:url']/@content)") == (
        f"{BASE_URL}/archive/fr/index.html"
    )


def test_the_index_offers_the_feeds_and_calendars() -> None:
    root = lxml_html.document_fromstring(index("en"))
    follow = [a.get("href") for a in root.xpath("//section[@class='card']//a")]
    assert follow == [
        f"{BASE_URL}/en/",
        f"{BASE_URL}/feeds/en.atom",
        f"{BASE_URL}/feeds/en-items.atom",
        f"{BASE_URL}/calendars/nl.ics",
    ]
    assert "Calendar (nl)" in root.text_content()


def test_an_empty_archive_says_so() -> None:
    root = lxml_html.document_fromstring(index("fr", ()))
    assert not root.xpath("//ol")
    assert "Aucun numéro pour l’instant." in root.text_content()


def test_an_issue_page_is_a_web_page_not_the_email() -> None:
    root = issue_page("nl")
    text = root.text_content()
    assert "Bekijk in je browser" not in text  # "View in your browser"
    assert "Uitschrijven" not in text  # "Unsubscribe"
    assert not root.xpath("//*[@style]"), "no inline styles"
    assert not root.xpath("//*[contains(@class, 'preheader')]")
    assert root.xpath("count(//h1)") == 1
    assert root.xpath("string(//title)").endswith("· Digest Steden & Migratie")
    prev = root.xpath("//nav[@class='pager']//a[@rel='prev']")[0]
    assert prev.get("href") == ENTRIES[1].url
    assert root.xpath("//head/link[@rel='prev']/@href") == [ENTRIES[1].url]
    assert not root.xpath("//a[@rel='next']")
    head = {m.get("property"): m.get("content") for m in root.xpath("//head/meta[@property]")}
    assert head["og:type"] == "article"
    assert head["og:url"] == f"{BASE_URL}/archive/nl/12.html"
    assert head["og:locale"] == "nl_BE"
    assert head["og:title"].startswith("Digest Steden & Migratie — ")
    assert head["og:description"]
    alternates = root.xpath("//head/link[@rel='alternate'][not(@type)]")
    assert {a.get("hreflang"): a.get("href") for a in alternates} == {
        "en": f"{BASE_URL}/archive/en/12.html",
        "fr": f"{BASE_URL}/archive/fr/12.html",
    }


def test_labels_from_the_config_replace_slugs() -> None:
    plan = example_plan().complete()
    item = replace(plan.variants[0].sections[0].items[0], topics=("local-policy",))
    dutch = plan.variants[1]
    sections = (replace(dutch.sections[0], items=(item,)), *dutch.sections[1:])
    variants = (plan.variants[0], replace(dutch, sections=sections), plan.variants[2])
    plan = replace(plan, variants=variants, labels=LABELS)
    page = lxml_html.document_fromstring(
        render_issue_page(
            plan,
            language="nl",
            site=SITE,
            published_at=NOW,
            previous=None,
            following=None,
            env=ENV,
        )
    )
    assert "Lopende projecten" in page.xpath("//h2/text()")
    assert "Lokaal beleid" in page.xpath("string(//p[@class='meta'])")
    assert "local-policy" not in page.text_content()


def test_a_feed_entry_is_made_for_feed_readers() -> None:
    plan = example_plan().complete()
    content = render_issue_entry(plan, "fr", BASE_URL, ENV)
    assert body_fragment(content).count("style=") == 0
    fragment = lxml_html.fragment_fromstring(content, create_parent="div")
    text = fragment.text_content()
    for chrome in ("Voir dans le navigateur", "Se désabonner", "Vous recevez cet e-mail"):
        assert chrome not in text
    closing = fragment.xpath("./p[last()]/a")
    assert [(a.text, a.get("href")) for a in closing] == [
        ("Lire ce numéro sur le web", f"{BASE_URL}/archive/fr/12.html"),
        ("Recevoir par e-mail", f"{BASE_URL}/fr/"),
    ]
    titles = fragment.xpath("//h3")
    assert len(titles) == sum(len(s.items) for s in plan.variant("fr").sections)


def test_an_item_entry_links_its_issue_and_the_sign_up() -> None:
    plan = example_plan().complete()
    item = plan.variant("en").sections[0].items[0]
    content = render_item_entry(plan, item, "en", BASE_URL, ENV)
    fragment = lxml_html.fragment_fromstring(content, create_parent="div")
    assert [a.get("href") for a in fragment.xpath("./p[last()]/a")] == [
        f"{BASE_URL}/archive/en/12.html",
        f"{BASE_URL}/en/",
    ]
    assert "style=" not in content


def test_the_search_page_works_with_and_without_its_script() -> None:
    static = lxml_html.document_fromstring(render_search_page(language="en", site=SITE, env=ENV))
    assert static.xpath("//script/@src") == [f"{BASE_URL}/archive/search.js"]
    assert static.xpath("string(//*[@id='results']/@data-index)") == (
        f"{BASE_URL}/archive/en/search.json"
    )
    served = lxml_html.document_fromstring(
        render_search_page(
            language="en",
            site=SITE,
            env=ENV,
            query="urbact",
            script=False,
            results=[
                {
                    "title": "URBACT Networks",
                    "url": "https://example.org/u",
                    "issue_url": f"{BASE_URL}/archive/en/12.html",
                    "number": 12,
                    "day": "Monday",
                    "summary": "Networks",
                }
            ],
        )
    )
    assert not served.xpath("//script")
    assert served.xpath("//ol[@class='results']/li/a[1]/text()") == ["URBACT Networks"]
    assert served.xpath("string(//input[@name='q']/@value)") == "urbact"
