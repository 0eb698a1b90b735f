"""The settings themselves, declared as data: every key has a type, a default and a help
line (`setting()`), one frozen dataclass per [section], and `Settings`, the whole file.

Reading a file into them is `digest.config.loading`'s job, checking them
`digest.config.validation`'s, writing the commented example `digest.config.writing`'s.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any

DEFAULT_FILE = "digest.toml"
SECRETS_SUFFIX = ".secrets.toml"
"""`digest.toml`'s secrets live beside it in `digest.secrets.toml` (mode 0600, `digest init`)."""
SOURCE_KINDS = ("feed", "calendar", "page")


class Secret:
    """A string that never shows itself in reprs, logs or `digest config` output."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret itself, for the one place that needs it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


def nearest(name: str, known: Any) -> str:
    """ " (did you mean 'x'?)" for the known name closest to a mistyped one, or ""."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def setting(default: Any, help: str, **extra: Any) -> Any:
    """Declare one key: its default and the help line shown in `digest init`'s file."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **extra})
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help, **extra})
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class PublicationSettings:
    """[publication]: who publishes, in which languages and time zone."""

    title: str = setting("Cities & Migration Digest", "Name shown in emails, feeds and pages.")
    base_url: str = setting(
        "https://digest.example.org", "Where the web app and archive are served (no trailing /)."
    )
    languages: list[str] = setting(
        ["en", "nl", "fr"], "Languages of the publication; the first one is the default."
    )
    timezone: str = setting("Europe/Brussels", "IANA time zone for schedules and event times.")
    sender: str = setting(
        "Cities & Migration Digest <digest@example.org>", "From: address of every email."
    )
    titles: dict[str, str] = setting(
        {}, 'The title per language, e.g. { nl = "Digest Steden & Migratie" } (others: title).'
    )
    sender_names: dict[str, str] = setting(
        {}, "The sender's display name per language (others: the name in sender)."
    )

    def title_in(self, language: str) -> str:
        """The publication's title in `language` (`title` when none is given for it)."""
        return self.titles.get(language, "").strip() or self.title

    def sender_in(self, language: str) -> str:
        """The From: of mail in `language`: `sender` with that language's display name."""
        name = self.sender_names.get(language, "").strip()
        if not name:
            return self.sender
        _, address = parseaddr(self.sender)
        if not address:
            return self.sender
        # Quoted, not RFC 2047-encoded: the message builder encodes the header itself.
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'

    postal_address: str = setting(
        "",
        "The publisher's postal address, shown in every email's footer (required by law in "
        "many countries, e.g. CAN-SPAM); empty: none shown.",
    )


@dataclass(frozen=True)
class DatabaseSettings:
    """[database]: where everything is stored."""

    url: str = setting(
        "sqlite:///digest.db",
        "SQLAlchemy URL; sqlite paths are relative to this file. "
        "postgresql+psycopg://user@host/db for PostgreSQL.",
    )
    pool_size: int = setting(5, "PostgreSQL: connections kept open in the pool.")
    max_overflow: int = setting(10, "PostgreSQL: extra connections allowed beyond pool_size.")
    pool_timeout_seconds: float = setting(30.0, "PostgreSQL: longest wait for a free connection.")
    pool_recycle_seconds: int = setting(
        1800, "PostgreSQL: reopen connections older than this (idle proxies close them)."
    )
    pool_pre_ping: bool = setting(
        True, "PostgreSQL: test a pooled connection before use (survives a server restart)."
    )
    backup_dir: Path = setting(
        Path("backups"), "Where `digest upgrade` keeps the backup it takes before migrating."
    )


@dataclass(frozen=True)
class IssueSettings:
    """[issue]: what goes into an issue and when."""

    schedule: str = setting("mon 08:00", "When the weekly issue goes out (publication time zone).")
    news_window_days: int = setting(14, "Never include news first seen longer ago than this.")
    event_horizon_days: int = setting(30, "How far ahead upcoming events are shown.")
    daily_schedule: str = setting("08:00", "When the daily issue goes out, for daily subscribers.")
    daily_event_horizon_days: int = setting(
        3, "How far ahead the daily issue shows upcoming events (the weekly: event_horizon_days)."
    )
    approval: str = setting(
        "auto", 'Send without review ("auto") or wait for an editor ("editor").'
    )
    grace_hours: float = setting(
        6.0, "A run this long after a slot still belongs to it (late start, restart)."
    )
    other_languages: str = setting(
        "show", '"show": items in other languages follow, marked; "hide": leave them out.'
    )
    excerpt_words: int = setting(
        50, "Each item in the email shows at most this many words of its text (an excerpt)."
    )
    max_items_per_section: int = setting(
        12, "Cap per section (keeps emails under Gmail's 102 KB clip); the rest link out."
    )
    draft_lead_hours: float = setting(
        24.0, 'With approval = "editor": draft this long before the slot and notify editors.'
    )
    approval_wait_hours: float = setting(
        6.0, 'With approval = "editor": how long after the slot an approval is waited for.'
    )
    unapproved: str = setting(
        "skip", 'What happens when the wait ends without approval: "skip" or "send".'
    )


@dataclass(frozen=True)
class DeliverySettings:
    """[delivery]: how messages leave."""

    transport: str = setting("outbox", '"outbox" writes .eml files; "smtp" sends them.')
    outbox_dir: Path = setting(Path("outbox"), "Folder for the outbox transport, one .eml each.")
    smtp_host: str = setting("localhost", "SMTP server host.")
    smtp_port: int = setting(25, "SMTP server port (465 means implicit TLS).")
    smtp_starttls: bool = setting(False, "Upgrade the SMTP connection with STARTTLS.")
    smtp_username: str = setting("", "SMTP AUTH user; empty for none.")
    smtp_password: Secret = setting(
        Secret(), "SMTP AUTH password: set DIGEST_DELIVERY__SMTP_PASSWORD (or _FILE)."
    )
    connections: int = setting(4, "Persistent SMTP connections used in parallel.")
    rate_per_second: float = setting(
        0.0,
        "Messages per second at most, all senders and workers together; 0 = unlimited.",
        minimum=0,
    )
    smtp_implicit_tls: bool = setting(
        False, "Connect with TLS from the start (SMTPS); port 465 turns it on by itself."
    )
    smtp_timeout_seconds: float = setting(30.0, "Longest wait for one SMTP reply.")
    smtp_pipelining: bool = setting(
        True,
        "Send MAIL, RCPT and DATA at once when the server offers PIPELINING (RFC 2920); "
        "false for a relay that offers it but mishandles it.",
    )
    bounce_local_part: str = setting(
        "bounces",
        "VERP envelope sender local part: "
        "bounces+<signed reference>+alice=example.net@<sender's domain>.",
    )
    unsubscribe_mailto: str = setting(
        "", "Optional mailto: address added to List-Unsubscribe (empty: the URL only)."
    )
    dkim_selector: str = setting("", "DKIM selector (DNS <selector>._domainkey.<domain>).")
    dkim_domain: str = setting("", "DKIM signing domain (empty: the sender's domain).")
    dkim_key_file: Path | None = setting(
        None, "PEM private key, RSA 2048+ or Ed25519; empty: messages are not signed."
    )
    retry_seconds: float = setting(
        30.0,
        "After a 4xx reply, wait this long before trying that recipient again in the run.",
        minimum=0,
    )
    max_attempts: int = setting(
        5, "Attempts per recipient (across runs) before a 4xx recipient counts as failed."
    )
    max_consecutive_failures: int = setting(
        50, "Pause the issue when this many sends in a row fail (the server keeps refusing)."
    )
    max_failure_rate: float = setting(
        0.5,
        "Pause the issue when this share of the last failure_window sends failed (0.5 = half).",
    )
    failure_window: int = setting(200, "How many recent sends max_failure_rate looks at.")
    circuit_breaker: int = setting(
        5,
        "Pause (for a person) when this many recipients in a row are refused for good with "
        "the same reply: the server, not the list, is the likely problem. Each run starts "
        "with this many recipients only.",
    )
    unknown_retry_minutes: float = setting(
        30.0,
        "A message whose final-dot reply timed out may have arrived: it is tried once more, "
        "this much later, with the same Message-ID.",
    )
    record: str = setting(
        "journal",
        'How each accepted message is recorded before the next leaves its connection: "journal" '
        '(an append-only file in journal_dir, read back after a crash) or "commit" (one '
        "database commit per message).",
    )
    journal_dir: Path = setting(
        Path("journal"), "Folder of the send journal (keep it on this machine's disk)."
    )


@dataclass(frozen=True)
class SubscribersSettings:
    """[subscribers]: the list and its consent records."""

    suppression_key: Secret = setting(
        Secret(),
        "Keys the hashes of unsubscribed and erased addresses: set "
        "DIGEST_SUBSCRIBERS__SUPPRESSION_KEY (or _FILE); never change it once in use.",
    )
    consent_version: str = setting(
        "v1", "Name of the consent text subscribers currently agree to (kept per subscriber)."
    )
    confirm_days: int = setting(7, "How long a confirmation link stays valid.")
    purge_pending_days: int = setting(14, "Unconfirmed subscribers are deleted after this.")
    bounce_threshold: int = setting(
        3, "Temporary bounces that end a subscription (a permanent one does at once)."
    )


@dataclass(frozen=True)
class PublishSettings:
    """[publish]: the public files."""

    output_dir: Path = setting(Path("public"), "Folder for feeds, archive pages and events.ics.")
    feed_issues: int = setting(20, "How many of the latest issues the Atom feed of issues holds.")
    feed_items: int = setting(100, "How many of the latest items the Atom feed of items holds.")


@dataclass(frozen=True)
class LabelsSettings:
    """[labels]: what readers see instead of a section's or topic's name, per language."""

    sections: dict[str, dict[str, str]] = setting(
        {}, 'Per section, its title per language: [labels.sections.open-calls] nl = "Oproepen".'
    )
    topics: dict[str, dict[str, str]] = setting(
        {}, 'Per topic, its label per language: [labels.topics.local-policy] fr = "Politique".'
    )


@dataclass(frozen=True)
class RenderSettings:
    """[render]: templates."""

    templates_dir: Path | None = setting(
        None, "Your own templates, searched before the built-in ones (empty: none)."
    )
    images: str = setting(
        "drop",
        'Images from sources in mails, archive pages and feeds: "drop" (none: nothing loads '
        'from a third party), "copy" (lead images copied into the public folder at publish '
        'time and served from base_url) or "remote" (loaded from the source; the operator '
        "allows third-party requests).",
    )


@dataclass(frozen=True)
class WebSettings:
    """[web]: the web app."""

    secret_key: Secret = setting(
        Secret(), "Signs tokens and sessions: set DIGEST_WEB__SECRET_KEY (or _FILE)."
    )
    admin_password: Secret = setting(
        Secret(), "The editor's desk password: set DIGEST_WEB__ADMIN_PASSWORD (or _FILE)."
    )
    previous_secret_keys: Secret = setting(
        Secret(),
        "After rotating secret_key: the old keys, comma-separated, so links already sent "
        "keep working (DIGEST_WEB__PREVIOUS_SECRET_KEYS); they only verify, never sign.",
    )
    previous_secret_keys_until: str = setting(
        "",
        "The day (YYYY-MM-DD, UTC) previous_secret_keys stop verifying links; required "
        "with them. Unsubscribe links signed with an old key stop working then too.",
    )
    link_days: int = setting(
        90,
        "Preference links in mail work this long (days); unsubscribe links never expire.",
    )
    host: str = setting("127.0.0.1", "Address `digest serve` listens on.")
    port: int = setting(8000, "Port `digest serve` listens on.")
    editors: list[str] = setting(
        [], "Editors' addresses: told when a draft waits for approval, allowed test sends."
    )
    secure_cookies: bool = setting(
        True, "Mark session cookies Secure (keep true behind HTTPS; false only for local tests)."
    )
    subscribe_per_ip_per_hour: int = setting(
        10, "Sign-up form posts accepted per IP address and hour."
    )
    api_allowed_origins: list[str] = setting(
        [],
        "Origins whose pages may post sign-ups to /api/v1/subscribers (CORS), e.g. "
        '["https://hub.example.org"]; "*" for any.',
    )


@dataclass(frozen=True)
class CollectSettings:
    """[collect]: fetching sources."""

    every: timedelta = setting(
        timedelta(minutes=30), 'How often sources are fetched ("30m", "2h", "1d").'
    )
    timeout_seconds: float = setting(20.0, "Longest one source may take: connect, download, parse.")
    max_bytes: int = setting(15_000_000, "Largest body accepted, after decompression.")
    allow_networks: list[str] = setting(
        [], 'CIDRs exempt from the private-address guard, e.g. ["127.0.0.0/8"].'
    )
    per_host_interval_seconds: float = setting(
        1.0, "Politeness: at least this long between two requests to one host.", minimum=0
    )
    per_host_connections: int = setting(1, "Politeness: requests in flight to one host at most.")
    concurrency: int = setting(8, "Sources fetched at the same time (across hosts).")
    calendar_window_days: int = setting(
        365, "Recurring events are expanded this far ahead (and 7 days back)."
    )
    user_agent_url: str = setting(
        "https://github.com/digest-publisher/digest", "URL named in our User-Agent header."
    )


@dataclass(frozen=True)
class RetentionSettings:
    """[retention]: what is kept how long (`digest purge`, and the scheduler daily)."""

    deliveries_days: int = setting(
        90, "Delivery rows of sent issues older than this become per-issue counts."
    )
    items_days: int = setting(
        365, "Entries and events no source carried for this long are deleted (the archive stays)."
    )
    outbox_days: int = setting(14, "Messages in the outbox folder older than this are deleted.")
    unsubscribed_grace_days: int = setting(
        30, "Unsubscribed, bounced and complained people are erased after this (hash kept)."
    )


@dataclass(frozen=True)
class BouncesSettings:
    """[bounces]: the mailbox the scheduler reads bounce reports from (none by default)."""

    maildir: Path | None = setting(
        None, "A Maildir the VERP address delivers to; processed mail moves to .processed."
    )
    imap_host: str = setting("", "IMAP server (TLS on imap_port, 993) instead of a Maildir.")
    imap_port: int = setting(993, "IMAP over TLS port.")
    imap_username: str = setting("", "IMAP user.")
    imap_password: Secret = setting(
        Secret(), "IMAP password: set DIGEST_BOUNCES__IMAP_PASSWORD (or _FILE)."
    )
    imap_ca_file: Path | None = setting(
        None, "CA certificates to verify the IMAP server with (empty: the system's)."
    )
    imap_folder: str = setting("INBOX", "Folder the bounce reports arrive in.")
    imap_processed_folder: str = setting(
        "digest-processed", "Folder processed reports are moved to (made when missing)."
    )
    every: timedelta = setting(timedelta(minutes=10), "How often the mailbox is read.")


@dataclass(frozen=True)
class SourceSettings:
    """[[sources]]: one feed, calendar or page (also addable with `digest sources add`)."""

    name: str = setting("", "Short unique name, used in reports and commands.")
    url: str = setting("", "http(s) URL, or a local path (relative to this file).")
    kind: str = setting("feed", "feed | calendar | page.")
    language: str = setting("", "Language of its items when they declare none (default: first).")
    topics: list[str] = setting([], 'Topics subscribers can choose, e.g. ["governance"].')
    section: str = setting("news", "Section of the issue its items go to.")


SECTIONS: dict[str, type[Any]] = {
    "publication": PublicationSettings,
    "database": DatabaseSettings,
    "issue": IssueSettings,
    "delivery": DeliverySettings,
    "subscribers": SubscribersSettings,
    "publish": PublishSettings,
    "render": RenderSettings,
    "labels": LabelsSettings,
    "web": WebSettings,
    "collect": CollectSettings,
    "retention": RetentionSettings,
    "bounces": BouncesSettings,
}


@dataclass(frozen=True)
class Settings:
    """The whole configuration, typed, with paths already made absolute."""

    publication: PublicationSettings = field(default_factory=PublicationSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    issue: IssueSettings = field(default_factory=IssueSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    subscribers: SubscribersSettings = field(default_factory=SubscribersSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    render: RenderSettings = field(default_factory=RenderSettings)
    labels: LabelsSettings = field(default_factory=LabelsSettings)
    web: WebSettings = field(default_factory=WebSettings)
    collect: CollectSettings = field(default_factory=CollectSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    bounces: BouncesSettings = field(default_factory=BouncesSettings)
    sources: tuple[SourceSettings, ...] = ()
    path: Path | None = None
    """The config file these settings came from (None: defaults only)."""
    notes: tuple[str, ...] = ()
    """Warnings about the file (secrets written in it); the web app logs them at start."""

    @property
    def root(self) -> Path:
        """The folder relative paths are resolved against."""
        return self.path.parent if self.path else Path.cwd()

    @property
    def default_language(self) -> str:
        """The publication's first language."""
        return self.publication.languages[0]
