"""Run a parser in a child process with a hard time and memory bound (`run_bounded`).

Parsing hostile bytes can take minutes (feedparser's quadratic author regex, feedparser
issue #562) or eat memory. A thread cannot be stopped; a process can. Each call forks a
fresh child from multiprocessing's fork server, which has the parsers imported already:
a call costs about 20-30 ms more than parsing in-process (measured from the `digest`
command; the first call also starts the fork server, about 1 s). The fork server is used
rather than a plain fork because the parent runs threads and an asyncio loop, and forking
those is unsafe. Calls may come from several threads at once.

Linux only: the memory cap is `RLIMIT_AS`, which macOS does not enforce.
"""

from __future__ import annotations

import multiprocessing
import pickle
import resource
import sys
import threading
import traceback
from collections.abc import Callable
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


def _ensure_preload() -> None:
    """Tell the fork server what to import, once, before it starts."""
    global _preloaded
    with _preload_lock:
        if not _preloaded:
            loaded = [name for name in PRELOAD if name in sys.modules]
            _context.set_forkserver_preload(["__main__", *loaded])
            _preloaded = True


def _child_main(
    sender: Connection, fn: Callable[..., Any], args: tuple[Any, ...], max_memory: int
) -> None:
    """Run `fn(*args)` in the child and send ("ok" | "raise" | "memory" | "bug", payload)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = max_memory if hard == resource.RLIM_INFINITY else min(max_memory, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    message: tuple[str, Any]
    try:
        message = ("ok", fn(*args))
    except MemoryError:
        message = ("memory", None)
    except DigestError as exc:
        message = ("raise", exc if _round_trips(exc) else ParseError(str(exc)))
    except BaseException as exc:  # anything else is a bug, reported to the parent
        message = ("bug", (f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    try:
        sender.send(message)
    except MemoryError:
        sender.send(("memory", None))
    except Exception as exc:  # e.g. a result that cannot be pickled
        sender.send(("bug", (f"cannot send the result: {type(exc).__name__}: {exc}", "")))
    finally:
        sender.close()


def _round_trips(exc: BaseException) -> bool:
    """Whether `exc` survives pickling (an exception with a custom __init__ may not)."""
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes, in our own process
    except Exception:
        return False
    return True
