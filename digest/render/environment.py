"""Build the Jinja environment that renders emails, text parts and web pages.

Templates are looked up in the operator's `[render] templates_dir` first, then in the
built-in ones, so a user file with the same name replaces a built-in one. The built-ins are
the top-level `templates/` folder, which ships inside the package as `digest/templates`
(a symbolic link in the source tree, real files in a wheel) and is found through
`importlib.resources`, so a wheel, pipx or a container install has them.
Autoescaping is on for everything but `*.txt.jinja`. Translations are not installed in
the (shared, cached) environment: each rendering passes its language's `gettext` and
`ngettext` as variables (`translation_context`), so two languages can render at once.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from jinja2.ext import i18n
from markupsafe import Markup

from digest.compose import PlanItem
from digest.compose.excerpts import excerpt
from digest.render import agenda, calendar_links, images
from digest.render.i18n import (
    format_day,
    format_event_when,
    format_previous_when,
    language_name,
    translations,
)

BUILTIN_TEMPLATES = Path(str(importlib.resources.files("digest") / "templates"))


def _newstyle_gettext(gettext: Callable[[str], str]) -> Callable[..., str]:
    """Jinja's "new style" gettext: `_("Hello %(name)s", name=x)` formats after translating,
    escaping the variables (not the translation) when autoescaping is on."""

    @jinja2.pass_context
    def call(context: jinja2.runtime.Context, message: str, /, **variables: Any) -> str:
        text: str = gettext(message)
        if context.eval_ctx.autoescape:
            # Translations are ours (the catalogs); Markup's % escapes the variables.
            return Markup(text) % variables  # noqa: S704
        return text % variables

    return call


def _newstyle_ngettext(ngettext: Callable[[str, str, int], str]) -> Callable[..., str]:
    """Jinja's "new style" ngettext: `num` is a variable of the message by default."""

    @jinja2.pass_context
    def call(
        context: jinja2.runtime.Context, singular: str, plural: str, num: int, /, **variables: Any
    ) -> str:
        variables.setdefault("num", num)
        text: str = ngettext(singular, plural, num)
        if context.eval_ctx.autoescape:
            return Markup(text) % variables  # noqa: S704
        return text % variables

    return call


def translation_context(language: str) -> dict[str, Any]:
    """Return the template variables that translate into `language` (`_`, `{% trans %}`)."""
    catalog = translations(language)
    return {
        "gettext": _newstyle_gettext(catalog.gettext),
        "ngettext": _newstyle_ngettext(catalog.ngettext),
    }


# Only ASCII whitespace separates words: no-break spaces (French "Quand :", CLDR's narrow
# spaces in "14:00 – 16:00") must stay, and must not become break opportunities.
_BLANK = re.compile(r"[ \t\r\n\f\v]+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


def _paragraphs(text: str) -> list[str]:
    parts = (_BLANK.sub(" ", part).strip(" ") for part in _PARAGRAPH_BREAK.split(text))
    return [part for part in parts if part]


def wrap(text: str, width: int = 72, indent: str = "", first: str | None = None) -> str:
    """Wrap plain text at `width` columns, paragraph by paragraph (blank-line separated).

    Every line starts with `indent`, the very first with `first` (a bullet) when given.
    Long words such as URLs are never broken: a reader must be able to copy them.
    """
    paragraphs = _paragraphs(text)
    wrapped = []
    for number, paragraph in enumerate(paragraphs):
        lead = first if number == 0 and first is not None else indent
        wrapped.append(_fill(paragraph, width, lead, indent))
    return "\n\n".join(wrapped)


def _fill(paragraph: str, width: int, lead: str, indent: str) -> str:
    """`textwrap.fill(paragraph, width, initial_indent=lead, subsequent_indent=indent,
    break_long_words=False, break_on_hyphens=False)`, line for line, in a third of its time
    (the text part's largest cost): `paragraph` has its words separated by single spaces,
    so filling is one greedy pass over them."""
    words = paragraph.split(" ")
    if width <= 0 or any(not word.strip() for word in words):
        # textwrap refuses the width, or drops a word of only Unicode spaces (a lone
        # no-break space) as it drops blanks at line ends: let it decide.
        return textwrap.fill(
            paragraph,
            width=width,
            initial_indent=lead,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
    lines: list[str] = []
    room = width - len(lead)
    line = [words[0]]
    used = len(words[0])
    for word in words[1:]:
        if used + 1 + len(word) <= room:
            line.append(word)
            used += 1 + len(word)
            continue
        lines.append((lead if not lines else indent) + " ".join(line))
        room = width - len(indent)
        line = [word]
        used = len(word)
    lines.append((lead if not lines else indent) + " ".join(line))
    return "\n".join(lines)


def paragraphs(text: str) -> list[str]:
    """Split plain text into paragraphs at blank lines, whitespace inside each collapsed."""
    return _paragraphs(text)


def source_label(item: PlanItem) -> str:
    """The name of the item's source as readers see it: the feed's own title when known,
    else its configured name made readable ("stad-en-migratie" → "Stad en migratie")."""
    if item.source_title:
        return item.source_title
    if not item.sources:
        return ""
    name = " ".join(item.sources[0].replace("_", " ").replace("-", " ").split())
    return name[:1].upper() + name[1:]


def excerpt_of(item: PlanItem, words: int = 50) -> str:
    """The item's excerpt; plans drafted before excerpts existed get one from their text."""
    if item.excerpt:
        return item.excerpt
    text = item.summary_text
    if not text and item.summary_html:
        from digest.collect.clean import html_to_text

        text = html_to_text(item.summary_html)
    return excerpt(text, words)


def meta_line(item: PlanItem, language: str, timezone: str) -> str:
    """ "Source · 7 Dec" under an item's title (either part may be missing)."""
    parts = (source_label(item), agenda.item_day(item, language, timezone))
    return " · ".join(part for part in parts if part)


@functools.cache
def make_environment(
    templates_dir: Path | None, *, postal_address: str = "", images_policy: str = "drop"
) -> jinja2.Environment:
    """Return the (cached) environment searching `templates_dir`, then the built-ins.

    `postal_address` (`[publication] postal_address`) and `images_policy` (`[render]
    images`) are the publication's, shown in every email (template globals)."""
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(templates_dir))
    loaders.append(jinja2.FileSystemLoader(BUILTIN_TEMPLATES))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        # Escape HTML, MJML and XML templates, and anything unknown; never plain text.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.jinja", "mjml.jinja", "xml.jinja", "html", "mjml", "xml"),
            disabled_extensions=("txt.jinja", "txt"),
            default=True,
            default_for_string=True,
        ),
        undefined=jinja2.StrictUndefined,
        extensions=[i18n],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # Untranslated defaults; a rendering passes its own through `translation_context`.
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.policies["ext.i18n.trimmed"] = True
    env.filters.update(
        day=format_day,
        event_when=format_event_when,
        previous_when=format_previous_when,
        language_name=language_name,
        wrap=wrap,
        paragraphs=paragraphs,
        google_calendar_url=calendar_links.google_calendar_url,
        ics_url=calendar_links.ics_url,
        organizer_contact=calendar_links.organizer_contact,
        badge=agenda.badge,
        agenda_when=agenda.agenda_when,
        series_note=agenda.series_note,
        item_day=agenda.item_day,
        source_label=source_label,
        excerpt_of=excerpt_of,
        meta_line=meta_line,
        lead_image=images.lead_image,
        image_policy=images.apply_policy,
    )
    env.globals.update(postal_address=postal_address, images=images_policy)
    return env
