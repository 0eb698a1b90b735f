"""Bounces arrive by themselves: the scheduler reads a Maildir, or an IMAP folder over TLS
on a real Dovecot the test starts, applies each report, moves it aside, and says in
`digest status` when the mailbox cannot be read."""

from __future__ import annotations

import dataclasses
import imaplib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.config import BouncesSettings, Secret
from digest.pipeline import health, scheduler, sending
from digest.store.models import Delivery, DeliveryState
from subscribers.model import Subscriber, SubscriberStatus
from tests.scheduling.conftest import patient
from tests.services import unavailable
from tests.smtpserver import certificate
from tests.test_returns import complaint, dsn, sent_message
from tests.test_send import add_people, approved_issue, settings_for

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def sent(make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]) -> Any:
    settings = patient(settings_for(make_settings, tmp_path, None))
    add_people(settings, factory)
    approved_issue(settings, factory)
    assert sending.send(settings, factory).finished
    return settings


def reports(settings: Any) -> tuple[bytes, bytes]:
    outbox = settings.delivery.outbox_dir
    bounce = dsn(sent_message(outbox, "bram@example.be"), "5.1.1", "550 5.1.1 user unknown")
    return bounce, complaint(sent_message(outbox, "ana@example.net"))


def states(factory: sessionmaker[Session]) -> dict[str, SubscriberStatus]:
    with factory() as session:
        return dict(session.execute(sa.select(Subscriber.email, Subscriber.status)).all())


def run_job(settings: Any, factory: sessionmaker[Session]) -> str:
    return scheduler.execute(scheduler.Runtime(settings, factory), "bounces", now=NOW)


def test_the_scheduler_reads_a_maildir_and_moves_what_it_read(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings = sent(make_settings, tmp_path, factory)
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    bounce, spam = reports(settings)
    (maildir / "new" / "1700000000.1.host").write_bytes(bounce)
    (maildir / "cur" / "1700000000.2.host:2,").write_bytes(spam)
    (maildir / "new" / "1700000000.3.host").write_bytes(b"\x00\x01 not mail")
    settings = dataclasses.replace(settings, bounces=BouncesSettings(maildir=maildir))

    said = run_job(settings, factory)
    assert "3 messages, 1 bounces, 1 complaints, 1 unreadable" in said, said
    people = states(factory)
    assert people["bram@example.be"] is SubscriberStatus.BOUNCED
    assert people["ana@example.net"] is SubscriberStatus.COMPLAINED
    assert not os.listdir(maildir / "new") and not os.listdir(maildir / "cur")
    assert sorted(os.listdir(maildir / ".processed" / "cur")) == [
        "1700000000.1.host:2,S",
        "1700000000.2.host:2,",
    ]
    assert os.listdir(maildir / ".unreadable" / "cur") == ["1700000000.3.host:2,S"]
    assert "0 messages" in run_job(settings, factory), "each message is read once"


def test_a_mailbox_that_cannot_be_read_shows_in_status(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings = sent(make_settings, tmp_path, factory)
    settings = dataclasses.replace(
        settings, bounces=BouncesSettings(maildir=tmp_path / "no-such-maildir")
    )
    said = run_job(settings, factory)
    assert "is not a Maildir" in said
    report = health.gather(settings, factory, now=NOW)
    assert report.level == health.WARNING
    assert any(
        f.text.startswith("job bounces failed: bounce mailbox: [bounces] maildir")
        for f in report.findings
    ), report.findings


# --- IMAP over TLS, with a real Dovecot ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


DOVECOT_CONF = """
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain
disable_plaintext_auth = yes
default_internal_user = {user}
default_login_user = {login_user}
mail_location = maildir:{root}/home/%u/Maildir
first_valid_uid = 1
passdb {{
  driver = static
  args = password=bounce-secret
}}
userdb {{
  driver = static
  args = uid={user} gid={user} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


@pytest.fixture
def dovecot() -> Iterator[tuple[int, Path]]:
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not Path(binary).exists():
        unavailable("Dovecot is not installed (Debian: dovecot-imapd)")
    if os.geteuid() != 0:
        unavailable("this test starts Dovecot as root (it drops to the dovecot user)")
    root = Path(tempfile.mkdtemp(prefix="digest-imap-"))
    root.chmod(0o755)
    cert, key = certificate()
    (root / "cert.pem").write_bytes(cert)
    (root / "key.pem").write_bytes(key)
    (root / "home").mkdir()
    shutil.chown(root / "home", "dovecot", "dovecot")
    port = _free_port()
    conf = root / "dovecot.conf"
    conf.write_text(
        DOVECOT_CONF.format(root=root, port=port, user="dovecot", login_user="dovenull"),
        encoding="utf-8",
    )
    process = subprocess.Popen([binary, "-F", "-c", str(conf)])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (root / "dovecot.log").read_text()
                        if (root / "dovecot.log").exists()
                        else ""
                    )
                    raise AssertionError(f"dovecot did not start: {log}") from None
                time.sleep(0.1)
        yield port, root
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def imap_client(port: int, root: Path) -> imaplib.IMAP4_SSL:
    context = ssl.create_default_context(cafile=str(root / "cert.pem"))
    client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=30)
    client.login("bounces", "bounce-secret")
    return client


def test_the_scheduler_reads_an_imap_folder_over_tls(
    make_settings: Any,
    tmp_path: Path,
    factory: sessionmaker[Session],
    dovecot: tuple[int, Path],
) -> None:
    port, root = dovecot
    settings = sent(make_settings, tmp_path, factory)
    bounce, spam = reports(settings)
    with imap_client(port, root) as client:
        for message in (bounce, spam):
            status, _ = client.append("INBOX", None, None, message)
            assert status == "OK"
    imap = BouncesSettings(
        imap_host="127.0.0.1",
        imap_port=port,
        imap_username="bounces",
        imap_password=Secret("bounce-secret"),
        imap_ca_file=root / "cert.pem",
    )
    settings = dataclasses.replace(settings, bounces=imap)

    said = run_job(settings, factory)
    assert "2 messages, 1 bounces, 1 complaints, 0 unreadable" in said, said
    people = states(factory)
    assert people["bram@example.be"] is SubscriberStatus.BOUNCED
    assert people["ana@example.net"] is SubscriberStatus.COMPLAINED
    with factory() as session:
        bounced = session.scalars(
            sa.select(Delivery).where(Delivery.state == DeliveryState.BOUNCED)
        ).all()
        assert len(bounced) == 1
    with imap_client(port, root) as client:
        assert client.select("INBOX")[1] == [b"0"], "moved out of the inbox"
        assert client.select("digest-processed")[1] == [b"2"]
    assert "0 messages" in run_job(settings, factory)

    wrong = dataclasses.replace(imap, imap_password=Secret("wrong"))
    said = run_job(dataclasses.replace(settings, bounces=wrong), factory)
    assert "cannot be read" in said and "imap_*" in said, said
    # Without the private CA, the server's certificate is refused: TLS is verified.
    unverified = dataclasses.replace(imap, imap_ca_file=None)
    said = run_job(dataclasses.replace(settings, bounces=unverified), factory)
    assert "CERTIFICATE_VERIFY_FAILED" in said, said
    assert config.Settings  # the settings type the scheduler reads
