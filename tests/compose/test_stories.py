"""Stories: the hub's items, read by the real collector from the example publication's
feeds and page, grouped as an editor would; the score and threshold are pinned here."""

from __future__ import annotations

import functools
import importlib.util
import itertools
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from digest.collect import Entry
from digest.collect.feeds import parse_feed
from digest.collect.pages import parse_page
from digest.compose import Curation, IssuePlan, NewsCandidate, Rules
from digest.compose.plan import compose
from digest.compose.stories import (
    TRANSLATION_THRESHOLD,
    StoryItem,
    group,
    score,
    signature,
)

ROOT = Path(__file__).resolve().parents[2]
PUBLICATION = ROOT / "examples" / "publication"
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
SOURCES = {
    "feeds/migration-governance.rss": ("application/rss+xml", "news", "en"),
    "feeds/iom-belgium.atom": ("application/atom+xml", "news", "en"),
    "feeds/stad-en-migratie.rss": ("application/rss+xml", "news", "nl"),
    "feeds/villes-et-migration.json": ("application/feed+json", "news", "fr"),
    "pages/iom-belgium-projects.html": ("text/html", "projects", "en"),
}


def _example_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_run", ROOT / "examples" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def hub_entries() -> tuple[tuple[Entry, str, str], ...]:
    """Every entry of the example's feeds and page, as the collector parses them."""
    fill = _example_runner().fill
    found = []
    for name, (content_type, section, language) in SOURCES.items():
        body = fill((PUBLICATION / name).read_text(encoding="utf-8"), TODAY).encode("utf-8")
        url = f"https://hub.example/{name}"
        parse = parse_page if content_type == "text/html" else parse_feed
        for entry in parse(body, content_type=content_type, url=url).entries:
            found.append((entry, section, entry.language or language))
    return tuple(found)


def hub_items() -> list[StoryItem]:
    return [
        StoryItem(
            key=f"entry:{n}",
            title=entry.title,
            text=entry.summary_text,
            language=language,
            published_at=entry.published_at or NOW,
            link=entry.link,
            image=entry.image_url,
            html=entry.summary_html,
        )
        for n, (entry, _, language) in enumerate(hub_entries())
    ]


def by_title(items: list[StoryItem], start: str) -> StoryItem:
    return next(i for i in items if i.title.startswith(start))


def english_close_out() -> StoryItem:
    """The hub's English version of the IncluCities close-out (the example has nl and fr)."""
    return StoryItem(
        key="entry:en-close-out",
        title="IncluCities close-out: the curtain falls in the Brussels-Capital Region",
        text=(
            "On 7 and 8 December 2022 the IncluCities Training Academies took place at the "
            "Manos hotel in Brussels, closing a three-year European project of local "
            "governments on migration and the reception of newcomers."
        ),
        language="en",
        published_at=NOW - timedelta(days=2),
        link="https://brussels-migration.example.org/en/news/inclucities-close-out",
        image="https://brussels-migration.example.org/sites/default/files/2022-12/"
        "inclucities-training-academies-manos.jpg",
    )


def stories_of(items: list[StoryItem]) -> list[set[str]]:
    return [{items[n].title for n in members} for members in group(items)]


def story_keys(items: list[StoryItem]) -> list[list[str]]:
    return [[items[n].key for n in members] for members in group(items)]


def test_translations_of_one_story_are_one_story() -> None:
    items = [*hub_items(), english_close_out()]
    nl = by_title(items, "Het doek valt")
    fr = by_title(items, "Le rideau tombe")
    en = english_close_out()
    assert score(nl, fr) >= TRANSLATION_THRESHOLD
    assert score(en, fr) >= TRANSLATION_THRESHOLD
    story = next(s for s in stories_of(items) if nl.title in s)
    assert story == {nl.title, fr.title, en.title}


def test_the_mechelen_conference_in_dutch_and_french_is_one_story() -> None:
    items = hub_items()
    nl = by_title(items, "Na Habitat III")
    fr = by_title(items, "Après Habitat III")
    assert score(nl, fr) >= TRANSLATION_THRESHOLD
    assert {nl.title, fr.title} in stories_of(items)


def test_the_same_project_in_news_and_projects_is_one_story() -> None:
    items = hub_items()
    title = {i.key: i.title for i in items}
    stories = story_keys(items)
    pem = [s for s in stories if any("PEM N'Zassa" in title[k] for k in s)]
    assert len(pem) == 1 and len(pem[0]) == 2
    actiris = [s for s in stories if any(title[k].startswith("Actiris") for k in s)]
    assert len(actiris) == 1 and len(actiris[0]) == 2


def test_stories_that_only_share_a_project_name_stay_apart() -> None:
    items = hub_items()
    buddies = by_title(items, "Buddy's")
    close_out = by_title(items, "Het doek valt")
    french = by_title(items, "Le rideau tombe")
    assert score(buddies, close_out) < TRANSLATION_THRESHOLD
    assert score(buddies, french) < TRANSLATION_THRESHOLD
    assert {buddies.title} in stories_of(items)
    resettlement_fr = by_title(items, "Programme belge de réinstallation")
    urbact = by_title(items, "URBACT")
    assert score(resettlement_fr, urbact) < TRANSLATION_THRESHOLD
    # Every pair of different stories in different languages stays well below.
    unrelated = [
        score(a, b)
        for story_a, story_b in itertools.combinations(group(items), 2)
        for a in (items[n] for n in story_a)
        for b in (items[n] for n in story_b)
        if a.language != b.language
    ]
    assert max(unrelated) <= TRANSLATION_THRESHOLD - 0.1


def test_every_hub_story_once() -> None:
    """The example's 18 items are 13 stories: five told twice."""
    items = hub_items()
    title = {i.key: i.title for i in items}
    stories = story_keys(items)
    assert sorted(k for s in stories for k in s) == sorted(title)
    multi = sorted(sorted(title[k][:20] for k in s) for s in stories if len(s) > 1)
    assert multi == [
        ["Actiris Coordination", "Actiris Coordination"],
        ["Après Habitat III et", "Na Habitat III en in"],
        ["Belgian Resettlement", "Programme belge de r"],
        ["Het doek valt over h", "Le rideau tombe sur "],
        ["Project for Entrepre", "Project for Entrepre"],
    ]


def test_hreflang_alternates_and_canonical_links_join() -> None:
    when = NOW - timedelta(days=1)
    a = StoryItem("entry:1", "Nieuw", "Kort.", "nl", when, link="https://hub.example/nl/a")
    b = StoryItem(
        "entry:2",
        "Nouveau",
        "Court.",
        "fr",
        when - timedelta(days=30),
        link="https://hub.example/fr/b",
        alternates=("https://hub.example/nl/a/",),
    )
    assert score(a, b) == 1.0
    assert [sorted(s) for s in stories_of([a, b])] == [["Nieuw", "Nouveau"]]


def test_the_editor_splits_and_joins() -> None:
    items = hub_items()
    nl = by_title(items, "Het doek valt")
    fr = by_title(items, "Le rideau tombe")
    split = group(items, split=[fr.key])
    assert [items[n].key for s in split for n in s if len(s) > 1].count(fr.key) == 0
    buddies = by_title(items, "Buddy's")
    joined = group(items, joined=[(buddies.key, nl.key)])
    story = next(s for s in joined if any(items[n].key == nl.key for n in s))
    assert {items[n].key for n in story} == {nl.key, fr.key, buddies.key}


def test_signature_keeps_names_and_numbers() -> None:
    found = signature(
        "Het doek valt over het IncluCities-project",
        "Op 7 en 8 december 2022 vonden in hotel Manos in Brussel de Training Academies plaats.",
    )
    assert {"inclucities", "7", "8", "2022", "manos", "brussel", "training"} <= found
    assert "het" not in found and "op" not in found


RULES = Rules(title="Digest", languages=("en", "nl", "fr"), timezone="Europe/Brussels")


def candidates() -> list[NewsCandidate]:
    return [
        NewsCandidate(
            id=n,
            title=entry.title,
            link=entry.link,
            summary_html=entry.summary_html,
            summary_text=entry.summary_text,
            language=language,
            published_at=min(entry.published_at or NOW, NOW),
            first_seen_at=NOW - timedelta(hours=1),
            section=section,
            image_url=entry.image_url,
        )
        for n, (entry, section, language) in enumerate(hub_entries())
        if (entry.published_at or NOW) > NOW - timedelta(days=14)
    ]


def test_a_reader_gets_their_language_else_the_original_with_links_to_the_others() -> None:
    plan = compose(
        candidates(),
        [],
        rules=RULES,
        now=NOW,
        number=1,
        cadence="weekly",
        slot=NOW,
        news_since=NOW - timedelta(days=14),
    )
    for language in ("en", "nl", "fr"):
        items = [i for s in plan.variant(language).sections for i in s.items]
        titles = [i.title for i in items]
        assert len(titles) == len(set(titles)), titles
        close_out = [i for i in items if "IncluCities" in i.title and "Buddy" not in i.title]
        assert len(close_out) == 1, (language, titles)
        (item,) = close_out
        expected = {"nl": "nl", "fr": "fr", "en": "nl"}[language]  # nl is the original
        assert item.language == expected
        assert item.foreign == (expected != language)
        assert {lang for lang, _ in item.also} == {"nl", "fr"} - {expected}
        assert len(item.members) == 2
    english = [i.title for s in plan.variant("en").sections for i in s.items]
    assert sum("PEM N'Zassa" in t for t in english) == 1


def test_dropping_one_version_drops_the_story() -> None:
    found = candidates()
    french = next(c for c in found if c.title.startswith("Le rideau tombe"))
    plan = compose(
        found,
        [],
        rules=RULES,
        now=NOW,
        number=1,
        cadence="weekly",
        slot=NOW,
        news_since=NOW - timedelta(days=14),
        curation=Curation(dropped=(f"entry:{french.id}",)),
    )
    titles = [i.title for s in plan.variant("nl").sections for i in s.items]
    assert not any(t.startswith("Het doek valt") for t in titles)


def synthetic(count: int) -> list[StoryItem]:
    """`count` items: mostly distinct stories, a third of them in three languages."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    items = []
    for n in range(count):
        story = n // 3 if n % 2 == 0 else n
        name = f"Project{story} {words[story % 8].title()}"
        language = ("en", "nl", "fr")[n % 3]
        items.append(
            StoryItem(
                key=f"entry:{n}",
                title=f"{name} {['opens', 'opent', 'ouvre'][n % 3]} in Brussels {story}",
                text=(
                    f"On {story % 28 + 1} March {2020 + story % 5} the {name} of Brussels and "
                    f"Mechelen, with IOM and the EU, met {story * 7} people in Room{story}. "
                    "The meeting went on for hours and the minutes are online."
                ),
                language=language,
                published_at=NOW - timedelta(hours=story % 200),
                link=f"https://hub.example/{language}/{n}",
            )
        )
    return items


@pytest.mark.parametrize("count", [1000])
def test_grouping_is_linear_enough(count: int) -> None:
    """Not a speed test (that is bench/render.py): the work must not grow with pairs.
    Ten times the items may cost at most ~30 times the time (quadratic would be 100)."""
    small, large = synthetic(count // 10), synthetic(count)
    group(small)  # warm up
    started = time.perf_counter()
    group(small)
    small_time = time.perf_counter() - started
    started = time.perf_counter()
    group(large)
    large_time = time.perf_counter() - started
    assert large_time < max(small_time, 0.005) * 30


def test_a_plan_with_stories_survives_storage() -> None:
    plan = compose(
        candidates(),
        [],
        rules=RULES,
        now=NOW,
        number=1,
        cadence="weekly",
        slot=NOW,
        news_since=NOW - timedelta(days=14),
    )
    again = IssuePlan.from_json(plan.to_json())
    assert again == plan
    assert any(i.also for s in again.variant("en").sections for i in s.items)


def test_a_shared_attachment_makes_one_story() -> None:
    when = NOW - timedelta(days=1)
    report = '<p><a href="https://hub.example/files/Rapport%20annuel.pdf?v=2">PDF</a></p>'
    nl = StoryItem("entry:1", "Jaarverslag", "Het verslag is klaar.", "nl", when, html=report)
    fr = StoryItem("entry:2", "Rapport annuel", "Le rapport est prêt.", "fr", when, html=report)
    alone = StoryItem("entry:3", "Rapport annuel", "Le rapport est prêt.", "fr", when)
    assert score(nl, fr) >= TRANSLATION_THRESHOLD
    assert score(nl, alone) < TRANSLATION_THRESHOLD
    assert [sorted(s) for s in stories_of([nl, alone, fr]) if len(s) > 1] == [
        ["Jaarverslag", "Rapport annuel"]
    ]
