"""Publish: write the public files (Atom feeds, archive pages, events.ics) atomically.

Output types: `SiteBuild` (what `pipeline.build_site` made: path → bytes, plus the pages it
did not need to render again) and `PublishReport`. Everything is built in memory first,
then written here; a preview is "stop before writing".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest.publish.manifest import FileRecord


@dataclass
class SiteBuild:
    """The public files of one publish."""

    files: dict[str, bytes] = field(default_factory=dict)
    """Path (from `digest/layout.py`) → bytes, for every file built this time."""
    inputs: dict[str, str] = field(default_factory=dict)
    """Path → hash of what it was rendered from, for the files a later publish may skip."""
    kept: dict[str, FileRecord] = field(default_factory=dict)
    """Files not built again: their inputs did not change and they are still on disk."""
    issues: dict[int, str] = field(default_factory=dict)
    """Each published issue's inputs hash, for the manifest (see `publish.manifest`)."""
    shards: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    """The summaries files to write again: shard → issue number → summary."""
    site: str = ""
    """The hash of what every page depends on besides its issues, for the manifest."""


@dataclass
class PublishReport:
    """What a publish run did to the output folder."""

    output_dir: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
