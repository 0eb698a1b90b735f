"""Compose: turn stored entries and events into an `IssuePlan`. Pure: no I/O, no clock.

Input types: `NewsCandidate`, `EventCandidate` (plain values the pipeline reads from the
store), `Curation` (the editor's pins, drops, order, intros, subject) and `Rules` (the
publication's settings that matter here). Output type: `IssuePlan`, one `Variant` per
language of the publication, each a list of `Section`s.

The plan is JSON-serializable (`plan.to_json()` / `IssuePlan.from_json`) because a draft
stores it: what the editor previews is exactly what is sent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class NewsCandidate:
    """An entry as compose sees it."""

    id: int
    title: str
    link: str | None
    summary_html: str
    summary_text: str
    language: str
    published_at: datetime
    first_seen_at: datetime
    section: str
    topics: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    image_url: str | None = None
    author: str | None = None
    backlog: bool = False
    alternates: tuple[str, ...] = ()
    """Links to the same item in other languages (`hreflang`) and its canonical link."""
    source_title: str = ""
    """The title its (first) source gives itself ("Stad en migratie"), for "source · date"."""


@dataclass(frozen=True)
class EventCandidate:
    """An event occurrence as compose sees it, with what an earlier issue showed of it."""

    id: int
    key: str
    """The event's id in the store, as text (plan items are keyed "event:<key>")."""
    uid: str
    recurrence_id: str
    summary: str
    description: str
    location: str
    url: str | None
    language: str
    all_day: bool
    starts_at: datetime | None
    ends_at: datetime | None
    start_date: date | None
    end_date: date | None
    timezone: str | None
    status: str
    section: str = "events"
    topics: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    organizer: str | None = None
    sequence: int = 0
    withdrawn: bool = False
    announced_as: AnnouncedEvent | None = None
    """How the last issue that showed this occurrence described it (None: never shown)."""
    changed_at: datetime | None = None
    """When the stored event last changed (or was first seen): its iCalendar DTSTAMP."""


@dataclass(frozen=True)
class AnnouncedEvent:
    """The time, place and status an earlier issue announced, to detect what changed since."""

    when: str
    location: str
    status: str


@dataclass(frozen=True)
class Curation:
    """The editor's hand on an issue."""

    pinned: tuple[str, ...] = ()
    """Item keys ("entry:12", "event:3:uid:rid") shown first in their section, in this order."""
    dropped: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    """Item keys in the editor's order; unlisted items follow in the composed order."""
    intro: dict[str, str] = field(default_factory=dict)
    """Intro text per language (plain text with blank-line paragraphs)."""
    subject: dict[str, str] = field(default_factory=dict)
    split: tuple[str, ...] = ()
    """Item keys the editor took out of their story: each stands alone."""
    joined: tuple[tuple[str, str], ...] = ()
    """Pairs of item keys the editor made one story."""
    edits: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    """Item key → language → {"title", "excerpt", "note"}: the editor's words for the
    story that item belongs to, as readers of that language get it."""
    moved: dict[str, str] = field(default_factory=dict)
    """Item key → the section the editor put its story in."""
    hidden: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Item key → the languages whose readers do not get its story (dropped for them only)."""


@dataclass(frozen=True)
class Rules:
    """The settings compose follows."""

    title: str
    languages: tuple[str, ...]
    timezone: str
    news_window_days: int = 14
    event_horizon_days: int = 30
    other_languages: str = "show"
    """"show": items in other languages follow the reader's, marked; "hide": left out."""
    max_per_section: int = 12
    section_order: tuple[str, ...] = ("news", "projects", "publications", "events")
    excerpt_words: int = 50
    """Items show at most this many words of their text; events one line of it."""


@dataclass(frozen=True)
class PlanItem:
    """One news item or event in a section, ready to render."""

    key: str
    kind: str
    """"entry" or "event"."""
    title: str
    link: str | None
    summary_html: str
    summary_text: str
    language: str
    foreign: bool
    """In a language other than the variant's (rendered with its own `lang` and a marker)."""
    published_at: datetime | None = None
    sources: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    image_url: str | None = None
    pinned: bool = False
    source_title: str = ""
    """The title of the item's first source, as readers know it."""
    excerpt: str = ""
    """What the email shows of the text: at most `Rules.excerpt_words` words, one paragraph."""
    members: tuple[str, ...] = ()
    """Keys of every item of this item's story (itself included; empty: a story of one)."""
    also: tuple[tuple[str, str], ...] = ()
    """The story in other languages: (language, link) pairs, for "Also in: FR · EN"."""
    note: str = ""
    """The editor's note on the item, in the variant's language ("" for none)."""
    # events only
    all_day: bool = False
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    start_date: date | None = None
    end_date: date | None = None
    """Exclusive."""
    timezone: str | None = None
    location: str = ""
    status: str = "CONFIRMED"
    change: str | None = None
    """"rescheduled", "moved" or "cancelled" when an earlier issue announced it otherwise."""
    previous: str | None = None
    """What the earlier issue said (old time or place), for "was: …"."""
    uid: str | None = None
    recurrence_id: str = ""
    organizer: str | None = None
    sequence: int = 0
    stamp: datetime | None = None
    """When the event's data last changed: its DTSTAMP, so unchanged events give
    unchanged .ics bytes."""
    last_day: date | None = None
    """A multi-day event shown once: the day its last occurrence starts (its first is the
    item's own start)."""
    recurrence_days: int = 0
    """A series shown once: the days between its occurrences when they are regular."""
    later: tuple[str, ...] = ()
    """A series shown once: the starts of its later occurrences in the window (ISO)."""


@dataclass(frozen=True)
class Section:
    """A titled group of items; `more` counts items capped out (the archive has them all).

    A composed plan holds the items the issue shows and only the keys of the ones capped
    out (`rest_keys`): the archive page gets those from the store (`with_rest`)."""

    name: str
    items: tuple[PlanItem, ...]
    more: int = 0
    rest: tuple[PlanItem, ...] = ()
    """Items capped out of the email, in order, that the plan holds in full (those the
    renderer moved out to stay under the clip, and those `with_rest` looked up)."""
    rest_keys: tuple[str, ...] = ()
    """The keys of the items capped out, in order, after `rest`: the plan stores only these."""

    def capped(self, shown: int) -> Section:
        """Return this section showing at most `shown` items, the others moved to `rest`."""
        if shown >= len(self.items):
            return self
        cut = self.items[shown:]
        return replace(
            self, items=self.items[:shown], rest=cut + self.rest, more=self.more + len(cut)
        )

    def complete(self) -> Section:
        """Return this section with every item it holds shown (the archive page's version;
        keys not looked up with `with_rest` stay counted in `more`)."""
        return replace(self, items=self.items + self.rest, rest=(), more=len(self.rest_keys))

    def with_rest(self, found: Mapping[str, PlanItem]) -> Section:
        """Return this section with the capped-out items of `found` (by key) in `rest`;
        keys `found` lacks (items deleted since) are left out."""
        if not self.rest_keys:
            return self
        looked_up = tuple(found[key] for key in self.rest_keys if key in found)
        return replace(
            self,
            rest=self.rest + looked_up,
            rest_keys=(),
            more=self.more - len(self.rest_keys) + len(looked_up),
        )


@dataclass(frozen=True)
class Variant:
    """The issue in one language."""

    language: str
    subject: str
    intro: str
    sections: tuple[Section, ...]

    @property
    def item_count(self) -> int:
        """How many items the variant shows."""
        return sum(len(section.items) for section in self.sections)


def readable_name(name: str) -> str:
    """Title a slug for readers when no label is configured: "open-calls" → "Open Calls"."""
    return " ".join(name.replace("_", " ").replace("-", " ").split()).title()


@dataclass(frozen=True)
class Labels:
    """What readers see for the publication's title, sections and topics, per language
    (from `[publication] titles` and `[labels]`); unlisted ones fall back."""

    titles: dict[str, str] = field(default_factory=dict)
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    topics: dict[str, dict[str, str]] = field(default_factory=dict)

    def title(self, language: str, default: str) -> str:
        """The publication's title in `language`, else `default`."""
        return self.titles.get(language, "").strip() or default

    def section(self, name: str, language: str) -> str | None:
        """The configured title of section `name` in `language`, or None."""
        return self.sections.get(name, {}).get(language, "").strip() or None

    def topic(self, slug: str, language: str) -> str:
        """The label of topic `slug` in `language`, else the slug made readable."""
        return self.topics.get(slug, {}).get(language, "").strip() or readable_name(slug)


@dataclass(frozen=True)
class IssuePlan:
    """Everything one issue says, per language."""

    number: int
    cadence: str
    slot: datetime
    composed_at: datetime
    title: str
    timezone: str
    news_since: datetime
    events_until: datetime
    variants: tuple[Variant, ...]
    labels: Labels = field(default_factory=Labels)
    """Titles and labels per language, set from the settings when drafted and rendered."""

    def title_in(self, language: str) -> str:
        """The publication's title in `language`."""
        return self.labels.title(language, self.title)

    def variant(self, language: str) -> Variant:
        """Return the variant in `language`, or the first one (the default language)."""
        for variant in self.variants:
            if variant.language == language:
                return variant
        return self.variants[0]

    def rest_keys(self) -> set[str]:
        """The keys of the capped-out items the plan holds only the keys of."""
        return {k for v in self.variants for s in v.sections for k in s.rest_keys}

    def with_rest(self, found: Mapping[str, PlanItem]) -> IssuePlan:
        """Return the plan with its capped-out items looked up in `found` (key → item)."""
        return replace(
            self,
            variants=tuple(
                replace(v, sections=tuple(s.with_rest(found) for s in v.sections))
                for v in self.variants
            ),
        )

    def complete(self) -> IssuePlan:
        """Return the plan with every capped-out item it holds shown: the archive page."""
        return replace(
            self,
            variants=tuple(
                replace(v, sections=tuple(s.complete() for s in v.sections)) for v in self.variants
            ),
        )

    @property
    def is_empty(self) -> bool:
        """Whether no variant has anything to say."""
        return all(variant.item_count == 0 for variant in self.variants)

    def to_json(self) -> str:
        """Serialize for storage in a draft."""
        return json.dumps(_plain(self), default=_encode, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> IssuePlan:
        """Rebuild a plan stored with `to_json`."""
        raw = json.loads(text)
        variants = tuple(
            Variant(
                language=v["language"],
                subject=v["subject"],
                intro=v["intro"],
                sections=tuple(
                    Section(
                        name=s["name"],
                        more=s["more"],
                        items=tuple(_item(i) for i in s["items"]),
                        rest=tuple(_item(i) for i in s.get("rest", ())),
                        rest_keys=tuple(s.get("rest_keys", ())),
                    )
                    for s in v["sections"]
                ),
            )
            for v in raw["variants"]
        )
        return cls(
            number=raw["number"],
            cadence=raw["cadence"],
            slot=datetime.fromisoformat(raw["slot"]),
            composed_at=datetime.fromisoformat(raw["composed_at"]),
            title=raw["title"],
            timezone=raw["timezone"],
            news_since=datetime.fromisoformat(raw["news_since"]),
            events_until=datetime.fromisoformat(raw["events_until"]),
            variants=variants,
            labels=Labels(**raw.get("labels", {})),
        )


def _plain(value: Any) -> Any:
    """`dataclasses.asdict` without its deep copies: the values of a plan are strings,
    numbers, dates and tuples of them, which `json` writes as they are."""
    if isinstance(value, PlanItem):
        return value.__dict__
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialize {value!r}")


_DATETIMES = ("published_at", "starts_at", "ends_at", "stamp")
_DATES = ("start_date", "end_date", "last_day")


def _item(raw: dict[str, Any]) -> PlanItem:
    values = dict(raw)
    for name in _DATETIMES:
        if values.get(name):
            values[name] = datetime.fromisoformat(values[name])
    for name in _DATES:
        if values.get(name):
            values[name] = date.fromisoformat(values[name])
    for name in ("sources", "topics", "members", "later"):
        values[name] = tuple(values.get(name) or ())
    values["also"] = tuple(tuple(pair) for pair in values.get("also") or ())
    return PlanItem(**values)
