"""Compose is pure: explicit `now`, plain values in, a plan out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from digest.compose import (
    AnnouncedEvent,
    Curation,
    EventCandidate,
    IssuePlan,
    Labels,
    NewsCandidate,
    Rules,
)
from digest.compose.agenda import event_when, upcoming_events
from digest.compose.plan import compose, for_topics, plan_items

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 08:00 in Brussels
RULES = Rules(
    title="Cities & Migration Digest",
    languages=("en", "nl", "fr"),
    timezone="Europe/Brussels",
    news_window_days=14,
    event_horizon_days=30,
)


def news(
    id: int,
    title: str,
    *,
    language: str = "en",
    days_ago: float = 1,
    seen_days_ago: float | None = None,
    section: str = "news",
    link: str | None = None,
    backlog: bool = False,
    topics: tuple[str, ...] = (),
) -> NewsCandidate:
    seen = NOW - timedelta(days=days_ago if seen_days_ago is None else seen_days_ago)
    return NewsCandidate(
        id=id,
        title=title,
        link=link or f"https://example.org/{id}",
        summary_html=f"<p>{title}</p>",
        summary_text=title,
        language=language,
        published_at=NOW - timedelta(days=days_ago),
        first_seen_at=seen,
        section=section,
        sources=("src",),
        backlog=backlog,
        topics=topics,
    )


def event(
    id: int,
    title: str,
    start: datetime | None = None,
    *,
    hours: float = 2,
    location: str = "Mechelen",
    status: str = "CONFIRMED",
    language: str = "en",
    announced: AnnouncedEvent | None = None,
    all_day: date | None = None,
    days: int = 1,
    url: str | None = None,
    withdrawn: bool = False,
) -> EventCandidate:
    if all_day is not None:
        return EventCandidate(
            id=id,
            key=str(id),
            uid=f"{id}@x",
            recurrence_id="",
            summary=title,
            description="",
            location=location,
            url=url,
            language=language,
            all_day=True,
            starts_at=None,
            ends_at=None,
            start_date=all_day,
            end_date=all_day + timedelta(days=days),
            timezone=None,
            status=status,
            announced_as=announced,
            withdrawn=withdrawn,
        )
    assert start is not None
    return EventCandidate(
        id=id,
        key=str(id),
        uid=f"{id}@x",
        recurrence_id="",
        summary=title,
        description="",
        location=location,
        url=url,
        language=language,
        all_day=False,
        starts_at=start,
        ends_at=start + timedelta(hours=hours),
        start_date=None,
        end_date=None,
        timezone="Europe/Brussels",
        status=status,
        announced_as=announced,
        withdrawn=withdrawn,
    )


def plan_of(
    news_items: list[NewsCandidate],
    events: list[EventCandidate] = (),  # type: ignore[assignment]
    *,
    since: datetime | None = None,
    rules: Rules = RULES,
    curation: Curation | None = None,
) -> IssuePlan:
    return compose(
        news_items,
        events,
        rules=rules,
        now=NOW,
        number=7,
        cadence="weekly",
        slot=NOW,
        news_since=since or NOW - timedelta(days=14),
        curation=curation,
    )


def titles(plan: IssuePlan, language: str = "en", section: str | None = None) -> list[str]:
    variant = plan.variant(language)
    return [i.title for s in variant.sections if section in (None, s.name) for i in s.items]


def test_news_window_and_previous_issue() -> None:
    items = [
        news(1, "URBACT Networks", days_ago=1),
        news(2, "Belgian Resettlement Programme", days_ago=20, seen_days_ago=1),  # too old
        news(3, "Global Skill Partnerships", days_ago=10),  # seen before the last issue
        news(4, "History", days_ago=2, backlog=True),
        news(5, "Seen after now (as-of in the past)", days_ago=-1),
    ]
    plan = plan_of(items, since=NOW - timedelta(days=7))
    assert titles(plan) == ["URBACT Networks"]


def test_news_newest_first_and_languages_reader_first() -> None:
    items = [
        news(1, "URBACT Networks", days_ago=1),
        news(2, "Het doek valt over IncluCities", language="nl", days_ago=0.5),
        news(3, "Villes et migration", language="fr", days_ago=2),
    ]
    plan = plan_of(items)
    assert titles(plan, "en") == [
        "URBACT Networks",
        "Het doek valt over IncluCities",
        "Villes et migration",
    ]
    assert titles(plan, "nl")[0] == "Het doek valt over IncluCities"
    foreign = [i.foreign for i in plan.variant("nl").sections[0].items]
    assert foreign == [False, True, True]
    hidden = plan_of(items, rules=replace(RULES, other_languages="hide"))
    assert titles(hidden, "fr") == ["Villes et migration"]


def test_events_inside_the_horizon_sorted_with_all_day_in_local_dates() -> None:
    events = [
        event(1, "Inspiratiedag", NOW + timedelta(days=25)),
        event(2, "Global conference", all_day=date(2026, 12, 3), days=2),
        event(3, "Final conference", NOW + timedelta(days=40)),  # beyond the horizon
        event(4, "Yesterday", NOW - timedelta(days=1)),
        # Started an hour ago, ends in an hour: still on, still shown.
        event(5, "Legal helpdesk", NOW - timedelta(hours=1), hours=2),
        # An all-day event today (local date) is shown even though its UTC midnight passed.
        event(6, "Today all day", all_day=date(2026, 11, 23)),
    ]
    plan = plan_of([], events)
    assert titles(plan, section="events") == [
        "Today all day",
        "Legal helpdesk",
        "Global conference",
        "Inspiratiedag",
    ]


def test_changed_events_are_flagged_against_what_was_announced() -> None:
    start = NOW + timedelta(days=10)
    said = AnnouncedEvent(
        when=event_when(False, start, start + timedelta(hours=2), None, None),
        location="Mechelen",
        status="CONFIRMED",
    )
    events = [
        event(1, "Rescheduled", start + timedelta(days=1), announced=said),
        event(2, "Moved", start, location="Antwerpen", announced=said),
        event(3, "Cancelled", start, status="CANCELLED", announced=said),
        event(4, "Never announced, cancelled", start, status="CANCELLED"),
        event(5, "Unchanged", start, announced=said),
        event(6, "Withdrawn after announcement", start, withdrawn=True, announced=said),
        event(7, "Rescheduled past the horizon", start + timedelta(days=60), announced=said),
    ]
    plan = plan_of([], events)
    flags = {i.title: (i.change, i.previous, i.status) for i in plan.variants[0].sections[0].items}
    assert flags == {
        "Rescheduled": ("rescheduled", said.when, "CONFIRMED"),
        "Moved": ("moved", "Mechelen", "CONFIRMED"),
        "Cancelled": ("cancelled", None, "CANCELLED"),
        "Unchanged": (None, None, "CONFIRMED"),
        "Withdrawn after announcement": ("cancelled", None, "CANCELLED"),
        "Rescheduled past the horizon": ("rescheduled", said.when, "CONFIRMED"),
    }
    already = AnnouncedEvent(when=said.when, location="Mechelen", status="CANCELLED")
    again = plan_of([], [event(3, "Cancelled", start, status="CANCELLED", announced=already)])
    assert titles(again) == []  # the cancellation is said once


def test_news_announcing_an_event_appears_once_with_both() -> None:
    """The post whose link is the event's own page is folded into the event."""
    conf = event(
        1,
        "Globale conferentie over steden en migratie",
        NOW + timedelta(days=10),
        url="https://stad.example/conferentie/",
        language="nl",
    )
    post = news(
        9,
        "Globale conferentie over steden en migratie in Mechelen",
        language="nl",
        link="https://stad.example/conferentie",
    )
    plan = plan_of([post], [conf])
    (item,) = [i for s in plan.variant("nl").sections for i in s.items]
    assert item.kind == "event"
    assert item.link == "https://stad.example/conferentie/"
    assert item.summary_html == "<p>Globale conferentie over steden en migratie in Mechelen</p>"
    assert set(item.members) == {"event:1", "entry:9"}


def test_a_similar_title_alone_never_folds_news_into_an_event() -> None:
    helpdesk = event(
        1,
        "Legal helpdesk for municipalities",
        NOW + timedelta(days=4),
        url="https://hub.example/agenda/legal-helpdesk",
    )
    post = news(
        9,
        "Legal helpdesk for municipalities extended to 2027",
        link="https://hub.example/news/legal-helpdesk-extended",
    )
    also = news(10, "Globale conferentie over steden en migratie in Mechelen", link=None)
    conf = event(2, "Globale conferentie over steden en migratie", NOW + timedelta(days=10))
    plan = plan_of([post, also], [helpdesk, conf])
    kinds = sorted((i.kind, i.title) for s in plan.variants[0].sections for i in s.items)
    assert kinds == [
        ("entry", "Globale conferentie over steden en migratie in Mechelen"),
        ("entry", "Legal helpdesk for municipalities extended to 2027"),
        ("event", "Globale conferentie over steden en migratie"),
        ("event", "Legal helpdesk for municipalities"),
    ]


def test_news_with_an_events_very_title_is_folded_into_it_within_the_window() -> None:
    """A post titled as the event (case, accents and punctuation aside) announces it when
    published within MIRROR_WINDOW_DAYS of its start; outside the window it stays news."""
    soon = event(1, "Journée d'inspiration: villes & migration", NOW + timedelta(days=10))
    later = event(2, "Workshop on reception centres", NOW + timedelta(days=29))
    by_link = event(3, "Open day", NOW + timedelta(days=3), url="https://hub.example/open-day/")
    near = news(7, "Journee d'inspiration - Villes et migration!", days_ago=2, link=None)
    near = replace(near, title="JOURNÉE D'INSPIRATION — villes & migration")
    far = news(8, "Workshop on Reception Centres", days_ago=13)
    linked = news(9, "Come to our open day", link="https://hub.example/open-day?utm=x")
    plan = plan_of([near, far, linked], [soon, later, by_link])
    shown = {(i.kind, i.title): i for s in plan.variants[0].sections for i in s.items}
    assert set(shown) == {
        ("event", "Journée d'inspiration: villes & migration"),
        ("event", "Workshop on reception centres"),
        ("event", "Open day"),
        ("entry", "Workshop on Reception Centres"),  # 42 days before the event: not it
    }
    assert shown["event", "Journée d'inspiration: villes & migration"].members == (
        "event:1",
        "entry:7",
    )
    assert shown["event", "Open day"].members == ("event:3", "entry:9")


def test_matching_ten_thousand_news_with_two_thousand_events_finds_the_mirrors() -> None:
    """Keys per item and dictionaries: every mirror is found at size, nothing else is."""
    events = [
        event(n, f"Event number {n} in town", NOW + timedelta(days=1 + n % 15))
        for n in range(1, 2001)
    ]
    posts = [news(10_000 + n, f"Story {n} of the week", days_ago=n % 13) for n in range(10_000)]
    mirrors = [news(n, f"EVENT number {n} in town!", days_ago=1) for n in range(1, 2001, 10)]
    plan = plan_of([*posts, *mirrors], events, rules=replace(RULES, max_per_section=10**6))
    found = {i.key: i for s in plan.variants[0].sections for i in s.items}
    assert all(
        found[f"event:{n}"].members == (f"event:{n}", f"entry:{n}") for n in range(1, 2001, 10)
    )
    assert sum(1 for key in found if key.startswith("entry:")) == 10_000


def test_two_calendars_with_the_same_occurrence_show_it_once() -> None:
    start = NOW + timedelta(days=5)
    plan = plan_of(
        [],
        [
            event(1, "Inspiratiedag", start, location=""),
            event(2, "Inspiratiedag", start, location="Mechelen"),
        ],
    )
    (item,) = plan.variants[0].sections[0].items
    assert item.location == "Mechelen"


def test_curation_drops_pins_orders_and_writes() -> None:
    items = [news(n, f"Item {n}", days_ago=n / 10) for n in range(1, 5)]
    curation = Curation(
        dropped=("entry:2",),
        pinned=("entry:4",),
        order=("entry:3", "entry:1"),
        intro={"en": "Welcome"},
        subject={"nl": "Nieuwsbrief"},
    )
    plan = plan_of(items, curation=curation)
    assert titles(plan) == ["Item 4", "Item 3", "Item 1"]
    assert plan.variants[0].sections[0].items[0].pinned
    assert plan.variant("en").intro == "Welcome"
    assert plan.variant("nl").subject == "Nieuwsbrief"


def test_sections_follow_sources_and_are_capped() -> None:
    items = [news(n, f"News {n}", days_ago=n / 100) for n in range(1, 21)]
    items.append(news(99, "Actiris phase 2", section="projects"))
    plan = plan_of(
        items,
        [event(50, "Inspiratiedag", NOW + timedelta(days=3))],
        rules=replace(RULES, max_per_section=5),
    )
    sections = plan.variants[0].sections
    assert [s.name for s in sections] == ["news", "projects", "events"]
    assert (len(sections[0].items), sections[0].more) == (5, 15)
    # The plan holds only the keys of the capped items, in order, through storage; the
    # archive page looks them up and shows them all.
    assert sections[0].rest == () and sections[0].rest_keys[:2] == ("entry:6", "entry:7")
    found = plan_items(items, [], rules=RULES)
    shown = plan.with_rest(found).complete().variants[0].sections[0]
    assert [i.title for i in shown.items][4:7] == ["News 5", "News 6", "News 7"]
    assert (len(shown.items), shown.more) == (20, 0)
    assert plan.complete().variants[0].sections[0].more == 15  # not looked up: counted
    assert IssuePlan.from_json(plan.to_json()) == plan


def test_labels_travel_with_the_plan_and_old_plans_have_none() -> None:
    plan = plan_of([news(1, "URBACT", language="en")], [])
    labels = Labels(
        titles={"nl": "Digest Steden & Migratie"},
        sections={"news": {"nl": "Nieuws van het netwerk"}},
        topics={"local-policy": {"fr": "Politique locale"}},
    )
    labelled = replace(plan, labels=labels)
    again = IssuePlan.from_json(labelled.to_json())
    assert again == labelled
    assert again.title_in("nl") == "Digest Steden & Migratie"
    assert again.title_in("fr") == plan.title
    assert again.labels.topic("local-policy", "fr") == "Politique locale"
    assert again.labels.topic("local-policy", "nl") == "Local Policy"  # never the raw slug
    empty = ', "labels": {"sections": {}, "titles": {}, "topics": {}}'
    stored_before = plan.to_json().replace(empty, "")
    assert "labels" not in stored_before
    assert IssuePlan.from_json(stored_before).labels == Labels()


def test_plan_round_trips_through_json() -> None:
    plan = plan_of(
        [news(1, "URBACT", language="en")],
        [
            event(2, "Conference", all_day=date(2026, 12, 3), days=2),
            event(3, "Helpdesk", NOW + timedelta(days=4)),
        ],
    )
    assert IssuePlan.from_json(plan.to_json()) == plan


def test_empty_plan_knows_it() -> None:
    assert plan_of([]).is_empty


def test_topic_readers_get_their_topics_and_the_general_items() -> None:
    items = [
        news(1, "Housing first", topics=("housing",)),
        news(2, "Jobs fair", topics=("work",)),
        news(3, "General news"),
    ]
    plan = plan_of(items, [event(9, "Helpdesk", NOW + timedelta(days=2))])
    housing = for_topics(plan, ["Housing"])
    assert titles(housing) == [t for t in titles(plan) if t != "Jobs fair"]
    assert for_topics(plan, []) is plan
    assert titles(for_topics(plan, ["unknown"])) == ["General news", "Helpdesk"]


def _occurrence(base: EventCandidate, n: int, start: datetime) -> EventCandidate:
    return replace(
        base,
        id=100 + n,
        key=str(100 + n),
        recurrence_id=start.isoformat(),
        starts_at=start,
        ends_at=start + timedelta(hours=7),
    )


def test_a_two_day_training_is_one_entry_with_a_date_range() -> None:
    first = NOW + timedelta(days=20, hours=1.5)  # Sunday 09:30 in Brussels
    training = event(1, "Training Academies IncluCities", first, hours=7)
    occurrences = [_occurrence(training, n, first + timedelta(days=n)) for n in range(2)]
    (item,) = plan_of([], occurrences).variants[0].sections[0].items
    assert item.title == "Training Academies IncluCities"
    assert item.starts_at == first
    assert item.last_day == (first + timedelta(days=1)).date()
    assert len(item.members) == 2


def test_a_series_is_one_entry_with_its_next_and_later_dates() -> None:
    first = NOW + timedelta(days=1, hours=6)
    helpdesk = event(1, "Legal helpdesk", first)
    occurrences = [_occurrence(helpdesk, n, first + timedelta(days=14 * n)) for n in range(3)]
    others = [event(2, "Inspiratiedag", NOW + timedelta(days=10))]
    items = plan_of([], [*occurrences, *others]).variants[0].sections[0].items
    assert [i.title for i in items] == ["Legal helpdesk", "Inspiratiedag"]
    series = items[0]
    assert series.starts_at == first
    assert series.recurrence_days == 14
    assert len(series.later) == 2


def test_a_changed_occurrence_of_a_series_keeps_its_own_entry() -> None:
    first = NOW + timedelta(days=4, hours=6)
    helpdesk = event(1, "Legal helpdesk", first)
    said = AnnouncedEvent(when="2026-11-20T13:00:00+00:00/", location="Mechelen", status="X")
    occurrences = [_occurrence(helpdesk, n, first + timedelta(days=7 * n)) for n in range(3)]
    occurrences[1] = replace(occurrences[1], announced_as=said)
    items = plan_of([], occurrences).variants[0].sections[0].items
    assert [i.change for i in items] == [None, "rescheduled"]


def test_events_come_first_in_a_daily_issue() -> None:
    items = [news(1, "URBACT Networks")]
    events = [event(2, "Inspiratiedag", NOW + timedelta(days=3))]
    weekly = plan_of(items, events)
    assert [s.name for s in weekly.variants[0].sections] == ["news", "events"]
    daily = compose(
        items,
        events,
        rules=RULES,
        now=NOW,
        number=1,
        cadence="daily",
        slot=NOW,
        news_since=NOW - timedelta(days=14),
    )
    assert [s.name for s in daily.variants[0].sections] == ["events", "news"]


def test_items_carry_excerpts_of_the_configured_length() -> None:
    long = news(1, "Long")
    text = " ".join(f"word{n}" for n in range(80)) + "."
    long = replace(long, summary_text=text)
    plan = plan_of([long], rules=replace(RULES, excerpt_words=10))
    (item,) = plan.variants[0].sections[0].items
    assert item.excerpt == " ".join(f"word{n}" for n in range(10)) + "…"
    assert item.summary_text == text  # the full text stays (archive, search)


def test_the_calendar_keeps_every_occurrence() -> None:
    """Only the email shows a series once: `upcoming_events` (events.ics, the per-event
    files) keeps each occurrence."""
    first = NOW + timedelta(days=1, hours=6)
    helpdesk = event(1, "Legal helpdesk", first)
    occurrences = [_occurrence(helpdesk, n, first + timedelta(days=7 * n)) for n in range(3)]
    assert len(upcoming_events(occurrences, rules=RULES, now=NOW)) == 3
