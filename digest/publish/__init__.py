"""Publish: write the public files (Atom feeds, archive pages, events.ics) atomically.

Output type: `PublishReport`. Everything is built in memory first (`pipeline.build_site`
returns path → bytes), then written here; a preview is "stop before writing".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class PublishReport:
    """What a publish run did to the output folder."""

    output_dir: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
