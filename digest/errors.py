"""Every error digest raises on purpose, each saying what happened, to what, and what to do.

    DigestError
    ├── ConfigError                 a key, value or file of the configuration is wrong
    ├── SourceError                 one source failed; recorded on the source, never stops the run
    │   ├── FetchError              the bytes could not be had
    │   │   ├── BlockedAddressError the SSRF guard refused the address ([collect] allow_networks)
    │   │   ├── FetchTimeout        connect or total time ran out
    │   │   ├── TooLargeError       the body passed [collect] max_bytes after decompression
    │   │   ├── GoneError           410 Gone: the source is deactivated
    │   │   ├── RateLimitedError    429/503: the next fetch is postponed (retry_after)
    │   │   └── HTTPStatusError     any other non-success status
    │   └── ParseError              the bytes are not a feed / calendar we can read
    │       └── ParseTimeout        parsing ran past its time bound and was killed
    ├── BounceError                 a message in the bounce mailbox is not a report we can read
    └── NotFoundError               a named thing (source, issue, subscriber) does not exist

Per-source and per-recipient failures are caught, recorded and counted by the pipeline;
only configuration and usage errors reach the user as a non-zero exit.
"""

from __future__ import annotations

from datetime import datetime


class DigestError(Exception):
    """Base of every error digest raises on purpose; its message is meant for the user."""


class ConfigError(DigestError):
    """The configuration file or an environment override is wrong."""


class NotFoundError(DigestError):
    """A source, issue or subscriber named by the user does not exist."""


class SourceError(DigestError):
    """One source could not be collected. The message names the URL and what to do."""


class FetchError(SourceError):
    """The source's bytes could not be fetched."""


class BlockedAddressError(FetchError):
    """The host resolves to an address the SSRF guard refuses."""


class FetchTimeout(FetchError):
    """Connecting or the whole transfer took longer than [collect] timeout_seconds."""


class TooLargeError(FetchError):
    """The (decompressed) body is larger than [collect] max_bytes."""


class GoneError(FetchError):
    """The server answered 410 Gone: the source is deactivated."""


class RateLimitedError(FetchError):
    """The server answered 429 or 503; `retry_after` is when it asked us to come back."""

    def __init__(self, message: str, retry_after: datetime | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HTTPStatusError(FetchError):
    """The server answered with a status we cannot use (404, 500, …)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ParseError(SourceError):
    """The bytes are not a feed or calendar we can read."""


class ParseTimeout(ParseError):
    """Parsing took longer than its bound (hostile or pathological input) and was stopped."""


class BounceError(DigestError):
    """A bounce or complaint message could not be read; the message names its file."""


class DeliveryError(DigestError):
    """Sending cannot go on: the server refuses us (auth, TLS), another sender holds the
    issue, or the error budget ran out. The message says what to check."""


class DatabaseError(DigestError):
    """The database is missing, unreadable, read-only or corrupt; the message says the next
    step (`digest init`, a path or permission to fix, `digest restore`)."""


class SchemaError(DatabaseError):
    """The database's schema is older or newer than this digest's: `digest upgrade`, or
    install the newer digest that wrote it."""
