"""What sending needs from the settings: the transport, the link tokens, the suppression
key and the DKIM signer, each with an error that says which key to set when it is missing."""

from __future__ import annotations

from digest.config import Settings
from digest.deliver import Sender
from digest.deliver.dkim import DkimSigner, load_signer
from digest.deliver.outbox import OutboxSender
from digest.errors import ConfigError
from subscribers.keys import KeyPurpose, derive_key
from subscribers.tokens import Tokens


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


def tokens(settings: Settings) -> Tokens:
    """Return the signer of confirmation, unsubscribe and preferences links."""
    key = settings.web.secret_key.reveal()
    if not key:
        raise ConfigError(
            "[web] secret_key is not set: links in mail need it; set DIGEST_WEB__SECRET_KEY "
            "(or DIGEST_WEB__SECRET_KEY_FILE) to a long random string, e.g. "
            '`python3 -c "import secrets; print(secrets.token_urlsafe(32))"`'
        )
    old = [k.strip() for k in settings.web.previous_secret_keys.reveal().split(",") if k.strip()]
    return Tokens([key, *old], max_age_days=settings.subscribers.confirm_days)


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
