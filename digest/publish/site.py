"""Write a built site (relative path → bytes) into the output folder, atomically.

Files whose bytes did not change are left alone (their mtime, and so HTTP Last-Modified,
stays); per-event .ics files of events no longer listed are removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from digest.publish import PublishReport
from digest.publish.files import remove_stale, write_atomic


def write_site(output_dir: Path, files: Mapping[str, bytes]) -> PublishReport:
    """Write every file of `files` under `output_dir` and prune stale event files."""
    report = PublishReport(output_dir=output_dir)
    for relative, data in sorted(files.items()):
        if write_atomic(output_dir / relative, data):
            report.written.append(relative)
        else:
            report.unchanged.append(relative)
    keep = {output_dir / relative for relative in files if relative.startswith("events/")}
    for path in remove_stale(output_dir / "events", keep, "*.ics"):
        report.removed.append(str(path.relative_to(output_dir)))
    return report
