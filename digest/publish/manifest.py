"""What the last publish wrote, so the next one redoes only what changed.

The manifest (`.digest-publish.json` in the output folder) records, for every file written,
the SHA-256 of its bytes, its size and mtime, and the hash of the inputs it was rendered
from; the hash of every published issue's inputs; and, in one file per 50 issues
(`.digest-publish/issues-<n>.json`, read only when one of them is needed), what the archive
index, the feeds and the search index need of each issue (subject, day, first titles,
stories). A publish then renders only the issue pages whose inputs changed (the issue's
plan or dates, its neighbours, the site, the templates, the settings, digest's version)
and whose file is still what the manifest says; and writes a file only when its bytes
differ from what the manifest recorded, without reading the old file back.

A missing, unreadable or foreign manifest means "nothing is known": everything is
rendered and compared as before, and a fresh manifest is written. Everything in it is
public already (it describes public files), so a static host may serve it harmlessly.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest import __version__

MANIFEST = ".digest-publish.json"
SUMMARIES = ".digest-publish"
"""The folder of the issues' summaries, `SHARD` issues a file."""
SHARD = 50
_FORMAT = 3


def shard_of(number: int) -> int:
    """The summaries file holding issue `number`'s."""
    return number // SHARD


def shard_path(shard: int) -> str:
    """The path of summaries file `shard` in the output folder."""
    return f"{SUMMARIES}/issues-{shard}.json"


def digest_of(*parts: str | bytes) -> str:
    """A SHA-256 hex digest of `parts`, each length-prefixed so no two splits collide."""
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "big"))
        hasher.update(data)
    return hasher.hexdigest()


def folder_digest(*folders: Path | None, suffixes: tuple[str, ...] = ()) -> str:
    """A digest of every file under `folders` (names and bytes), for "did the templates,
    catalogues or code change". Missing folders count as empty."""
    parts: list[str | bytes] = []
    for folder in folders:
        if folder is None or not folder.is_dir():
            parts.append("-")
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and (not suffixes or path.suffix in suffixes):
                parts.extend([str(path.relative_to(folder)), path.read_bytes()])
    return digest_of(*parts)


@dataclass(frozen=True)
class FileRecord:
    """One written file as the manifest remembers it."""

    sha256: str
    size: int
    mtime_ns: int
    inputs: str = ""
    """The hash of what it was rendered from ("" when it is always built)."""

    def matches(self, path: Path | str) -> bool:
        """Whether `path` on disk is still the file recorded (same size and mtime)."""
        try:
            stat = os.stat(path)
        except OSError:
            return False
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns


@dataclass
class Manifest:
    """The files and issue summaries of one publish (see the module docstring)."""

    files: dict[str, FileRecord] = field(default_factory=dict)
    issues: dict[int, str] = field(default_factory=dict)
    """Issue number → the hash of its inputs."""
    site: str = ""
    """The hash of what every page depended on besides its issues (templates, settings)."""
    folder: Path | None = None
    """The output folder it was read from (its summaries files are read from there)."""
    shards: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    """Summaries files read so far: shard → issue number → {"key", "languages"}."""

    def summary(self, number: int, key: str) -> dict[str, Any] | None:
        """Issue `number`'s summary ({"key", "languages": {language: summary}}) when it
        was made from inputs `key`, else None."""
        shard = shard_of(number)
        if shard not in self.shards:
            self.shards[shard] = _read_shard(self.folder, shard)
        found = self.shards[shard].get(number)
        return found if found is not None and found.get("key") == key else None

    @classmethod
    def load(cls, output_dir: Path) -> Manifest:
        """The manifest in `output_dir`, or an empty one when there is none usable."""
        try:
            raw = json.loads((output_dir / MANIFEST).read_bytes())
            if raw.get("format") != _FORMAT or raw.get("version") != __version__:
                return cls()
            files = {path: FileRecord(**record) for path, record in raw["files"].items()}
            issues = {int(number): str(key) for number, key in raw["issues"].items()}
            site = str(raw.get("site", ""))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return cls()
        return cls(files=files, issues=issues, site=site, folder=output_dir)

    def to_bytes(self) -> bytes:
        """The manifest as JSON."""
        return json.dumps(
            {
                "format": _FORMAT,
                "version": __version__,
                "site": self.site,
                "files": {path: record.__dict__ for path, record in sorted(self.files.items())},
                "issues": {str(number): self.issues[number] for number in sorted(self.issues)},
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")

    def current(self, output_dir: Path, relative: str, inputs: str) -> FileRecord | None:
        """The record of `relative` when it was rendered from `inputs` and the file is still
        the one written then; else None (it must be rendered)."""
        record = self.files.get(relative)
        if record is None or not record.inputs or record.inputs != inputs:
            return None
        return record if record.matches(os.path.join(output_dir, relative)) else None

    def still(self, output_dir: Path, relative: str) -> FileRecord | None:
        """The record of `relative` when it was rendered from inputs (whatever they were)
        and the file is still the one written then; else None."""
        record = self.files.get(relative)
        if record is None or not record.inputs:
            return None
        return record if record.matches(os.path.join(output_dir, relative)) else None

    def unchanged(self, output_dir: Path, relative: str, sha256: str) -> FileRecord | None:
        """The record of `relative` when it holds bytes of digest `sha256` still on disk."""
        record = self.files.get(relative)
        if record is None or record.sha256 != sha256:
            return None
        return record if record.matches(output_dir / relative) else None


def record_of(path: Path, sha256: str, inputs: str = "") -> FileRecord:
    """A record of the file just written (or found unchanged) at `path`."""
    stat = os.stat(path)
    return FileRecord(sha256=sha256, size=stat.st_size, mtime_ns=stat.st_mtime_ns, inputs=inputs)


def _read_shard(folder: Path | None, shard: int) -> dict[int, dict[str, Any]]:
    """Summaries file `shard` in `folder` (empty when missing or unreadable)."""
    if folder is None:
        return {}
    try:
        raw = json.loads((folder / shard_path(shard)).read_bytes())
        if raw.get("format") != _FORMAT or raw.get("version") != __version__:
            return {}
        return {int(number): dict(summary) for number, summary in raw["issues"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def shard_bytes(summaries: dict[int, dict[str, Any]]) -> bytes:
    """A summaries file holding `summaries` (issue number → {"key", "languages"})."""
    return json.dumps(
        {
            "format": _FORMAT,
            "version": __version__,
            "issues": {str(number): summaries[number] for number in sorted(summaries)},
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
