"""Render the transactional mail sent to one person: the double opt-in confirmation, and
the new links a subscriber asks for.

Rendered like an issue (Jinja → MJML → HTML → premailer, plus a text part from its own
template) and in the person's language, but with no unsubscribe link: the person is not
on the list until they click. Pure: templates in, strings out.
"""

from __future__ import annotations

from typing import Any

import jinja2

from digest.render import RenderedEmail
from digest.render.email import inline_styles, mjml_to_html
from digest.render.environment import translation_context
from digest.render.i18n import translations

CONFIRM_HTML_TEMPLATE = "email/confirm.mjml.jinja"
CONFIRM_TEXT_TEMPLATE = "text/confirm.txt.jinja"
LINKS_HTML_TEMPLATE = "email/links.mjml.jinja"
LINKS_TEXT_TEMPLATE = "text/links.txt.jinja"


def confirm_url(base_url: str, language: str, token: str) -> str:
    """Return the page that confirms a subscription: "{base_url}/{language}/confirm/{token}"."""
    return f"{base_url.rstrip('/')}/{language}/confirm/{token}"


def confirmation_subject(title: str, language: str) -> str:
    """Return the subject: "Confirm your subscription to Cities & Migration Digest"."""
    template = translations(language).gettext("Confirm your subscription to %(title)s")
    return template % {"title": title}


def render_confirmation(
    *,
    title: str,
    language: str,
    confirm_url: str,
    env: jinja2.Environment,
    valid_days: int | None = None,
) -> RenderedEmail:
    """Render the confirmation mail of double opt-in in `language`.

    `confirm_url` is the link to click (see `confirm_url()`); with `valid_days` the mail
    says how long it works. Raises ValueError for a URL that is not http(s).
    """
    if not confirm_url.startswith(("https://", "http://")) or any(
        char.isspace() for char in confirm_url
    ):
        raise ValueError(f"confirm_url {confirm_url!r} must be an http(s) URL without spaces")
    catalog = translations(language)
    intro = catalog.gettext("Please confirm that you want to receive %(title)s at this address.")
    context: dict[str, Any] = {
        **translation_context(language),
        "language": language,
        "title": title,
        "subject": confirmation_subject(title, language),
        "preheader": intro % {"title": title},
        "confirm_url": confirm_url,
        "valid_days": valid_days,
    }
    mjml_source = env.get_template(CONFIRM_HTML_TEMPLATE).render(context)
    text = env.get_template(CONFIRM_TEXT_TEMPLATE).render(context)
    return RenderedEmail(
        language=language,
        subject=context["subject"],
        preheader=context["preheader"],
        html=inline_styles(mjml_to_html(mjml_source)),
        # Trailing blanks are noise that transports may strip anyway.
        text="\n".join(line.rstrip() for line in text.splitlines()).strip("\n") + "\n",
    )


def render_links(
    *,
    title: str,
    language: str,
    preferences_url: str,
    unsubscribe_url: str,
    env: jinja2.Environment,
    fresh_hours: int,
) -> RenderedEmail:
    """Render the mail with a subscriber's new preferences link (asked for on the web)."""
    for url in (preferences_url, unsubscribe_url):
        if not url.startswith(("https://", "http://")) or any(char.isspace() for char in url):
            raise ValueError(f"{url!r} must be an http(s) URL without spaces")
    catalog = translations(language)
    subject = catalog.gettext("Your links for %(title)s") % {"title": title}
    context: dict[str, Any] = {
        **translation_context(language),
        "language": language,
        "title": title,
        "subject": subject,
        "preheader": catalog.gettext("Here is a new link to your preferences."),
        "preferences_url": preferences_url,
        "unsubscribe_url": unsubscribe_url,
        "fresh_hours": fresh_hours,
    }
    mjml_source = env.get_template(LINKS_HTML_TEMPLATE).render(context)
    text = env.get_template(LINKS_TEXT_TEMPLATE).render(context)
    return RenderedEmail(
        language=language,
        subject=subject,
        preheader=context["preheader"],
        html=inline_styles(mjml_to_html(mjml_source)),
        text="\n".join(line.rstrip() for line in text.splitlines()).strip("\n") + "\n",
    )
