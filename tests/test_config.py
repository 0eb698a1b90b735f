"""Settings: declared as data, documented, overridable, with errors that name the culprit."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from digest import config
from digest.config import Secret
from digest.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_setting_has_a_help_line() -> None:
    for cls in [*config.SECTIONS.values(), config.SourceSettings]:
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help line"


def test_design_contract_keys_exist() -> None:
    expected = {
        "publication": {"title", "base_url", "languages", "timezone", "sender"},
        "database": {"url"},
        "issue": {
            "schedule",
            "news_window_days",
            "event_horizon_days",
            "daily_schedule",
            "approval",
        },
        "delivery": {
            "transport",
            "outbox_dir",
            "smtp_host",
            "smtp_port",
            "smtp_starttls",
            "smtp_username",
            "connections",
            "rate_per_second",
        },
        "publish": {"output_dir"},
        "render": {"templates_dir"},
        "web": {"secret_key", "admin_password"},
        "collect": {"every", "timeout_seconds", "max_bytes", "allow_networks"},
    }
    for section, keys in expected.items():
        names = {f.name for f in dataclasses.fields(config.SECTIONS[section])}
        assert keys <= names, f"[{section}] misses {keys - names}"


def test_example_file_round_trips_to_the_defaults(tmp_path: Path) -> None:
    text = config.example_toml()
    tomllib.loads(text)  # valid TOML
    settings = config.load(write(tmp_path, text), env={})
    assert settings.publication == config.PublicationSettings()
    assert settings.collect.every == timedelta(minutes=30)
    assert settings.sources == ()
    for section, cls in config.SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f"{f.name} = " in text, f"[{section}] {f.name} missing from digest init's file"


def test_missing_file_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found; run `digest init"):
        config.load(tmp_path / "nope.toml", env={})


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "[issue]\nnews_window = 7\n")
    with pytest.raises(
        ConfigError, match=r"\[issue\]: unknown key 'news_window'.*news_window_days"
    ):
        config.load(path, env={})


def test_unknown_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown section \[isue\]"):
        config.load(write(tmp_path, "[isue]\n"), env={})


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, '[issue]\nnews_window_days = "two weeks"\n')
    with pytest.raises(ConfigError, match=r"news_window_days: expected a whole number, got 'two"):
        config.load(path, env={})


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[issue\n")
    with pytest.raises(ConfigError, match=r"digest.toml: not valid TOML"):
        config.load(path, env={})


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[issue]\nnews_window_days = 14\n")
    env = {
        "DIGEST_ISSUE__NEWS_WINDOW_DAYS": "7",
        "DIGEST_PUBLICATION__LANGUAGES": "nl,fr",
        "DIGEST_DELIVERY__SMTP_STARTTLS": "true",
        "DIGEST_COLLECT__EVERY": "2h",
    }
    settings = config.load(path, env=env)
    assert settings.issue.news_window_days == 7
    assert settings.publication.languages == ["nl", "fr"]
    assert settings.delivery.smtp_starttls is True
    assert settings.collect.every == timedelta(hours=2)


def test_unknown_environment_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError, match=r"DIGEST_ISSUE__WINDOW: \[issue\] has no key 'window'"):
        config.load(path, env={"DIGEST_ISSUE__WINDOW": "3"})


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError, match=r"DIGEST_DELIVERY__SMTP_PORT: expected a whole number"):
        config.load(path, env={"DIGEST_DELIVERY__SMTP_PORT": "twenty-five"})


def test_secrets_never_show(tmp_path: Path) -> None:
    secret_file = tmp_path / "key"
    secret_file.write_text("s3cret-from-file\n", encoding="utf-8")
    env = {
        "DIGEST_DELIVERY__SMTP_PASSWORD": "hunter2",
        "DIGEST_WEB__SECRET_KEY_FILE": str(secret_file),
    }
    settings = config.load(write(tmp_path, ""), env=env)
    assert settings.delivery.smtp_password.reveal() == "hunter2"
    assert settings.web.secret_key.reveal() == "s3cret-from-file"
    shown = repr(settings) + str(settings.delivery)
    assert "hunter2" not in shown and "s3cret" not in shown
    assert "********" in repr(settings.delivery.smtp_password)
    assert Secret("x") != Secret("y")


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    sub = tmp_path / "pub"
    sub.mkdir()
    path = sub / "digest.toml"
    path.write_text(
        '[delivery]\noutbox_dir = "mail"\n[[sources]]\nname = "a"\nurl = "feeds/a.xml"\n',
        encoding="utf-8",
    )
    settings = config.load(path, env={})
    assert settings.delivery.outbox_dir == sub / "mail"
    assert settings.publish.output_dir == sub / "public", "defaults are relative to it too"
    assert config.database_url(settings) == f"sqlite:///{sub}/digest.db"
    assert config.source_location(settings, "feeds/a.xml") == str(sub / "feeds/a.xml")
    assert config.source_location(settings, "https://x.org/f") == "https://x.org/f"


def test_digest_config_environment_variable_chooses_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[publication]\ntitle = "Elsewhere"\n')
    assert config.load(None, env={"DIGEST_CONFIG": str(path)}).publication.title == "Elsewhere"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[publication]\ntimezone = "Europe/Brusels"\n', "not an IANA time zone"),
        ("[publication]\nlanguages = []\n", "list at least one language"),
        ('[issue]\napproval = "maybe"\n', 'expected "auto" or "editor"'),
        ('[collect]\nevery = "often"\n', "is not a duration"),
        ('[collect]\nallow_networks = ["10.0.0.300/8"]\n', "allow_networks"),
        ('[[sources]]\nname = "a"\nurl = "x"\nkind = "podcast"\n', "kind: 'podcast'"),
        ('[[sources]]\nname = "a"\nurl = "x"\n[[sources]]\nname = "a"\nurl = "y"\n', "used twice"),
        ('[[sources]]\nname = "a"\n', "needs a name and a url"),
    ],
)
def test_validation_messages(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load(write(tmp_path, text), env={})


def test_titles_sender_names_and_labels_per_language(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[publication]\ntitles = { nl = "Digest Steden & Migratie" }\n'
        'sender_names = { fr = "Digest « Villes » & Migration" }\n'
        '[labels.sections.open-calls]\nnl = "Oproepen"\n'
        '[labels.topics.local-policy]\nnl = "Lokaal beleid"\nfr = "Politique locale"\n',
    )
    settings = config.load(path, env={})
    pub = settings.publication
    assert pub.title_in("nl") == "Digest Steden & Migratie"
    assert pub.title_in("fr") == pub.title == "Cities & Migration Digest"
    assert pub.sender_in("fr") == '"Digest « Villes » & Migration" <digest@example.org>'
    assert pub.sender_in("en") == pub.sender
    assert settings.labels.sections == {"open-calls": {"nl": "Oproepen"}}
    assert settings.labels.topics["local-policy"]["fr"] == "Politique locale"
    env = {"DIGEST_PUBLICATION__TITLES": '{ fr = "Digest Villes" }'}
    assert config.load(path, env=env).publication.title_in("fr") == "Digest Villes"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[publication]\ntitles = { de = "Digest" }\n', "'de' is not one of"),
        ('[labels.topics.housing]\nes = "Vivienda"\n', r"\[labels.topics.housing\]: 'es'"),
        ('[publication]\ntitles = "Digest"\n', "expected a table"),
        ("[labels.sections]\nnews = { nl = 3 }\n", "expected a string"),
        ("[publish]\nfeed_issues = 0\n", "feed_issues: 0; it must be more than 0"),
    ],
)
def test_labels_name_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load(write(tmp_path, text), env={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[publication]\nlanguages = ["en", "../../etc"]\n', "not a language tag"),
        ('[publication]\nlanguages = ["en", "xq"]\n', "not a language Babel knows"),
        ('[publication]\nlanguages = ["en", "en"]\n', "listed twice"),
        ('[[sources]]\nname = "a"\nurl = "x"\nlanguage = "nl/../x"\n', "not a language tag"),
        ('[publication]\nbase_url = "ftp://example.org"\n', "not an http"),
        ('[publication]\nbase_url = "example.org"\n', "not an http"),
        ('[publication]\nbase_url = "https://example.org/?a=1"\n', "query"),
        ("[issue]\nnews_window_days = 0\n", "news_window_days: 0; it must be more than 0"),
        ("[delivery]\nconnections = -1\n", "connections: -1"),
        ('[collect]\nevery = "0m"\n', "every"),
        ("[web]\nlink_days = 0\n", "link_days"),
        ("[delivery]\nrate_per_second = -1\n", "0 or more"),
        ('[[sources]]\nname = "a\\u001b[2J"\nurl = "x"\n', "control characters"),
    ],
)
def test_config_is_validated(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load(write(tmp_path, text), env={})


def test_zero_is_allowed_where_it_means_off(tmp_path: Path) -> None:
    text = (
        "[delivery]\nrate_per_second = 0\nretry_seconds = 0\n"
        "[collect]\nper_host_interval_seconds = 0\n"
    )
    settings = config.load(write(tmp_path, text), env={})
    assert settings.delivery.rate_per_second == 0
    good = config.load(
        write(tmp_path, '[publication]\nlanguages = ["nl-BE", "fr", "en"]\n'), env={}
    )
    assert good.default_language == "nl-BE"


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("[web]\nsecret_kye = 'x'\n", "did you mean 'secret_key'?"),
        ("[publicaton]\ntitle = 'x'\n", "did you mean 'publication'?"),
        ("[issue]\nshedule = 'mon 08:00'\n", "did you mean 'schedule'?"),
    ],
)
def test_unknown_keys_name_the_nearest_known_one(
    tmp_path: Path, text: str, suggestion: str
) -> None:
    with pytest.raises(ConfigError, match=suggestion.replace("?", r"\?")):
        config.load(write(tmp_path, text), env={})


def test_secrets_in_the_file_are_warned_about(tmp_path: Path) -> None:
    text = '[web]\nsecret_key = "0123456789abcdefghijklmnopqrstuvwxyz"\n'
    settings = config.load(write(tmp_path, text), env={})
    assert len(settings.notes) == 1
    assert "DIGEST_WEB__SECRET_KEY_FILE" in settings.notes[0]
    assert "0123456789abcdef" not in settings.notes[0]
    from_env = config.load(
        write(tmp_path, ""), env={"DIGEST_WEB__SECRET_KEY": "0123456789abcdefghijklmnopqrstuvwxyz"}
    )
    assert from_env.notes == ()
