"""The editor's desk, by noun (this module keeps the older imports working):

dashboard    desk(): next slots, issues and their deliveries, subscribers, source health
issue_view   issue_desk(): one issue as the editor works on it, per language
curation     curate(): store the editor's pins, drops, order, words; re-draft
notices      notify_editors(): mail [web] editors that issue N waits for approval
"""

from __future__ import annotations

from digest.pipeline.curation import (
    CURATION_KEYS,
    EXCERPT_MAX,
    INTRO_MAX,
    NOTE_MAX,
    SUBJECT_MAX,
    TITLE_MAX,
    Changes,
    DeskError,
    curate,
    section_names,
    slot_now,
)
from digest.pipeline.dashboard import (
    RECENT_ISSUES,
    Desk,
    IssueRow,
    NextSlot,
    SourceRow,
    desk,
    desk_url,
    moment_text,
)
from digest.pipeline.issue_view import DeskItem, IssueDesk, issue_desk, listed
from digest.pipeline.notices import NOTICE_TEMPLATE, Notified, notify_editors, render_notice

__all__ = [
    "CURATION_KEYS",
    "EXCERPT_MAX",
    "INTRO_MAX",
    "NOTE_MAX",
    "NOTICE_TEMPLATE",
    "RECENT_ISSUES",
    "SUBJECT_MAX",
    "TITLE_MAX",
    "Changes",
    "Desk",
    "DeskError",
    "DeskItem",
    "IssueDesk",
    "IssueRow",
    "NextSlot",
    "Notified",
    "SourceRow",
    "curate",
    "desk",
    "desk_url",
    "issue_desk",
    "listed",
    "moment_text",
    "notify_editors",
    "render_notice",
    "section_names",
    "slot_now",
]
