"""Time building messages per recipient: the naive `EmailMessage` way against a template
built once, and dkimpy's signing against ours, for one ~120 KB French variant.

Prints medians per message, the ratios, the quoted-printable size overhead, and how many
messages one core renders, signs and dot-stuffs per second. No database, no network.

    .venv/bin/python bench/message.py [--runs 200] [--items 45]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

import dkim  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.deliver.dkim import SIGNED_HEADERS, DkimSigner
from digest.deliver.message import (
    PREFERENCES_MARKER,
    UNSUBSCRIBE_MARKER,
    MessageTemplate,
    Personal,
    marker,
    marker_links,
    unsubscribe_url,
)
from digest.render import RenderedEmail
from digest.render.email import render_email
from digest.render.environment import make_environment
from tests.render.plans import BASE_URL, large_plan

T = TypeVar("T")
SENDER = "Cities & Migration Digest <digest@example.org>"
LANGUAGE = "fr"
LENGTH = 40
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def timed(runs: int, step: Callable[[], T]) -> tuple[float, T]:
    """Run `step` `runs` times; return the median in microseconds and the last result."""
    durations = []
    result = step()  # warm-up
    for _ in range(runs):
        start = time.perf_counter()
        result = step()
        durations.append((time.perf_counter() - start) * 1e6)
    return statistics.median(durations), result


def recipient(n: int) -> Personal:
    """The n-th subscriber, with tokens of the template's length."""
    return Personal(
        to_address=f"reader{n}@example.net",
        to_name=f"Zoë Lecteur {n}",
        unsubscribe_token=f"{n:08d}.".ljust(LENGTH, "u"),
        preferences_token=f"{n:08d}.".ljust(LENGTH, "p"),
        message_id=f"12.{LANGUAGE}.{n}",
        date="Mon, 23 Nov 2026 07:00:00 +0000",
        envelope_from=f"bounces+reader{n}=example.net@example.org",
    )


def naive(variant: RenderedEmail, person: Personal) -> bytes:
    """Build and serialize one message with the standard library, as most senders do."""
    tokens = {
        marker(UNSUBSCRIBE_MARKER, LENGTH): person.unsubscribe_token,
        marker(PREFERENCES_MARKER, LENGTH): person.preferences_token,
    }
    text, html = variant.text, variant.html
    for stand_in, token in tokens.items():
        text, html = text.replace(stand_in, token), html.replace(stand_in, token)
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = Address(person.to_name, addr_spec=person.to_address)
    message["Subject"] = variant.subject
    message["Date"] = person.date
    message["Message-ID"] = f"<{person.message_id}@example.org>"
    url = unsubscribe_url(BASE_URL, LANGUAGE, person.unsubscribe_token)
    message["List-Unsubscribe"] = f"<{url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["List-Id"] = f"<{LANGUAGE}.digest.example.org>"
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = LANGUAGE
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message.as_bytes(policy=policy.SMTP)


def dkimpy_signing(message: bytes, key: bytes, algorithm: str) -> Callable[[], bytes]:
    """One dkimpy signature of `message` with our canonicalization and header list."""
    include = [name.encode() for name in SIGNED_HEADERS]

    def sign() -> bytes:
        signature: bytes = dkim.sign(
            message,
            b"sel",
            b"example.org",
            key,
            canonicalize=(b"relaxed", b"simple"),
            include_headers=include,
            signature_algorithm=algorithm.encode(),
        )
        return signature

    return sign


def our_signing(message: bytes, signer: DkimSigner) -> Callable[[], bytes]:
    """One `DkimSigner` signature of `message`."""
    return lambda: signer.sign(message, NOW)


def main() -> None:
    """Build the variant, then print the per-message table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per step (median)")
    parser.add_argument("--items", type=int, default=45, help="items in the issue")
    options = parser.parse_args()
    runs = options.runs

    links = marker_links(BASE_URL, LANGUAGE, f"{BASE_URL}/{LANGUAGE}/12", LENGTH)
    variant = render_email(large_plan(options.items), LANGUAGE, links, make_environment(None))
    start = time.perf_counter()
    template = MessageTemplate.build(
        variant,
        sender=SENDER,
        list_id=f"{LANGUAGE}.digest.example.org",
        base_url=BASE_URL,
        unsubscribe_mailto=None,
        language=LANGUAGE,
        token_length=LENGTH,
    )
    build_ms = (time.perf_counter() - start) * 1000
    alice = recipient(1)
    message = template.render(alice)
    decoded = len(variant.text.encode()) + len(variant.html.encode())
    print(f"variant: {options.items} items, {LANGUAGE}, message {len(message) / 1024:.1f} KB")
    print(
        f"  parts decoded {decoded / 1024:.1f} KB, quoted-printable overhead "
        f"{len(message) / decoded - 1:.1%}; template built once in {build_ms:.1f} ms"
    )

    print(f"\nper message, median of {runs} runs (µs)")
    naive_us, _ = timed(runs, lambda: naive(variant, alice))
    render_us, _ = timed(runs * 10, lambda: template.render(alice))
    stuffed_us, _ = timed(runs * 10, lambda: template.render_stuffed(alice))
    smtplib_us, _ = timed(runs * 10, lambda: re.sub(rb"(?m)^\.", b"..", message))
    print(f"  EmailMessage build + as_bytes   {naive_us:10.1f}")
    print(f"  MessageTemplate.render          {render_us:10.1f}   {naive_us / render_us:6.0f}x")
    print(f"  MessageTemplate.render_stuffed  {stuffed_us:10.1f}")
    print(f"  smtplib's dot-stuffing regex    {smtplib_us:10.1f}   (saved per message)")

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_pem = ed_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ours = {
        "rsa-sha256": DkimSigner("sel", "example.org", rsa_pem),
        "ed25519-sha256": DkimSigner("sel", "example.org", ed_pem),
    }
    hash_us, _ = timed(runs, lambda: hashlib.sha256(message).digest())
    print(f"\nDKIM per message, median of {runs} runs (µs); body SHA-256 alone {hash_us:.1f}")
    raw_seed = ed_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    # dkimpy takes RSA keys as PEM and Ed25519 keys as the base64 of the 32-byte seed.
    dkimpy_keys = {"rsa-sha256": rsa_pem, "ed25519-sha256": base64.b64encode(raw_seed)}
    for algorithm, signer in ours.items():
        dkimpy_us, _ = timed(
            max(runs // 4, 5), dkimpy_signing(message, dkimpy_keys[algorithm], algorithm)
        )
        ours_us, _ = timed(runs, our_signing(message, signer))
        print(
            f"  {algorithm:<15} dkimpy {dkimpy_us:9.1f}   ours {ours_us:7.1f}   "
            f"{dkimpy_us / ours_us:5.0f}x"
        )

    print("\nrender + sign + render_stuffed, one core")
    people = [recipient(n) for n in range(2000)]
    for algorithm, signer in ours.items():
        start = time.perf_counter()
        for person in people:
            signature = signer.sign(template.render(person), NOW)
            template.render_stuffed(person, signature)
        rate = len(people) / (time.perf_counter() - start)
        print(f"  {algorithm:<15} {rate:9.0f} messages/s")


if __name__ == "__main__":
    main()
