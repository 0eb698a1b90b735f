"""End to end in a real headless Chromium against a real `digest serve` and a real SMTP server.

A reader signs up on the home page, the confirmation mail arrives, they confirm and change
their preferences; an editor logs in, curates the draft, approves it, `digest send` sends
it, the issue arrives, and the reader leaves with the one-click POST its List-Unsubscribe
header names (RFC 8058). Screenshots of every main page at 375 and 1280 px go to
`DIGEST_SCREENSHOT_DIR` when set (else a temporary folder), for a person to look at.

Needs Debian's `/usr/bin/chromium` and the `playwright` package (no `playwright install`).
Without Chromium the test skips, unless `CI` or `DIGEST_REQUIRE_BROWSER` is set.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from subscribers.model import Subscriber, SubscriberStatus
from tests.render.test_browser import ARGS, CHROMIUM, LOW_CONTRAST
from tests.smtpserver import SmtpServer
from tests.web.conftest import EDITOR, PASSWORD, WEB

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
WIDTHS = (375, 1280)
READER = "reader@example.net"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    required = bool(os.environ.get("CI") or os.environ.get("DIGEST_REQUIRE_BROWSER"))
    if not CHROMIUM.exists() and not required:
        pytest.skip(
            f"{CHROMIUM} is missing (apt-get install chromium); "
            "set DIGEST_REQUIRE_BROWSER=1 to make this a failure"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("DIGEST_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("web-shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Served:
    """A `digest serve` subprocess on a free port, with its settings and its log."""

    def __init__(self, settings: config.Settings, config_path: Path, log: Path) -> None:
        self.settings = settings
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.config_path = config_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "digest", "--config", str(self.config_path), "serve",
                 "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"digest serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"digest serve did not answer:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def served(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> Iterator[Served]:
    """The example publication, collected and drafted for today's slot, served."""
    from examples.run import materialize

    today = datetime.now(UTC).date()
    materialize(tmp_path, today)
    text = (tmp_path / "digest.toml").read_text(encoding="utf-8")
    port = _free_port()
    extra = (
        f'[publication]\nbase_url = "http://127.0.0.1:{port}"\n'
        f'[delivery]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_server.port}\n'
        '[issue]\napproval = "editor"\n'
    )
    settings = make_settings(WEB + extra + text[text.index("[[sources]]") :])
    server = Served(settings, settings.path, tmp_path / "serve.log")
    server.port, server.url = port, f"http://127.0.0.1:{port}"
    # Through the command line, as an operator would (and because Playwright's loop is
    # running in this thread, where the pipeline's asyncio.run may not start another).
    for command in (["collect", "--all"], ["draft"]):
        done = digest(settings.path, *command)
        assert done.returncode == 0, done.stdout + done.stderr
    server.start()
    try:
        yield server
    finally:
        server.stop()


def digest(config_path: Path | None, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the `digest` command line on the test's configuration."""
    return subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config_path), *arguments],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def _overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    width: int = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return width


def look(page: Page, shots: Path, name: str) -> None:
    """Screenshot the page at each width; nothing may overflow sideways or lack contrast
    (light and dark)."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
        assert _overflow(page) <= 0, f"{name} overflows at {width} px"
    for scheme in ("dark", "light"):
        page.emulate_media(color_scheme=scheme)
        assert page.evaluate(LOW_CONTRAST) == [], f"{name} ({scheme})"
    page.set_viewport_size({"width": 1280, "height": 900})


def wait_for_mail(server: SmtpServer, recipient: str, count: int = 1) -> list[EmailMessage]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [m for m in server.messages if recipient in m.rcpt_tos]
        if len(found) >= count:
            parsed = []
            for message in found:
                item = email.message_from_bytes(message.data, policy=email.policy.default)
                assert isinstance(item, EmailMessage)
                parsed.append(item)
            return parsed
        time.sleep(0.1)
    raise AssertionError(f"no mail for {recipient} after 30 s")


def text_part(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    content: str = body.get_content()  # type: ignore[attr-defined]
    return content


def reader(factory: sessionmaker[Session]) -> Subscriber:
    with factory() as session:
        return session.scalars(sa.select(Subscriber).where(Subscriber.email == READER)).one()


def test_a_reader_and_an_editor_in_a_real_browser(
    browser: Browser,
    served: Served,
    smtp_server: SmtpServer,
    factory: sessionmaker[Session],
    shots: Path,
) -> None:
    context = browser.new_context(
        locale="nl-BE", extra_http_headers={"Accept-Language": "nl-BE,nl"}
    )
    page = context.new_page()
    page.set_default_timeout(20_000)

    # --- the reader signs up -------------------------------------------------------------
    page.goto(served.url + "/")
    assert page.url == f"{served.url}/nl/"
    assert page.evaluate("document.documentElement.lang") == "nl"
    feeds = page.locator('link[rel="alternate"][type="application/atom+xml"]')
    assert feeds.count() == 3
    look(page, shots, "home-nl")
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": 375, "height": 900})
    page.screenshot(path=str(shots / "home-nl-dark-375.png"), full_page=True)
    page.emulate_media(color_scheme="light")
    page.get_by_role("link", name="English").click()
    assert page.url == f"{served.url}/en/"
    look(page, shots, "home-en")
    page.get_by_label("Email address").fill(READER)
    page.get_by_label("Name").fill("Rita Reader")
    page.get_by_label("Language of the digest").select_option("fr")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(f"{served.url}/en/subscribe")
    assert page.get_by_role("heading", level=1).inner_text() == "Check your inbox"
    look(page, shots, "check-inbox")

    [confirmation] = wait_for_mail(smtp_server, READER)
    assert confirmation["Content-Language"] == "fr"
    link = re.search(r"http://127\.0\.0\.1:\d+/fr/confirm/\S+", text_part(confirmation))
    assert link is not None
    page.goto(link.group(0))
    assert reader(factory).status is SubscriberStatus.PENDING  # the GET changed nothing
    look(page, shots, "confirm")
    page.get_by_role("button", name="Confirmer mon abonnement").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Votre abonnement est confirmé"
    assert reader(factory).status is SubscriberStatus.CONFIRMED
    look(page, shots, "confirmed")

    # --- and changes their preferences ----------------------------------------------------
    page.get_by_role("link", name="Gérer vos préférences").click()
    assert "/fr/preferences/" in page.url
    look(page, shots, "preferences")
    page.get_by_label("Nom").fill("Rita R.")
    page.get_by_label("Tous les jours").check()
    page.get_by_role("button", name="Enregistrer").click()
    assert page.get_by_role("status").inner_text().strip() == "Vos préférences sont enregistrées."
    assert reader(factory).cadence.value == "daily"
    page.get_by_label("Chaque semaine").check()  # the weekly issue is the one sent below
    page.get_by_label("Pause : ne plus rien m’envoyer pour l’instant").check()
    page.get_by_role("button", name="Enregistrer").click()
    assert reader(factory).paused
    page.get_by_label("Pause : ne plus rien m’envoyer pour l’instant").uncheck()
    page.get_by_role("button", name="Enregistrer").click()
    person = reader(factory)
    assert (person.name, person.language, person.cadence.value, person.paused) == (
        "Rita R.",
        "fr",
        "weekly",
        False,
    )
    look(page, shots, "preferences-saved")

    # --- the editor curates and approves --------------------------------------------------
    desk = browser.new_context(locale="en-GB").new_page()
    desk.set_default_timeout(20_000)
    desk.goto(served.url + "/admin")
    assert desk.url.startswith(f"{served.url}/en/admin/login")
    look(desk, shots, "admin-login")
    desk.get_by_label("Password").fill(PASSWORD)
    desk.get_by_role("button", name="Log in").click()
    assert desk.url == f"{served.url}/en/admin/"
    look(desk, shots, "admin-dashboard")
    desk.get_by_role("link", name=re.compile(r"^Issue \d+$")).first.click()
    assert "/en/admin/issues/" in desk.url
    frame = desk.frame_locator("iframe.preview")
    assert frame.locator("h1").first.is_visible()  # the srcdoc preview renders under the CSP
    look(desk, shots, "admin-issue")
    desk.get_by_role("navigation", name="Preview in").get_by_role("link", name="français").click()
    desk.get_by_label("Subject in French").fill("Les villes et la migration cette semaine")
    desk.get_by_label("Intro in French").fill("Bonjour ! Voici notre sélection.")
    first_drop = desk.locator('input[name="drop"]').first
    dropped_title = first_drop.get_attribute("aria-label") or ""
    first_drop.check()
    desk.get_by_role("button", name="Save and compose again").click()
    assert "composed again" in desk.get_by_role("status").inner_text()
    assert frame.get_by_text("Bonjour ! Voici notre sélection.").is_visible()
    assert "Les villes et la migration cette semaine" in desk.locator("main").inner_text()
    desk.get_by_role("button", name="Approve for sending").click()
    assert "Approved" in desk.get_by_role("status").inner_text()
    look(desk, shots, "admin-approved")

    # --- `digest send` sends it, and it arrives ------------------------------------------
    sent = digest(served.config_path, "send")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    issue = wait_for_mail(smtp_server, READER, count=2)[1]
    assert issue["Subject"] == "Les villes et la migration cette semaine"
    assert issue["Content-Language"] == "fr" and "Rita R." in issue["To"]
    assert "Bonjour ! Voici notre sélection." in text_part(issue)
    assert dropped_title.removeprefix("Drop: ") not in text_part(issue)

    # --- one click, no cookie, and they are gone ------------------------------------------
    header = issue["List-Unsubscribe"]
    url = re.search(r"<(http[^>]+/unsubscribe/[^>]+)>", header)
    assert url is not None and issue["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    page.goto(url.group(1))
    look(page, shots, "unsubscribe")
    assert reader(factory).status is SubscriberStatus.CONFIRMED  # showing it changed nothing
    answer = httpx.post(
        url.group(1), files={"List-Unsubscribe": (None, "One-Click")}, follow_redirects=False
    )
    assert answer.status_code == 200 and "set-cookie" not in answer.headers
    assert reader(factory).status is SubscriberStatus.UNSUBSCRIBED
    page.reload()
    page.get_by_role("button", name="Se désabonner").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Vous êtes désabonné"
    look(page, shots, "unsubscribed")

    # --- nothing personal reached the server's log ----------------------------------------
    served.stop()
    logged = served.log.read_text(encoding="utf-8", errors="replace")
    assert "/fr/unsubscribe/<token>" in logged
    token = url.group(1).rsplit("/", 1)[1]
    for secret in (token, link.group(0).rsplit("/", 1)[1], READER, PASSWORD):
        assert secret not in logged


ARTICLE = """<!doctype html><html lang="en"><head><title>Ghent opens a welcome desk</title></head>
<body><nav><a href="/">Home</a></nav><main><article><h1>Ghent opens a welcome desk</h1>
<p>The city of Ghent opens a welcome desk for newcomers, with language classes and one
counter for every administrative step.</p><p>It is open on weekdays.</p></article></main>
<footer>Legal notice</footer></body></html>"""


def test_the_editors_weekly_job_in_a_real_browser(
    browser: Browser,
    served: Served,
    smtp_server: SmtpServer,
    http_server: Any,
    shots: Path,
) -> None:
    """Sign in → curate → edit an item → add one by URL → preview each channel → test
    send → approve; no request leaves 127.0.0.1 and no console error appears. Without
    JavaScript: every step is a form that posts and a page that answers (the desk's script
    is tested in tests/web/test_desk_browser.py)."""
    http_server.route("/welcome", body=ARTICLE.encode(), headers={"Content-Type": "text/html"})
    context = browser.new_context(locale="en-GB", java_script_enabled=False)
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
    issue_url = desk.url

    # Curate: move the second item up, with the keyboard.
    rows = desk.locator("tr[id^='item-']")
    second = rows.nth(1).get_attribute("id")
    desk.locator(f"tr[id='{second}'] button[name='up']").focus()
    with desk.expect_navigation():
        desk.keyboard.press("Enter")
    assert desk.locator("tr[id^='item-']").first.get_attribute("id") == second
    assert "order changed" in desk.locator("main").inner_text()

    # Edit an item: a French title and an editor's note.
    desk.get_by_role("navigation", name="Preview in").get_by_role("link", name="français").click()
    desk.locator("tr[id^='item-']:has(strong[lang='fr']) .actions a").first.click()
    assert desk.get_by_role("heading", level=1).inner_text() == "Edit an item"
    look(desk, shots, "admin-item")
    desk.get_by_label("Title").fill("Une semaine chargée pour les villes")
    desk.get_by_label("Editor's note").fill("À lire avant la réunion de jeudi.")
    desk.get_by_role("button", name="Save and compose again").click()
    frame = desk.frame_locator("iframe.preview")
    frame.get_by_text("Une semaine chargée pour les villes").first.wait_for()
    frame.get_by_text("À lire avant la réunion de jeudi.").wait_for()

    # Add an item by URL, from the local HTTP server.
    desk.get_by_role("link", name="Add an item (by web address or by hand)").click()
    look(desk, shots, "admin-add")
    desk.get_by_label("Web address").fill(http_server.url("/welcome"))
    desk.get_by_label("Language of the item").select_option("en")
    desk.get_by_role("button", name="Add and compose again").click()
    assert "The item was added" in desk.get_by_role("status").inner_text()
    desk.goto(issue_url + "?variant=en")
    frame.locator("h3", has_text="Ghent opens a welcome desk").wait_for()
    look(desk, shots, "admin-issue-edited")

    # Preview each channel full screen, at a phone's width too.
    desk.get_by_role("link", name="Full-screen preview (every language and topic)").click()
    for channel in ("Email", "Text part", "Archive page", "Feed entry"):
        desk.get_by_role("navigation", name="Channel").get_by_role("link", name=channel).click()
        assert desk.get_by_role("heading", level=1).inner_text().endswith(f"{channel}, English")
        if channel != "Text part":
            desk.frame_locator("iframe.full").locator("body").first.wait_for()
    desk.get_by_role("navigation", name="Width").get_by_role("link", name="Phone (375 px)").click()
    box = desk.locator("iframe.full").bounding_box()
    assert box is not None and 370 <= box["width"] <= 380
    look(desk, shots, "admin-preview")

    # A test copy to the editor, through the real SMTP server; then approve.
    desk.goto(issue_url + "?variant=en")
    desk.get_by_role("button", name="Send a test in English").click()
    assert "A test copy went to" in desk.get_by_role("status").inner_text()
    [test] = wait_for_mail(smtp_server, EDITOR)
    assert test["Subject"].startswith("[TEST]")
    assert "Ghent opens a welcome desk" in text_part(test)
    desk.get_by_role("button", name="Approve for sending").click()
    assert "Approved" in desk.get_by_role("status").inner_text()

    # The desk's other pages work, and fit a phone.
    desk.get_by_role("link", name="Sources").click()
    look(desk, shots, "admin-sources")
    desk.get_by_role("link", name="Subscribers").click()
    look(desk, shots, "admin-subscribers")

    assert problems == []
    outside = [u for u in requests if not u.startswith(("http://127.0.0.1", "about:", "data:"))]
    assert outside == []
