"""Render one language variant of an issue as an email: HTML (Jinja → MJML → HTML →
premailer) and a plain-text part from its own template. Pure: templates in, strings out.

Rendering never stops an issue because of one item: when a variant fails to render,
`render_for_inbox` renders each item on its own, leaves out those that fail (listed in
`RenderedEmail.omitted` with the error) and renders the rest. Only a template that fails
with no item at all raises (`RenderError`, naming the template and line).
"""

from __future__ import annotations

import logging
import math
import re
import zoneinfo
from dataclasses import dataclass, replace
from typing import Any

import jinja2
import mjml

from digest.compose import IssuePlan, Labels, PlanItem, Section, Variant, readable_name
from digest.errors import DigestError
from digest.render import Links, Omitted, RenderedEmail, inline
from digest.render.environment import paragraphs, translation_context
from digest.render.i18n import N_, format_day, translations, zone_name

HTML_TEMPLATE = "email/issue.mjml.jinja"
TEXT_TEMPLATE = "text/issue.txt.jinja"

SECTION_TITLES = {
    "news": N_("News"),
    "projects": N_("Projects"),
    "publications": N_("Publications"),
    "events": N_("Agenda"),
}
"""Titles of the usual sections; any other section is titled by its name."""

# Inbox previews show about 90-140 characters; a longer preheader only adds bytes.
PREHEADER_LIMIT = 140
PREHEADER_ITEMS = 3


@dataclass(frozen=True)
class SectionView:
    """A section as templates see it: its title in the reader's language and its items."""

    name: str
    title: str
    items: tuple[PlanItem, ...]
    more: int
    timed: bool
    """Whether some event in it has a time of day (the template then names the time zone)."""
    anchor: str = ""
    """The section's `id` in the page, for "In this issue" links."""


def section_title(name: str, language: str, labels: Labels | None = None) -> str:
    """Title section `name` in `language`: its label from `[labels]` when configured, else
    "events" → "Agenda" (translated), "open-calls" → "Open Calls"."""
    configured = labels.section(name, language) if labels is not None else None
    if configured:
        return configured
    known = SECTION_TITLES.get(name)
    if known is not None:
        return translations(language).gettext(known)
    return readable_name(name)


def _section_view(section: Section, language: str, labels: Labels | None = None) -> SectionView:
    return SectionView(
        name=section.name,
        title=section_title(section.name, language, labels),
        items=section.items,
        more=section.more,
        timed=any(i.kind == "event" and not i.all_day for i in section.items),
        anchor="s-" + re.sub(r"[^a-z0-9]+", "-", section.name.lower()).strip("-"),
    )


def _issue_day(plan: IssuePlan, language: str) -> str:
    return format_day(plan.slot.astimezone(zoneinfo.ZoneInfo(plan.timezone)).date(), language)


def subject(plan: IssuePlan, variant: Variant) -> str:
    """The editor's subject, else "Cities & Migration Digest — maandag 23 november 2026"."""
    if variant.subject.strip():
        return variant.subject.strip()
    template = translations(variant.language).gettext("%(title)s — %(day)s")
    day = _issue_day(plan, variant.language)
    return template % {"title": plan.title_in(variant.language), "day": day}


def preheader(variant: Variant) -> str:
    """The inbox preview line: the first items' titles, joined and shortened."""
    titles = [item.title.strip() for s in variant.sections for item in s.items][:PREHEADER_ITEMS]
    text = " · ".join(t for t in titles if t)
    if len(text) > PREHEADER_LIMIT:
        text = text[: PREHEADER_LIMIT - 1].rsplit(" ", 1)[0] + "…"
    return text


def _context(plan: IssuePlan, variant: Variant, links: Links) -> dict[str, Any]:
    language = variant.language
    return {
        **translation_context(language),
        "language": language,
        "title": plan.title_in(language),
        "number": plan.number,
        "subject": subject(plan, variant),
        "preheader": preheader(variant),
        "issue_day": _issue_day(plan, language),
        "intro": paragraphs(variant.intro),
        "sections": [_section_view(s, language, plan.labels) for s in variant.sections if s.items],
        "archived": [
            _section_view(s, language, plan.labels)
            for s in variant.sections
            if s.more and not s.items
        ],
        "links": links,
        "timezone": plan.timezone,
        "zone_name": zone_name(plan.timezone, language),
    }


def render_mjml(plan: IssuePlan, language: str, links: Links, env: jinja2.Environment) -> str:
    """Return the MJML source of the variant in `language` (the first step of the HTML)."""
    variant = plan.variant(language)
    return env.get_template(HTML_TEMPLATE).render(_context(plan, variant, links))


def mjml_to_html(source: str) -> str:
    """Compile MJML to HTML; no web fonts, so the HTML loads nothing from elsewhere."""
    return mjml.mjml2html(source, fonts={})


def inline_styles(html: str) -> str:
    """Inline the CSS rules into `style` attributes for clients that drop `<style>`
    (premailer, each stylesheet parsed once: `digest.render.inline`)."""
    return inline.inline(html)


def render_html(plan: IssuePlan, language: str, links: Links, env: jinja2.Environment) -> str:
    """Return the email HTML of the variant in `language`, styles inlined."""
    return inline_styles(mjml_to_html(render_mjml(plan, language, links, env)))


def render_text(plan: IssuePlan, language: str, links: Links, env: jinja2.Environment) -> str:
    """Return the plain-text part of the variant in `language`."""
    variant = plan.variant(language)
    text = env.get_template(TEXT_TEMPLATE).render(_context(plan, variant, links))
    # Trailing blanks are noise that transports may strip anyway; the one kept is in "-- ",
    # the signature separator that mail readers recognise by its space.
    lines = [line.rstrip() for line in text.splitlines()]
    return "\n".join("-- " if line == "--" else line for line in lines).strip("\n") + "\n"


def render_email(
    plan: IssuePlan, language: str, links: Links, env: jinja2.Environment
) -> RenderedEmail:
    """Render the variant of `plan` in `language` (the default language when the plan
    has no such variant) as subject, preheader, HTML and text."""
    variant = plan.variant(language)
    return RenderedEmail(
        language=variant.language,
        subject=subject(plan, variant),
        preheader=preheader(variant),
        html=render_html(plan, variant.language, links, env),
        text=render_text(plan, variant.language, links, env),
    )


def html_size(html: str) -> int:
    """Return the size of `html` in bytes (UTF-8)."""
    return len(html.encode("utf-8"))


_NO_MARKERS = re.compile(r"(?!)")


def sent_size(html: str) -> int:
    """Return the size of `html` as it is sent: quoted-printable with our encoder, which
    Gmail counts towards its ~102 KB clip (an "é" takes 6 octets, a long line 1/76 more)."""
    from digest.deliver.message import quoted_printable  # the encoder delivery uses

    return len(quoted_printable(html, _NO_MARKERS).encode("ascii"))


INBOX_HTML_LIMIT = 100 * 1024
"""Gmail clips a message whose HTML passes ~102 KB as sent and hides the rest (our
unsubscribe link with it); this keeps 2 KB for the per-recipient links substituted at send
time. Measured with `sent_size` (quoted-printable), not on the decoded HTML."""

log = logging.getLogger(__name__)


class RenderError(DigestError):
    """A variant does not render even without any item: the template itself is broken."""


def describe_error(exc: BaseException) -> str:
    """One line saying what failed to render, with the template and line when known."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = exc.filename or exc.name or "template"
        return f"{where}:{exc.lineno}: {exc.message}"
    if isinstance(exc, jinja2.TemplateError):
        frame = _template_frame(exc)
        return f"{frame}{type(exc).__name__}: {exc}" if frame else f"{type(exc).__name__}: {exc}"
    frame = _template_frame(exc)
    text = " ".join(str(exc).split())[:300] or type(exc).__name__
    return f"{frame}{type(exc).__name__}: {text}"


def _template_frame(exc: BaseException) -> str:
    """ "file:line: " of the innermost template frame in the traceback, or ""."""
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".jinja"):
            found = f"{filename}:{tb.tb_lineno}: "
        tb = tb.tb_next
    return found


def _one_item(plan: IssuePlan, language: str, section: Section, item: PlanItem) -> IssuePlan:
    variant = plan.variant(language)
    alone = replace(variant, sections=(replace(section, items=(item,), rest=(), more=0),))
    return replace(plan, variants=tuple(alone if v is variant else v for v in plan.variants))


def _without(plan: IssuePlan, language: str, keys: set[str]) -> IssuePlan:
    variant = plan.variant(language)
    sections = tuple(
        replace(s, items=tuple(i for i in s.items if i.key not in keys)) for s in variant.sections
    )
    kept = replace(variant, sections=sections)
    return replace(plan, variants=tuple(kept if v is variant else v for v in plan.variants))


def _render_items_alone(
    plan: IssuePlan, language: str, links: Links, env: jinja2.Environment
) -> list[Omitted]:
    """Render every item of the variant on its own (Jinja, MJML, text); return the failures."""
    failed = []
    for section in plan.variant(language).sections:
        for item in section.items:
            single = _one_item(plan, language, section, item)
            try:
                mjml_to_html(render_mjml(single, language, links, env))
                render_text(single, language, links, env)
            except Exception as exc:
                failed.append(Omitted(item.key, item.title, section.name, describe_error(exc)))
    return failed


def check_items(
    plan: IssuePlan, language: str, links: Links, env: jinja2.Environment
) -> list[Omitted]:
    """The items of the variant in `language` that fail to render (none: it renders).

    Quick when all is well: the whole variant through Jinja and MJML (no premailer, which
    knows nothing of items); item by item only when that fails."""
    try:
        mjml_to_html(render_mjml(plan, language, links, env))
        render_text(plan, language, links, env)
    except Exception:
        return _render_items_alone(plan, language, links, env)
    return []


def render_for_inbox(
    plan: IssuePlan,
    language: str,
    links: Links,
    env: jinja2.Environment,
    *,
    limit: int = INBOX_HTML_LIMIT,
) -> RenderedEmail:
    """Render the variant in `language` as `render_email` does, but with fewer items when
    its HTML as sent would be clipped: the lowest-ranked items go first (the last of the
    largest sections; never chosen by size), and their "N more in the archive" link counts
    them (the archive page shows them all). `moved` says how many went.

    An item that fails to render is left out (`RenderedEmail.omitted` says which and why);
    a template that fails with no item at all raises `RenderError`."""
    try:
        return _render_fitted(plan, language, links, env, limit=limit)
    except Exception as first:
        omitted = _render_items_alone(plan, language, links, env)
        if not omitted:
            raise RenderError(
                f"issue #{plan.number} ({language}) does not render: {describe_error(first)}; "
                "fix the template (or remove it from [render] templates_dir)"
            ) from first
        for problem in omitted:
            log.warning(
                "issue %d (%s): left out %r: %s",
                plan.number,
                language,
                problem.title[:80],
                problem.reason,
            )
        reduced = _without(plan, language, {problem.key for problem in omitted})
        try:
            rendered = _render_fitted(reduced, language, links, env, limit=limit)
        except Exception as exc:
            raise RenderError(
                f"issue #{plan.number} ({language}) does not render even without the items "
                f"that fail: {describe_error(exc)}; fix the template"
            ) from exc
        return replace(rendered, omitted=tuple(omitted))


def _render_fitted(
    plan: IssuePlan,
    language: str,
    links: Links,
    env: jinja2.Environment,
    *,
    limit: int,
) -> RenderedEmail:
    """Render with as many items as fit under `limit`: the fewest dropped, found by a
    safeguarded bisection on the number dropped (sizes shrink as items go). A guess
    interpolates from the bytes per item measured so far (usually close at once); a step
    that does not halve the bracket is followed by a plain halving, so a fit costs
    O(log items) renders, at most about 2 log2(items) + 2."""
    rendered = render_email(plan, language, links, env)
    size = sent_size(rendered.html)
    initially = plan.variant(language).item_count
    if size <= limit or initially <= 1:
        return _fitted(plan, language, rendered, size, limit, initially)
    # Dropping `over` items is known too large; dropping `fits` is known (or, at the top,
    # assumed) to fit: the answer is in (over, fits].
    over, over_size, fits = 0, size, initially - 1
    found: tuple[IssuePlan, RenderedEmail, int] | None = None
    per_item = size / (initially + 2)  # first guess: an overestimate of items' share
    interpolate = True
    while fits - over > 1:
        width = fits - over
        if interpolate:
            guess = over + math.ceil((over_size - limit) / per_item)
        else:
            guess = (over + fits) // 2
        guess = min(max(guess, over + 1), fits - 1)
        candidate = _without_last_items(plan, language, guess)
        shown = render_email(candidate, language, links, env)
        measured = sent_size(shown.html)
        per_item = max((over_size - measured) / (guess - over), 1.0)
        if measured <= limit:
            fits, found = guess, (candidate, shown, measured)
        else:
            over, over_size = guess, measured
        interpolate = (fits - over) * 2 <= width  # else halve next: O(log n) renders
    if found is None:  # only `fits` (one item left) is left to try
        candidate = _without_last_items(plan, language, fits)
        shown = render_email(candidate, language, links, env)
        found = (candidate, shown, sent_size(shown.html))
    fitted, rendered, size = found
    return _fitted(fitted, language, rendered, size, limit, initially)


def _fitted(
    plan: IssuePlan,
    language: str,
    rendered: RenderedEmail,
    size: int,
    limit: int,
    initially: int,
) -> RenderedEmail:
    if size > limit:
        log.warning(
            "issue %d (%s) is %d KB as sent even with one item left: Gmail will clip it"
            "; shorten the intro or the templates",
            plan.number,
            rendered.language,
            size // 1024,
        )
    return replace(rendered, moved=initially - plan.variant(language).item_count)


def _without_last_items(plan: IssuePlan, language: str, count: int) -> IssuePlan:
    variant = plan.variant(language)
    sections = list(variant.sections)
    for _ in range(count):
        if sum(len(s.items) for s in sections) <= 1:
            break
        largest = max(range(len(sections)), key=lambda n: len(sections[n].items))
        if len(sections[largest].items) <= 1:
            # One item per section and still too large: the last sections give theirs up
            # (their heading and "N more in the archive" stay), rather than a clipped mail.
            largest = max(n for n, s in enumerate(sections) if s.items)
        sections[largest] = sections[largest].capped(len(sections[largest].items) - 1)
    fitted = replace(variant, sections=tuple(sections))
    return replace(plan, variants=tuple(fitted if v is variant else v for v in plan.variants))
