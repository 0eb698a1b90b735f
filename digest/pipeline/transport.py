"""What sending needs from the settings: the transport, the link tokens, the suppression
key and the DKIM signer, each with an error that says which key to set when it is missing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from digest.config import Settings
from digest.deliver import Sender
from digest.deliver.dkim import DkimSigner, load_signer
from digest.deliver.outbox import OutboxSender
from digest.errors import ConfigError
from subscribers import keys
from subscribers.keys import KeyPurpose, derive_key
from subscribers.tokens import Tokens

_GENERATE = (
    "a long random string (32 bytes or more), e.g. the output of "
    '`python3 -c "import secrets; print(secrets.token_urlsafe(32))"`'
)


def open_sender(settings: Settings) -> Sender:
    """Return a fresh transport of [delivery] transport (one connection for "smtp")."""
    delivery = settings.delivery
    if delivery.transport == "outbox":
        return OutboxSender(delivery.outbox_dir)
    from digest.deliver.smtp import SmtpOptions, SmtpSender

    return SmtpSender(
        SmtpOptions(
            host=delivery.smtp_host,
            port=delivery.smtp_port,
            starttls=delivery.smtp_starttls,
            implicit_tls=delivery.smtp_implicit_tls or delivery.smtp_port == 465,
            username=delivery.smtp_username,
            password=delivery.smtp_password.reveal(),
            timeout=delivery.smtp_timeout_seconds,
            pipelining=delivery.smtp_pipelining,
        )
    )


def check_transport(settings: Settings) -> None:
    """Refuse settings the transport must not start with: a login without TLS."""
    delivery = settings.delivery
    if delivery.transport != "smtp" or not delivery.smtp_username:
        return
    if not (delivery.smtp_starttls or delivery.smtp_implicit_tls or delivery.smtp_port == 465):
        from digest.deliver.smtp import auth_without_tls

        raise ConfigError(auth_without_tls(f"{delivery.smtp_host}:{delivery.smtp_port}"))


def tokens(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> Tokens:
    """Return the signer of confirmation, unsubscribe and preferences links.

    Raises `ConfigError` when [web] secret_key is missing, short or well known, or when
    previous keys are given without the day they stop working.
    """
    key = secret_key(settings)
    old = previous_secret_keys(settings)
    until = None
    if old:
        text = settings.web.previous_secret_keys_until.strip()
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                "[web] previous_secret_keys_until: set the day the previous keys stop "
                f"verifying links (YYYY-MM-DD, e.g. {date.today() + timedelta(days=90)}); "
                f"got {text!r}"
            ) from None
        until = datetime.combine(day, time(), tzinfo=UTC)
    return Tokens(
        [key, *old],
        max_age_days=settings.subscribers.confirm_days,
        link_days=settings.web.link_days,
        previous_until=until,
        **({"clock": clock} if clock is not None else {}),
    )


def secret_key(settings: Settings) -> str:
    """Return [web] secret_key once it is known to be strong enough to derive keys from."""
    key = settings.web.secret_key.reveal()
    if not key:
        raise ConfigError(
            "[web] secret_key is not set: links in mail and the desk's sessions need it; "
            f"set DIGEST_WEB__SECRET_KEY (or DIGEST_WEB__SECRET_KEY_FILE) to {_GENERATE}"
        )
    problem = keys.weakness(key)
    if problem:
        raise ConfigError(f"[web] secret_key is {problem}; replace it with {_GENERATE}")
    return key


def previous_secret_keys(settings: Settings) -> list[str]:
    """Return [web] previous_secret_keys (each as strong as a current key must be)."""
    given = settings.web.previous_secret_keys.reveal().split(",")
    old = [k.strip() for k in given if k.strip()]
    for number, key in enumerate(old, 1):
        problem = keys.weakness(key)
        if problem:
            raise ConfigError(
                f"[web] previous_secret_keys: key {number} is {problem}; drop it, since "
                "anyone could sign links with it"
            )
    return old


def reference_key(settings: Settings) -> bytes:
    """Return the key of the signed references in Message-IDs and VERP addresses."""
    tokens(settings)  # the same secret: the same error when it is missing
    return derive_key(settings.web.secret_key.reveal(), KeyPurpose.MESSAGE_ID)


def suppression_key(settings: Settings) -> bytes:
    """Return the key of the suppression list's address hashes."""
    key = settings.subscribers.suppression_key.reveal()
    if not key:
        raise ConfigError(
            "[subscribers] suppression_key is not set: set DIGEST_SUBSCRIBERS__SUPPRESSION_KEY "
            "(or _FILE) to a long random string, and never change it once addresses are "
            "suppressed"
        )
    return key.encode("utf-8")


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """Return the DKIM signer of [delivery], or None when signing is off."""
    delivery = settings.delivery
    if not delivery.dkim_selector or delivery.dkim_key_file is None:
        return None
    domain = delivery.dkim_domain or settings.publication.sender.rpartition("@")[2].strip("> ")
    return load_signer(delivery.dkim_selector, domain, delivery.dkim_key_file)
