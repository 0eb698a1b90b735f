"""Compose an issue: choose the news and events (the agenda: `compose/agenda.py`), fold
news into the events they announce, group stories, and order and cap each language
variant. Pure: values in, plan out.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from digest.compose import (
    Curation,
    EventCandidate,
    IssuePlan,
    NewsCandidate,
    PlanItem,
    Rules,
    Section,
    Variant,
)
from digest.compose import stories as storying
from digest.compose.agenda import (
    EVENT_LINE_WORDS,
    collapse_series,
    event_item,
    event_start,
    fill,
    normal_title,
    select_events,
)
from digest.compose.excerpts import excerpt

MIRROR_WINDOW_DAYS = 21
"""A post with an event's very title announces it when published within this many days
of its start (last year's report of the same event is not its announcement)."""


def _select_news(
    news: Iterable[NewsCandidate], rules: Rules, since: datetime, now: datetime
) -> list[NewsCandidate]:
    oldest = now - timedelta(days=rules.news_window_days)
    chosen = [
        n
        for n in news
        if not n.backlog and since <= n.first_seen_at <= now and n.published_at >= oldest
    ]
    return sorted(chosen, key=lambda n: (n.published_at, n.id), reverse=True)


def _news_item(news: NewsCandidate, rules: Rules) -> PlanItem:
    return PlanItem(
        key=f"entry:{news.id}",
        kind="entry",
        title=news.title,
        link=news.link,
        summary_html=news.summary_html,
        summary_text=news.summary_text,
        excerpt=excerpt(news.summary_text, rules.excerpt_words),
        source_title=news.source_title,
        language=news.language,
        foreign=False,
        published_at=news.published_at,
        sources=news.sources,
        topics=news.topics,
        image_url=news.image_url,
    )


def plan_items(
    news: Iterable[NewsCandidate], events: Iterable[EventCandidate], *, rules: Rules
) -> dict[str, PlanItem]:
    """Each of `news` and `events` as a plan item on its own, by key: what the archive page
    shows of the items a plan holds only the keys of (`Section.rest_keys`)."""
    found = {f"entry:{n.id}": _news_item(n, rules) for n in news}
    for event in events:
        found[f"event:{event.key}"] = event_item(event, rules, None, None)
    return found


def _merge(
    news: list[PlanItem], events: list[PlanItem], zone: zoneinfo.ZoneInfo
) -> tuple[list[PlanItem], list[PlanItem]]:
    """Fold a news post into the event it announces; return (news, events).

    A post announces an event when its link is the event's own page, or when its title is
    the event's very title (normalized: case, accents, punctuation; at least
    `storying.MIN_TITLE_WORDS` words) and it was published within `MIRROR_WINDOW_DAYS` of
    the event's start. A similar title is not enough: "Legal helpdesk extended to 2027"
    is not the event "Legal helpdesk for municipalities". Each item's keys are computed
    once and looked up in dictionaries: no pairs compared."""
    by_link: dict[str, int] = {}
    by_title: dict[str, list[int]] = {}
    for position, event in enumerate(events):
        link = storying.normal_link(event.link)
        if link:
            by_link.setdefault(link, position)
        title = normal_title(event.title)
        if len(title.split()) >= storying.MIN_TITLE_WORDS:
            by_title.setdefault(title, []).append(position)
    window = timedelta(days=MIRROR_WINDOW_DAYS)
    merged = list(events)
    remaining: list[PlanItem] = []
    for post in news:
        found = by_link.get(storying.normal_link(post.link) or "")
        if found is None and post.published_at is not None:
            published = post.published_at
            found = next(
                (
                    n
                    for n in by_title.get(normal_title(post.title), ())
                    if abs(event_start(events[n], zone) - published) <= window
                ),
                None,
            )
        if found is None:
            remaining.append(post)
            continue
        event = merged[found]
        enriched = fill(event, post)
        merged[found] = replace(
            enriched,
            link=event.link or post.link,
            excerpt=event.excerpt or excerpt(post.summary_text, EVENT_LINE_WORDS),
            members=(*(event.members or (event.key,)), post.key),
        )
    return remaining, merged


def _group(
    items: list[PlanItem], alternates: dict[str, tuple[str, ...]], curation: Curation
) -> list[list[PlanItem]]:
    """Group news items into stories, each with its original (earliest) member first."""
    found = storying.group(
        [
            storying.StoryItem(
                key=item.key,
                title=item.title,
                text=item.summary_text,
                language=item.language,
                published_at=item.published_at or datetime.min.replace(tzinfo=UTC),
                link=item.link,
                alternates=alternates.get(item.key, ()),
                image=item.image_url,
                html=item.summary_html,
            )
            for item in items
        ],
        split=curation.split,
        joined=curation.joined,
    )
    return [sorted((items[n] for n in members), key=_age) for members in found]


def _age(item: PlanItem) -> tuple[datetime, str]:
    return (item.published_at or datetime.min.replace(tzinfo=UTC), item.key)


def _curate(stories: list[list[PlanItem]], curation: Curation) -> list[list[PlanItem]]:
    """Apply the editor's drops, order and pins; a story goes when any of its versions is
    dropped and is placed by the first of its versions the editor placed."""
    dropped = set(curation.dropped)
    kept = [s for s in stories if not any(m.key in dropped for m in s)]
    rank = {key: n for n, key in enumerate(curation.order)}
    pins = {key: n for n, key in enumerate(curation.pinned)}

    def first(story: list[PlanItem], table: dict[str, int]) -> int | None:
        found = [table[m.key] for m in story if m.key in table]
        return min(found) if found else None

    ordered = sorted(
        enumerate(kept),
        key=lambda pair: (_or(first(pair[1], rank), len(rank)), pair[0]),
    )
    pinned = sorted(
        (
            [replace(m, pinned=True) for m in story]
            for _, story in ordered
            if first(story, pins) is not None
        ),
        key=lambda story: _or(first(story, pins), 0),
    )
    return pinned + [story for _, story in ordered if first(story, pins) is None]


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _version(story: list[PlanItem], language: str) -> PlanItem:
    """The item a reader of `language` gets of `story`: its version in that language if
    there is one, else the original; with the other languages' links and every member."""
    chosen = next((m for m in story if m.language == language), story[0])
    others: dict[str, str] = {}
    for member in story:
        if member.language != chosen.language and member.link:
            others.setdefault(member.language, member.link)
    if len(story) == 1:
        return replace(chosen, foreign=chosen.language != language)
    return replace(
        chosen,
        foreign=chosen.language != language,
        pinned=any(m.pinned for m in story),
        members=tuple(k for m in story for k in (m.members or (m.key,))),
        also=tuple(others.items()),
        sources=tuple(dict.fromkeys(s for m in story for s in m.sources)),
        topics=tuple(dict.fromkeys(t for m in story for t in m.topics)),
        image_url=chosen.image_url or next((m.image_url for m in story if m.image_url), None),
    )


def _story_keys(story: list[PlanItem]) -> list[str]:
    return [k for m in story for k in (m.key, *m.members)]


def _edited(story: list[PlanItem], language: str, curation: Curation) -> PlanItem | None:
    """The item readers of `language` get of `story` with the editor's words, or None
    when the editor dropped the story for them."""
    keys = _story_keys(story)
    if any(language in curation.hidden.get(k, ()) for k in keys):
        return None
    item = _version(story, language)
    for key in keys:
        words = curation.edits.get(key, {}).get(language)
        if words:
            item = replace(
                item,
                title=words.get("title") or item.title,
                excerpt=words.get("excerpt") or item.excerpt,
                note=words.get("note", ""),
            )
            break
    return item


def _hidden(story: list[PlanItem], language: str, curation: Curation) -> bool:
    if not curation.hidden:
        return False
    return any(language in curation.hidden.get(k, ()) for k in _story_keys(story))


def _chosen(story: list[PlanItem], language: str) -> PlanItem:
    """The version of `story` readers of `language` get (see `_version`)."""
    if len(story) == 1:
        return story[0]
    return next((m for m in story if m.language == language), story[0])


def _for_language(
    stories: Sequence[list[PlanItem]],
    language: str,
    rules: Rules,
    keep_order: bool,
    curation: Curation,
) -> tuple[list[PlanItem], list[str]]:
    """The items readers of `language` get of `stories`, in order: (the ones shown, the
    keys of the ones capped out). Only the shown ones are made (a story's version, the
    editor's words): a section of 10,000 stories costs a key each beyond its cap."""
    listed = []
    for story in stories:
        if _hidden(story, language, curation):
            continue
        chosen = _chosen(story, language)
        foreign = chosen.language != language
        if foreign and rules.other_languages == "hide":
            continue
        listed.append((story, chosen.key, foreign, any(m.pinned for m in story)))
    if not keep_order:
        pinned = [one for one in listed if one[3]]
        rest = [one for one in listed if not one[3]]
        ranked = set(curation.order)
        if ranked and any(k in ranked for one in rest for k in _story_keys(one[0])):
            # The editor ordered this section: their order wins over "own language first".
            listed = pinned + rest
        else:
            listed = pinned + [o for o in rest if not o[2]] + [o for o in rest if o[2]]
    cap = max(rules.max_per_section, sum(1 for one in listed if one[3]))
    shown = []
    for story, _key, _foreign, _pinned in listed[:cap]:
        item = _edited(story, language, curation)
        assert item is not None  # hidden stories were left out above
        shown.append(item)
    return shown, [key for _story, key, _foreign, _pinned in listed[cap:]]


def _sections(
    by_name: dict[str, list[list[PlanItem]]],
    rules: Rules,
    language: str,
    events_first: bool,
    curation: Curation,
) -> tuple[Section, ...]:
    order = {name: n for n, name in enumerate(rules.section_order)}

    def place(name: str) -> tuple[int, int, str]:
        events = all(s[0].kind == "event" for s in by_name[name])
        return (0 if events and events_first else 1, order.get(name, len(order)), name)

    sections = []
    for name in sorted(by_name, key=place):
        is_events = all(s[0].kind == "event" for s in by_name[name])
        items, rest = _for_language(by_name[name], language, rules, is_events, curation)
        if items:
            sections.append(
                Section(name=name, items=tuple(items), more=len(rest), rest_keys=tuple(rest))
            )
    return tuple(sections)


def compose(
    news: Iterable[NewsCandidate],
    events: Iterable[EventCandidate],
    *,
    rules: Rules,
    now: datetime,
    number: int,
    cadence: str,
    slot: datetime,
    news_since: datetime,
    curation: Curation | None = None,
) -> IssuePlan:
    """Return the plan of issue `number` as of `now`."""
    curation = curation or Curation()
    until = now + timedelta(days=rules.event_horizon_days)
    chosen_news = _select_news(news, rules, news_since, now)
    sections_of = {n.id: n.section for n in chosen_news}
    event_list = list(events)
    event_sections = {f"event:{e.key}": e.section for e in event_list}
    zone = zoneinfo.ZoneInfo(rules.timezone)
    news_items, event_items = _merge(
        [_news_item(n, rules) for n in chosen_news],
        collapse_series(select_events(event_list, rules, now, until), zone),
        zone,
    )
    alternates = {f"entry:{n.id}": n.alternates for n in chosen_news}
    stories = _group(news_items, alternates, curation) + [[e] for e in event_items]
    by_name: dict[str, list[list[PlanItem]]] = {}
    for story in _curate(stories, curation):
        item = story[0]
        if item.kind == "entry":
            section = sections_of[int(item.key.split(":", 1)[1])]
        else:
            section = event_sections[item.key]
        moved = [curation.moved[k] for k in _story_keys(story) if k in curation.moved]
        if moved:
            section = moved[0]
        by_name.setdefault(section, []).append(story)
    variants = tuple(
        Variant(
            language=language,
            subject=curation.subject.get(language, ""),
            intro=curation.intro.get(language, ""),
            sections=_sections(by_name, rules, language, cadence == "daily", curation),
        )
        for language in rules.languages
    )
    return IssuePlan(
        number=number,
        cadence=cadence,
        slot=slot,
        composed_at=now,
        title=rules.title,
        timezone=rules.timezone,
        news_since=news_since,
        events_until=until,
        variants=variants,
    )


def for_topics(plan: IssuePlan, topics: Iterable[str]) -> IssuePlan:
    """Return `plan` as seen by a subscriber who chose `topics` (none chosen: everything).

    An item is kept when it has no topic (it concerns everyone) or shares one with the
    subscriber; sections left empty disappear, and capped-out items are filtered alike
    (those the plan holds only the keys of are counted: the archive page shows them)."""
    wanted = {t.strip().lower() for t in topics if t.strip()}
    if not wanted:
        return plan

    def keep(item: PlanItem) -> bool:
        return not item.topics or bool(wanted.intersection(t.lower() for t in item.topics))

    variants = []
    for variant in plan.variants:
        sections = []
        for section in variant.sections:
            items = tuple(i for i in section.items if keep(i))
            rest = tuple(i for i in section.rest if keep(i))
            if items:
                shown = Section(name=section.name, items=items + rest).capped(len(items))
                keys = section.rest_keys
                sections.append(replace(shown, rest_keys=keys, more=shown.more + len(keys)))
        variants.append(replace(variant, sections=tuple(s for s in sections if s.items)))
    return replace(plan, variants=tuple(variants))
