"""Render what feed readers show: an issue's Atom entry content, and one story's. Pure.

Feed readers show an entry inside their own page, so the content is plain web HTML made
for that (`templates/feed/*.html.jinja`): the issue's intro, sections and items as on the
archive page, and none of the email's chrome: no hidden preheader, no "view in browser",
no subscriber footer, no inline styles (the W3C validator's `DangerousStyleAttr`). Each
entry closes with a line linking the issue's archive page and the sign-up page.
"""

from __future__ import annotations

import jinja2

from digest import layout
from digest.compose import IssuePlan, PlanItem
from digest.render.web import issue_context

ISSUE_ENTRY_TEMPLATE = "feed/issue_entry.html.jinja"
ITEM_ENTRY_TEMPLATE = "feed/item_entry.html.jinja"


def signup_url(base_url: str, language: str) -> str:
    """The sign-up page in `language`."""
    return layout.url(base_url, f"{language}/")


def render_issue_entry(
    plan: IssuePlan, language: str, base_url: str, env: jinja2.Environment
) -> str:
    """Return the HTML content of the Atom entry of `plan` in `language` (every item)."""
    return env.get_template(ISSUE_ENTRY_TEMPLATE).render(
        **issue_context(plan, language, base_url),
        issue_url=layout.url(base_url, layout.issue_page(plan.number, language)),
        signup_url=signup_url(base_url, language),
    )


def render_item_entry(
    plan: IssuePlan, item: PlanItem, language: str, base_url: str, env: jinja2.Environment
) -> str:
    """Return the HTML content of `item`'s entry in the feed of items, in `language`."""
    return env.get_template(ITEM_ENTRY_TEMPLATE).render(
        **issue_context(plan, language, base_url, heading=1),
        item=item,
        issue_number=plan.number,
        issue_url=layout.url(base_url, layout.issue_page(plan.number, language)),
        signup_url=signup_url(base_url, language),
    )
