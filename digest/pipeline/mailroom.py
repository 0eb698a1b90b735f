"""The mailroom: one child process of `digest serve` that sends the queued confirmation
mails, so building and sending them (a token, the bytes, DKIM, outbox fsyncs, a
transaction per mail) never competes with the requests for the web process's interpreter.

The web process stores a sign-up (`pipeline.signups`) and, once it is committed, wakes
the child (`Mailroom.wake`: one byte written to a pipe, never blocking, no thread hop; not
a multiprocessing Event, whose shared lock a killed child could leave held). The child
drains the queue (`confirmations.drain`: claims `PER_TRANSACTION` mails in one
transaction, sends them, marks them with the next claims), then waits for the next wake;
it also looks every `POLL` seconds (mails due for a retry, sign-ups stored by another
process), and leaves when the web process is gone.

A child that dies is replaced (a watcher thread of the web process), and the new one
drains at once. A death between the claims and their marks leaves those mails `sending`
until their lease ends (`store.confirmations.CLAIM_LEASE`), then they are sent again: at
most the `PER_TRANSACTION` mails in flight may arrive twice, and none is lost. `stop`
closes the pipe: the child ends after the drain in hand (terminated after `STOP_WAIT`:
the same guarantee).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

import sqlalchemy as sa

from digest.config import Settings
from digest.errors import ConfigError, DigestError

log = logging.getLogger("digest.confirmations")

PER_TRANSACTION = 32
"""Mails claimed (and then marked) in one transaction: a commit each would contend with
the sign-ups' commits for the database (SQLite's one writer)."""
NICENESS = 10
"""Added to the child's nice value: it yields the CPU to the web process's requests."""
POLL = 30.0
"""Seconds between two looks at the queue when no wake comes (the safety net)."""
ORPHAN_CHECK = 2.0
"""Seconds between two checks that the web process still runs."""
RESTART_PAUSE = 1.0
"""Seconds before a dead child is replaced (a child that dies at start does not spin)."""
STOP_WAIT = 30.0
"""Seconds a stopping child gets to finish the mail in hand before it is terminated."""


def _log_settings() -> tuple[str, str]:
    """The web process's log format and level, for the child's own lines."""
    from digest.pipeline.logfmt import JsonFormatter

    root = logging.getLogger()
    json = any(isinstance(handler.formatter, JsonFormatter) for handler in root.handlers)
    level = logging.getLevelName(root.getEffectiveLevel()).lower()
    if level not in {"debug", "info", "warning", "error"}:
        level = "warning"
    return ("json" if json else "text"), level


class Mailroom:
    """Runs and watches the sender child; `wake` it after a sign-up's commit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._pipe: Any = None
        """The write end of the running child's pipe."""
        self._guard = threading.Lock()
        self._closing = False
        self._process: BaseProcess | None = None
        self._watcher: threading.Thread | None = None
        self.started = 0
        """Children started so far (a replaced one counts)."""

    @property
    def pid(self) -> int | None:
        """The running child's process id."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def needed(self) -> bool:
        """Wake the child now (the sign-up is committed) and say no background task is
        needed: the sending happens in the child."""
        self.wake()
        return False

    def wake(self) -> None:
        """Make the child drain the queue (again, if it is draining); never blocks nor
        raises (a full pipe: the child has wakes enough to read)."""
        pipe = self._pipe
        if pipe is None:
            return
        with contextlib.suppress(OSError):  # BlockingIOError too
            os.write(pipe.fileno(), b"w")

    def start(self) -> None:
        """Start the child and its watcher."""
        with self._guard:
            self._closing = False
            self._launch()
        self._watcher = threading.Thread(target=self._watch, name="digest-mailroom", daemon=True)
        self._watcher.start()

    def _launch(self) -> None:
        """Start a child (with the guard held); it drains at once."""
        log_format, level = _log_settings()
        if self._pipe is not None:
            self._pipe.close()
        reading, writing = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=run,
            args=(self.settings, reading, os.getpid(), log_format, level),
            name="digest-mailroom",
            daemon=True,
        )
        process.start()
        reading.close()  # the child's end: its death or ours closes the pipe for good
        os.set_blocking(writing.fileno(), False)
        self._pipe = writing
        self._process = process
        self.started += 1

    def _watch(self) -> None:
        while True:
            process = self._process
            if process is None:
                return
            process.join()
            with self._guard:
                if self._closing:
                    return
            log.error(
                "the confirmation sender (pid %s) stopped (exit %s); starting another",
                process.pid,
                process.exitcode,
            )
            time.sleep(RESTART_PAUSE)
            with self._guard:
                if self._closing:
                    return
                self._launch()

    def stop(self, timeout: float = STOP_WAIT) -> None:
        """Stop the child (it finishes the mail in hand) and its watcher.

        Only the watcher joins the child: two threads joining one process race for its
        exit status (the loser saw it alive after its death, warned, and signalled a pid
        that was no longer its child)."""
        with self._guard:
            self._closing = True
            process = self._process
            pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.close()  # the child reads the end of the pipe and leaves
        watcher, self._watcher = self._watcher, None
        if watcher is None:
            return
        watcher.join(timeout)  # it returns once the child is gone
        if watcher.is_alive() and process is not None:
            log.warning("the confirmation sender did not stop in %.0f s: terminated", timeout)
            process.terminate()
            watcher.join(5)


def run(
    settings: Settings,
    wakes: Any,
    parent: int,
    log_format: str = "text",
    level: str = "info",
) -> None:
    """The child's loop: drain at once, then when woken (a byte on `wakes`, the read end
    of a multiprocessing pipe) or every `POLL` seconds, until the pipe is closed (the web
    process stopped it, or died)."""
    from digest.pipeline import logfmt, open_database
    from digest.pipeline.confirmations import Mailer, drain

    logfmt.configure(log_format, level)
    with contextlib.suppress(OSError):
        # The answers first: on a busy machine the mails wait a little, the pages not.
        os.nice(NICENESS)
    factory = open_database(settings)
    fd = wakes.fileno()
    os.set_blocking(fd, False)
    mailer: Mailer | None = None
    last = 0.0
    woken = True  # a new child drains at once (a dead one's queue)
    try:
        while os.getppid() == parent:
            if not woken and time.monotonic() - last < POLL:
                if wakes.poll(ORPHAN_CHECK):
                    woken = True
                continue
            if not _read_wakes(fd):
                return  # the pipe is closed: stop
            woken = False  # a wake during the drain makes the next round look again
            last = time.monotonic()
            try:
                if mailer is None:
                    mailer = Mailer(settings)
                drained = drain(settings, factory, mailer=mailer, per_transaction=PER_TRANSACTION)
            except (ConfigError, DigestError, OSError, sa.exc.SQLAlchemyError) as exc:
                log.error("confirmation mails wait in the queue: %s", exc)
                continue
            finally:
                if mailer is not None:
                    mailer.close()  # the SMTP connection; the templates stay
            if drained.sent:
                log.info("sent %d confirmation mail(s)", len(drained.sent))
    finally:
        factory.kw["bind"].dispose()


def _read_wakes(fd: int) -> bool:
    """Read every waiting wake; False when the pipe's write end is closed."""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return True
        if not chunk:
            return False
