"""Issue plans built from the example publication's material, for render tests and bench.

`example_plan()` is issue 12 of the Brussels "cities and migration" digest, sent Monday
23 November 2026 at 08:00: news in English, Dutch and French (one with a photo in its
HTML, one with only an image URL, one whose title holds `&` and `'`), a project update,
and an agenda with a two-day all-day conference in Mechelen, a timed training day, a
rescheduled helpdesk, a moved inspiration day and a cancelled lunch. The news section
was capped (`more`). `large_plan(n)` repeats that material into an n-item issue.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from digest import layout
from digest.compose import IssuePlan, PlanItem, Section, Variant
from digest.render import Links

BRUSSELS = ZoneInfo("Europe/Brussels")
SLOT = datetime(2026, 11, 23, 8, 0, tzinfo=BRUSSELS)
NOW = SLOT.astimezone(UTC)
BASE_URL = "https://digest.example.org"
HUB = "https://brussels-migration.example.org"
LANGUAGES = ("en", "nl", "fr")
PHOTO = (
    f"{HUB}/sites/default/files/styles/news/public/2022-12/inclucities-training-academies-manos.jpg"
)


def _entry(
    key: int,
    title: str,
    language: str,
    html: str,
    text: str,
    *,
    link: str | None = None,
    image_url: str | None = None,
) -> PlanItem:
    return PlanItem(
        key=f"entry:{key}",
        kind="entry",
        title=title,
        link=link or f"{HUB}/node/{key}",
        summary_html=html,
        summary_text=text,
        language=language,
        foreign=False,
        published_at=NOW - timedelta(days=key % 7 + 1),
        image_url=image_url,
    )


NEWS = (
    _entry(
        1201,
        "URBACT Networks",
        "en",
        "<p>An URBACT Network is a safe space for a group of cities facing similar challenges "
        "to share experiences and to develop long-term solutions. Cities develop their "
        "activities with local stakeholders – change makers from the public and private "
        "sectors, academia, NGOs and civil society – as part of their URBACT Local Group.</p>",
        "An URBACT Network is a safe space for a group of cities facing similar challenges to "
        "share experiences and to develop long-term solutions.",
        link=f"{HUB}/resources/urbact-networks",
    ),
    _entry(
        1198,
        "Belgian Resettlement Programme",
        "en",
        "<p>Since 2013, Belgium has had a structural resettlement programme. Resettled "
        "refugees are welcomed in reception centres and then move to a municipality, where "
        'local partners support their integration. <a href="https://www.fedasil.example.org/'
        'en/resettlement">More on the programme</a>.</p>',
        "Since 2013, Belgium has had a structural resettlement programme. Resettled refugees "
        "are welcomed in reception centres and then move to a municipality.",
    ),
    _entry(
        2214,
        "Het doek valt over het IncluCities-project in het Brussels Hoofdstedelijk Gewest",
        "nl",
        f'<p><img src="{PHOTO}" alt="Training Academies IncluCities in hotel Manos" '
        'width="640" height="360"></p><p>Op 7 en 8 december 2022 vonden in hotel Manos in '
        "Brussel de Training Academies IncluCities plaats. Meteen het einde van een Europees "
        "project van drie jaar van meerdere lokale besturen over migratie en het onthaal van "
        "nieuwkomers.</p>",
        "Op 7 en 8 december 2022 vonden in hotel Manos in Brussel de Training Academies "
        "IncluCities plaats. Meteen het einde van een Europees project van drie jaar.",
    ),
    _entry(
        2215,
        "Buddy's voor inclusieve steden en gemeenten: lessen uit lokale & Europese projecten "
        "- Inspiratiedag 15 december",
        "nl",
        "<p>De voorbije jaren participeerde de VVSG in duo met de stad Mechelen aan het CEMR "
        "project IncluCities. <strong>Inspiratiedag 15 december</strong> – lessen uit lokale "
        "&amp; Europese projecten.</p><p>Schrijf je hier in voor de inspiratiedag</p>",
        "De voorbije jaren participeerde de VVSG in duo met de stad Mechelen aan het CEMR "
        "project IncluCities. Inspiratiedag 15 december – lessen uit lokale & Europese "
        "projecten.",
    ),
    _entry(
        2216,
        "Le rideau tombe sur le projet IncluCities en Région de Bruxelles-Capitale",
        "fr",
        "<p>Les 7 et 8 décembre 2022, les Training Academies IncluCities se sont tenues à "
        "l’hôtel Manos, à Bruxelles. Elles ont aussi marqué la fin d’un projet européen de "
        "trois ans, mené par plusieurs pouvoirs locaux.</p>",
        "Les Training Academies IncluCities à l’hôtel Manos ont clôturé trois ans de "
        "coopération européenne entre pouvoirs locaux sur la migration.",
        image_url=PHOTO,
    ),
    _entry(
        2217,
        "Programme belge de réinstallation",
        "fr",
        "<p>Depuis 2013, la Belgique dispose d’un programme structurel de réinstallation. "
        "Les réfugiés réinstallés sont accueillis dans des centres, puis s’installent dans "
        "une commune.</p>",
        "Depuis 2013, la Belgique dispose d’un programme structurel de réinstallation.",
    ),
)

PROJECTS = (
    _entry(
        3001,
        "Actiris Coordination Platform Project: Phase 2",
        "en",
        "<p>Since the successful conclusion of the first phase of the project, IOM Belgium, in "
        "close coordination with Actiris, the Brussels regional employment agency, has "
        "remained busy piloting the second phase of activities.</p>",
        "IOM Belgium and Actiris pilot the second phase of the coordination platform.",
        link="https://belgium.iom.int/news/actiris-coordination-platform-project-phase-2",
    ),
)


def _event(key: str, title: str, language: str, text: str, **fields: Any) -> PlanItem:
    return PlanItem(
        key=f"event:{key}",
        kind="event",
        title=title,
        link=f"{HUB}/agenda/{key}",
        summary_html="",
        summary_text=text,
        language=language,
        foreign=False,
        timezone="Europe/Brussels",
        uid=f"{key}@brussels-migration.example.org",
        **fields,
    )


def _at(day: int, month: int, hour: int, minute: int = 0) -> datetime:
    """A Brussels wall-clock time in 2026, stored as UTC like the store does."""
    return datetime(2026, month, day, hour, minute, tzinfo=BRUSSELS).astimezone(UTC)


EVENTS = (
    _event(
        "permanence-juridique",
        "Permanence juridique : droit des étrangers",
        "fr",
        starts_at=_at(2, 12, 14),
        ends_at=_at(2, 12, 16),
        location="Rue Royale 2, Bruxelles, salle 2.14",
        organizer="Villes et migration",
        change="rescheduled",
        previous="2026-11-27T13:00:00+00:00/2026-11-27T15:00:00+00:00",
        recurrence_id="2026-11-27T14:00:00+01:00",
        text="Des juristes répondent aux questions des communes sur le droit des étrangers.",
    ),
    _event(
        "global-conference-cities-migration-mechelen",
        "Globale conferentie over steden en migratie",
        "nl",
        all_day=True,
        start_date=date(2026, 12, 3),
        end_date=date(2026, 12, 5),
        location="Mechelen, België",
        organizer="Stad Mechelen <conferentie@mechelen.example.org>",
        text="De Belgische regering en de Stad Mechelen zijn gastheer voor een globale "
        "conferentie over steden en migratie, met de Internationale Organisatie voor Migratie "
        "(IOM), het VN-Programma Menselijke Nederzettingen (VN-Habitat) en het Globale Netwerk "
        "van Steden, Lokale en Regionale overheden (UCLG) als institutionele partners.\n\n"
        "De conferentie is ook een ideaal moment om goede ervaringen te delen en van elkaar te "
        "leren.",
    ),
    _event(
        "networking-lunch-urbact-cities",
        "Networking lunch: URBACT cities",
        "en",
        starts_at=_at(4, 12, 12, 30),
        ends_at=_at(4, 12, 14),
        location="Brulocalis, Rue d’Arlon 53, Brussels",
        status="CANCELLED",
        change="cancelled",
        text="Meet the Brussels municipalities taking part in URBACT networks.",
    ),
    _event(
        "training-academies-inclucities",
        "Training Academies IncluCities",
        "en",
        starts_at=_at(8, 12, 9, 30),
        ends_at=_at(8, 12, 17),
        location="Hotel Manos, Brussel",
        organizer="Brulocalis – Stad en migratie / Villes et migration "
        "<agenda@brussels-migration.example.org>",
        recurrence_id="2026-12-08T09:30:00+01:00",
        text="Training Academies IncluCities in hotel Manos in Brussels: the end of a "
        "three-year European project of several local governments on migration.",
    ),
    _event(
        "inspiratiedag-buddys-inclusieve-steden",
        "Inspiratiedag: Buddy's voor inclusieve steden en gemeenten",
        "nl",
        starts_at=_at(15, 12, 10),
        ends_at=_at(15, 12, 16),
        location="VVSG, Bischoffsheimlaan 1-8, Brussel",
        organizer="VVSG <inclusie@vvsg.example.org>",
        change="moved",
        previous="Mechelen",
        text="Buddy's voor inclusieve steden en gemeenten: lessen uit lokale & Europese projecten.",
    ),
)

INTROS = {
    "en": "Welcome to the last issue of November.\n\nThe IncluCities project ends with two "
    "training days in Brussels, and Mechelen hosts a global conference on cities and "
    "migration. Note the new date of the legal helpdesk.",
    "nl": "Welkom bij de laatste editie van november.\n\nHet IncluCities-project sluit af "
    "met twee trainingsdagen in Brussel, en Mechelen ontvangt een globale conferentie over "
    "steden en migratie. Let op de nieuwe datum van de juridische permanentie.",
    "fr": "Bienvenue dans le dernier numéro de novembre.\n\nLe projet IncluCities se "
    "termine par deux journées de formation à Bruxelles, et Malines accueille une "
    "conférence mondiale sur les villes et la migration. Notez la nouvelle date de la "
    "permanence juridique.",
}


def _for_language(
    items: tuple[PlanItem, ...], language: str, *, keep: bool
) -> tuple[PlanItem, ...]:
    """Mark foreign items; like compose, the reader's language first (events keep dates)."""
    marked = [replace(i, foreign=i.language != language) for i in items]
    if keep:
        return tuple(marked)
    return tuple([i for i in marked if not i.foreign] + [i for i in marked if i.foreign])


def _plan(
    news: tuple[PlanItem, ...],
    projects: tuple[PlanItem, ...],
    events: tuple[PlanItem, ...],
    more: int,
) -> IssuePlan:
    variants = tuple(
        Variant(
            language=language,
            subject="",
            intro=INTROS[language],
            sections=(
                Section("news", _for_language(news, language, keep=False), more=more),
                Section("projects", _for_language(projects, language, keep=False)),
                Section("events", _for_language(events, language, keep=True)),
            ),
        )
        for language in LANGUAGES
    )
    return IssuePlan(
        number=12,
        cadence="weekly",
        slot=SLOT,
        composed_at=NOW,
        title="Cities & Migration Digest",
        timezone="Europe/Brussels",
        news_since=NOW - timedelta(days=7),
        events_until=NOW + timedelta(days=30),
        variants=variants,
    )


def example_plan() -> IssuePlan:
    """Issue 12 of the example publication (see the module docstring)."""
    return _plan(NEWS, PROJECTS, EVENTS, more=3)


def large_plan(items: int = 60) -> IssuePlan:
    """An issue of `items` items made from the example material (news, projects and events
    in the example's proportions), for measuring size and speed."""
    pool = NEWS + PROJECTS + EVENTS
    made = [
        replace(pool[n % len(pool)], key=f"{pool[n % len(pool)].key}:{n}") for n in range(items)
    ]
    made = [replace(item, title=f"{item.title} ({n + 1})") for n, item in enumerate(made)]
    project_keys = {p.key for p in PROJECTS}
    projects = tuple(i for i in made if i.key.rsplit(":", 1)[0] in project_keys)
    news = tuple(i for i in made if i.kind == "entry" and i not in projects)
    events = tuple(i for i in made if i.kind == "event")
    return _plan(news, projects, events, more=0)


def links(language: str, number: int = 12) -> Links:
    """The links of one rendering, with readable stand-ins for the subscriber's tokens."""
    return Links(
        base_url=BASE_URL,
        archive_url=layout.url(BASE_URL, layout.issue_page(number, language)),
        unsubscribe_url=f"{BASE_URL}/unsubscribe/TOKEN-{language}",
        preferences_url=f"{BASE_URL}/preferences/TOKEN-{language}",
    )
