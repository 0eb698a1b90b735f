"""Time `digest draft` with N news and N/5 events in the window (N → 2N growth).

For each size a real SQLite database is filled by bulk insert: 30 feeds (en, nl, fr) and
6 calendars; N entries first seen in the news window with realistic titles and texts,
some told in the three languages (their `hreflang` alternates link them, and they share
names and numbers), some carried twice (the same title from two feeds), some mirroring an
event (the post links to the event's page); N/5 event occurrences in the next 30 days,
some series (one UID, weekly), some announced by two calendars.

Then, each in a fresh interpreter as `digest draft` runs:

- **ceiling**: start up (import what `digest draft` imports, open the database) and read
  the candidate rows: every column compose needs of the entries first seen in the window
  and their sources, and of the events not over, with one query each. Nothing can draft
  faster than this;
- **draft**: start up the same way and run `pipeline.draft` (query, compose, store the
  plan, check that it renders).

Printed per size: CPU seconds of the child process (start-up included: `time.process_time`
at exit) and wall seconds (the parent's clock around the child), the start-up floor, the
ratio draft / ceiling, the size of the stored plan JSON, and the growth of each figure from
N to 2N (×2.0 = linear; ×4.0 = quadratic).

    .venv/bin/python bench/draft.py            # 1k×200, 2.5k×500, 5k×1k, 10k×2k
    .venv/bin/python bench/draft.py --quick    # 500×100, 1k×200
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # 07:00 in Brussels, the Monday slot at 08:00
LANGUAGES = ("en", "nl", "fr")
FEEDS = 30
CALENDARS = 6

_WORDS = {
    "en": "city council migration integration housing newcomers language course refugees "
    "reception centre employment policy report network workshop funding call project "
    "municipal strategy inclusion school children volunteers training conference",
    "nl": "stad gemeenteraad migratie integratie huisvesting nieuwkomers taalcursus "
    "vluchtelingen opvangcentrum werk beleid rapport netwerk workshop subsidie oproep "
    "project lokale strategie inclusie school kinderen vrijwilligers opleiding",
    "fr": "ville conseil migration intégration logement primo-arrivants cours langue réfugiés "
    "centre accueil emploi politique rapport réseau atelier financement appel projet "
    "stratégie communale inclusion école enfants bénévoles formation conférence",
}
_NAMES = (
    "Antwerpen Gent Mechelen Leuven Brugge Liège Namur Charleroi Bruxelles Mons Hasselt "
    "Kortrijk Ostende Genk Aalst Tournai URBACT IOM Fedasil UNHCR Myria Unia VVSG AVCB"
)


def _words(language: str) -> list[str]:
    return _WORDS[language].split(" ")


def _title(rng: random.Random, language: str, names: list[str], number: int) -> str:
    words = rng.sample(_words(language), 5)
    return f"{names[0]}: {' '.join(words).capitalize()} {names[1]} {number}"


def _text(rng: random.Random, language: str, names: list[str], number: int) -> str:
    sentences = []
    for _ in range(rng.randint(4, 9)):
        words = rng.sample(_words(language), 9)
        sentences.append(f"{' '.join(words).capitalize()} {rng.choice(names)} {number}.")
    return " ".join(sentences)


def _rows(size: int, seed: int = 16) -> dict[str, list[dict[str, Any]]]:
    """The rows of a database with `size` entries and `size // 5` events in the window."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    sources: list[dict[str, Any]] = []
    for n in range(FEEDS + CALENDARS):
        calendar = n >= FEEDS
        language = LANGUAGES[n % 3]
        sources.append(
            {
                "id": n + 1,
                "name": f"{'calendar' if calendar else 'feed'}-{n + 1}",
                "url": f"https://source{n + 1}.example.org/{'agenda.ics' if calendar else 'feed'}",
                "declared_url": "",
                "kind": "CALENDAR" if calendar else "FEED",
                "language": language,
                "topics": [rng.choice(("governance", "housing", "labour", "local-policy"))],
                "section": "events" if calendar else rng.choice(("news", "news", "projects")),
                "created_at": NOW - timedelta(days=400),
                "title": f"Source {n + 1}",
                "consecutive_failures": 0,
            }
        )
    events: list[dict[str, Any]] = []
    event_count = size // 5
    n = 0
    while len(events) < event_count:
        n += 1
        source = FEEDS + 1 + n % CALENDARS
        language = LANGUAGES[(source - 1) % 3]
        names = rng.sample(_NAMES.split(" "), 2)
        title = _title(rng, language, names, 2000 + n)
        start = NOW + timedelta(days=rng.uniform(0.5, 29), hours=rng.randint(0, 8))
        start = start.replace(minute=0, second=0, microsecond=0)
        repeats = 4 if n % 25 == 0 else 1  # a weekly series of one UID
        for r in range(repeats):
            at = start + timedelta(days=7 * r)
            events.append(
                _event(len(events) + 1, source, f"uid-{n}", at, title, language, names, n, r)
            )
        if n % 30 == 0:  # a second calendar announces the same occurrence
            other = FEEDS + 1 + (n + 1) % CALENDARS
            events.append(
                _event(len(events) + 1, other, f"dup-{n}", start, title, language, names, n, 0)
            )
    events = events[:event_count]
    entries: list[dict[str, Any]] = []
    carriers: list[dict[str, Any]] = []
    story = 0
    while len(entries) < size:
        story += 1
        names = rng.sample(_NAMES.split(" "), 3)
        published = NOW - timedelta(days=rng.uniform(0, 13), minutes=rng.randint(0, 600))
        # One story in ten is the hub's, told in three languages.
        versions = list(LANGUAGES) if story % 10 == 0 else [rng.choice(LANGUAGES)]
        links = [f"https://hub.example.org/{lang}/story-{story}" for lang in versions]
        mirrored = events[story % len(events)] if story % 17 == 0 and events else None
        for lang, link in zip(versions, links, strict=True):
            feed = 1 + rng.randrange(FEEDS // 3) * 3 + LANGUAGES.index(lang)
            title = _title(rng, lang, names, 1000 + story)
            if mirrored is not None:
                link, title = mirrored["url"], mirrored["summary"]
            entry_id = len(entries) + 1
            entries.append(
                {
                    "id": entry_id,
                    "guid": f"guid-{entry_id}",
                    "link": link,
                    "fingerprint": f"{entry_id:064x}",
                    "title": title,
                    "summary_html": f"<p>{_text(rng, lang, names, 1000 + story)}</p>",
                    "summary_text": _text(rng, lang, names, 1000 + story),
                    "author": None,
                    "language": lang,
                    "image_url": f"https://hub.example.org/img/story-{story}.jpg",
                    "categories": [],
                    "published_at": published,
                    "dated_by_feed": True,
                    "first_seen_at": published + timedelta(minutes=30),
                    "last_seen_at": NOW - timedelta(hours=1),
                    "content_hash": f"{entry_id:064x}",
                    "backlog": False,
                    "alternates": [other for other in links if other != link],
                    "single_document": False,
                }
            )
            carriers.append(
                {
                    "entry_id": entry_id,
                    "source_id": feed,
                    "guid": f"guid-{entry_id}",
                    "first_seen_at": published + timedelta(minutes=30),
                }
            )
            if story % 13 == 0:  # a second feed carries it under its own guid
                carriers.append(
                    {
                        "entry_id": entry_id,
                        "source_id": 1 + (feed + 2) % FEEDS,
                        "guid": f"other-{entry_id}",
                        "first_seen_at": published + timedelta(minutes=50),
                    }
                )
            if story % 11 == 0 and len(entries) < size:  # another site, the same title
                copy = dict(entries[-1], id=entry_id + 1, guid=f"guid-{entry_id + 1}")
                copy["link"] = f"https://other.example.org/{lang}/{story}"
                copy["fingerprint"] = copy["content_hash"] = f"{entry_id + 1:064x}"
                copy["alternates"] = []
                entries.append(copy)
                carriers.append(
                    {
                        "entry_id": entry_id + 1,
                        "source_id": 1 + (feed + 5) % FEEDS,
                        "guid": f"guid-{entry_id + 1}",
                        "first_seen_at": copy["first_seen_at"],
                    }
                )
    entries = entries[:size]
    carriers = [c for c in carriers if c["entry_id"] <= size]
    return {"sources": sources, "entries": entries, "entry_sources": carriers, "events": events}


def _event(
    id_: int,
    source: int,
    uid: str,
    at: datetime,
    title: str,
    language: str,
    names: list[str],
    n: int,
    repeat: int,
) -> dict[str, Any]:
    return {
        "id": id_,
        "source_id": source,
        "uid": uid,
        "recurrence_id": at.isoformat() if repeat or uid.startswith("uid-") else "",
        "summary": title,
        "description": f"{' '.join(_words(language)[:12])} {names[0]} {n}.",
        "location": f"{names[1]}, België",
        "url": f"https://agenda.example.org/event/{n}",
        "organizer": None,
        "categories": [],
        "language": language,
        "all_day": False,
        "starts_at": at,
        "ends_at": at + timedelta(hours=2),
        "timezone": "Europe/Brussels",
        "status": "CONFIRMED",
        "sequence": 0,
        "first_seen_at": NOW - timedelta(days=20),
        "last_seen_at": NOW - timedelta(hours=1),
        "content_hash": f"{id_:064x}",
    }


def build(folder: Path, size: int) -> Path:
    """Fill a SQLite database in `folder` with `size` news and `size // 5` events; return
    the path of its digest.toml."""
    import sqlalchemy as sa

    from digest.store import db
    from digest.store.models import Entry, EntrySource, Event, Source

    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder}/digest.db"
    engine = db.connect(url, create=True)
    rows = _rows(size)
    with db.session_factory(engine).begin() as session:
        for model, name in (
            (Source, "sources"),
            (Entry, "entries"),
            (EntrySource, "entry_sources"),
            (Event, "events"),
        ):
            found = rows[name]
            for start in range(0, len(found), 2000):
                session.execute(sa.insert(model), found[start : start + 2000])
    engine.dispose()
    path = folder / "digest.toml"
    path.write_text(
        '[publication]\ntitle = "Bench Digest"\nbase_url = "https://digest.example.org"\n'
        'languages = ["en", "nl", "fr"]\ntimezone = "Europe/Brussels"\n'
        'sender = "Bench Digest <digest@example.org>"\n'
        f'[database]\nurl = "{url}"\n[issue]\nschedule = "mon 08:00"\n',
        encoding="utf-8",
    )
    return path


def _child(what: str, path: Path) -> dict[str, float]:
    """In a fresh interpreter: start up as `digest draft` does, then `what` ("ceiling": read
    the candidate rows; "draft": draft). Prints the figures as JSON."""
    from digest import config, pipeline
    from digest.store import issues

    settings = config.load(path, env={})
    factory = pipeline.open_database(settings)
    floor = time.process_time()
    if what == "ceiling":
        rows = _read_rows(factory)
        return {"cpu": time.process_time(), "floor": floor, "rows": rows}
    drafted = pipeline.draft(settings, factory, now=NOW)
    with factory() as session:
        stored = issues.by_number(session, drafted.number).plan
    return {"cpu": time.process_time(), "floor": floor, "plan_bytes": len(stored.encode())}


def _read_rows(factory: Any) -> int:
    """Read every column compose needs of the candidates, one query per kind: the least
    any draft must do. Returns how many rows were read."""
    import sqlalchemy as sa

    from digest.store.models import Entry, EntrySource, Event, Source

    since = NOW - timedelta(days=14)
    news = (
        sa.select(
            Entry.id,
            Entry.title,
            Entry.link,
            Entry.summary_html,
            Entry.summary_text,
            Entry.language,
            Entry.published_at,
            Entry.first_seen_at,
            Entry.image_url,
            Entry.author,
            Entry.alternates,
            Source.name,
            Source.section,
            Source.topics,
            Source.title,
        )
        .join(EntrySource, EntrySource.entry_id == Entry.id)
        .join(Source, Source.id == EntrySource.source_id)
        .where(Entry.first_seen_at >= since, Entry.backlog.is_(False))
    )
    events = (
        sa.select(*Event.__table__.c, Source.name, Source.section, Source.topics)
        .join(Source, Source.id == Event.source_id)
        .where(sa.func.coalesce(Event.ends_at, Event.starts_at) > NOW)
    )
    with factory() as session:
        return len(session.execute(news).all()) + len(session.execute(events).all())


def _measure(what: str, path: Path) -> dict[str, float]:
    started = time.perf_counter()
    command = [sys.executable, __file__, "--child", what, str(path)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall"] = time.perf_counter() - started
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,2500,5000,10000", help="news counts")
    parser.add_argument("--quick", action="store_true", help="sizes 500 and 1000 only")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], Path(args.child[1]))))
        return 0
    sizes = [500, 1000] if args.quick else [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="digest-bench-draft-") as folder:
        for size in sizes:
            path = build(Path(folder) / str(size), size)
            ceiling = _measure("ceiling", path)
            drafted = _measure("draft", path)
            results[size] = {"ceiling": ceiling, "draft": drafted}
            print(
                f"{size:6d} news × {size // 5:5d} events: "
                f"draft {drafted['cpu']:6.2f} s CPU {drafted['wall']:6.2f} s wall; "
                f"ceiling (start-up {ceiling['floor']:.2f} s + read {ceiling['rows']:.0f}"
                f" rows) {ceiling['cpu']:5.2f} s CPU {ceiling['wall']:5.2f} s wall; "
                f"ratio ×{drafted['cpu'] / ceiling['cpu']:.2f} CPU "
                f"×{drafted['wall'] / ceiling['wall']:.2f} wall; "
                f"plan {drafted['plan_bytes'] / 1e3:,.0f} kB",
                flush=True,
            )
    print()
    for before, after in itertools.pairwise(sizes):
        a, b = results[before], results[after]
        factor = after / before
        print(
            f"growth {before} → {after} (×{factor:g} candidates): "
            f"draft CPU ×{b['draft']['cpu'] / a['draft']['cpu']:.2f} "
            f"(above start-up ×{_above(b['draft']) / _above(a['draft']):.2f}), "
            f"ceiling CPU ×{b['ceiling']['cpu'] / a['ceiling']['cpu']:.2f}, "
            f"ratio ×{a['draft']['cpu'] / a['ceiling']['cpu']:.2f} → "
            f"×{b['draft']['cpu'] / b['ceiling']['cpu']:.2f}, "
            f"plan ×{b['draft']['plan_bytes'] / a['draft']['plan_bytes']:.2f}"
        )
    print("(growth ×2.0 per doubling = linear; ×4.0 = quadratic)")
    return 0


def _above(figures: dict[str, float]) -> float:
    return max(figures["cpu"] - figures["floor"], 1e-3)


if __name__ == "__main__":
    sys.exit(main())
