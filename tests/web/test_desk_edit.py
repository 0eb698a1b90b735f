"""The desk as a workspace: editing items per language, moving them between sections and
up and down, dropping them for one language, the change log and undo, the full-screen
preview per channel and variant, and running the publication from the dashboard."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import config, pipeline
from digest.compose import IssuePlan, PlanItem
from digest.store import issues, sources
from digest.web import create_app
from tests.test_draft import MONDAY
from tests.web.conftest import (
    Clock,
    TestClient,
    client_for,
    csrf_of,
    drafted,
    example_settings,
    login,
)
from tests.web.test_admin import curate_form


@pytest.fixture
def settings(make_settings: Any, tmp_path: Path) -> config.Settings:
    return example_settings(make_settings, tmp_path)


@pytest.fixture
def number(settings: config.Settings, factory: sessionmaker[Session]) -> int:
    return drafted(settings, factory)


@pytest.fixture
def desk(settings: config.Settings, factory: sessionmaker[Session], clock: Clock) -> Any:
    with client_for(create_app(settings, factory=factory, clock=clock)) as client:
        login(client)
        yield client


def plan_of(factory: sessionmaker[Session], number: int) -> IssuePlan:
    with factory() as session:
        return issues.plan_of(issues.by_number(session, number))


def news_of(plan: IssuePlan, language: str) -> list[PlanItem]:
    return [i for s in plan.variant(language).sections if s.name == "news" for i in s.items]


def find(plan: IssuePlan, language: str, key: str) -> tuple[str, PlanItem] | None:
    for section in plan.variant(language).sections:
        for item in section.items:
            if key == item.key or key in item.members:
                return section.name, item
    return None


def words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def edit(desk: TestClient, number: int, key: str, variant: str, **fields: Any) -> Any:
    page = desk.get(f"/en/admin/issues/{number}/item?variant={variant}&key={quote(key)}")
    assert page.status_code == 200
    section = re.search(r'<option value="([^"]+)" selected>', page.text)
    assert section
    data = {
        "csrf": csrf_of(page.text),
        "variant": variant,
        "key": key,
        "title": "",
        "excerpt": "",
        "note": "",
        "section": section.group(1),
        **fields,
    }
    return desk.post(f"/en/admin/issues/{number}/item", data=data)


def test_an_item_gets_the_editors_words_in_one_language_and_keeps_them(
    desk: TestClient, settings: config.Settings, factory: sessionmaker[Session], number: int
) -> None:
    item = news_of(plan_of(factory, number), "nl")[0]
    answer = edit(
        desk,
        number,
        item.key,
        "nl",
        title="Een betere titel",
        excerpt="Wat de lezer moet weten.",
        note="Lees zeker het verslag.",
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/en/admin/issues/{number}?variant=nl#item-{item.key}"
    after = plan_of(factory, number)
    found = find(after, "nl", item.key)
    assert found is not None
    assert (found[1].title, found[1].excerpt, found[1].note) == (
        "Een betere titel",
        "Wat de lezer moet weten.",
        "Lees zeker het verslag.",
    )
    other = find(after, "en", item.key)
    assert other is not None and other[1].title != "Een betere titel" and not other[1].note
    # The email and its text part carry the note, marked as the editor's.
    email = pipeline.preview(settings, factory, number=number, language="nl")
    assert "Een betere titel" in email.html and "Lees zeker het verslag." in email.text
    assert "Lees zeker het verslag." in email.html
    # Kept across the scheduler's re-draft of the slot.
    pipeline.draft(settings, factory, now=MONDAY - timedelta(hours=2))
    again = find(plan_of(factory, number), "nl", item.key)
    assert again is not None and again[1].title == "Een betere titel"
    # The change log says so, and undo puts the item's own words back.
    page = desk.get(f"/en/admin/issues/{number}?variant=nl").text
    assert "words edited “" in words(page)
    undone = desk.post(
        f"/en/admin/issues/{number}/undo", data={"csrf": csrf_of(page), "variant": "nl"}
    )
    assert undone.status_code == 303
    back = find(plan_of(factory, number), "nl", item.key)
    assert back is not None and back[1].title == item.title and not back[1].note
    shown = desk.get(undone.headers["location"]).text
    assert "The last change was undone" in shown and "No changes yet." in shown
    nothing = desk.post(
        f"/en/admin/issues/{number}/undo", data={"csrf": csrf_of(shown), "variant": "nl"}
    )
    assert "There is no change to undo." in desk.get(nothing.headers["location"]).text


def test_an_item_moves_section_and_is_dropped_for_one_language(
    desk: TestClient, factory: sessionmaker[Session], number: int
) -> None:
    item = news_of(plan_of(factory, number), "en")[0]
    answer = edit(desk, number, item.key, "en", section="publications", hidden=["fr"])
    assert answer.status_code == 303
    after = plan_of(factory, number)
    english = find(after, "en", item.key)
    assert english is not None and english[0] == "publications"
    assert find(after, "fr", item.key) is None
    assert find(after, "nl", item.key) is not None
    page = desk.get(f"/en/admin/issues/{number}?variant=en").text
    assert "dropped for fr" in words(page)
    # Restoring it gives the French readers the item again.
    data = curate_form(page)
    data.update({"restore": [item.key], "variant": "en"})
    desk.post(f"/en/admin/issues/{number}/curate", data=data)
    assert find(plan_of(factory, number), "fr", item.key) is not None


def test_a_too_long_title_is_refused_next_to_its_field(
    desk: TestClient, factory: sessionmaker[Session], number: int
) -> None:
    item = news_of(plan_of(factory, number), "en")[0]
    answer = edit(desk, number, item.key, "en", title="x" * 301, note="kept")
    assert answer.status_code == 400
    assert 'aria-invalid="true" aria-describedby="title-error"' in answer.text
    assert re.search(r'<p class="error" id="title-error">the title has 301 characters', answer.text)
    assert ">kept</textarea>" in answer.text  # what the editor typed is not lost
    assert find(plan_of(factory, number), "en", item.key)[1].title == item.title  # type: ignore[index]


def test_up_and_down_buttons_reorder_a_section(
    desk: TestClient, factory: sessionmaker[Session], number: int
) -> None:
    page = desk.get(f"/en/admin/issues/{number}?variant=en").text
    assert 'form="move-form" name="up"' in page and 'id="move-form"' in page
    rows = re.findall(r'<tr id="item-([^"]+)">', page)
    first, second = html.unescape(rows[0]), html.unescape(rows[1])
    answer = desk.post(
        f"/en/admin/issues/{number}/move",
        data={"csrf": csrf_of(page), "variant": "en", "down": first},
    )
    assert answer.status_code == 303
    again = desk.get(f"/en/admin/issues/{number}?variant=en").text
    rows = [html.unescape(r) for r in re.findall(r'<tr id="item-([^"]+)">', again)]
    assert rows.index(second) < rows.index(first)
    assert "order changed" in words(again)


def test_the_curation_list_says_where_an_item_comes_from_and_who_gets_it(
    desk: TestClient, factory: sessionmaker[Session], number: int
) -> None:
    item = news_of(plan_of(factory, number), "en")[0]
    page = desk.get(f"/en/admin/issues/{number}?variant=en").text
    row = page[page.index(f'<tr id="item-{item.key}">') :]
    row = row[: row.index("</tr>")]
    assert item.link and f'href="{html.escape(item.link)}"' in row
    assert item.source_title in html.unescape(row)
    assert "Readers: " in words(row) and "en" in words(row)
    assert "Edit" in row and 'class="excerpt"' in row


def test_the_full_screen_preview_switches_width_channel_and_variant(
    desk: TestClient, number: int
) -> None:
    page = desk.get(f"/en/admin/issues/{number}/preview?variant=fr&channel=email&width=375")
    assert page.status_code == 200
    assert 'class="full w375"' in page.text and "sandbox srcdoc=" in page.text
    assert 'aria-current="page">Phone (375 px)' in page.text
    for channel in pipeline.CHANNELS:
        shown = desk.get(f"/en/admin/issues/{number}/preview?variant=nl&channel={channel}")
        assert shown.status_code == 200, channel
    text = desk.get(f"/en/admin/issues/{number}/preview?variant=nl&channel=text").text
    assert '<pre class="full w600" lang="nl"' in text


def test_the_dashboard_drafts_collects_and_pauses_sources(
    desk: TestClient, settings: config.Settings, factory: sessionmaker[Session], number: int
) -> None:
    page = desk.get("/en/admin/")
    assert "Draft now" in page.text and "Retry now" in page.text
    name = settings.sources[0].name
    csrf = csrf_of(page.text)
    paused = desk.post("/en/admin/sources/pause", data={"csrf": csrf, "name": name, "active": "0"})
    assert paused.status_code == 303
    with factory() as session:
        assert not sources.by_name(session, name).active
    shown = desk.get("/en/admin/").text
    assert f"{name} is paused" in shown and "Resume" in shown
    desk.post("/en/admin/sources/pause", data={"csrf": csrf, "name": name, "active": "1"})
    with factory() as session:
        assert sources.by_name(session, name).active
    retried = desk.post("/en/admin/collect", data={"csrf": csrf, "name": name})
    assert retried.status_code == 303
    assert "1 source was collected, 0 failed." in desk.get("/en/admin/").text
    drafted_now = desk.post("/en/admin/draft", data={"csrf": csrf, "cadence": "daily"})
    assert drafted_now.status_code == 303
    made = int(drafted_now.headers["location"].rsplit("/", 1)[1])
    assert made != number
    with factory() as session:
        assert issues.by_number(session, made).cadence == "daily"


def test_desk_actions_need_a_login_and_csrf(
    settings: config.Settings, factory: sessionmaker[Session], clock: Clock, number: int
) -> None:
    with client_for(create_app(settings, factory=factory, clock=clock)) as anonymous:
        for path in ("/en/admin/draft", "/en/admin/collect", f"/en/admin/issues/{number}/undo"):
            assert anonymous.post(path, data={"csrf": "x"}).status_code == 303
        login(anonymous)
        assert anonymous.post("/en/admin/draft", data={"csrf": "x"}).status_code == 403


PAGE = """<!doctype html><html lang="fr"><head><title>Un nouveau centre d'accueil</title></head>
<body><nav><a href="/">Accueil</a> <a href="/a">À propos</a></nav>
<main><article><h1>Un nouveau centre d'accueil à Liège</h1>
<p>La ville de Liège ouvre un centre d'accueil pour les nouveaux arrivants, avec des cours
de langue et un guichet unique pour les démarches administratives.</p>
<p>Le centre est ouvert du lundi au vendredi.</p></article></main>
<footer>Mentions légales</footer></body></html>"""


def test_an_item_is_added_by_url_fetched_and_extracted(
    desk: TestClient, number: int, factory: sessionmaker[Session], http_server: Any
) -> None:
    http_server.route("/nieuws/centre", body=PAGE.encode(), headers={"Content-Type": "text/html"})
    url = http_server.url("/nieuws/centre")
    form = desk.get(f"/en/admin/issues/{number}/add?variant=fr")
    assert form.status_code == 200 and 'type="url" id="url" name="url"' in form.text
    answer = desk.post(
        f"/en/admin/issues/{number}/add?variant=fr",
        data={"csrf": csrf_of(form.text), "url": url, "language": "fr", "section": "projects"},
    )
    assert answer.status_code == 303, words(answer.text)
    plan = plan_of(factory, number)
    found = [(s.name, i) for s in plan.variant("fr").sections for i in s.items if i.link == url]
    assert found, "the added item is in the French variant"
    section, item = found[0]
    assert section == "projects" and item.pinned
    assert item.title == "Un nouveau centre d'accueil à Liège"
    assert item.excerpt.startswith("La ville de Liège ouvre un centre d'accueil")
    assert "Mentions légales" not in item.summary_text
    page = desk.get(answer.headers["location"]).text
    assert "The item was added" in page and "item added" in words(page)
    # Undo takes it out of the draft again.
    desk.post(f"/en/admin/issues/{number}/undo", data={"csrf": csrf_of(page), "variant": "fr"})
    plan = plan_of(factory, number)
    assert not [i for s in plan.variant("fr").sections for i in s.items if i.link == url]


def test_an_item_is_added_by_hand_and_refusals_show_next_to_their_field(
    desk: TestClient, number: int, factory: sessionmaker[Session]
) -> None:
    form = desk.get(f"/en/admin/issues/{number}/add?variant=en").text
    refused = desk.post(
        f"/en/admin/issues/{number}/add?variant=en",
        data={"csrf": csrf_of(form), "url": "file:///etc/passwd", "language": "en"},
    )
    assert refused.status_code == 400
    assert 'aria-invalid="true" aria-describedby="url-error url-hint"' in refused.text
    assert 'id="url-error">only http:// and https:// pages can be added.' in refused.text
    untitled = desk.post(
        f"/en/admin/issues/{number}/add?variant=en",
        data={"csrf": csrf_of(form), "text": "No title here.", "language": "en"},
    )
    assert untitled.status_code == 400
    assert 'id="title-error">an item needs a title.' in untitled.text
    assert ">No title here.</textarea>" in untitled.text
    added = desk.post(
        f"/en/admin/issues/{number}/add?variant=en",
        data={
            "csrf": csrf_of(form),
            "title": "Our own announcement",
            "text": "The network meets in Ghent on 3 December.",
            "language": "en",
            "section": "news",
        },
    )
    assert added.status_code == 303
    news = news_of(plan_of(factory, number), "en")
    assert news[0].title == "Our own announcement" and news[0].pinned


def test_the_new_desk_pages_speak_the_editors_language(
    desk: TestClient, factory: sessionmaker[Session], number: int
) -> None:
    item = news_of(plan_of(factory, number), "nl")[0]
    dutch = desk.get(f"/nl/admin/issues/{number}/item?variant=nl&key={quote(item.key)}").text
    assert "Noot van de redactie" in dutch and "Een item bewerken" in dutch
    assert "Omhoog: " in desk.get(f"/nl/admin/issues/{number}").text
    french = desk.get("/fr/admin/sources").text
    assert "Ajouter une source" in french and "Vérifier et ajouter" in french
    assert "Chercher par adresse ou par nom" in desk.get("/fr/admin/subscribers").text
