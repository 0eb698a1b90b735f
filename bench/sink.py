"""A fast SMTP sink for the delivery benchmark, and the raw ceiling to compare senders with.

aiosmtpd parses each line in Python and tops out near 250 messages a second, so a
benchmark against it would measure aiosmtpd. The sink does no more than the dialogue
needs: it greets, answers 250 to EHLO, MAIL, RCPT, RSET and NOOP, 354 to DATA, then only
looks for CRLF "." CRLF in what arrives and answers 250; QUIT gets 221. It counts messages
and octets, and runs in a process of its own, so it does not share the GIL with the sender
being measured.

`raw_ceiling` speaks the same dialogue over the same number of connections, from threads,
with every byte built beforehand and no smtplib (MAIL, RCPT and DATA pipelined, as the
sink offers PIPELINING and digest uses it when offered): the most a sender in this process could
reach, against which `SmtpSender` + `SendPool` are compared.

    .venv/bin/python bench/sink.py [--connections 4] [--messages 3000] [--size 120000]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

END = b"\r\n.\r\n"
_RECEIVE = 1 << 20
_REPLIES = {
    b"EHLO": b"250-sink\r\n250-8BITMIME\r\n250 PIPELINING\r\n",
    b"HELO": b"250 sink\r\n",
    b"MAIL": b"250 2.1.0 ok\r\n",
    b"RCPT": b"250 2.1.5 ok\r\n",
    b"RSET": b"250 2.0.0 ok\r\n",
    b"NOOP": b"250 2.0.0 ok\r\n",
    b"DATA": b"354 end with <CRLF>.<CRLF>\r\n",
    b"QUIT": b"221 2.0.0 bye\r\n",
}


@dataclass
class _Client:
    sock: socket.socket
    line: bytes = b""
    in_data: bool = False
    tail: bytes = b""
    """The last bytes of DATA so far, to find a CRLF "." CRLF split between two reads."""


def _serve(control: Connection, host: str, messages: Any, octets: Any) -> None:
    """The sink's process: serve until `control` is closed or written to."""
    listener = socket.create_server((host, 0), backlog=128)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    selector.register(control, selectors.EVENT_READ, control)
    control.send(listener.getsockname()[1])
    while True:
        for key, _ in selector.select():
            if key.data is None:
                sock, _address = listener.accept()
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.send(b"220 sink ESMTP\r\n")
                selector.register(sock, selectors.EVENT_READ, _Client(sock))
            elif key.data is control:
                for other in list(selector.get_map().values()):
                    if isinstance(other.data, _Client):
                        other.data.sock.close()
                listener.close()
                return
            else:
                client: _Client = key.data
                try:
                    chunk = client.sock.recv(_RECEIVE)
                    replies, done = _feed(client, chunk, messages, octets)
                    if replies:
                        client.sock.sendall(replies)
                except OSError:
                    done = True
                if done:
                    selector.unregister(client.sock)
                    client.sock.close()


def _feed(client: _Client, chunk: bytes, messages: Any, octets: Any) -> tuple[bytes, bool]:
    """Consume what arrived; return the replies to send and whether the session ended."""
    if not chunk:
        return b"", True
    replies = bytearray()
    while chunk:
        if client.in_data:
            # The terminator may start in the previous read: look across the seam first.
            seam = client.tail + chunk[:4]
            found = seam.find(END)
            if found >= 0:
                end = found + len(END) - len(client.tail)
            else:
                found = chunk.find(END)
                end = found + len(END) if found >= 0 else -1
            if end < 0:
                octets.value += len(chunk)
                client.tail = chunk[-4:] if len(chunk) >= 4 else (client.tail + chunk)[-4:]
                return bytes(replies), False
            octets.value += end
            messages.value += 1
            client.in_data = False
            replies += b"250 2.0.0 queued\r\n"
            chunk = chunk[end:]
            continue
        client.line += chunk
        chunk = b""
        while not client.in_data and b"\n" in client.line:
            command, client.line = client.line.split(b"\n", 1)
            verb = command[:4].upper()
            replies += _REPLIES.get(verb, b"502 5.5.2 not implemented\r\n")
            if verb == b"QUIT":
                return bytes(replies), True
            if verb == b"DATA":
                # The CRLF that ended the command counts, so an empty message ends at ".".
                client.in_data, client.tail = True, b"\r\n"
                chunk, client.line = client.line, b""
    return bytes(replies), False


@dataclass
class Sink:
    """A running sink: where it listens, what it received; `stop()` ends its process."""

    host: str
    port: int
    _process: BaseProcess = field(repr=False)
    _control: Connection = field(repr=False)
    _messages: Any = field(repr=False)
    _octets: Any = field(repr=False)

    def count(self) -> int:
        """Return how many messages the sink has accepted."""
        return int(self._messages.value)

    def octets(self) -> int:
        """Return how many octets of DATA (terminators included) the sink has read."""
        return int(self._octets.value)

    def stop(self) -> None:
        """Stop the sink's process (terminated if it does not end within 5 s)."""
        if self._control.closed:
            return
        self._control.send(None)
        self._control.close()
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_sink(host: str = "127.0.0.1") -> Sink:
    """Start a sink in a new process on `host` and a free port; return once it listens."""
    context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
    ours, theirs = context.Pipe()
    # Written only by the sink, read here: no lock needed.
    messages, octets = context.RawValue("q", 0), context.RawValue("q", 0)
    process = context.Process(
        target=_serve, args=(theirs, host, messages, octets), name="smtp-sink", daemon=True
    )
    process.start()
    theirs.close()
    try:
        if not ours.poll(30):
            raise RuntimeError("the SMTP sink did not start within 30 s")
        port: int = ours.recv()
    except (EOFError, RuntimeError):
        process.terminate()
        process.join()
        raise RuntimeError(
            "the SMTP sink's process ended while starting (its error is printed above); "
            'a script that starts it needs `if __name__ == "__main__":` around its code'
        ) from None
    return Sink(host, port, process, ours, messages, octets)


def _expect(reader: Any, code: bytes) -> None:
    """Read one (possibly multi-line) reply and check its code."""
    while True:
        line: bytes = reader.readline()
        if not line.startswith(code):
            raise RuntimeError(f"expected {code.decode()}, got {line!r}")
        if line[3:4] != b"-":
            return


def raw_ceiling(host: str, port: int, connections: int, data: bytes, messages: int) -> float:
    """Send `messages` copies of the DATA payload `data` over `connections` connections in
    threads, pre-built bytes and nothing else; return messages per second, counted from
    when every connection has said EHLO until the last 250."""
    if not data.endswith(END):
        raise ValueError('data must be a DATA payload ending in CRLF "." CRLF')
    shares = [messages // connections + (n < messages % connections) for n in range(connections)]
    envelope = b"MAIL FROM:<bench@example.org>\r\nRCPT TO:<sink@example.net>\r\nDATA\r\n"
    ready = threading.Barrier(connections + 1)
    errors: list[BaseException] = []

    def run(share: int) -> None:
        try:
            with socket.create_connection((host, port)) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                reader = sock.makefile("rb")
                _expect(reader, b"220")
                sock.sendall(b"EHLO bench.example.org\r\n")
                _expect(reader, b"250")
                ready.wait()
                for _ in range(share):
                    # PIPELINING (the sink offers it, and digest uses it when offered):
                    # MAIL, RCPT and DATA in one write, then their three replies.
                    sock.sendall(envelope)
                    _expect(reader, b"250")
                    _expect(reader, b"250")
                    _expect(reader, b"354")
                    sock.sendall(data)
                    _expect(reader, b"250")
                sock.sendall(b"QUIT\r\n")
                _expect(reader, b"221")
        except BaseException as exc:
            errors.append(exc)
            ready.abort()

    threads = [threading.Thread(target=run, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()  # broken when a connection failed; its error is raised below
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return messages / elapsed


def payload(size: int) -> bytes:
    """Return a DATA payload of about `size` octets: headers, then 76-octet lines (as
    quoted-printable writes them), then the terminator."""
    head = b"From: bench@example.org\r\nTo: sink@example.net\r\nSubject: bench\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    return head + line * max(1, (size - len(head)) // len(line)) + b".\r\n"


def main() -> None:
    """Print the raw ceiling for the message size and connections given."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--size", type=int, default=120_000, help="octets per message")
    arguments = parser.parse_args()
    data = payload(arguments.size)
    with start_sink() as sink:
        rate = raw_ceiling(sink.host, sink.port, arguments.connections, data, arguments.messages)
        assert sink.count() == arguments.messages, (sink.count(), arguments.messages)
    print(
        f"raw ceiling: {rate:,.0f} messages/s ({rate * len(data) / 1e6:,.0f} MB/s) "
        f"for {len(data):,}-octet messages over {arguments.connections} connections"
    )


if __name__ == "__main__":
    main()
