"""The SMTP transport against a real server: what arrives, one connection reused, replies
classified, broken connections survived, TLS and AUTH, and the pool's parallel, paced,
stoppable sending."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import cast

import pytest

from digest.deliver import Outcome, SendResult, Verdict
from digest.deliver.message import stuff, unstuff
from digest.deliver.smtp import Job, SendPool, SmtpOptions, SmtpSender
from digest.errors import ConfigError, DeliveryError
from tests.deliver.messages import awkward, build, personal
from tests.smtpserver import SmtpServer, Stage

SENDER = "bounces+rcpt=example.net@example.org"


def data(number: int = 1) -> bytes:
    """A small DATA payload with its own Message-ID and a line starting with "."."""
    return stuff(
        f"Message-ID: <{number}@example.org>\r\nSubject: n{number}\r\n\r\n.dot\r\nbody\r\n".encode()
    )


def jobs(count: int | None, pulled: list[Job] | None = None, *, start: int = 0) -> Iterator[Job]:
    """`count` jobs (None: endless) to r0@example.net, r1@… (from r`start`); each one taken
    is appended to `pulled`."""
    for number in itertools.count(start) if count is None else range(start, start + count):
        job = Job(number, SENDER, f"r{number}@example.net", data(number))
        if pulled is not None:
            pulled.append(job)
        yield job


def keys(taken: Iterable[Job]) -> list[int]:
    """The jobs' keys (numbers), sorted."""
    return sorted(cast(int, job.key) for job in taken)


@pytest.fixture(params=[True, False], ids=["pipelining", "one-at-a-time"])
def smtp_server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """The transport's tests run against a server offering PIPELINING (MAIL, RCPT and DATA
    go out in one write) and one that does not (a command, then its reply)."""
    with SmtpServer(pipelining=request.param) as server:
        yield server


class ScriptedServer:
    """A raw SMTP server for one connection, offering PIPELINING: it answers MAIL, RCPT and
    DATA only once all three have arrived (a client that waits for each reply would wait
    forever), with `rcpt` as the RCPT reply, and 354 to DATA whatever RCPT got (a broken
    server). What it reads is kept in `received`."""

    def __init__(self, rcpt: list[bytes]) -> None:
        self.rcpt = list(rcpt)
        self.received = b""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_until(self, connection: socket.socket, marker: bytes, start: int) -> int:
        while marker not in self.received[start:]:
            chunk = connection.recv(65536)
            if not chunk:
                raise EOFError
            self.received += chunk
        return self.received.index(marker, start) + len(marker)

    def _serve(self) -> None:
        with self.listener:
            connection, _ = self.listener.accept()
        # A client that gives up (or never pipelines) closes the connection: that ends it.
        with connection, contextlib.suppress(EOFError, OSError):
            connection.sendall(b"220 scripted\r\n")
            at = self._read_until(connection, b"\r\n", 0)
            connection.sendall(b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            for rcpt in self.rcpt:
                at = self._read_until(connection, b"DATA\r\n", at)
                connection.sendall(b"250 2.1.0 ok\r\n" + rcpt + b"354 go on\r\n")
                at = self._read_until(connection, b"\r\n.\r\n", at - 2)  # DATA's CRLF
                connection.sendall(b"250 2.0.0 queued\r\n")
            self._read_until(connection, b"QUIT\r\n", at)
            connection.sendall(b"221 bye\r\n")

    def options(self) -> SmtpOptions:
        return SmtpOptions(
            host="127.0.0.1", port=self.port, starttls=False, implicit_tls=False,
            username="", password="", timeout=10.0, local_hostname="digest.test",
        )  # fmt: skip


def test_with_pipelining_the_envelope_goes_out_in_one_write() -> None:
    server = ScriptedServer([b"250 2.1.5 ok\r\n", b"250 2.1.5 ok\r\n"])
    with SmtpSender(server.options()) as sender:
        first = sender.send(SENDER, "a@example.net", data(1))
        second = sender.send(SENDER, "b@example.net", data(2))
    server.thread.join(10)
    assert first.ok and second.ok, (first, second)
    assert b"MAIL FROM:<" + SENDER.encode() + b">\r\nRCPT TO:<a@example.net>\r\nDATA\r\n" in (
        server.received
    )


def test_pipelining_can_be_turned_off_for_a_relay_that_mishandles_it() -> None:
    """`[delivery] smtp_pipelining = false`: a command, then its reply, even when offered.
    Against the scripted server (which answers only once all three commands arrived) the
    first reply never comes: the send gives up after the timeout instead of pipelining."""
    server = ScriptedServer([b"250 2.1.5 ok\r\n"])
    options = dataclasses.replace(server.options(), timeout=1.0, pipelining=False)
    with SmtpSender(options) as sender:
        result = sender.send(SENDER, "a@example.net", data(1))
    assert not result.ok and result.outcome is Outcome.TEMPORARY
    # MAIL went out alone, and nothing after it: the client waited for MAIL's reply.
    assert server.received.lower().endswith(b"\r\nmail from:<" + SENDER.encode() + b">\r\n")
    server.thread.join(10)


def test_a_server_taking_data_after_refusing_the_recipient_gets_an_empty_end() -> None:
    """RFC 2920 3.1: the client ends the message at once; the refusal is the result, and
    the connection carries on (no RSET needed: the dot ended the transaction)."""
    server = ScriptedServer([b"550 5.1.1 no such user\r\n", b"250 2.1.5 ok\r\n"])
    with SmtpSender(server.options()) as sender:
        refused = sender.send(SENDER, "gone@example.net", data(1))
        after = sender.send(SENDER, "b@example.net", data(2))
    server.thread.join(10)
    assert refused.outcome is Outcome.PERMANENT and refused.reply == "550 5.1.1 no such user"
    assert after.ok
    first_message = server.received.split(b"RCPT TO:<b@example.net>")[0]
    assert first_message.endswith(b"DATA\r\n.\r\nMAIL FROM:<" + SENDER.encode() + b">\r\n")
    assert b"Subject: n1" not in server.received and b"Subject: n2" in server.received


def test_message_arrives_as_the_server_stores_it(smtp_server: SmtpServer) -> None:
    template, alice = build(awkward()), personal()
    payload = template.render_stuffed(alice)
    assert b"\r\n..Ce paragraphe" in payload  # stuffed once, by the template
    with SmtpSender(smtp_server.sender_options()) as sender:
        result = sender.send(alice.envelope_from, alice.to_address, payload)
    assert result.ok and result.code == 250
    (received,) = smtp_server.messages
    assert received.mail_from == alice.envelope_from
    assert received.rcpt_tos == (alice.to_address,)
    assert received.data == unstuff(payload) == template.render(alice)
    assert b"\r\n.Ce paragraphe" in received.data


def test_one_connection_carries_many_messages(smtp_server: SmtpServer) -> None:
    with SmtpSender(smtp_server.sender_options()) as sender:
        results = [sender.send(SENDER, f"r{n}@example.net", data(n)) for n in range(5)]
    assert all(result.ok for result in results)
    assert smtp_server.connections == 1
    assert [m.rcpt_tos[0] for m in smtp_server.messages] == [f"r{n}@example.net" for n in range(5)]


def test_4xx_is_temporary_with_the_server_reply(smtp_server: SmtpServer) -> None:
    smtp_server.reply_for("bob@example.net", "451 4.7.1 try later", times=1)
    with SmtpSender(smtp_server.sender_options()) as sender:
        refused = sender.send(SENDER, "bob@example.net", data(1))
        # MAIL was accepted before RCPT was refused: the next transaction still works.
        again = sender.send(SENDER, "bob@example.net", data(1))
    assert refused.outcome is Outcome.TEMPORARY
    assert (refused.code, refused.reply) == (451, "451 4.7.1 try later")
    assert again.ok
    assert len(smtp_server.messages) == 1 and smtp_server.connections == 1


@pytest.mark.parametrize(
    ("stage", "address", "reply"),
    [
        ("RCPT", "eve@example.net", "550 5.1.1 no such user"),
        ("MAIL", SENDER, "553 5.1.8 sender address rejected"),
        ("DATA", "eve@example.net", "554 5.7.1 message looks like spam"),
    ],
)
def test_5xx_is_permanent(smtp_server: SmtpServer, stage: Stage, address: str, reply: str) -> None:
    smtp_server.reply_for(address, reply, times=1, at=stage)
    with SmtpSender(smtp_server.sender_options()) as sender:
        refused = sender.send(SENDER, "eve@example.net", data(1))
        after = sender.send(SENDER, "eve@example.net", data(2))
    assert refused.outcome is Outcome.PERMANENT
    assert (refused.code, refused.reply) == (int(reply[:3]), reply)
    assert after.ok and len(smtp_server.messages) == 1 and smtp_server.connections == 1


def test_a_connection_closed_while_idle_is_reopened(smtp_server: SmtpServer) -> None:
    with SmtpSender(smtp_server.sender_options()) as sender:
        assert sender.send(SENDER, "a@example.net", data(1)).ok
        smtp_server.disconnect_all()  # the server's idle timeout
        assert sender.send(SENDER, "b@example.net", data(2)).ok
        assert sender.send(SENDER, "c@example.net", data(3)).ok
    assert [m.connection for m in smtp_server.messages] == [1, 2, 2]


def test_a_connection_dropped_at_data_is_retried_once(smtp_server: SmtpServer) -> None:
    smtp_server.drop_on_data()
    with SmtpSender(smtp_server.sender_options()) as sender:
        assert sender.send(SENDER, "a@example.net", data(1)).ok
    (received,) = smtp_server.messages
    assert received.rcpt_tos == ("a@example.net",) and received.connection == 2


def test_a_connection_dropped_after_the_payload_is_an_unknown_outcome(
    smtp_server: SmtpServer,
) -> None:
    """The server may have taken the message: not sent again; the next one reconnects."""
    smtp_server.drop_on_data(after_payload=True)
    with SmtpSender(smtp_server.sender_options()) as sender:
        result = sender.send(SENDER, "a@example.net", data(1))
        assert result.outcome is Outcome.UNKNOWN and result.verdict is Verdict.UNKNOWN
        assert "final dot" in result.reply
        assert sender.send(SENDER, "b@example.net", data(2)).ok
    assert [m.rcpt_tos for m in smtp_server.messages] == [("b@example.net",)]
    assert smtp_server.connections == 2


def test_no_reply_to_the_dot_within_the_timeout_is_unknown_and_not_resent(
    smtp_server: SmtpServer,
) -> None:
    smtp_server.hold_dot_replies()
    try:
        with SmtpSender(smtp_server.sender_options(timeout=0.5)) as sender:
            result = sender.send(SENDER, "a@example.net", data(1))
    finally:
        smtp_server.release_dot_replies()
    assert result.outcome is Outcome.UNKNOWN
    assert [m.rcpt_tos for m in smtp_server.messages] == [("a@example.net",)]


def test_auth_without_tls_refuses_to_start_naming_the_keys() -> None:
    with SmtpServer(users={"digest": "s3cret"}) as server:
        with pytest.raises(ConfigError) as raised:
            SmtpSender(server.sender_options())
        assert server.connections == 0
    message = str(raised.value)
    assert "smtp_starttls" in message and "smtp_implicit_tls" in message
    assert "s3cret" not in message


def test_a_connection_dropped_twice_gives_a_temporary_result(smtp_server: SmtpServer) -> None:
    smtp_server.drop_on_data(times=2)
    with SmtpSender(smtp_server.sender_options()) as sender:
        result = sender.send(SENDER, "a@example.net", data(1))
        assert result.outcome is Outcome.TEMPORARY and result.code == 421
        assert f"{smtp_server.host}:{smtp_server.port}" in result.reply
        assert sender.send(SENDER, "a@example.net", data(1)).ok
    assert len(smtp_server.messages) == 1


def test_an_unreachable_server_gives_a_temporary_result_naming_it() -> None:
    with SmtpServer() as server:
        options = server.sender_options()
    # The server has stopped: nothing listens on its port any more.
    with SmtpSender(options) as sender:
        result = sender.send(SENDER, "a@example.net", data(1))
    assert result.outcome is Outcome.TEMPORARY and result.code == 421
    assert f"127.0.0.1:{options.port}" in result.reply and "cannot connect" in result.reply


def test_bad_envelopes_and_payloads_are_refused_before_the_server(
    smtp_server: SmtpServer,
) -> None:
    with SmtpSender(smtp_server.sender_options()) as sender:
        injected = sender.send(SENDER, "a@example.net>\r\nRCPT TO:<b@example.net", data(1))
        unfinished = sender.send(SENDER, "a@example.net", b"Subject: no end\r\n\r\nbody\r\n")
        assert sender.send(SENDER, "a@example.net", data(1)).ok
    assert (injected.outcome, injected.code) == (Outcome.PERMANENT, 501)
    assert (unfinished.outcome, unfinished.code) == (Outcome.PERMANENT, 554)
    assert len(smtp_server.messages) == 1


def test_non_ascii_addresses_use_smtputf8(smtp_server: SmtpServer) -> None:
    with SmtpSender(smtp_server.sender_options()) as sender:
        assert sender.send(SENDER, "zoë@exemple.fr", data(1)).ok
    assert smtp_server.messages[0].rcpt_tos == ("zoë@exemple.fr",)


@pytest.mark.parametrize("mode", ["starttls", "implicit_tls"])
def test_tls_and_auth(mode: str) -> None:
    with SmtpServer(users={"digest": "s3cret"}, auth_required=True, **{mode: True}) as server:
        with SmtpSender(server.sender_options()) as sender:
            assert sender.send(SENDER, "a@example.net", data(1)).ok
            assert sender.send(SENDER, "b@example.net", data(2)).ok
        assert [(m.tls, m.login) for m in server.messages] == [(True, "digest")] * 2
        assert server.connections == 1


def test_a_refused_login_raises_without_the_password() -> None:
    with SmtpServer(starttls=True, users={"digest": "s3cret"}) as server:
        options = server.sender_options(password="hunter2-wrong")
        with pytest.raises(DeliveryError) as raised:
            SmtpSender(options).send(SENDER, "a@example.net", data(1))
        assert server.messages == []
    message = str(raised.value)
    assert f"127.0.0.1:{server.port}" in message and "'digest'" in message
    assert "535" in message and "smtp_username" in message
    assert "hunter2" not in message and "hunter2" not in repr(raised.value)
    assert "hunter2" not in repr(options) and "hunter2" not in repr(SmtpSender(options))


def test_missing_starttls_and_untrusted_certificates_raise(smtp_server: SmtpServer) -> None:
    with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
        SmtpSender(smtp_server.sender_options(starttls=True)).send(SENDER, "a@x.net", data(1))
    with SmtpServer(starttls=True) as server:
        # The system's CAs do not know the test certificate.
        untrusted = server.sender_options(ssl_context=None)
        with pytest.raises(DeliveryError, match="TLS handshake"):
            SmtpSender(untrusted).send(SENDER, "a@x.net", data(1))


PoolFor = Callable[..., SendPool]


@pytest.fixture
def pool_for() -> Iterator[PoolFor]:
    """Make pools (options, connections, rate) and close them after the test: a pool keeps
    its connections open between `map` calls."""
    made: list[SendPool] = []

    def make(options: SmtpOptions, connections: int, rate: float = 0) -> SendPool:
        made.append(SendPool(lambda: SmtpSender(options), connections, rate_per_second=rate))
        return made[-1]

    yield make
    for pool in made:
        pool.close()


def test_a_pool_keeps_its_connections_from_one_map_to_the_next(
    smtp_server: SmtpServer, pool_for: PoolFor
) -> None:
    pool = pool_for(smtp_server.sender_options(), connections=3)
    for batch in range(4):  # a send is a map per claimed batch
        results = list(pool.map(jobs(30, start=30 * batch)))
        assert len(results) == 30 and all(result.ok for _, result in results)
    assert len(smtp_server.messages) == 120
    assert smtp_server.connections <= 3  # not 3 per batch
    pool.close()
    pool.close()  # closing twice is harmless
    assert len(list(pool.map(jobs(6, start=120)))) == 6  # a closed pool opens new ones
    assert smtp_server.connections <= 6 and len(smtp_server.messages) == 126


def test_a_sender_that_raised_is_closed_and_the_rest_are_closed_with_the_pool() -> None:
    made: list[SmtpSender] = []
    closed: list[SmtpSender] = []

    class Watched(SmtpSender):
        def close(self) -> None:
            closed.append(self)
            super().close()

    with SmtpServer(starttls=True, users={"digest": "s3cret"}) as server:
        options = server.sender_options(password="wrong")

        def make() -> SmtpSender:
            made.append(Watched(options))
            return made[-1]

        with SendPool(make, 3) as pool:
            with pytest.raises(DeliveryError, match="refused the login"):
                list(pool.map(jobs(10)))
            # The sender whose login was refused is closed at once; only the others wait
            # for the next map.
            assert closed and set(closed).isdisjoint(pool._kept)
            assert set(closed) | set(pool._kept) == set(made)
        assert set(closed) == set(made)


def test_pool_delivers_each_message_exactly_once(
    smtp_server: SmtpServer, pool_for: PoolFor
) -> None:
    pool = pool_for(smtp_server.sender_options(), connections=4)
    results = list(pool.map(jobs(60)))
    assert keys(job for job, _ in results) == list(range(60))
    assert all(result.ok for _, result in results)
    received = sorted(m.rcpt_tos[0] for m in smtp_server.messages)
    assert received == sorted(f"r{n}@example.net" for n in range(60))
    assert smtp_server.connections <= 4 and pool.unstarted == [] and pool.unreported == []


def test_pool_keeps_to_the_rate(smtp_server: SmtpServer, pool_for: PoolFor) -> None:
    pool = pool_for(smtp_server.sender_options(), connections=4, rate=50)
    started = time.monotonic()
    assert len(list(pool.map(jobs(20)))) == 20
    # 20 sends 1/50 s apart span at least 19/50 = 0.38 s, however fast the server is.
    assert time.monotonic() - started >= 0.3


def test_stop_finishes_sends_under_way_and_reports_the_rest(
    smtp_server: SmtpServer, pool_for: PoolFor
) -> None:
    pool = pool_for(smtp_server.sender_options(), connections=2, rate=40)
    pulled: list[Job] = []
    results: list[tuple[Job, SendResult]] = []
    for job, result in pool.map(jobs(None, pulled)):  # pulling must stay lazy
        results.append((job, result))
        if len(results) == 3:
            pool.stop()
    assert len(results) >= 3 and all(result.ok for _, result in results)
    # At most the window (2 x connections) was taken ahead; what did not start is listed,
    # in the order taken.
    assert 1 <= len(pool.unstarted) <= 2 * 2
    assert [job.key for job in pool.unstarted] == keys(pool.unstarted)
    assert keys([job for job, _ in results] + pool.unstarted) == keys(pulled)
    received = {m.rcpt_tos[0] for m in smtp_server.messages}
    assert received == {job.recipient for job, _ in results}
    assert received.isdisjoint(job.recipient for job in pool.unstarted)


def test_closing_the_results_early_keeps_every_job_accounted_for(
    smtp_server: SmtpServer, pool_for: PoolFor
) -> None:
    pool = pool_for(smtp_server.sender_options(), connections=3)
    pulled: list[Job] = []
    results = pool.map(jobs(100, pulled))
    taken = [next(results), next(results)]
    results.close()
    accounted = [job for job, _ in taken + pool.unreported] + pool.unstarted
    assert keys(accounted) == keys(pulled)
    assert len(pulled) < 100
    received = sorted(m.rcpt_tos[0] for m in smtp_server.messages)
    assert received == sorted(job.recipient for job, _ in taken + pool.unreported)


def test_a_sender_error_stops_the_pool_and_is_raised(pool_for: PoolFor) -> None:
    with SmtpServer(starttls=True, users={"digest": "s3cret"}) as server:
        pool = pool_for(server.sender_options(password="wrong"), connections=3)
        pulled: list[Job] = []
        with pytest.raises(DeliveryError, match="refused the login"):
            list(pool.map(jobs(50, pulled)))
        assert server.messages == []
    assert pool.unstarted == pulled and len(pulled) <= 2 * 3
