"""What can go wrong with a subscriber, as one exception tree the CLI and web app can catch.

```
SubscriberError
├── InvalidAddress      not an address we can mail (ValueError)
├── InvalidField        a language, cadence or name we cannot use (ValueError)
├── Duplicate           the address is already on the list
├── Suppressed          unsubscribed, erased, bounced or complained before: never re-added
├── CsvFormatError      the CSV as a whole is unusable (no header, no email column)
└── TokenError          a link's token is no good (ValueError)
    ├── TokenInvalid    tampered, for another purpose, or signed with an unknown key
    └── TokenExpired    a confirmation link older than its maximum age
```

Messages name the address, field or token purpose and say what to do next; the web app
must still give the same answer whether or not an address exists (it catches these).
"""

from __future__ import annotations


class SubscriberError(Exception):
    """Base of every error raised by `subscribers`."""


class InvalidAddress(SubscriberError, ValueError):
    """The text is not a single email address we can send to."""


class InvalidField(SubscriberError, ValueError):
    """A subscriber field (language, cadence, name) has a value we cannot use."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Duplicate(SubscriberError):
    """The address is already on the list."""


class Suppressed(SubscriberError):
    """The address unsubscribed, was erased, bounced or complained: it is never re-added."""


class CsvFormatError(SubscriberError):
    """The CSV file cannot be read as a subscriber list at all."""


class TokenError(SubscriberError, ValueError):
    """A signed token cannot be used."""


class TokenInvalid(TokenError):
    """The token was tampered with, made for another purpose, or signed with an unknown key."""


class TokenExpired(TokenError):
    """The token is genuine but older than its maximum age (confirmation links only)."""
