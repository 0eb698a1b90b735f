"""Settings declared as data: every key has a type, a default and a help line.

The file is TOML (`digest.toml` by default, `--config PATH` or `DIGEST_CONFIG` to choose
another). `DIGEST_<SECTION>__<KEY>` environment variables override the file, and
`DIGEST_<SECTION>__<KEY>_FILE` reads a secret from a file. Relative paths are relative
to the config file. `example_toml()` writes the commented file `digest init` creates,
straight from these declarations, so no key can go undocumented.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from digest.errors import ConfigError

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


# --- loading ------------------------------------------------------------------------------


def find_config(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """Return the config file to use: --config, then DIGEST_CONFIG, then ./digest.toml."""
    chosen = explicit or env.get("DIGEST_CONFIG") or DEFAULT_FILE
    return Path(chosen).expanduser().resolve()


def load(
    explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, override from the environment, validate and return the settings."""
    env = os.environ if env is None else env
    path = find_config(explicit, env)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} not found; run `digest init {path.parent}` to create one, "
            "or pass --config PATH (or set DIGEST_CONFIG)"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file and retry") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc}); save it as UTF-8") from exc
    return from_mapping(_with_secrets(data, secrets_path(path)), env=env, path=path)


def secrets_path(config_path: Path) -> Path:
    """The secrets file beside a config file: `digest.toml` → `digest.secrets.toml`."""
    return config_path.with_name(config_path.stem + SECRETS_SUFFIX)


def _with_secrets(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Merge the secrets file's tables over the config's (the environment still wins)."""
    if not path.is_file():
        return data
    try:
        secrets = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the secrets file ({exc}); fix its owner") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the secrets file") from exc
    merged = dict(data)
    for section, table in secrets.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise ConfigError(
                f"{path}: [{section}] is not a settings table; the secrets file holds tables "
                "like [web] secret_key = …"
            )
        merged[section] = {**data.get(section, {}), **table}
    return merged


def from_mapping(
    data: Mapping[str, Any], *, env: Mapping[str, str] | None = None, path: Path | None = None
) -> Settings:
    """Build settings from parsed TOML data plus environment overrides."""
    env = {} if env is None else env
    where = str(path) if path else "config"
    root = path.parent if path else Path.cwd()
    unknown = set(data) - set(SECTIONS) - {"sources"}
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(
            f"{where}: unknown section [{name}]{nearest(name, [*SECTIONS, 'sources'])}; "
            "known sections: " + ", ".join(sorted([*SECTIONS, "sources"]))
        )
    overrides = _env_overrides(env)
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
        sections[name] = _build(cls, table, overrides.get(name, {}), f"{where} [{name}]", root)
    raw_sources = data.get("sources", [])
    if not isinstance(raw_sources, list):
        raise ConfigError(f"{where}: sources must be written as [[sources]] tables")
    sources = tuple(
        _build(SourceSettings, raw, {}, f"{where} [[sources]] #{i + 1}", root)
        for i, raw in enumerate(raw_sources)
    )
    settings = Settings(**sections, sources=sources, path=path)
    _validate(settings, where)
    # Logged by the web app when it starts (`digest serve`), not here: settings are
    # loaded by every command and test.
    return dataclasses.replace(settings, notes=tuple(_secrets_in_file(data, where)))


def _secrets_in_file(data: Mapping[str, Any], where: str) -> list[str]:
    """A warning for every secret written into the file itself."""
    found = []
    for name, cls in SECTIONS.items():
        table = data.get(name, {})
        hints = typing.get_type_hints(cls)
        for key, value in table.items() if isinstance(table, dict) else ():
            if hints.get(key) is Secret and value:
                var = f"DIGEST_{name.upper()}__{key.upper()}"
                found.append(
                    f"{where}: [{name}] {key} is written in the file; anyone who can read it "
                    f"has the secret: set {var} or {var}_FILE (a file only the service reads) "
                    "instead, and remove it from the file"
                )
    return found


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, tuple[str, str]]]:
    """Collect DIGEST_SECTION__KEY (and _FILE) variables as {section: {key: (var, text)}}."""
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for var, text in env.items():
        if not var.startswith("DIGEST_") or "__" not in var:
            continue
        section, _, key = var[len("DIGEST_") :].partition("__")
        section, key = section.lower(), key.lower()
        if section not in SECTIONS:
            raise ConfigError(
                f"environment variable {var}: unknown section [{section}]"
                f"{nearest(section, SECTIONS)}"
            )
        names = {f.name for f in dataclasses.fields(SECTIONS[section])}
        if key.endswith("_file") and key not in names and key[: -len("_file")] in names:
            key = key[: -len("_file")]
            try:
                text = Path(text).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"environment variable {var}: cannot read {text}: {exc}") from exc
        if key not in names:
            raise ConfigError(
                f"environment variable {var}: [{section}] has no key {key!r}"
                f"{nearest(key, names)}; known keys: {', '.join(sorted(names))}"
            )
        found.setdefault(section, {})[key] = (var, text)
    return found


def _build(
    cls: type[Any],
    table: Mapping[str, Any],
    env: Mapping[str, tuple[str, str]],
    where: str,
    root: Path,
) -> Any:
    """Instantiate one settings dataclass, checking every key and its type."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(table) - set(fields)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            f"{where}: unknown key {key!r}{nearest(key, fields)}; known keys: {', '.join(fields)}"
        )
    values: dict[str, Any] = {}
    for name, value in table.items():
        values[name] = _coerce(hints[name], value, f"{where} {name}", root)
    for name, (var, text) in env.items():
        values[name] = _coerce(hints[name], _parse_env(hints[name], text), var, root)
    for name, spec in fields.items():
        # A default path ("public") is relative to the config file as a written one is.
        if name not in values and isinstance(spec.default, Path):
            values[name] = _coerce(hints[name], spec.default, f"{where} {name}", root)
    return cls(**values)


def _parse_env(hint: Any, text: str) -> Any:
    """Turn an environment string into the value its key's type expects."""
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        return text
    if typing.get_origin(hint) is dict:
        try:
            return tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            return text
    if typing.get_origin(hint) is list:
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                return tomllib.loads(f"v = {stripped}")["v"]
            except tomllib.TOMLDecodeError:
                return text
        return [part.strip() for part in stripped.split(",") if part.strip()]
    if hint is int:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            return text
    if hint is float:
        try:
            return float(text)
        except ValueError:
            return text
    return text


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """Parse "90s", "30m", "2h" or "1d"; raise ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h or 1d")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def _coerce(hint: Any, value: Any, where: str, root: Path) -> Any:
    """Check `value` against the declared type and convert paths, durations and secrets."""
    optional = False
    if isinstance(hint, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, args[0]
        if value in ("", None):
            return None
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if hint is Secret:
        if isinstance(value, str):
            return Secret(value)
        raise ConfigError(f"{where}: expected a string")
    if hint is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        path = Path(value).expanduser()
        return path if path.is_absolute() else root / path
    if hint is timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    if typing.get_origin(hint) is list:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
        raise ConfigError(f'{where}: expected a list of strings like ["a", "b"], got {value!r}')
    if typing.get_origin(hint) is dict:
        return _coerce_table(typing.get_args(hint)[1], value, where)
    del optional
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")  # pragma: no cover


def _coerce_table(inner: Any, value: Any, where: str) -> dict[str, Any]:
    """Check a table of strings (`inner` is str) or of tables of strings (dict[str, str])."""
    if not isinstance(value, dict):
        raise ConfigError(f'{where}: expected a table like {{ nl = "…", fr = "…" }}, got {value!r}')
    table: dict[str, Any] = {}
    for key, item in value.items():
        if inner is str:
            if not isinstance(item, str):
                raise ConfigError(f"{where}.{key}: expected a string, got {item!r}")
            table[key] = item
        else:
            table[key] = _coerce_table(str, item, f"{where}.{key}")
    return table


_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?")
"""language[-Script][-REGION]: the BCP 47 tags a publication's languages may use."""


def check_language(tag: str, where: str) -> None:
    """Raise ConfigError unless `tag` is a BCP 47 language tag Babel knows ("nl", "fr-BE")."""
    if not _LANGUAGE_TAG.fullmatch(tag):
        raise ConfigError(
            f"{where}: {tag!r} is not a language tag; use a BCP 47 tag such as "
            '"en", "nl" or "fr-BE"'
        )
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        raise ConfigError(
            f"{where}: {tag!r} is not a language Babel knows; use a BCP 47 tag such as "
            '"en", "nl" or "fr-BE"'
        ) from None


def _check_numbers(settings: Settings, where: str) -> None:
    """Counts and durations must be positive; where 0 means "off" (its default is 0, or
    the declaration says `minimum=0`), 0 is allowed too. Never negative."""
    sections: list[tuple[str, Any]] = [(name, getattr(settings, name)) for name in SECTIONS]
    for name, values in sections:
        for spec in dataclasses.fields(values):
            value = getattr(values, spec.name)
            if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
                continue
            default = spec.default
            zero_ok = spec.metadata.get("minimum") == 0 or default in (0, timedelta(0))
            amount = value.total_seconds() if isinstance(value, timedelta) else value
            if amount < 0 or (amount == 0 and not zero_ok):
                need = "0 or more" if zero_ok else "more than 0"
                raise ConfigError(f"{where} [{name}] {spec.name}: {value!r}; it must be {need}")


def _check_base_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{where} [publication] base_url: {url!r} is not an http(s) URL; "
            'write the public address, e.g. "https://digest.example.org"'
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(
            f"{where} [publication] base_url: {url!r} has a query, fragment or user name; "
            "write only scheme, host and (optionally) path"
        )
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ConfigError(f"{where} [publication] base_url: {url!r} holds spaces or controls")


def _validate(settings: Settings, where: str) -> None:
    """Checks that span keys or need more than a type."""
    pub = settings.publication
    if not pub.languages:
        raise ConfigError(f"{where} [publication] languages: list at least one language")
    for tag in pub.languages:
        check_language(tag, f"{where} [publication] languages")
    if len(set(pub.languages)) != len(pub.languages):
        raise ConfigError(f"{where} [publication] languages: a language is listed twice")
    _check_base_url(pub.base_url, where)
    _check_numbers(settings, where)
    try:
        zoneinfo.ZoneInfo(pub.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"{where} [publication] timezone: {pub.timezone!r} is not an IANA time zone "
            '(e.g. "Europe/Brussels")'
        ) from exc
    _validate_languages(settings, where)
    if settings.issue.approval not in ("auto", "editor"):
        raise ConfigError(f'{where} [issue] approval: expected "auto" or "editor"')
    if settings.issue.other_languages not in ("show", "hide"):
        raise ConfigError(f'{where} [issue] other_languages: expected "show" or "hide"')
    if settings.issue.excerpt_words < 1:
        raise ConfigError(f"{where} [issue] excerpt_words: must be 1 or more (default 50)")
    if settings.render.images not in ("drop", "copy", "remote"):
        raise ConfigError(f'{where} [render] images: expected "drop", "copy" or "remote"')
    from digest.compose.slots import parse_daily, parse_weekly  # slots own the syntax

    for key, parse in (("schedule", parse_weekly), ("daily_schedule", parse_daily)):
        try:
            parse(getattr(settings.issue, key))
        except ValueError as exc:
            raise ConfigError(f"{where} [issue] {key}: {exc}") from exc
    if settings.issue.unapproved not in ("skip", "send"):
        raise ConfigError(f'{where} [issue] unapproved: expected "skip" or "send"')
    if settings.delivery.transport not in ("outbox", "smtp"):
        raise ConfigError(f'{where} [delivery] transport: expected "outbox" or "smtp"')
    delivery = settings.delivery
    if delivery.connections < 1 or delivery.rate_per_second < 0 or delivery.max_attempts < 1:
        raise ConfigError(
            f"{where} [delivery]: connections and max_attempts must be at least 1, "
            "rate_per_second 0 (unlimited) or more"
        )
    if delivery.record not in ("journal", "commit"):
        raise ConfigError(f'{where} [delivery] record: expected "journal" or "commit"')
    if not 0 < delivery.max_failure_rate <= 1 or delivery.failure_window < 1:
        raise ConfigError(
            f"{where} [delivery]: max_failure_rate must be above 0 and at most 1, "
            "failure_window at least 1"
        )
    if bool(delivery.dkim_selector) != bool(delivery.dkim_key_file):
        raise ConfigError(
            f"{where} [delivery]: DKIM needs both dkim_selector and dkim_key_file (or neither)"
        )
    if settings.collect.timeout_seconds <= 0 or settings.collect.max_bytes <= 0:
        raise ConfigError(f"{where} [collect]: timeout_seconds and max_bytes must be positive")
    from digest.collect.networks import parse_networks  # the guard's CIDR parsing

    try:
        parse_networks(settings.collect.allow_networks)
    except ValueError as exc:
        raise ConfigError(f"{where} [collect] allow_networks: {exc}") from exc
    seen: set[str] = set()
    for i, source in enumerate(settings.sources):
        label = f"{where} [[sources]] #{i + 1}"
        if not source.name or not source.url:
            raise ConfigError(f"{label}: every source needs a name and a url")
        if source.name in seen:
            raise ConfigError(f"{label}: the name {source.name!r} is used twice; names are unique")
        seen.add(source.name)
        if source.language:
            check_language(source.language, f"{label} ({source.name}) language")
        if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in source.name):
            raise ConfigError(f"{label}: the name {source.name!r} holds control characters")
        if source.kind not in SOURCE_KINDS:
            raise ConfigError(
                f"{label} ({source.name}) kind: {source.kind!r} is not one of "
                + ", ".join(SOURCE_KINDS)
            )


def _validate_languages(settings: Settings, where: str) -> None:
    """Titles, sender names and labels may only be given for the publication's languages."""
    known = settings.publication.languages
    tables: list[tuple[str, dict[str, str]]] = [
        ("[publication] titles", settings.publication.titles),
        ("[publication] sender_names", settings.publication.sender_names),
    ]
    for kind in ("sections", "topics"):
        for name, labels in getattr(settings.labels, kind).items():
            tables.append((f"[labels.{kind}.{name}]", labels))
    for label, table in tables:
        for language in table:
            if language not in known:
                raise ConfigError(
                    f"{where} {label}: {language!r} is not one of [publication] languages "
                    f"({', '.join(known)}); add it there or remove this line"
                )
    if settings.publish.feed_issues < 1 or settings.publish.feed_items < 1:
        raise ConfigError(f"{where} [publish]: feed_issues and feed_items must be at least 1")


def database_url(settings: Settings) -> str:
    """Return the database URL with a relative sqlite path made relative to the config file."""
    url = settings.database.url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        rest = url[len(prefix) :]
        return prefix + str(settings.root / rest)
    return url


def source_location(settings: Settings, url: str) -> str:
    """Return a source URL unchanged, or a local path made absolute against the config file."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
        return url
    path = Path(url).expanduser()
    return str(path if path.is_absolute() else settings.root / path)


# --- the commented example file -----------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, Secret):
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        minutes = int(value.total_seconds() // 60)
        return f'"{minutes // 60}h"' if minutes % 60 == 0 else f'"{minutes}m"'
    if isinstance(value, Path):
        return f'"{value.as_posix()}"'
    if value is None:
        return '""'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }" if value else "{}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _table(
    cls: type[Any], values: Any | None = None, chosen: Mapping[str, Any] | None = None
) -> list[str]:
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
        value = getattr(values, f.name) if values is not None else default
        if chosen and f.name in chosen:
            value = chosen[f.name]
        lines.append(f"# {f.metadata['help']}")
        line = f"{f.name} = {_toml_value(value)}"
        if isinstance(default, Secret):
            line = "# " + line + "   # secret: digest.secrets.toml or the environment"
        lines.append(line)
    return lines


def example_toml(
    sources: tuple[SourceSettings, ...] = (),
    chosen: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """Return the commented configuration `digest init` writes: every key, default and help,
    with the values in `chosen` ({section: {key: value}}) instead of the defaults."""
    out = [
        "# digest configuration. Every key is shown with its default and what it does.",
        "# Environment variables DIGEST_<SECTION>__<KEY> override this file;",
        "# secrets belong in digest.secrets.toml beside this file (written by `digest init`,",
        "# mode 0600) or in DIGEST_<SECTION>__<KEY> / DIGEST_<SECTION>__<KEY>_FILE, not here.",
        "",
    ]
    for name, cls in SECTIONS.items():
        out.append(f"[{name}]")
        out.extend(_table(cls, chosen=(chosen or {}).get(name)))
        out.append("")
    out.append(
        "# Sources: add as many [[sources]] tables as you like, or use `digest sources add`."
    )
    for source in sources:
        out.append("[[sources]]")
        out.extend(_table(SourceSettings, source))
        out.append("")
    if not sources:
        example = SourceSettings(name="example-news", url="https://example.org/feed")
        out.append("# [[sources]]")
        out.extend("# " + line.lstrip("# ") for line in _table(SourceSettings, example))
        out.append("")
    return "\n".join(out)
