"""Write a built site (relative path → bytes) into the output folder, atomically.

Files whose bytes did not change are left alone (their mtime, and so HTTP Last-Modified,
stays): the manifest of the last publish tells without reading them back. Per-event .ics
files of events no longer listed are removed. The manifest is written last, so a publish
that stops half-way leaves one that under-promises (those files are rendered again).
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

from digest.publish import PublishReport, SiteBuild
from digest.publish.files import remove_stale, write_atomic
from digest.publish.manifest import MANIFEST, Manifest, record_of, shard_bytes, shard_path


def write_site(
    output_dir: Path, build: SiteBuild, previous: Manifest | None = None
) -> PublishReport:
    """Write every file of `build` under `output_dir`, prune stale event files and write
    the manifest. `previous` is the manifest the build started from (read if None)."""
    previous = previous if previous is not None else Manifest.load(output_dir)
    report = PublishReport(output_dir=output_dir)
    manifest = Manifest(issues=dict(build.issues), site=build.site)
    for relative, data in sorted(build.files.items()):
        sha256 = hashlib.sha256(data).hexdigest()
        inputs = build.inputs.get(relative, "")
        path = output_dir / relative
        known = previous.unchanged(output_dir, relative, sha256)
        if known is not None:
            report.unchanged.append(relative)
            manifest.files[relative] = replace(known, inputs=inputs)
            continue
        if write_atomic(path, data):
            report.written.append(relative)
        else:
            report.unchanged.append(relative)
        # Another publish into this folder may have removed it: unrecorded, it is written next.
        with suppress(FileNotFoundError):
            manifest.files[relative] = record_of(path, sha256, inputs)
    for relative, record in sorted(build.kept.items()):
        report.unchanged.append(relative)
        manifest.files[relative] = record
    for shard, summaries in sorted(build.shards.items()):  # before the manifest naming them
        write_atomic(output_dir / shard_path(shard), shard_bytes(summaries))
    everything = set(build.files) | set(build.kept)
    keep = {output_dir / relative for relative in everything if relative.startswith("events/")}
    for path in remove_stale(output_dir / "events", keep, "*.ics"):
        report.removed.append(str(path.relative_to(output_dir)))
    write_atomic(output_dir / MANIFEST, manifest.to_bytes())
    return report
