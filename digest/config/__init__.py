"""Settings declared as data: every key has a type, a default and a help line.

The file is TOML (`digest.toml` by default, `--config PATH` or `DIGEST_CONFIG` to choose
another). `DIGEST_<SECTION>__<KEY>` environment variables override the file, and
`DIGEST_<SECTION>__<KEY>_FILE` reads a secret from a file. Relative paths are relative
to the config file. `example_toml()` writes the commented file `digest init` creates,
straight from these declarations, so no key can go undocumented.

`settings` declares the keys, `loading` reads a file and the environment into them,
`validation` checks the whole, `writing` writes the commented example; every public name is
re-exported here (`from digest.config import Settings`).
"""

from __future__ import annotations

from digest.config.loading import (
    database_url,
    find_config,
    from_mapping,
    load,
    parse_duration,
    secrets_path,
    source_location,
)
from digest.config.settings import (
    DEFAULT_FILE,
    SECRETS_SUFFIX,
    SECTIONS,
    SOURCE_KINDS,
    BouncesSettings,
    CollectSettings,
    DatabaseSettings,
    DeliverySettings,
    IssueSettings,
    LabelsSettings,
    PublicationSettings,
    PublishSettings,
    RenderSettings,
    RetentionSettings,
    Secret,
    Settings,
    SourceSettings,
    SubscribersSettings,
    WebSettings,
    nearest,
    setting,
)
from digest.config.validation import check_language
from digest.config.writing import example_toml

__all__ = [
    "DEFAULT_FILE",
    "SECRETS_SUFFIX",
    "SECTIONS",
    "SOURCE_KINDS",
    "BouncesSettings",
    "CollectSettings",
    "DatabaseSettings",
    "DeliverySettings",
    "IssueSettings",
    "LabelsSettings",
    "PublicationSettings",
    "PublishSettings",
    "RenderSettings",
    "RetentionSettings",
    "Secret",
    "Settings",
    "SourceSettings",
    "SubscribersSettings",
    "WebSettings",
    "check_language",
    "database_url",
    "example_toml",
    "find_config",
    "from_mapping",
    "load",
    "nearest",
    "parse_duration",
    "secrets_path",
    "setting",
    "source_location",
]
