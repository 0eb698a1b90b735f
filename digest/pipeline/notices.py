"""Telling the editors that a draft waits for their approval.

notify_editors()  mail [web] editors that issue N waits for approval (the scheduler)
render_notice()   the mail itself, in the default language
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.deliver import Sender
from digest.pipeline import environment, preview, utcnow
from digest.pipeline.curation import one_line
from digest.pipeline.dashboard import desk_url, moment_text
from digest.render import RenderedEmail
from digest.render.environment import translation_context
from digest.store import db, issues
from digest.store.models import IssueStatus

NOTICE_TEMPLATE = "web/editor_notice.html.jinja"


@dataclass(frozen=True)
class Notified:
    """What `notify_editors` did."""

    number: int
    told: tuple[str, ...]
    """Editors whose server accepted the mail."""
    failed: tuple[tuple[str, str], ...] = ()
    """(editor, what the transport said) for each refused mail."""
    skipped: str | None = None
    """Why nobody was mailed (no editors, already told, not waiting for approval)."""


def render_notice(
    settings: Settings, *, number: int, subject: str, items: int, slot: datetime
) -> RenderedEmail:
    """Render the "issue N waits for your approval" mail in the default language."""
    language = settings.default_language
    env = environment(settings)
    template = env.get_template(NOTICE_TEMPLATE)
    context: dict[str, Any] = {
        **translation_context(language),
        "language": language,
        "title": settings.publication.title_in(language),
        "number": number,
        "issue_subject": subject,
        "items": items,
        "when": moment_text(slot, language, settings.publication.timezone),
        "url": desk_url(settings.publication.base_url, language, number),
    }
    html = template.render(context, part="html")
    text = template.render(context, part="text")
    mail_subject = template.render(context, part="subject").strip()
    return RenderedEmail(
        language=language,
        subject=one_line(mail_subject),
        preheader="",
        html=html,
        text="\n".join(line.rstrip() for line in text.splitlines()).strip("\n") + "\n",
    )


def notify_editors(
    settings: Settings,
    factory: sessionmaker[Session],
    number: int,
    *,
    now: datetime | None = None,
    sender: Sender | None = None,
    again: bool = False,
) -> Notified:
    """Mail every address in [web] editors that draft `number` waits for their approval,
    with a link to it on the editor's desk; what the scheduler calls after drafting when
    [issue] approval = "editor".

    Editors are told once per issue (the time is kept on the issue) unless `again`; an
    issue that is not a draft tells nobody. Refused mails are reported, not raised, and
    do not count as told (the next call tries them again).
    """
    now = now or utcnow()
    editors = [e.strip() for e in settings.web.editors if e.strip()]
    if not editors:
        return Notified(number, (), skipped="no editors: set [web] editors")
    with factory() as session:
        issue = issues.by_number(session, number)
        raw = issues.raw_curation(issue)
        if issue.status is not IssueStatus.DRAFT:
            return Notified(number, (), skipped=f"issue #{number} is {issue.status.value}")
        if raw.get("notified_at") and not again:
            return Notified(number, (), skipped=f"editors were told at {raw['notified_at']}")
        plan = issues.plan_of(issue)
        slot = issue.slot
    first = preview(settings, factory, number=number, language=settings.default_language)
    rendered = render_notice(
        settings,
        number=number,
        subject=first.subject,
        items=plan.variant(settings.default_language).item_count,
        slot=slot,
    )
    from digest.pipeline.alerts import mail_editors

    mailed = mail_editors(
        settings, rendered, editors, kind=f"approval.{number}", now=now, sender=sender
    )
    told, failed = mailed.told, mailed.failed
    if told:
        with db.transaction(factory) as session:
            issue = issues.by_number(session, number)
            raw = issues.raw_curation(issue)
            raw["notified_at"] = now.isoformat()
            issue.curation = json.dumps(raw, sort_keys=True, ensure_ascii=False)
    return Notified(number, tuple(told), tuple(failed))
