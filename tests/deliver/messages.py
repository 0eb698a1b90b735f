"""Variants and recipients for the deliver tests: the example issue rendered for sending
(tokens as markers), and a hand-made variant with the awkward cases in it."""

from __future__ import annotations

import functools
from typing import Any

from digest.deliver.message import MessageTemplate, Personal, marker_links
from digest.render import Links, RenderedEmail
from digest.render.email import render_email
from digest.render.environment import make_environment
from tests.render.plans import BASE_URL, example_plan

SENDER = "Cités & Migration Digest <digest@example.org>"
TOKEN_LENGTH = 40
DATE = "Mon, 23 Nov 2026 07:00:00 +0000"
# itsdangerous puts "." in front of compressed payloads, so a token may start with one.
UNSUBSCRIBE_TOKEN = ".eJwrSS0uUUjLzEkFAA" + "x" * (TOKEN_LENGTH - 19 - 3) + "_-."
PREFERENCES_TOKEN = "Pref3r3nc3s." + "p" * (TOKEN_LENGTH - 12)
LONG_LINE = "<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 90 + "</p>"


def links(language: str) -> Links:
    """The links to render `language` with: markers in place of the tokens."""
    return marker_links(BASE_URL, language, f"{BASE_URL}/{language}/12", TOKEN_LENGTH)


@functools.cache
def rendered(language: str) -> RenderedEmail:
    """The example issue in `language`, rendered as for sending."""
    plan = example_plan()
    return render_email(plan, language, links(language), make_environment(None))


def awkward(language: str = "fr") -> RenderedEmail:
    """A variant with a 5,000-character HTML line, lines starting with "." and "From ",
    a trailing space, and the personal links at the end of long lines."""
    link = links(language)
    unsubscribe, preferences = link.unsubscribe_url, link.preferences_url
    text = (
        "Actualités de la semaine\n\n"
        ".Ce paragraphe commence par un point.\n"
        ".\n"
        "From the editor: bonne lecture. \n"
        + "x" * 70
        + f"{unsubscribe}\n\n"
        + f"Se désabonner : {unsubscribe}\nPréférences : {preferences}\n"
    )
    html = (
        f'<!DOCTYPE html>\n<html lang="{language}"><head><title>Actualités</title></head>'
        f"<body>\n{LONG_LINE}\n.<p>point</p>\n"
        f'<p><a href="{unsubscribe}">Se désabonner</a> · <a href="{preferences}">Préférences</a>'
        "</p></body></html>"
    )
    return RenderedEmail(
        language=language,
        subject="Actualités de la semaine — Bruxelles",
        preheader="",
        html=html,
        text=text,
    )


def build(rendered_email: RenderedEmail, **options: Any) -> MessageTemplate:
    """Build the template of `rendered_email` with the example publication's settings."""
    arguments: dict[str, Any] = {
        "sender": SENDER,
        "list_id": f"{rendered_email.language}.digest.example.org",
        "base_url": BASE_URL,
        "unsubscribe_mailto": "mailto:unsubscribe@example.org?subject=unsubscribe",
        "language": rendered_email.language,
        "token_length": TOKEN_LENGTH,
    }
    arguments.update(options)
    return MessageTemplate.build(rendered_email, **arguments)


def personal(**changes: str) -> Personal:
    """Alice, with tokens of the right length (the unsubscribe one starting with ".")."""
    values = {
        "to_address": "alice@example.net",
        "to_name": "Zoë Dupont-Éléonore",
        "unsubscribe_token": UNSUBSCRIBE_TOKEN,
        "preferences_token": PREFERENCES_TOKEN,
        "message_id": "12.fr.4711",
        "date": DATE,
        "envelope_from": "bounces+alice=example.net@example.org",
    }
    values.update(changes)
    return Personal(**values)
