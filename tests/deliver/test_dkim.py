"""DKIM signatures, checked by dkimpy's verifier with the key served from a fake DNS."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from digest.deliver.dkim import DkimSigner, load_signer
from digest.errors import ConfigError
from tests.deliver.messages import awkward, build, personal

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@functools.cache
def rsa_pem(bits: int = 2048) -> bytes:
    return pem(rsa.generate_private_key(public_exponent=65537, key_size=bits))


@pytest.fixture(params=["rsa", "ed25519"])
def signer(request: pytest.FixtureRequest) -> DkimSigner:
    key = rsa_pem() if request.param == "rsa" else pem(ed25519.Ed25519PrivateKey.generate())
    return DkimSigner("news2026", "example.org", key)


def dns(signer: DkimSigner) -> Callable[..., bytes]:
    """dkimpy's `dnsfunc`: the TXT record of the signer's selector, nothing else."""

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{signer.dns_name()}.".encode()
        return signer.dns_record().encode()

    return lookup


def verify(data: bytes, signer: DkimSigner) -> bool:
    return bool(dkim.verify(data, dnsfunc=dns(signer), minkey=2048))


def tags(signature: bytes) -> dict[str, str]:
    value = re.sub(rb"\r\n[ \t]", b" ", signature).decode().split(":", 1)[1]
    pairs = (tag.strip().split("=", 1) for tag in value.split(";"))
    return {name: re.sub(r"\s", "", text) for name, text in pairs}


@pytest.fixture
def message() -> bytes:
    return build(awkward()).render(personal())


def test_dkimpy_verifies_our_signature(signer: DkimSigner, message: bytes) -> None:
    signature = signer.sign(message, NOW)
    assert verify(signature + message, signer)
    found = tags(signature)
    assert found["a"] == signer.algorithm
    assert found["c"] == "relaxed/simple"
    assert found["d"] == "example.org" and found["s"] == "news2026"
    assert found["t"] == str(int(NOW.timestamp()))
    body = message.split(b"\r\n\r\n", 1)[1]
    assert found["bh"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    signed = found["h"].split(":")
    for name in ("list-unsubscribe", "list-unsubscribe-post", "list-id", "message-id"):
        assert name in signed
    assert signed.count("from") == 2  # oversigned
    assert signature.endswith(b"\r\n") and b"\n" not in signature.replace(b"\r\n", b"")
    assert all(len(line) <= 78 for line in signature.split(b"\r\n"))


def test_tampering_fails_verification(signer: DkimSigner, message: bytes) -> None:
    signature = signer.sign(message, NOW)
    head, body = message.split(b"\r\n\r\n", 1)
    assert b"Se d=C3=A9sabonner" in body
    edits = {
        "body": head + b"\r\n\r\n" + body.replace(b"Se d=C3=A9sabonner", b"Se d=C3=A9sabonnez"),
        "one-click header": message.replace(
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            b"List-Unsubscribe-Post: List-Unsubscribe=Nope",
        ),
        "second From": b"From: ceo@example.org\r\n" + message,
        "removed one-click header": message.replace(
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b""
        ),
    }
    for what, tampered in edits.items():
        assert tampered != message, what
        assert not verify(signature + tampered, signer), what


def test_relaxed_headers_survive_refolding(signer: DkimSigner, message: bytes) -> None:
    signature = signer.sign(message, NOW)
    refolded = message.replace(b"MIME-Version: 1.0", b"MIME-Version:   1.0  ").replace(
        b"Precedence: bulk\r\n", b"Precedence: bulk\r\nReceived: by relay.example.net\r\n"
    )
    assert verify(b"Received: by mx.example.net\r\n" + signature + refolded, signer)


def test_signatures_differ_per_recipient(signer: DkimSigner) -> None:
    template = build(awkward())
    for index in range(3):
        data = template.render(personal(message_id=f"12.fr.{index}"))
        assert verify(signer.sign(data, NOW + timedelta(seconds=index)) + data, signer)


def test_dns_record_and_time() -> None:
    signer = DkimSigner("s", "example.org", pem(ed25519.Ed25519PrivateKey.generate()))
    assert re.fullmatch(r"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=", signer.dns_record())
    assert signer.dns_name() == "s._domainkey.example.org"
    brussels = timezone(timedelta(hours=1))
    signature = signer.sign(b"Subject: x\r\n\r\nbody\r\n", NOW.astimezone(brussels))
    assert tags(signature)["t"] == str(int(NOW.timestamp()))
    with pytest.raises(ValueError, match="aware"):
        signer.sign(b"Subject: x\r\n\r\nbody\r\n", datetime(2026, 11, 23))


def test_weak_or_wrong_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"RSA-1024 is too weak.*2048"):
        DkimSigner("s", "example.org", rsa_pem(1024))
    with pytest.raises(ConfigError, match="cannot sign DKIM"):
        DkimSigner("s", "example.org", pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        DkimSigner("s", "example.org", b"-----BEGIN PRIVATE KEY-----\nnope\n")
    missing = tmp_path / "dkim.pem"
    with pytest.raises(
        ConfigError, match=re.escape(str(missing)) + " does not exist.*openssl genpkey"
    ):
        load_signer("s", "example.org", missing)
    missing.write_bytes(rsa_pem(1024))
    with pytest.raises(ConfigError, match=re.escape(str(missing)) + ": .*too weak"):
        load_signer("s", "example.org", missing)
    missing.write_bytes(rsa_pem())
    assert load_signer("s", "example.org", missing).algorithm == "rsa-sha256"
