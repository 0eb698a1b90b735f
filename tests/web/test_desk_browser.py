"""The desk's script in a real headless Chromium against a real `digest serve`: an item
dragged to another place and the ↑/↓ buttons pressed from the keyboard change the order in
the database without reloading the page (a marker set on `window` survives), the change is
said in the live region and the focus stays on the control; no console error, no request
leaves 127.0.0.1. Without the script, tests/web/test_browser.py walks the same desk.

Needs Debian's `/usr/bin/chromium` and the `playwright` package (as test_browser.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from digest.pipeline import editorial
from digest.store import issues
from tests.web.conftest import PASSWORD
from tests.web.test_browser import Served, browser, served  # noqa: F401 - the fixtures

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Predicates are functions: a string expression would need eval, which the desk's CSP forbids.
ENHANCED = "() => document.documentElement.classList.contains('desk-enhanced')"


def section_keys(factory: sessionmaker[Session], number: int, section: str) -> list[str]:
    """The keys of `section`, in the order the issue now has them (what the page lists)."""
    with factory() as session:
        issue = issues.by_number(session, number)
        listed = editorial.listed(issues.plan_of(issue), issues.curation_of(issue))
    return [item.key for item in listed if item.section == section]


def page_keys(page: Page, table: int) -> list[str]:
    keys: list[str] = (
        page.locator("table.items")
        .nth(table)
        .locator("tr[id^='item-'] input[name='item']")
        .evaluate_all("fields => fields.map(f => f.value)")
    )
    return keys


def test_the_desk_with_its_script_reorders_without_a_reload(
    browser: Browser,  # noqa: F811 - the fixture imported above
    served: Served,  # noqa: F811
    factory: sessionmaker[Session],
) -> None:
    context = browser.new_context(locale="en-GB")
    desk = context.new_page()
    desk.set_default_timeout(20_000)
    requests: list[str] = []
    problems: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    desk.on(
        "console",
        lambda m: problems.append(f"{m.text} {m.location}") if m.type == "error" else None,
    )
    desk.on("pageerror", lambda error: problems.append(str(error)))
    context.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )

    desk.goto(served.url + "/admin")
    desk.get_by_label("Password").fill(PASSWORD)
    desk.get_by_role("button", name="Log in").click()
    desk.get_by_role("link", name=re.compile(r"^Issue \d+$")).first.click()
    number = int(desk.url.split("/issues/")[1].split("?")[0])
    desk.wait_for_function(ENHANCED)
    desk.evaluate("window.deskMarker = 'no reload'")

    # The first section with three items or more.
    tables = desk.locator("table.items")
    table = next(i for i in range(tables.count()) if len(page_keys(desk, i)) >= 3)
    section = _section_of(factory, number, page_keys(desk, table)[0])
    before = page_keys(desk, table)
    assert section_keys(factory, number, section) == before

    # Drag the third item onto the upper half of the first: it becomes the first. (A window
    # tall enough for both: Chromium starts a drag where the mouse went down, in the window,
    # so the page must not scroll between the two.)
    desk.set_viewport_size({"width": 1280, "height": 2400})
    rows = tables.nth(table).locator("tr[id^='item-']")
    last = before[2]
    rows.nth(2).locator(".handle").drag_to(rows.first, target_position={"x": 40, "y": 4})
    desk.wait_for_function(
        "([t, key]) => document.querySelectorAll('table.items')[t]"
        ".querySelector(\"tr[id^='item-'] input[name='item']\").value === key"
        " && !document.getElementById('issue-work').hasAttribute('aria-busy')",
        arg=[table, last],
    )
    after = [last, before[0], before[1], *before[3:]]
    assert page_keys(desk, table) == after
    assert section_keys(factory, number, section) == after
    assert desk.evaluate("window.deskMarker") == "no reload"
    desk.wait_for_function(
        "() => document.getElementById('desk-live').textContent.includes('Saved')"
    )

    # The ↓ button of the (new) first item, from the keyboard: no reload, focus kept.
    first_row = desk.locator("table.items").nth(table).locator("tr[id^='item-']").first
    first_row.locator("button[name='down']").focus()
    desk.keyboard.press("Enter")
    desk.wait_for_function(
        "([t, key]) => document.querySelectorAll('table.items')[t]"
        ".querySelectorAll(\"tr[id^='item-'] input[name='item']\")[1].value === key"
        " && !document.getElementById('issue-work').hasAttribute('aria-busy')",
        arg=[table, last],
    )
    assert section_keys(factory, number, section)[:2] == [after[1], last]
    focused: Any = desk.evaluate("[document.activeElement.name, document.activeElement.value]")
    assert focused == ["down", last]
    assert desk.evaluate("window.deskMarker") == "no reload"

    # Undo, through the script too: the drag's order is back.
    desk.get_by_role("button", name="Undo the last change").click()
    desk.wait_for_function(
        "() => document.getElementById('desk-live').textContent.includes('undone')"
    )
    assert section_keys(factory, number, section) == after
    assert desk.evaluate("window.deskMarker") == "no reload"

    assert problems == []
    outside = [u for u in requests if not u.startswith(("http://127.0.0.1", "about:", "data:"))]
    assert outside == []
    scripts = [u for u in requests if u.endswith(".js")]
    assert scripts and all(re.search(r"/static/desk\.[0-9a-f]{16}\.js$", u) for u in scripts)


def _section_of(factory: sessionmaker[Session], number: int, key: str) -> str:
    with factory() as session:
        issue = issues.by_number(session, number)
        listed = editorial.listed(issues.plan_of(issue), issues.curation_of(issue))
    return next(item.section for item in listed if item.key == key)
