"""Run parsers in other processes with a hard time and memory bound: `ParserPool` (long-lived
workers, what collecting uses) and `run_bounded` (a fresh child per call).

Parsing hostile bytes can take minutes (feedparser's quadratic author regex, feedparser
issue #562) or eat memory. A thread cannot be stopped; a process can. Each call forks a
fresh child from multiprocessing's fork server, which has the parsers imported already:
a call costs about 20-30 ms more than parsing in-process (measured from the `digest`
command; the first call also starts the fork server, about 1 s). The fork server is used
rather than a plain fork because the parent runs threads and an asyncio loop, and forking
those is unsafe. Calls may come from several threads at once.

`ParserPool` keeps a few workers (forked from the same fork server) for a whole collect and
sends them document after document, with the same bounds: a worker that overruns its
time limit is killed and replaced, so no document pays for a process of its own.

Linux only: the memory cap is `RLIMIT_AS`, which macOS does not enforce.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import resource
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, TypeVar, cast

from digest.errors import DigestError, ParseError, ParseTimeout

T = TypeVar("T")

MAX_MEMORY = 1 << 30
"""Address space a parser child may use (1 GiB): far above any sane feed, well below the host."""

PRELOAD = ("digest.cli", "digest.collect.feeds", "digest.collect.pages", "digest.collect.calendars")
"""Modules the fork server imports once, if the parent has them loaded by the first call, so
that children start with them (and feedparser, nh3, icalendar) in memory.

Every child also re-runs the main script, and the `digest` console script imports
`digest.cli` (0.9 s of imports): multiprocessing's own "__main__" preload never takes effect
on Python 3.11 (it looks for a `main_path` key that `get_preparation_data` calls
`init_main_from_path`), so the script's import is preloaded here instead. Only modules the
parent already imported are preloaded: one that fails to import could stop the fork server.
"""

_KILL_GRACE = 5.0
"""Seconds to wait for a killed or finished child to be reaped."""

_context = multiprocessing.get_context("forkserver")
_preload_lock = threading.Lock()
_preloaded = False


def run_bounded(
    fn: Callable[..., T], *args: Any, timeout: float, what: str, max_memory: int = MAX_MEMORY
) -> T:
    """Return `fn(*args)` computed in a child process, stopped after `timeout` seconds.

    `fn` must be a top-level function (or a `functools.partial` of one, for keyword
    arguments) and its arguments and result picklable (our frozen dataclasses are). The
    time counts from the child's start. A DigestError raised in the child (ParseError, …)
    is raised here with the same class and message; `what` (the source URL) names the
    document in the errors raised here:

    - ParseTimeout when the child ran past `timeout` (it is killed),
    - ParseError when it needed more than `max_memory` bytes, died, or failed unexpectedly.
    """
    _ensure_preload()
    receiver, sender = _context.Pipe(duplex=False)
    child = _context.Process(
        target=_child_main,
        args=(sender, fn, args, max_memory),
        name=f"digest-parse {what}"[:100],
        daemon=True,
    )
    try:
        child.start()
    finally:
        # Our copy of the write end must go, or a child that dies never reads as EOF.
        sender.close()
    try:
        if not receiver.poll(timeout):
            child.kill()
            raise ParseTimeout(
                f"{what}: parsing took longer than {timeout:g}s and was stopped; the document"
                " is pathological or hostile (e.g. a huge author field, feedparser issue"
                " #562). Open it in a browser; if it is just very large, raise"
                " [collect] timeout_seconds, otherwise pause or remove the source"
            )
        try:
            outcome, payload = receiver.recv()
        except EOFError:
            child.join(_KILL_GRACE)
            raise ParseError(
                f"{what}: the parser process died (exit code {child.exitcode}) before it"
                " answered; the document may be hostile. Open it in a browser, and report"
                " it if it looks like a normal feed"
            ) from None
    finally:
        receiver.close()
        _reap(child)
    return cast(T, _unwrap(outcome, payload, what, max_memory))


def _reap(child: Any) -> None:
    """Wait for `child` to exit (killing it if it lingers) and release its resources."""
    if child.pid is None:  # never started
        return
    child.join(_KILL_GRACE)
    if child.exitcode is None:
        child.kill()
        child.join(_KILL_GRACE)
    if child.exitcode is not None:
        child.close()


def _unwrap(outcome: str, payload: Any, what: str, max_memory: int) -> Any:
    """Return the child's value, or raise the error its outcome describes."""
    if outcome == "ok":
        return payload
    if outcome == "raise":
        raise payload
    if outcome == "memory":
        raise ParseError(
            f"{what}: parsing needed more than {max_memory / (1 << 30):g} GiB of memory and"
            " was stopped; the document is pathological or hostile. Open it in a browser,"
            " and pause or remove the source if it stays this way"
        )
    summary, child_traceback = payload
    error = ParseError(
        f"{what}: the parser failed unexpectedly ({summary}); this is a bug in digest or"
        " its parser library: please report it with the source's URL"
    )
    error.add_note(f"in the parser process:\n{child_traceback}")
    raise error


def _ensure_preload(extra: Sequence[str] = ()) -> None:
    """Tell the fork server what to import, once, before it starts: the `PRELOAD` modules
    the parent has loaded, and `extra` (our own parser modules, which a `ParserPool` needs
    in every worker whether or not the parent imported them)."""
    global _preloaded
    with _preload_lock:
        if not _preloaded:
            loaded = [name for name in PRELOAD if name in sys.modules]
            wanted = [name for name in extra if name not in loaded]
            _context.set_forkserver_preload(["__main__", *loaded, *wanted])
            _preloaded = True


def _child_main(
    sender: Connection, fn: Callable[..., Any], args: tuple[Any, ...], max_memory: int
) -> None:
    """Run `fn(*args)` in the child and send ("ok" | "raise" | "memory" | "bug", payload)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = max_memory if hard == resource.RLIM_INFINITY else min(max_memory, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    message = _answer(fn, args)
    try:
        sender.send(message)
    except MemoryError:
        sender.send(("memory", None))
    except Exception as exc:  # e.g. a result that cannot be pickled
        sender.send(("bug", (f"cannot send the result: {type(exc).__name__}: {exc}", "")))
    finally:
        sender.close()


def _answer(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
    """("ok" | "raise" | "memory" | "bug", payload): what `fn(*args)` gave, to send back."""
    try:
        return ("ok", fn(*args))
    except MemoryError:
        return ("memory", None)
    except DigestError as exc:
        return ("raise", exc if _round_trips(exc) else ParseError(str(exc)))
    except BaseException as exc:  # anything else is a bug, reported to the parent
        return ("bug", (f"{type(exc).__name__}: {exc}", traceback.format_exc()))


def _round_trips(exc: BaseException) -> bool:
    """Whether `exc` survives pickling (an exception with a custom __init__ may not)."""
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes, in our own process
    except Exception:
        return False
    return True


class ParserPool:
    """Long-lived parser processes with the same bounds as `run_bounded`, without a fork
    per document.

    `size` workers are started from the fork server when first needed and each parses one
    document at a time. A document that runs past its time limit gets its worker killed
    (and a fresh one started on the next call); one that needs more than `max_memory`
    retires its worker after answering, as does a worker that has parsed `max_tasks`
    documents (so fragmentation and leaks in the parser libraries cannot grow it forever).
    `run` blocks its caller (call it from a thread) and is safe from several threads.
    """

    def __init__(
        self,
        size: int,
        *,
        max_memory: int = MAX_MEMORY,
        max_tasks: int = 500,
        preload: Sequence[str] = (),
    ) -> None:
        self.size = max(1, size)
        self.preload = tuple(preload)
        self.max_memory = max_memory
        self.max_tasks = max_tasks
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(self.size):
            self._idle.put(None)  # a slot; its worker starts on first use
        self._closed = False

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, fn: Callable[..., T], *args: Any, timeout: float, what: str) -> T:
        """Return `fn(*args)` computed by a worker, as `run_bounded` does (same errors)."""
        if self._closed:
            raise RuntimeError("the parser pool is closed")
        worker = self._idle.get()
        try:
            if worker is None:
                _ensure_preload(self.preload)
                worker = _Worker(self.max_memory)
            outcome, payload = worker.call(fn, args, timeout=timeout, what=what)
            if outcome == "memory" or worker.tasks >= self.max_tasks:
                worker.stop()
                worker = None
        except BaseException:
            if worker is not None:
                worker.kill()
            worker = None
            raise
        finally:
            if self._closed and worker is not None:
                worker.stop()
                worker = None
            self._idle.put(worker)
        return cast(T, _unwrap(outcome, payload, what, self.max_memory))

    def close(self) -> None:
        """Stop every idle worker (busy ones stop when their document is done)."""
        self._closed = True
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            if worker is not None:
                worker.stop()

    def worker_pids(self) -> list[int]:
        """The process ids of the idle workers (for tests)."""
        with self._idle.mutex:
            return [w.process.pid for w in self._idle.queue if w is not None and w.process.pid]


class _Worker:
    """One parser process and the pipe to it."""

    def __init__(self, max_memory: int) -> None:
        self.connection, child_end = _context.Pipe(duplex=True)
        self.process = _context.Process(
            target=_worker_main, args=(child_end, max_memory), name="digest-parser", daemon=True
        )
        try:
            self.process.start()
        finally:
            child_end.close()
        self.tasks = 0

    def call(
        self, fn: Callable[..., Any], args: tuple[Any, ...], *, timeout: float, what: str
    ) -> tuple[str, Any]:
        self.tasks += 1
        try:
            self.connection.send((fn, args))
        except (OSError, ValueError) as exc:
            raise ParseError(f"{what}: the parser process could not be reached ({exc})") from exc
        if not self.connection.poll(timeout):
            raise ParseTimeout(
                f"{what}: parsing took longer than {timeout:g}s and was stopped; the document"
                " is pathological or hostile (e.g. a huge author field, feedparser issue"
                " #562). Open it in a browser; if it is just very large, raise"
                " [collect] timeout_seconds, otherwise pause or remove the source"
            )
        try:
            message: tuple[str, Any] = self.connection.recv()
        except EOFError:
            self.process.join(_KILL_GRACE)
            raise ParseError(
                f"{what}: the parser process died (exit code {self.process.exitcode}) before"
                " it answered; the document may be hostile. Open it in a browser, and report"
                " it if it looks like a normal feed"
            ) from None
        return message

    def kill(self) -> None:
        self.process.kill()
        self.connection.close()
        _reap(self.process)

    def stop(self) -> None:
        """Ask the worker to exit (closing its pipe does), then reap it."""
        self.connection.close()
        _reap(self.process)


def _worker_main(connection: Connection, max_memory: int) -> None:
    """Parse (fn, args) after (fn, args) from `connection` until it closes; answer each as
    `_child_main` does. After a MemoryError the worker exits (its heap may be a mess)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = max_memory if hard == resource.RLIM_INFINITY else min(max_memory, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    while True:
        try:
            fn, args = connection.recv()
        except (EOFError, OSError):
            return
        message = _answer(fn, args)
        try:
            connection.send(message)
        except MemoryError:
            message = ("memory", None)
            connection.send(message)
        except Exception as exc:  # e.g. a result that cannot be pickled
            connection.send(("bug", (f"cannot send the result: {type(exc).__name__}: {exc}", "")))
        if message[0] == "memory":
            return
        del fn, args, message
