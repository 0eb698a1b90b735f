"""A real SMTP server (aiosmtpd) on 127.0.0.1 for delivery tests, with replies and
failures each test injects.

    server.messages[0].data                  # the message as stored (dot-stuffing undone)
    server.messages[0].mail_from, .rcpt_tos  # the envelope
    server.connections                       # sessions opened so far (EHLO/HELO said)
    server.reply_for("bob@example.net", "451 4.7.1 try later", times=1)   # at RCPT
    server.reply_for("eve@example.net", "550 5.1.1 no such user")         # every time
    server.reply_for("carl@example.net", "554 5.7.1 spam", at="DATA")     # after the payload
    server.drop_on_data()                    # close the connection at the next DATA command
    server.drop_on_data(after_payload=True)  # ... after reading the payload, before answering
    server.disconnect_all()                  # close every open connection (an idle timeout)
    server.greet_with("554 5.7.1 no service")  # new connections get this instead of 220
    server.hold_dot_replies()                # keep each message, answer its dot only after
    server.release_dot_replies()             # ... this (a relay slower than the client's timeout)
    server.sender_options()                  # SmtpOptions that reach this server

`SmtpServer(smtputf8=False)` does not offer SMTPUTF8 (internationalized addresses);
`SmtpServer(pipelining=False)` does not offer PIPELINING (RFC 2920: by default it does, as
Postfix and the big relays do, and the client then sends MAIL, RCPT and DATA at once).
`SmtpServer(starttls=True, users={"digest": "s3cret"})` offers STARTTLS with a self-signed
certificate made at test time (`server.client_context()` trusts it) and AUTH PLAIN/LOGIN
after it; `implicit_tls=True` speaks TLS from the first byte (SMTPS). Messages are
recorded before the server answers 250, so a test can look as soon as `send` returns.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import ipaddress
import socket
import ssl
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from digest.deliver.smtp import SmtpOptions

HOST = "127.0.0.1"
Stage = Literal["MAIL", "RCPT", "DATA"]


@dataclass(frozen=True)
class Received:
    """One message as the server stored it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    """The message with the SMTP dot-stuffing undone, as a mailbox would hold it."""
    connection: int
    """Which session brought it: 1 for the first client that said EHLO, and so on."""
    login: str | None
    """The AUTH user of that session, or None."""
    tls: bool
    """Whether the session was encrypted (STARTTLS or implicit TLS)."""


@dataclass
class _Rule:
    stage: Stage
    address: str
    reply: str
    times: int | None


@functools.cache
def certificate() -> tuple[bytes, bytes]:
    """Return a self-signed certificate for 127.0.0.1 and localhost, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _server_context() -> ssl.SSLContext:
    cert_pem, key_pem = certificate()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:  # load_cert_chain only reads files
        cert_file, key_file = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class SmtpServer:
    """An SMTP server on 127.0.0.1 and a free port; use it as a context manager."""

    def __init__(
        self,
        *,
        starttls: bool = False,
        implicit_tls: bool = False,
        users: Mapping[str, str] | None = None,
        auth_required: bool = False,
        smtputf8: bool = True,
        pipelining: bool = True,
    ) -> None:
        self.host = HOST
        self.pipelining = pipelining
        self.port = 0
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.users = dict(users or {})
        self.auth_required = auth_required
        self.smtputf8 = smtputf8
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._recipients: list[str] = []
        self._rules: list[_Rule] = []
        self._drops: list[bool] = []  # one per pending drop: True means after the payload
        self._sessions = 0
        self._open: set[_Connection] = set()
        self._controller: _Controller | None = None
        self._held = threading.Event()
        self._released = threading.Event()
        self.greeting: str | None = None

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, *, port: int | None = None) -> None:
        """Listen on a free port (aiosmtpd cannot bind port 0 itself, so one is picked), or
        on `port` again (a relay that restarts: `stop()`, then `start(port=server.port)`)."""
        if port is not None:
            controller = _Controller(self, port)
            controller.start()
            self._controller, self.port = controller, port
            return
        for attempt in range(5):
            port = _free_port()
            controller = _Controller(self, port)
            try:
                controller.start()
            except OSError:
                if attempt == 4:
                    raise
                continue  # someone took the port between the probe and the bind
            self._controller, self.port = controller, port
            return

    def stop(self) -> None:
        """Close every connection, then stop listening."""
        if self._controller is None:
            return
        self.disconnect_all()
        self._controller.stop()
        self._controller = None

    @property
    def messages(self) -> list[Received]:
        """The messages accepted so far, in arrival order."""
        with self._lock:
            return list(self._messages)

    @property
    def recipients_tried(self) -> list[str]:
        """Every RCPT TO address clients gave so far, accepted or not, in order."""
        with self._lock:
            return list(self._recipients)

    @property
    def connections(self) -> int:
        """How many sessions clients opened so far (connections that said EHLO or HELO)."""
        with self._lock:
            return self._sessions

    def open_connections(self) -> int:
        """How many client connections are open at this moment."""
        return len(self._open)

    def reply_for(
        self, address: str, reply: str, *, times: int | None = None, at: Stage = "RCPT"
    ) -> None:
        """Answer `reply` (e.g. "451 4.7.1 try later") instead of 250, `times` times (None:
        always): at "RCPT" for that recipient, at "MAIL" for that envelope sender, at
        "DATA" after the payload of a message to that recipient (which is then not kept)."""
        if not reply[:3].isdigit() or reply[3:4] not in ("", " "):
            raise ValueError(f"{reply!r} is not an SMTP reply such as '550 5.1.1 no such user'")
        with self._lock:
            self._rules.append(_Rule(at, address, reply, times))

    def drop_on_data(self, times: int = 1, *, after_payload: bool = False) -> None:
        """Close the connection at the next `times` DATA commands, before answering 354;
        with `after_payload`, after reading the payload, without answering or keeping it."""
        with self._lock:
            self._drops.extend([after_payload] * times)

    def greet_with(self, reply: str | None) -> None:
        """Greet new connections with `reply` (e.g. "554 5.7.1 no service") and close them;
        None: greet normally again. Call it after the server started."""
        self.greeting = reply

    def hold_dot_replies(self) -> None:
        """From now on, keep each message but answer its final dot only once
        `release_dot_replies()` is called (or after 60 s): a client with a shorter timeout
        sees no reply, although the message arrived."""
        self._released.clear()
        self._held.set()

    def release_dot_replies(self) -> None:
        """Answer the held dots (late: their clients have usually gone) and hold no more."""
        self._held.clear()
        self._released.set()

    def disconnect_all(self) -> None:
        """Close every open connection from the server side, as an idle timeout would."""
        controller = self._controller
        if controller is None:
            return

        async def close_all() -> None:
            for session in list(self._open):
                if session.transport is not None:
                    session.transport.close()
            await asyncio.sleep(0)  # let connection_lost run before returning

        asyncio.run_coroutine_threadsafe(close_all(), controller.loop).result(timeout=5)

    def client_context(self) -> ssl.SSLContext:
        """Return a client TLS context that trusts this server's certificate."""
        return ssl.create_default_context(cadata=certificate()[0].decode("ascii"))

    def sender_options(self, **changes: Any) -> SmtpOptions:
        """Return `SmtpOptions` for this server (TLS mode, trusted certificate, the first
        user's login), with a short timeout; `changes` override any field."""
        username, password = next(iter(self.users.items()), ("", ""))
        options = SmtpOptions(
            host=self.host,
            port=self.port,
            starttls=self.starttls,
            implicit_tls=self.implicit_tls,
            username=username,
            password=password,
            timeout=5.0,
            local_hostname="digest.test",
            ssl_context=self.client_context() if self.starttls or self.implicit_tls else None,
        )
        return replace(options, **changes)

    # Called from the server's event loop thread.

    def _rule(self, stage: Stage, addresses: tuple[str, ...]) -> str | None:
        with self._lock:
            for rule in self._rules:
                if rule.stage == stage and rule.address in addresses and rule.times != 0:
                    if rule.times is not None:
                        rule.times -= 1
                    return rule.reply
        return None

    def _take_drop(self, after_payload: bool) -> bool:
        with self._lock:
            if self._drops and self._drops[0] == after_payload:
                self._drops.pop(0)
                return True
        return False

    def _greeted(self) -> int:
        with self._lock:
            self._sessions += 1
            return self._sessions

    def _keep(self, message: Received) -> None:
        with self._lock:
            self._messages.append(message)


class _Handler:
    """aiosmtpd's hooks: injected replies, and recording what was accepted."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd's own EHLO does when there is a hook
        if self.owner.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.owner.auth_required and not session.authenticated:
            # Checked here rather than by aiosmtpd, which warns when AUTH is required
            # outside STARTTLS (and pytest turns warnings into errors).
            return "530 5.7.0 Authentication required"
        reply = self.owner._rule("MAIL", (address,))
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self.owner._lock:
            self.owner._recipients.append(address)
        reply = self.owner._rule("RCPT", (address,))
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(server, _Connection)
        if self.owner._take_drop(after_payload=True):
            await server.hang_up()
        recipients = tuple(envelope.rcpt_tos)
        reply = self.owner._rule("DATA", recipients)
        if reply is not None:
            return reply
        assert envelope.mail_from is not None and envelope.original_content is not None
        login = session.auth_data.login.decode() if session.auth_data else None
        self.owner._keep(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=recipients,
                data=bytes(envelope.original_content),
                connection=server.number,
                login=login,
                tls=self.owner.implicit_tls or session.ssl is not None,
            )
        )
        if self.owner._held.is_set():
            released = self.owner._released
            await asyncio.get_running_loop().run_in_executor(None, released.wait, 60)
        return f"250 2.0.0 OK queued as {len(self.owner.messages)}"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """Check a login against `users`; a failure answers 535."""
        if isinstance(data, LoginPassword):
            login, password = data.login.decode(), data.password.decode()
            if login in self.owner.users and self.owner.users[login] == password:
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)


class _QuietSession(Session):
    # aiosmtpd 1.4 logs a deprecation warning each time it sets this attribute itself.
    login_data = None


class _Connection(SMTP):
    """One connection: counts sessions, and can hang up on a DATA command."""

    def __init__(self, owner: SmtpServer, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.owner = owner
        self.number = 0

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    async def _handle_client(self) -> None:
        if self.owner.greeting is not None:
            await self.push(self.owner.greeting)
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # not the same connection after STARTTLS
            self.owner._open.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.owner._open.discard(self)
        super().connection_lost(error)

    async def smtp_EHLO(self, hostname: str) -> None:
        if hostname and not self.number:
            # Counted here, not on connect: aiosmtpd opens (and closes) a connection of
            # its own while starting, which says nothing.
            self.number = self.owner._greeted()
        await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname: str) -> None:
        if hostname and not self.number:
            self.number = self.owner._greeted()
        await super().smtp_HELO(hostname)

    async def smtp_DATA(self, arg: str) -> None:
        if self.owner._take_drop(after_payload=False):
            await self.hang_up()
        await super().smtp_DATA(arg)

    async def hang_up(self) -> None:
        """Close the connection and wait to be cancelled (connection_lost cancels the
        session's task), so that nothing more is read or answered."""
        assert self.transport is not None
        self.transport.close()
        await asyncio.get_running_loop().create_future()


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, port: int) -> None:
        self.owner = owner
        self.the_handler = _Handler(owner)
        tls = _server_context() if owner.starttls or owner.implicit_tls else None
        kwargs: dict[str, Any] = {
            "hostname": HOST,
            "port": port,
            "server_hostname": "mx.test",  # skips aiosmtpd's getfqdn() DNS lookup
            "authenticator": self.the_handler.authenticate,
            # AUTH only inside TLS when there is TLS, as real servers do.
            "auth_require_tls": owner.starttls,
            "enable_SMTPUTF8": owner.smtputf8,
        }
        if owner.implicit_tls:
            kwargs["ssl_context"] = tls
        elif owner.starttls:
            kwargs["tls_context"] = tls
        super().__init__(self.the_handler, **kwargs)

    def factory(self) -> _Connection:
        return _Connection(self.owner, self.the_handler, loop=self.loop, **self.SMTP_kwargs)
