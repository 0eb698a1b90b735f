"""`digest serve`'s app sends the confirmation mails from its mailroom child process, which
is replaced when it dies; the queue still drains, each mail once."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.pipeline import confirmations
from digest.pipeline.mailroom import Mailroom
from digest.store.confirmations import ConfirmationState
from digest.web import create_app
from tests.web.conftest import client_for, outbox
from tests.web.test_signup_queue import rows

SENT = ConfirmationState.SENT


def wait_until(check: Callable[[], bool], what: str, seconds: float = 120.0) -> None:
    """Poll `check` until it holds (a generous deadline: the machine may be loaded)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.05)


def signup(address: str) -> dict[str, str]:
    return {"email": address, "name": "", "language": "en", "cadence": "weekly"}


def test_the_child_sends_the_mails_and_a_killed_child_is_replaced(
    web_settings: config.Settings,
    factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_here(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a drain ran in the web process")

    # Patched in this process only: the (spawned) child imports its own.
    monkeypatch.setattr(confirmations, "drain", not_here)
    app = create_app(web_settings, factory=factory, mailroom=True)
    room = app.state.site.mailer
    assert isinstance(room, Mailroom)
    with client_for(app) as client:
        first = room.pid
        assert first is not None and first != os.getpid()
        assert client.post("/en/subscribe", data=signup("ana@example.net")).status_code == 200
        wait_until(
            lambda: rows(factory) == [("ana@example.net", SENT, 1)], "the child sent Ana's mail"
        )

        os.kill(first, signal.SIGKILL)
        wait_until(lambda: room.pid not in (None, first), "another child started")
        assert room.started == 2
        assert client.post("/en/subscribe", data=signup("bob@example.net")).status_code == 200
        wait_until(
            lambda: rows(factory) == [("ana@example.net", SENT, 1), ("bob@example.net", SENT, 1)],
            "the new child sent Bob's mail",
        )
    assert room.pid is None  # stopped with the app
    assert sorted(str(mail["To"]) for mail in outbox(web_settings)) == [
        "ana@example.net",
        "bob@example.net",
    ]


def test_the_child_drains_what_was_queued_before_it_started(
    web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    from digest.pipeline import people
    from subscribers.model import ConsentSource

    # Queued by a server that stopped before sending.
    people.add_subscriber(
        web_settings, factory, "ana@example.net", source=ConsentSource.FORM, send_now=False
    )
    app = create_app(web_settings, factory=factory, mailroom=True)
    with client_for(app):
        wait_until(lambda: rows(factory) == [("ana@example.net", SENT, 1)], "the mail was sent")
    assert len(outbox(web_settings)) == 1


def test_stopping_waits_for_the_child_and_never_signals_it_after_its_end(
    web_settings: config.Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child leaves when its pipe closes; `stop` then returns without a warning, and
    never sends a signal (its pid may already be another process's)."""
    signalled: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: signalled.append(pid))
    for _ in range(3):
        room = Mailroom(web_settings)
        room.start()
        child = room._process
        assert child is not None
        assert room.pid is not None
        room.stop()
        assert child.exitcode == 0
        assert room.pid is None
    assert "did not stop" not in caplog.text
    assert signalled == []
