"""The issue email: HTML (Jinja → MJML → premailer) and text part, in en, nl and fr.

Golden files: `tests/render/golden/issue.<lang>.html` and `.txt` hold the rendering of
`plans.example_plan()`. When a change to the templates, catalogs or styles is meant to
change them, refresh them on purpose and review the diff:

    DIGEST_REFRESH_GOLDEN=1 .venv/bin/pytest tests/render/test_email.py
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import html as lxml_html

from digest.compose import Section
from digest.render import RenderedEmail
from digest.render.calendar_links import google_calendar_url, ics_url
from digest.render.email import (
    INBOX_HTML_LIMIT,
    html_size,
    render_email,
    render_for_inbox,
    section_title,
    sent_size,
)
from digest.render.environment import make_environment
from tests.render.plans import BASE_URL, EVENTS, LANGUAGES, example_plan, large_plan, links

GOLDEN = Path(__file__).parent / "golden"
ENV = make_environment(None)
TRAINING = next(e for e in EVENTS if e.key == "event:training-academies-inclucities")
LUNCH = next(e for e in EVENTS if e.status == "CANCELLED")


@functools.cache
def rendered(language: str) -> RenderedEmail:
    return render_email(example_plan(), language, links(language), ENV)


def tree(language: str) -> lxml_html.HtmlElement:
    return lxml_html.document_fromstring(rendered(language).html)


def text_of(element: lxml_html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def flat(text: str) -> str:
    """Babel's narrow and thin spaces as plain ones, for readable expectations."""
    return text.replace("\u202f", " ").replace("\u2009", " ").replace("\u00a0", " ")


@pytest.mark.parametrize("language", LANGUAGES)
def test_golden(language: str) -> None:
    email = rendered(language)
    again = render_email(example_plan(), language, links(language), ENV)
    assert again == email, "rendering is not deterministic"
    for suffix, body in (("html", email.html), ("txt", email.text)):
        path = GOLDEN / f"issue.{language}.{suffix}"
        if os.environ.get("DIGEST_REFRESH_GOLDEN"):
            path.parent.mkdir(exist_ok=True)
            path.write_text(body, encoding="utf-8")
        assert path.read_text(encoding="utf-8") == body, (
            f"{path.name} changed; if on purpose: DIGEST_REFRESH_GOLDEN=1 pytest {__file__}"
        )


@pytest.mark.parametrize("language", LANGUAGES)
def test_html_has_the_variant_language(language: str) -> None:
    root = tree(language)
    assert root.get("lang") == language
    assert rendered(language).language == language
    assert rendered(language).html.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("language", "title", "item_language", "marker"),
    [
        ("nl", "URBACT Networks", "en", "In het Engels"),
        ("fr", "Globale conferentie over steden en migratie", "nl", "En néerlandais"),
        ("en", "Programme belge de réinstallation", "fr", "In French"),
    ],
)
def test_foreign_items_carry_their_language_and_a_visible_marker(
    language: str, title: str, item_language: str, marker: str
) -> None:
    heading = next(h for h in tree(language).iter("h3") if text_of(h) == title)
    assert heading.get("lang") == item_language
    item = heading.getparent()
    assert item is not None
    assert marker in [text_of(p) for p in item.iter("p")]
    excerpts = item.find_class("excerpt")
    assert excerpts and all(s.get("lang") == item_language for s in excerpts)
    assert f"[{marker}]" in rendered(language).text


def test_items_in_the_reader_language_have_no_marker() -> None:
    heading = next(h for h in tree("nl").iter("h3") if text_of(h).startswith("Het doek valt"))
    assert heading.get("lang") is None
    item = heading.getparent()
    assert item is not None and not item.find_class("lang-marker")


@pytest.mark.parametrize(
    ("language", "issue_day", "training", "conference"),
    [
        (
            "nl",
            "maandag 23 november 2026",
            "dinsdag 8 december 2026, 09:30–17:00",
            "3–4 december 2026",
        ),
        (
            "fr",
            "lundi 23 novembre 2026",
            "mardi 8 décembre 2026, 09:30 – 17:00",
            "3–4 décembre 2026",
        ),
        (
            "en",
            "Monday, November 23, 2026",
            "Tuesday, December 8, 2026, 9:30 AM – 5:00 PM",
            "December 3 – 4, 2026",
        ),
    ],
)
def test_dates_are_localized(language: str, issue_day: str, training: str, conference: str) -> None:
    page = flat(text_of(tree(language)))
    text = flat(rendered(language).text)
    for expected in (issue_day, training, conference):
        assert expected in page
        assert expected in text


@pytest.mark.parametrize(
    ("language", "rescheduled", "moved", "cancelled"),
    [
        (
            "en",
            "Rescheduled (was: Friday, November 27, 2026, 2:00 – 4:00 PM)",
            "Moved (was: Mechelen)",
            "Cancelled",
        ),
        (
            "nl",
            "Nieuwe datum (was: vrijdag 27 november 2026, 14:00–16:00)",
            "Nieuwe locatie (was: Mechelen)",
            "Geannuleerd",
        ),
        (
            "fr",
            "Nouvelle date (initialement : vendredi 27 novembre 2026, 14:00 – 16:00)",
            "Nouveau lieu (initialement : Mechelen)",
            "Annulé",
        ),
    ],
)
def test_change_markers(language: str, rescheduled: str, moved: str, cancelled: str) -> None:
    markers = [flat(text_of(p)) for p in tree(language).find_class("change")]
    assert markers == [rescheduled, cancelled, moved]  # in the agenda's date order
    text = flat(rendered(language).text)
    assert f"!! {rescheduled}" in " ".join(text.split())
    assert f"!! {moved}" in text
    assert f"*** {cancelled.upper()} ***" in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_cancelled_event_is_struck_and_cannot_be_added_to_a_calendar(language: str) -> None:
    (item,) = tree(language).find_class("cancelled")
    assert text_of(next(item.iter("s"))) == LUNCH.title
    assert any(
        s.getparent() is not None and s.getparent().get("class") == "when" for s in item.iter("s")
    )
    assert "border-left" in (item.get("style") or "")
    page = rendered(language)
    assert ics_url(BASE_URL, LUNCH) not in page.html
    assert ics_url(BASE_URL, LUNCH) not in page.text
    assert "action=TEMPLATE&amp;text=Networking" not in page.html


def test_organizers_are_named_and_reachable() -> None:
    (mechelen,) = [p for p in tree("fr").find_class("organizer") if "Stad Mechelen" in text_of(p)]
    assert text_of(mechelen) == "Organisation : Stad Mechelen"
    assert [a.get("href") for a in mechelen.iter("a")] == [
        "mailto:conferentie@mechelen.example.org"
    ]
    assert "Organisation : Villes et migration" in flat(text_of(tree("fr")))
    text = flat(rendered("fr").text)
    assert "Organisation : Stad Mechelen (conferentie@mechelen.example.org)" in text


def test_events_link_to_both_calendars() -> None:
    hrefs = {a.get("href") for a in tree("nl").iter("a")}
    assert ics_url(BASE_URL, TRAINING) in hrefs
    assert google_calendar_url(TRAINING) in hrefs
    text = rendered("nl").text
    assert f"  Toevoegen aan je agenda:\n  {ics_url(BASE_URL, TRAINING)}\n" in text
    assert f"  Google Agenda:\n  {google_calendar_url(TRAINING)}\n" in text


@pytest.mark.parametrize(
    ("language", "unsubscribe", "preferences"),
    [
        ("en", "Unsubscribe", "Manage your preferences"),
        ("nl", "Uitschrijven", "Je voorkeuren beheren"),
        ("fr", "Se désabonner", "Gérer vos préférences"),
    ],
)
def test_unsubscribe_link_is_visible_in_both_parts(
    language: str, unsubscribe: str, preferences: str
) -> None:
    url = links(language).unsubscribe_url
    (anchor,) = [a for a in tree(language).iter("a") if a.get("href") == url]
    assert text_of(anchor) == unsubscribe
    for ancestor in anchor.iterancestors():
        assert "display:none" not in (ancestor.get("style") or "").replace(" ", "")
    colon = "\u00a0:" if language == "fr" else ":"  # French typography
    assert f"\n{unsubscribe}{colon}\n{url}\n" in rendered(language).text
    prefs = links(language).preferences_url
    assert [text_of(a) for a in tree(language).iter("a") if a.get("href") == prefs] == [preferences]
    assert f"\n{preferences}{colon}\n{prefs}\n" in rendered(language).text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_top_is_ours_and_view_in_browser_is_in_the_footer(language: str) -> None:
    """Issue 12.1: the publication's name, the date, the intro and "In this issue" on top;
    "view in your browser" with the other footer links."""
    body = tree(language).body
    first = next(body.iter("a"))
    assert first.get("href", "").startswith("#s-"), "the first link is to a section"
    assert text_of(next(body.iter("h1"))) == "Cities & Migration Digest"
    hrefs = [a.get("href") for a in body.iter("a")]
    assert hrefs[-3:] == [
        links(language).preferences_url,
        links(language).unsubscribe_url,
        links(language).archive_url,
    ]
    assert links(language).archive_url in rendered(language).text.splitlines()[-1:]


def test_preheader_is_hidden_and_lists_the_first_titles() -> None:
    email = rendered("en")
    assert email.preheader == (
        "URBACT Networks · Belgian Resettlement Programme · Het doek valt over het "
        "IncluCities-project in het Brussels Hoofdstedelijk Gewest"
    )
    hidden = tree("en").body[0]
    assert "display:none" in (hidden.get("style") or "")
    assert text_of(hidden) == email.preheader


def test_long_preheaders_are_shortened_at_a_word() -> None:
    email = rendered("nl")
    assert len(email.preheader) <= 140 and email.preheader.endswith("…")


@pytest.mark.parametrize("language", LANGUAGES)
def test_styles_are_inlined_and_dark_mode_survives(language: str) -> None:
    email = rendered(language)
    root = tree(language)
    assert not root.xpath("//link[@rel='stylesheet']")
    assert "fonts.googleapis" not in email.html
    assert "data-premailer" not in email.html  # premailer's marker is consumed
    assert "color:#1f2328" in (next(root.iter("h1")).get("style") or "").replace(" ", "")
    styles = " ".join(s.text or "" for s in root.iter("style"))
    assert "@media (prefers-color-scheme: dark)" in styles
    assert "@media only screen and (min-width" in styles  # MJML's responsive columns
    metas = {m.get("name"): m.get("content") for m in root.iter("meta")}
    assert metas["color-scheme"] == "light dark"
    assert metas["supported-color-schemes"] == "light dark"
    assert metas["viewport"] == "width=device-width, initial-scale=1"


@pytest.mark.parametrize("language", LANGUAGES)
def test_headings_are_in_order(language: str) -> None:
    root = tree(language)
    levels = [int(h.tag[1]) for h in root.iter("h1", "h2", "h3", "h4", "h5", "h6")]
    assert levels.count(1) == 1 and levels[0] == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))
    variant = example_plan().variant(language)
    assert [text_of(h) for h in root.iter("h2")] == [
        section_title(s.name, language) for s in variant.sections
    ]
    assert levels.count(3) == variant.item_count


def test_section_titles() -> None:
    assert [section_title(n, "nl") for n in ("news", "projects", "events")] == [
        "Nieuws",
        "Projecten",
        "Agenda",
    ]
    assert section_title("news", "fr") == "Actualités"
    assert section_title("open-calls", "fr") == "Open Calls"
    assert section_title("policy_briefs", "en") == "Policy Briefs"


def test_intro_paragraphs() -> None:
    (intro,) = tree("fr").find_class("intro")
    paragraphs = [text_of(p) for p in intro.iter("p")]
    assert paragraphs[0] == "Bienvenue dans le dernier numéro de novembre."
    assert len(paragraphs) == 2


@pytest.mark.parametrize(
    ("language", "label"),
    [
        ("en", "3 more in the archive →"),
        ("nl", "Nog 3 in het archief →"),
        ("fr", "3 autres dans les archives →"),
    ],
)
def test_capped_section_links_to_the_archive(language: str, label: str) -> None:
    (more,) = tree(language).find_class("more")
    (anchor,) = more.iter("a")
    assert anchor.get("href") == links(language).archive_url
    assert text_of(anchor) == label


@pytest.mark.parametrize("language", LANGUAGES)
def test_images_have_alt_text_and_nothing_tracks(language: str) -> None:
    """By default ([render] images = "drop") no image from a source is in the mail: opening
    it makes no request elsewhere. "remote" shows lead images from their source, sized for
    the column; "copy" serves them from the publication's own base URL."""
    assert not list(tree(language).iter("img"))
    for policy, prefix in (
        ("remote", "https://brussels-migration.example.org/"),
        ("copy", f"{BASE_URL}/media/"),
    ):
        env = make_environment(None, images_policy=policy)
        email = render_email(example_plan(), language, links(language), env)
        images = list(tree_of(email).iter("img"))
        assert images, policy
        for image in images:
            assert image.get("alt"), image.get("src")
            assert image.get("width") == "552"
            assert (image.get("src") or "").startswith(prefix), (policy, image.get("src"))


def test_subject_is_the_editors_or_a_dated_default() -> None:
    assert rendered("nl").subject == "Cities & Migration Digest — maandag 23 november 2026"
    assert rendered("fr").subject == "Cities & Migration Digest — lundi 23 novembre 2026"
    plan = example_plan()
    edited = replace(plan, variants=(replace(plan.variants[0], subject=" Mechelen hosts! "),))
    email = render_email(edited, "en", links("en"), ENV)
    assert email.subject == "Mechelen hosts!"
    assert text_of(next(tree_of(email).iter("title"))) == "Mechelen hosts!"


def tree_of(email: RenderedEmail) -> lxml_html.HtmlElement:
    return lxml_html.document_fromstring(email.html)


@pytest.mark.parametrize("marker", ["{{TOKEN}}", "%%TOKEN%%", "*|TOKEN|*"])
def test_per_recipient_markers_survive_verbatim(marker: str) -> None:
    """Delivery substitutes each subscriber's token into the rendered bytes."""
    marked = replace(
        links("en"),
        unsubscribe_url=f"{BASE_URL}/unsubscribe/{marker}",
        preferences_url=f"{BASE_URL}/preferences/{marker}",
    )
    email = render_email(example_plan(), "en", marked, ENV)
    assert email.html.count(f"/unsubscribe/{marker}") == 1
    assert email.html.count(f"/preferences/{marker}") == 1
    assert email.text.count(f"/unsubscribe/{marker}\n") == 1


def test_a_language_without_variant_renders_the_default_one() -> None:
    assert render_email(example_plan(), "de", links("de"), ENV).language == "en"


def test_markup_in_plain_values_is_escaped_in_html_only() -> None:
    plan = example_plan()
    variant = plan.variants[0]
    news = variant.sections[0]
    tricky = replace(news.items[0], title="<script>alert(1)</script> & more", foreign=False)
    sections = (Section("open-calls", (tricky,)), *variant.sections[1:])
    plan = replace(plan, variants=(replace(variant, sections=sections),))
    email = render_email(plan, "en", links("en"), ENV)
    assert "<script>alert(1)</script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in email.html
    assert "* <script>alert(1)</script> & more" in email.text
    assert "OPEN CALLS\n==========" in email.text


def test_templates_dir_overrides_a_builtin_template(tmp_path: Path) -> None:
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "_entry.txt.jinja").write_text(
        "- {{ item.title|upper }}\n", encoding="utf-8"
    )
    env = make_environment(tmp_path)
    assert env is make_environment(tmp_path) and env is not ENV
    email = render_email(example_plan(), "en", links("en"), env)
    assert "- URBACT NETWORKS\n" in email.text
    assert "* URBACT Networks" not in email.text
    assert email.html == rendered("en").html  # only the text entry template was replaced


@pytest.mark.parametrize("language", LANGUAGES)
def test_text_part_is_readable_plain_text(language: str) -> None:
    text = rendered(language).text
    assert not re.search(r"</?[a-zA-Z][^>]*>", text), "HTML tags in the text part"
    assert "&amp;" not in text and "&lt;" not in text
    for url in (*vars(links(language)).values(), "https://belgium.iom.int/news/"):
        if url != BASE_URL:
            assert url in text
    for line in text.splitlines():
        if len(line) > 78:
            assert re.fullmatch(r"\s*https?://\S+", line), f"long line: {line!r}"
    assert "\n-- \n" in text and text.endswith("\n")


def test_html_size_counts_utf8_bytes() -> None:
    assert html_size("é") == 2
    size = html_size(rendered("fr").html)
    assert size == len(rendered("fr").html.encode("utf-8"))
    assert size < 102_000  # the example issue stays under Gmail's clip


def test_the_budget_is_measured_as_sent() -> None:
    """Quoted-printable: "é" is "=C3=A9" (6 octets), long lines gain soft breaks."""
    assert sent_size("é") == 6
    assert sent_size("a" * 760) > 760
    html = rendered("fr").html
    assert sent_size(html) > html_size(html)


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_oversized_issue_is_cut_to_fit_the_inbox(language: str) -> None:
    """Gmail clips HTML past ~102 KB (the unsubscribe link with it): the email gives up the
    last items of its largest sections, counts them in "N more in the archive", and the
    archive version (`complete()`) still shows every item."""
    plan = large_plan(200)
    env = make_environment(None)
    full = render_email(plan, language, links(language), env)
    assert sent_size(full.html) > INBOX_HTML_LIMIT, "the fixture must overflow to test this"

    fitted = render_for_inbox(plan, language, links(language), env)

    assert sent_size(fitted.html) <= INBOX_HTML_LIMIT
    shown = len(lxml_html.fromstring(fitted.html).cssselect("h3"))
    assert 10 < shown < plan.variant(language).item_count
    assert fitted.moved == plan.variant(language).item_count - shown
    # The lowest-ranked go: every section keeps its first items, in order.
    headings = {h.text_content().strip() for h in lxml_html.fromstring(fitted.html).iter("h3")}
    for section in plan.variant(language).sections:
        kept = [t for t in (i.title for i in section.items) if t in headings]
        assert kept == [i.title for i in section.items[: len(kept)]]
    counts = [int(n) for n in re.findall(r"(?:Nog )?(\d+) (?:more|in het|autres?)", fitted.text)]
    assert sum(counts) == plan.variant(language).item_count - shown
    assert "/unsubscribe" in fitted.html[-6000:], "the footer survives"


def test_a_small_issue_is_rendered_unchanged_for_the_inbox() -> None:
    env = make_environment(None)
    plan = example_plan()
    assert render_for_inbox(plan, "en", links("en"), env) == render_email(
        plan, "en", links("en"), env
    )


def test_capped_items_come_back_complete_for_the_archive() -> None:
    items = large_plan(30).variant("en").sections[0].items
    section = Section("news", items).capped(4)
    assert (len(section.items), section.more, len(section.rest)) == (
        4,
        len(items) - 4,
        len(items) - 4,
    )
    assert section.capped(2).rest[:2] == items[2:4]
    assert section.complete().items == items
    assert section.complete().more == 0


def test_many_sections_of_one_item_still_fit_rather_than_clip() -> None:
    """With one item per section and still too large, the last sections give theirs up
    (heading and "N more in the archive" stay): the mail is never sent clipped."""
    item = example_plan().variant("en").sections[0].items[0]
    sections = tuple(
        Section(name=f"section-{n}", items=(replace(item, key=f"entry:{n}"),)) for n in range(400)
    )
    plan = example_plan()
    plan = replace(plan, variants=(replace(plan.variant("en"), sections=sections),))
    env = make_environment(None)
    assert sent_size(render_email(plan, "en", links("en"), env).html) > INBOX_HTML_LIMIT
    fitted = render_for_inbox(plan, "en", links("en"), env)
    assert sent_size(fitted.html) <= INBOX_HTML_LIMIT
    assert 0 < fitted.moved < 400
    assert "/unsubscribe" in fitted.html[-6000:]
    flat_text = " ".join(fitted.text.split())
    assert "More in the archive: Section " in flat_text and "Section 399" in flat_text
    assert "More in the archive:" in fitted.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_html_and_text_carry_the_same_items_and_excerpts(language: str) -> None:
    from digest.render.environment import excerpt_of

    email = rendered(language)
    flat_html = " ".join(text_of(tree(language)).split())
    flat_text = " ".join(email.text.split())
    for section in example_plan().variant(language).sections:
        for item in section.items:
            excerpt = excerpt_of(item, 14 if item.kind == "event" else 50)
            assert excerpt, item.title
            assert excerpt in flat_html, (language, item.title)
            assert excerpt in flat_text, (language, item.title)
            assert len(excerpt.split()) <= 50
