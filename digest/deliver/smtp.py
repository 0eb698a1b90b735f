"""The SMTP transport: one persistent connection per `SmtpSender`, and `SendPool` to drive
several of them in parallel at a bounded rate.

Why not `smtplib.SMTP.sendmail`: it (like `send_message` and `data()`) runs its
dot-stuffing regex over every message, which is most of smtplib's cost per message for a
100 KB issue. `MessageTemplate.render_stuffed` already returns the DATA payload stuffed
(the static bytes once per variant), so the sender speaks the transaction itself with
smtplib's primitives: MAIL, RCPT, DATA, then the payload written verbatim.

Why one connection for many messages: the TCP and TLS handshakes, EHLO and AUTH cost
several round trips, more than a whole transaction. A sender connects on its first
message and keeps the connection; a connection the server dropped meanwhile (idle
timeout, "421 too many messages") is reopened once and the message retried.

Why threads: the work is socket I/O, during which Python releases the GIL, so a few
threads each holding one connection keep a server busy; the bytes were built beforehand.

What comes back: a `SendResult` per recipient (2xx sent, 4xx and connection trouble
temporary, 5xx permanent, each with the stage it came at, which `replies.classify` needs),
or *unknown* when the payload went out and the reply to the final dot never came: the
message is then not retried on a new connection, since the server may have it. Only a
server that cannot be used as configured (login refused, TLS handshake failed, STARTTLS
missing) raises `DeliveryError`: retrying each recipient would not help, the operator has
to change a setting; a login without TLS is refused before connecting (`ConfigError`).
"""

from __future__ import annotations

import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

from digest.deliver import Outcome, Sender, SendResult, Stage
from digest.errors import ConfigError, DeliveryError

__all__ = ["Job", "Recorder", "SendPool", "SmtpOptions", "SmtpSender", "auth_without_tls"]

_END = b"\r\n.\r\n"
# Longest a stopping pool waits before it looks at the stop flag again, while a worker
# waits for its turn under `rate_per_second`. A flag, not an Event, so that `stop()` takes
# no lock and is safe in a signal handler.
_STOP_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class SmtpOptions:
    """Where and how to connect; the password never appears in the repr."""

    host: str
    port: int
    starttls: bool
    """Upgrade with STARTTLS after EHLO; a server that does not offer it is an error."""
    implicit_tls: bool
    """Connect with TLS from the start (SMTPS, port 465)."""
    username: str
    """AUTH user; empty for no AUTH."""
    password: str = field(repr=False)
    timeout: float
    """Seconds to wait for connecting and for each reply."""
    local_hostname: str | None = None
    """The name sent in EHLO; None: this machine's FQDN."""
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)
    """TLS settings; None: the system's trusted CAs with host name checking."""
    pipelining: bool = True
    """Use PIPELINING (RFC 2920) when the server offers it."""

    @property
    def address(self) -> str:
        """Return "host:port", as messages name the server."""
        return f"{self.host}:{self.port}"


class _Dropped(Exception):
    """The connection broke or the server is closing it (421): reconnecting may help."""


class SmtpSender:
    """A `Sender` over one persistent SMTP connection, opened on the first `send`.

    Not thread-safe: give each thread its own (`SendPool` does). Close it (or use it as a
    context manager) to end the session politely with QUIT.
    """

    def __init__(self, options: SmtpOptions) -> None:
        self.options = options
        self._smtp: smtplib.SMTP | None = None
        self._local_hostname = options.local_hostname
        self._in_transaction = False
        self._stage = Stage.CONNECT
        self._context: ssl.SSLContext | None = None
        if options.username and not (options.starttls or options.implicit_tls):
            raise ConfigError(auth_without_tls(options.address))

    def __repr__(self) -> str:
        return f"SmtpSender({self.options.address}, user={self.options.username!r})"

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, envelope_from: str, recipient: str, data: bytes) -> SendResult:
        """Send one message: `data` is the DATA payload as `render_stuffed` returns it.

        A connection found broken is reopened and the message tried once more; that
        includes a break after the payload was written but before the server's answer,
        when a retry may deliver a second copy (as any SMTP client's retry would).
        Raises `DeliveryError` when the server cannot be used as configured.
        """
        refused = _check(envelope_from, recipient, data)
        if refused is not None:
            return refused
        problem = ""
        for _attempt in range(2):
            if self._smtp is None:
                try:
                    self._smtp = self._connect()
                except _Dropped as exc:
                    # A fresh connection that fails is not retried at once: against a
                    # server that is down, each try may cost the whole timeout.
                    return self._trouble(str(exc))
            self._stage = Stage.MAIL
            try:
                return self._transaction(self._smtp, envelope_from, recipient, data)
            except (_Dropped, smtplib.SMTPException, OSError) as exc:
                problem = f"connection lost: {_describe(exc)}"
                self._discard()
                if self._stage is Stage.DOT:
                    # The payload went out and no answer came: the server may have taken
                    # it. Sending again now is how a slow relay gets six copies.
                    return SendResult(
                        Outcome.UNKNOWN,
                        0,
                        f"no reply to the final dot from {self.options.address} ({problem}); "
                        "the message may have been accepted",
                        Stage.DOT,
                    )
        return self._trouble(problem)

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open; never raises."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass  # the server went first; nothing is lost
        finally:
            smtp.close()

    def _transaction(
        self, smtp: smtplib.SMTP, envelope_from: str, recipient: str, data: bytes
    ) -> SendResult:
        """Run MAIL, RCPT, DATA and the payload; return the first refusal or the answer."""
        if self._in_transaction:
            # Only after a transaction that stopped half-way: the server still holds its
            # MAIL FROM, and a new MAIL would get "503 nested MAIL command".
            _expect(smtp.rset())
            self._in_transaction = False
        utf8 = not (envelope_from + recipient).isascii()
        if utf8 and not smtp.has_extn("smtputf8"):
            return SendResult(
                Outcome.PERMANENT,
                553,
                f"553 5.6.7 {self.options.address} does not offer SMTPUTF8, which the "
                "internationalized address needs; it cannot be sent through this server",
                Stage.LOCAL,
            )
        smtp.command_encoding = "utf-8" if utf8 else "ascii"
        self._in_transaction = True
        # The addresses go out as they are (`_check` refused CR, LF, < and >): smtplib's
        # mail() and rcpt() parse each with email.utils first, 40 µs a message.
        mail = f"FROM:<{envelope_from}>{' SMTPUTF8' if utf8 else ''}"
        rcpt = f"TO:<{recipient}>"
        if self.options.pipelining and smtp.has_extn("pipelining"):
            refused = self._envelope_pipelined(smtp, mail, rcpt)
        else:
            refused = self._envelope(smtp, mail, rcpt)
        if refused is not None:
            return refused
        self._stage = Stage.DOT
        smtp.send(data)
        code, text = smtp.getreply()
        if code == 421:
            # A real answer: not accepted, and the server is closing. Safe to try later.
            self._discard()
            return _result(code, text, Stage.DOT)
        code, text = _expect((code, text))
        # After the final dot the server has ended the transaction, whatever it answered.
        self._in_transaction = False
        self._stage = Stage.CONNECT
        return _result(code, text, Stage.DOT)

    def _envelope(self, smtp: smtplib.SMTP, mail: str, rcpt: str) -> SendResult | None:
        """MAIL, RCPT and DATA one at a time; the first refusal, or None after a 354."""
        self._stage = Stage.MAIL
        smtp.putcmd("mail", mail)
        code, text = _expect(smtp.getreply())
        if code != 250:
            return _result(code, text, Stage.MAIL)
        self._stage = Stage.RCPT
        smtp.putcmd("rcpt", rcpt)
        code, text = _expect(smtp.getreply())
        if code not in (250, 251):
            return _result(code, text, Stage.RCPT)
        self._stage = Stage.DATA
        smtp.putcmd("data")
        code, text = _expect(smtp.getreply())
        if code != 354:
            return _result(code, text, Stage.DATA)
        return None

    def _envelope_pipelined(self, smtp: smtplib.SMTP, mail: str, rcpt: str) -> SendResult | None:
        """MAIL, RCPT and DATA in one write, then their three replies in order (RFC 2920
        PIPELINING, which the server offered): one round trip instead of three. Every reply
        is read whatever the first ones said, so the connection stays in step; the first
        refusal is the result, or None after a 354."""
        self._stage = Stage.MAIL
        smtp.send(f"MAIL {mail}\r\nRCPT {rcpt}\r\nDATA\r\n")
        replies: list[tuple[Stage, int, bytes]] = []
        for stage in (Stage.MAIL, Stage.RCPT, Stage.DATA):
            self._stage = stage
            replies.append((stage, *_expect(smtp.getreply())))
        accepted = {Stage.MAIL: (250,), Stage.RCPT: (250, 251), Stage.DATA: (354,)}
        refusals = [reply for reply in replies if reply[1] not in accepted[reply[0]]]
        if not refusals:
            return None
        if replies[2][1] == 354:
            # DATA taken although the sender or the recipient was refused: end an empty
            # message at once (RFC 2920 section 3.1); with no recipient, nothing is sent.
            smtp.send(b".\r\n")
            _expect(smtp.getreply())
            self._in_transaction = False
        stage, code, text = refusals[0]
        return _result(code, text, stage)

    def _connect(self) -> smtplib.SMTP:
        """Open, greet, secure and log in; raise `_Dropped` for trouble worth retrying
        later and `DeliveryError` for settings that cannot work."""
        where = self.options.address
        self._in_transaction = False
        try:
            return self._open()
        except smtplib.SMTPConnectError as exc:
            if 500 <= exc.smtp_code < 600:
                # "554 no service for you": a block list or a policy about us, which no
                # retry changes; a person must look (the send pauses, nobody is marked).
                raise DeliveryError(
                    f"{where} refused the connection with "
                    f"{_reply(exc.smtp_code, exc.smtp_error)}; check that this machine may "
                    "send through it (block lists, the relay's allowed networks)"
                ) from exc
            # "421 busy": the run's failure budget pauses the issue if it lasts.
            raise _Dropped(f"greeted with {_reply(exc.smtp_code, exc.smtp_error)}") from exc
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
            raise _Dropped(f"connection closed during the TLS handshake: {exc}") from exc
        except ssl.SSLError as exc:
            raise DeliveryError(
                f"the TLS handshake with {where} failed ({exc.reason or exc}); check that "
                "[delivery] smtp_host is the name on the server's certificate and that "
                "smtp_port matches the TLS mode (465: smtp_implicit_tls, 587: smtp_starttls)"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise _Dropped(f"answered {_reply(exc.smtp_code, exc.smtp_error)}") from exc
            raise DeliveryError(
                f"{where} refused the session setup with "
                f"{_reply(exc.smtp_code, exc.smtp_error)}; check the [delivery] smtp_* settings"
            ) from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Dropped(f"cannot connect: {_describe(exc)}") from exc

    def _open(self) -> smtplib.SMTP:
        options = self.options
        smtp: smtplib.SMTP
        if options.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                options.host,
                options.port,
                local_hostname=self._local_hostname,
                timeout=options.timeout,
                context=self._tls_context(),
            )
        else:
            smtp = smtplib.SMTP(
                options.host,
                options.port,
                local_hostname=self._local_hostname,
                timeout=options.timeout,
            )
        try:
            # smtplib looks up the FQDN (DNS) for each object unless told: do it once.
            self._local_hostname = smtp.local_hostname
            smtp.ehlo_or_helo_if_needed()
            if options.starttls and not options.implicit_tls:
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(
                        f"{options.address} does not offer STARTTLS, so mail would go "
                        "unencrypted; check [delivery] smtp_host and smtp_port (587 usually "
                        "offers STARTTLS; 465 is implicit TLS: set smtp_implicit_tls), or set "
                        "smtp_starttls = false for a relay on a trusted network"
                    )
                smtp.starttls(context=self._tls_context())
                smtp.ehlo_or_helo_if_needed()
            if options.username:
                self._login(smtp)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        options = self.options
        where = options.address
        user = repr(options.username)
        if not smtp.has_extn("auth"):
            raise DeliveryError(
                f"{where} does not offer AUTH, needed to log in as {user}; many servers "
                "offer it only after STARTTLS: set [delivery] smtp_starttls = true (or "
                "smtp_implicit_tls), or leave smtp_username empty for a relay that needs "
                "no login"
            )
        try:
            smtp.login(options.username, options.password)
        except smtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.smtp_code < 500:
                raise  # "454 try again later": connection trouble, not a wrong password
            raise DeliveryError(
                f"{where} refused the login of user {user}: "
                f"{_reply(exc.smtp_code, exc.smtp_error)}; check "
                "[delivery] smtp_username and the password in DIGEST_DELIVERY__SMTP_PASSWORD "
                "(or _FILE)"
            ) from exc
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException):
            raise  # handled by the caller like any other step of the setup
        except smtplib.SMTPException as exc:
            # "No suitable authentication method found": nothing a retry changes.
            raise DeliveryError(
                f"cannot log in to {where} as {user}: {exc}; the server offers "
                f"AUTH {smtp.esmtp_features.get('auth', '').strip() or '(nothing)'}"
            ) from exc

    def _tls_context(self) -> ssl.SSLContext:
        # Made once: loading the system's CA certificates takes about 20 ms.
        if self._context is None:
            self._context = self.options.ssl_context or ssl.create_default_context()
        return self._context

    def _discard(self) -> None:
        """Forget a connection in an unknown state, without QUIT."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _trouble(self, problem: str) -> SendResult:
        """Return the result for connection trouble: temporary, naming the server."""
        return SendResult(Outcome.TEMPORARY, 421, f"421 4.4.2 {self.options.address}: {problem}")


def _check(envelope_from: str, recipient: str, data: bytes) -> SendResult | None:
    """Refuse what no server should see: it would break the session for later messages."""
    if any(c in address for address in (envelope_from, recipient) for c in "\r\n<>"):
        return SendResult(
            Outcome.PERMANENT, 501, "501 5.1.7 malformed envelope address", Stage.LOCAL
        )
    if not data.endswith(_END):
        # Without the final dot the server would wait for more, and take the next
        # message's commands as this one's text.
        return SendResult(
            Outcome.PERMANENT, 554, '554 5.6.0 SMTP DATA must end with CRLF "." CRLF', Stage.LOCAL
        )
    return None


def _expect(reply: tuple[int, bytes]) -> tuple[int, bytes]:
    """Return `reply`, raising `_Dropped` when the server is closing the connection (421)
    or said something that is not SMTP, so the caller reconnects."""
    code, text = reply
    if code == 421 or not 200 <= code < 600:
        raise _Dropped(_reply(code, text))
    return code, text


def _reply(code: int, text: bytes | str) -> str:
    """Return the reply as one line: "550 5.1.1 no such user"."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}".strip()


def _result(code: int, text: bytes, stage: Stage) -> SendResult:
    return SendResult.from_reply(code, _reply(code, text), stage)


def auth_without_tls(address: str) -> str:
    """The refusal to send a password in clear text, naming the keys that fix it."""
    return (
        f"[delivery] smtp_username is set but the connection to {address} would not be "
        "encrypted, so the password would cross the network in clear text; set "
        "[delivery] smtp_starttls = true (port 587) or smtp_implicit_tls = true (port 465), "
        "or leave smtp_username empty for a relay that needs no login"
    )


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


@dataclass(frozen=True)
class Job:
    """One message for `SendPool.map`; `key` is the caller's, e.g. the delivery row's id."""

    key: object
    envelope_from: str
    recipient: str
    data: bytes = field(repr=False)


class Recorder(Protocol):
    """Keeps each answer before the connection that got it sends again (`SendPool.map`).

    Called from the pool's threads, so it must be thread-safe; an exception stops the pool
    and reaches the caller like a sender's."""

    def started(self, job: Job) -> None:
        """`job` is about to go out."""

    def answered(self, job: Job, result: SendResult) -> None:
        """The server answered `job` with `result`."""


@dataclass
class _Skipped:
    """A job a worker took but did not start (the pool was stopping)."""

    number: int
    job: Job


@dataclass
class _Crashed:
    """A job whose sender raised; the exception goes to the caller."""

    number: int
    job: Job
    error: BaseException


@dataclass
class _Sent:
    job: Job
    result: SendResult


class Pace(Protocol):
    """When each send may start: `reserve()` returns a `time.monotonic()` (0: now)."""

    def reserve(self) -> float:
        """Return the `time.monotonic()` at which the caller's send may start."""
        ...


class _Pace:
    """Spaces the start of sends across threads: at most `rate` per second, no bursts."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Return the `time.monotonic()` at which the caller's send may start."""
        if not self._interval:
            return 0.0
        with self._lock:
            start = max(time.monotonic(), self._next)
            self._next = start + self._interval
            return start


class SendPool:
    """Sends jobs over `connections` senders in parallel threads, at most
    `rate_per_second` messages a second in all (0: no limit).

        with SendPool(lambda: open_sender(settings), connections=4) as pool:
            with contextlib.closing(pool.map(jobs)) as results:
                for job, result in results:
                    record(job.key, result)    # runs in the caller's thread
            retry_later(pool.unstarted)

    `map` takes jobs from `jobs` in the caller's thread, only as workers free up (at most
    twice `connections` are taken and not yet answered), so `jobs` may be a database
    cursor over millions of rows. Results come in completion order.

    Stopping: `stop()` (safe in a signal handler) or closing the iterator starts no new
    send; sends under way finish. After `stop()` their results are still yielded; after
    the iterator is closed they are kept in `unreported`. A sender raising (e.g.
    `DeliveryError`) stops the pool the same way, and the error is raised in the
    caller's thread once the other sends have finished and been yielded.

    After `map` ends, `unstarted` lists, in the order they were taken, the jobs taken from
    `jobs` that have no result: never started because the pool stopped, or whose sender
    raised (a configuration error comes before the transaction, so nothing was sent).
    They are owed another try. Every taken job is in exactly one of: the results,
    `unreported`, `unstarted`.

    A stopped pool stays stopped; one `map` at a time. The senders (SMTP connections) of a
    `map` are kept for the next one, so a send made of many batches opens `connections`
    connections, not that many per batch (on a real relay each one is a TLS handshake and
    AUTH, `docs/delivery.md`); a sender whose send raised is closed instead.
    `close()` (or leaving the `with` block) ends the kept ones with QUIT; the pool stays
    usable, and a later `map` opens new ones.
    """

    def __init__(
        self,
        make_sender: Callable[[], Sender],
        connections: int,
        rate_per_second: float = 0,
        *,
        pace: Pace | None = None,
    ) -> None:
        if connections < 1:
            raise ValueError(f"connections must be at least 1, not {connections}")
        if rate_per_second < 0:
            raise ValueError(f"rate_per_second must be 0 (no limit) or more, not {rate_per_second}")
        self.make_sender = make_sender
        self.connections = connections
        self.rate_per_second = rate_per_second
        self.pace = pace
        """A pace shared with other pools (`store/rates.SharedPace`) instead of the rate."""
        self.unstarted: list[Job] = []
        self.unreported: list[tuple[Job, SendResult]] = []
        self._stopped = False
        self._halted = False
        self._kept: list[Sender] = []
        """Senders of the last `map`, open for the next one (`close` ends them)."""

    def __enter__(self) -> SendPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the connections kept between `map` calls (never raises; not during a `map`)."""
        while self._kept:
            _close(self._kept.pop())

    def stop(self) -> None:
        """Start no more sends; those under way finish and `map` then ends."""
        self._stopped = True  # a plain store: no lock, so safe in a signal handler

    @property
    def stopping(self) -> bool:
        """Whether the pool starts no more sends (stopped, or a sender raised)."""
        return self._stopped or self._halted

    def map(
        self, jobs: Iterable[Job], recorder: Recorder | None = None
    ) -> Generator[tuple[Job, SendResult], None, None]:
        """Send every job and yield (job, result) as each completes; see the class doc
        for stopping, `unstarted` and `unreported`.

        With a `recorder`, each worker calls `recorder.started(job)` before it sends and
        `recorder.answered(job, result)` once the server answered, before it takes its next
        job: whatever the recorder keeps is, at any moment, short of the truth by at most
        one message per connection."""
        self.unstarted = []
        self.unreported = []
        self._halted = False
        senders: list[Sender] = []
        try:
            for _ in range(self.connections):
                senders.append(self._kept.pop() if self._kept else self.make_sender())
        except BaseException:
            for sender in senders:
                _close(sender)
            raise
        todo: queue.SimpleQueue[tuple[int, Job] | None] = queue.SimpleQueue()
        done: queue.SimpleQueue[_Sent | _Skipped | _Crashed] = queue.SimpleQueue()
        pace = self.pace or _Pace(self.rate_per_second)
        threads = [
            threading.Thread(
                target=self._work,
                args=(sender, todo, done, pace, recorder),
                name=f"smtp-{n}",
                daemon=True,
            )
            for n, sender in enumerate(senders, 1)
        ]
        for thread in threads:
            thread.start()
        yield from self._run(iter(jobs), threads, todo, done)

    def _run(
        self,
        jobs: Iterator[Job],
        threads: list[threading.Thread],
        todo: queue.SimpleQueue[tuple[int, Job] | None],
        done: queue.SimpleQueue[_Sent | _Skipped | _Crashed],
    ) -> Generator[tuple[Job, SendResult], None, None]:
        window = 2 * self.connections
        taken = 0
        in_flight = 0
        exhausted = False
        skipped: list[tuple[int, Job]] = []
        error: BaseException | None = None
        try:
            while True:
                while not exhausted and not self.stopping and in_flight < window:
                    try:
                        job = next(jobs)
                    except StopIteration:
                        exhausted = True
                        break
                    todo.put((taken, job))
                    taken += 1
                    in_flight += 1
                if not in_flight:
                    break
                item = done.get()
                in_flight -= 1
                if isinstance(item, _Sent):
                    yield item.job, item.result
                    continue
                skipped.append((item.number, item.job))
                if isinstance(item, _Crashed) and error is None:
                    error = item.error
                    self._halted = True
        finally:
            # Reached on normal end, on close() (GeneratorExit) and when `jobs` raised:
            # nothing more starts, and what is under way is waited for.
            self._halted = True
            while in_flight:
                item = done.get()
                in_flight -= 1
                if isinstance(item, _Sent):
                    self.unreported.append((item.job, item.result))
                    continue
                skipped.append((item.number, item.job))
                if isinstance(item, _Crashed) and error is None:
                    error = item.error
            for _ in threads:
                todo.put(None)
            for thread in threads:
                thread.join()
            self.unstarted = [job for _, job in sorted(skipped, key=lambda pair: pair[0])]
            if error is not None:
                raise error

    def _work(
        self,
        sender: Sender,
        todo: queue.SimpleQueue[tuple[int, Job] | None],
        done: queue.SimpleQueue[_Sent | _Skipped | _Crashed],
        pace: Pace,
        recorder: Recorder | None,
    ) -> None:
        sound = True  # kept for the next `map` unless a send or the loop raised
        try:
            while (item := todo.get()) is not None:
                number, job = item
                if not self._wait_turn(pace):
                    done.put(_Skipped(number, job))
                    continue
                try:
                    if recorder is not None:
                        recorder.started(job)
                    result = sender.send(job.envelope_from, job.recipient, job.data)
                    if recorder is not None:
                        recorder.answered(job, result)
                except BaseException as exc:
                    # Stop the others now, not when the caller gets round to it.
                    self._halted = True
                    sound = False
                    done.put(_Crashed(number, job, exc))
                    continue
                done.put(_Sent(job, result))
        except BaseException:
            sound = False
            raise
        finally:
            if sound:
                self._kept.append(sender)  # for the next `map` (list.append is atomic)
            else:
                _close(sender)

    def _wait_turn(self, pace: Pace) -> bool:
        """Wait until the rate allows a send; return False if the pool stops meanwhile."""
        start = pace.reserve()
        while not self.stopping:
            remaining = start - time.monotonic()
            if remaining <= 0:
                return True
            time.sleep(min(remaining, _STOP_POLL_SECONDS))
        return False


def _close(sender: Sender) -> None:
    """Close a sender that can be closed (`SmtpSender`; the outbox has nothing to close)."""
    close = getattr(sender, "close", None)
    if callable(close):
        close()
