"""Sign messages with DKIM (RFC 6376): RSA-SHA256 or Ed25519-SHA256 (RFC 8463).

Canonicalization is relaxed for headers and simple for the body: our bodies are 7-bit
quoted-printable with CRLF lines, so nothing on the way has reason to touch them, and simple
body canonicalization is one hash over the bytes (dkimpy's relaxed body pass is most of its
signing time). The signature covers an explicit header list with List-Unsubscribe and
List-Unsubscribe-Post (Gmail and Yahoo honour one-click unsubscribe only when signed;
dkimpy's default list omits the latter) and names From twice, so a second From added on
the way fails verification. Signing is done by `cryptography` (OpenSSL), and is pure: the
caller passes the time.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from digest.errors import ConfigError

SIGNED_HEADERS = (
    "from", "to", "subject", "date", "message-id", "list-unsubscribe",
    "list-unsubscribe-post", "list-id", "mime-version", "content-type",
    "content-language", "auto-submitted",
)  # fmt: skip
"""Signed when present; absent ones are signed as absent, so adding them breaks the signature."""
OVERSIGNED = ("from",)
"""Named once more than they occur: a copy added on the way makes verification fail."""
MIN_RSA_BITS = 2048
_WSP = re.compile(rb"[ \t]+")
_FOLD = b"\r\n\t"
_T, _BH = "\x00" * 10, "\x01" * 44  # stand-ins for t= (until 2286) and bh= (SHA-256, base64)
_GENERATE = (
    "generate one with `openssl genpkey -algorithm ed25519 -out dkim.pem` (or "
    "`-algorithm RSA -pkeyopt rsa_keygen_bits:2048`) and publish dns_record() under "
    "SELECTOR._domainkey.DOMAIN"
)


class DkimSigner:
    """Signs messages for one selector and domain with an RSA (≥ 2048 bits) or Ed25519 key."""

    def __init__(
        self,
        selector: str,
        domain: str,
        private_key_pem: bytes,
        *,
        headers: Sequence[str] = SIGNED_HEADERS,
        oversign: Sequence[str] = OVERSIGNED,
    ) -> None:
        where = f"DKIM key for {selector}._domainkey.{domain}"
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigError(
                f"{where}: not an unencrypted PEM private key ({exc}); {_GENERATE}"
            ) from exc
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < MIN_RSA_BITS:
                raise ConfigError(
                    f"{where}: RSA-{key.key_size} is too weak (receivers ignore or reject "
                    f"signatures under {MIN_RSA_BITS} bits); {_GENERATE}"
                )
            self.algorithm = "rsa-sha256"
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            self.algorithm = "ed25519-sha256"
        else:
            raise ConfigError(f"{where}: a {type(key).__name__} cannot sign DKIM; {_GENERATE}")
        self._key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = key
        self.selector = selector
        self.domain = domain
        names = [name.lower() for name in headers] + [name.lower() for name in oversign]
        self._headers = [name.encode("ascii") for name in names]
        tags = [
            "v=1",
            f"a={self.algorithm}",
            "c=relaxed/simple",
            f"d={domain}",
            f"s={selector}",
            f"t={_T}",
            f"h={':'.join(names)}",
            f"bh={_BH}",
        ]
        # The layout is the same for every message (t= and bh= have fixed lengths); b=
        # starts its own line, so the bytes before it do not depend on the signature.
        self._layout = _fold_tags("DKIM-Signature: ", tags) + ";" + _FOLD.decode() + "b="

    def dns_name(self) -> str:
        """Return where the public key is published: "SELECTOR._domainkey.DOMAIN"."""
        return f"{self.selector}._domainkey.{self.domain}"

    def dns_record(self) -> str:
        """Return the TXT record to publish: "v=DKIM1; k=rsa; p=…" (or k=ed25519)."""
        public = self._key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"

    def sign(self, message: bytes, now: datetime) -> bytes:
        """Return the DKIM-Signature header field (folded, CRLF-terminated) to put in
        front of `message`, an RFC 5322 message with CRLF lines signed at `now`."""
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        end = message.find(b"\r\n\r\n")
        head = message if end < 0 else message[: end + 2]
        # Simple body canonicalization: no trailing empty lines, and a final CRLF. A view,
        # not a copy: the body is most of the message.
        body = memoryview(message)[end + 4 :] if end >= 0 else memoryview(b"")
        while body.nbytes >= 4 and body[-4:].tobytes() == b"\r\n\r\n":
            body = body[:-2]
        digest = hashlib.sha256(body)
        if body[-2:].tobytes() != b"\r\n":
            digest.update(b"\r\n")
        t, bh = str(int(now.timestamp())), base64.b64encode(digest.digest()).decode()
        if len(t) != len(_T):
            raise ValueError(f"cannot sign at {now.isoformat()}: t= must have 10 digits")
        unsigned = self._layout.replace(_T, t).replace(_BH, bh)
        data = self._signed_headers(head) + _relaxed(unsigned.encode("ascii"))
        if isinstance(self._key, rsa.RSAPrivateKey):
            signature = self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        else:  # RFC 8463: Ed25519 signs the SHA-256 hash of the data
            signature = self._key.sign(hashlib.sha256(data).digest())
        b64 = base64.b64encode(signature)
        return unsigned.encode("ascii") + _FOLD.join(_chunks(b64, 72)) + b"\r\n"

    def _signed_headers(self, head: bytes) -> bytes:
        """Return the relaxed-canonicalized fields named in h=, each CRLF-terminated,
        taking repeated names from the bottom up (RFC 6376 5.4.2)."""
        fields: dict[bytes, list[bytes]] = {}
        for field in re.split(rb"\r\n(?![ \t])", head.removesuffix(b"\r\n")):
            name = field.split(b":", 1)[0].strip(b" \t").lower()
            fields.setdefault(name, []).append(field)
        out = []
        for name in self._headers:
            found = fields.get(name)
            if found:
                out.append(_relaxed(found.pop()) + b"\r\n")
        return b"".join(out)


def _relaxed(field: bytes) -> bytes:
    """Relaxed header canonicalization (RFC 6376 3.4.2), without the final CRLF."""
    name, _, value = field.partition(b":")
    value = _WSP.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name.strip(b" \t").lower() + b":" + value


def _fold_tags(start: str, tags: list[str]) -> str:
    """Join tags with "; ", breaking lines before 78 columns (h= also after its colons)."""
    lines, line = [], start
    for i, tag in enumerate(tags):
        words = re.findall(r"[^:]+:?", tag) if tag.startswith("h=") else [tag]
        for j, word in enumerate(words):
            text = word + (";" if j == len(words) - 1 and i < len(tags) - 1 else "")
            glue = "" if j > 0 or line == start else " "
            if len(line) + len(glue) + len(text) > 78 and line.strip():
                lines.append(line)
                line, glue = "\t", ""
            line += glue + text
    return "\r\n".join([*lines, line])


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def load_signer(selector: str, domain: str, key_file: Path) -> DkimSigner:
    """Return a signer for the PEM key in `key_file`; ConfigError says what is wrong."""
    try:
        pem = key_file.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"DKIM key file {key_file} does not exist; {_GENERATE}") from exc
    except OSError as exc:
        raise ConfigError(f"DKIM key file {key_file} cannot be read: {exc}") from exc
    try:
        return DkimSigner(selector, domain, pem)
    except ConfigError as exc:
        raise ConfigError(f"{key_file}: {exc}") from exc
