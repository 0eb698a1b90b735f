"""Publishing files: atomic replacement, untouched when unchanged, stale files removed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from digest import layout
from digest.publish.files import remove_stale, write_atomic

FEED = b"<?xml version='1.0' encoding='utf-8'?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\"/>\n"


def age(path: Path, seconds: int) -> int:
    """Set a file's mtime `seconds` into the past and return it (in nanoseconds)."""
    then = path.stat().st_mtime_ns - seconds * 1_000_000_000
    os.utime(path, ns=(then, then))
    return then


def leftovers(folder: Path) -> list[str]:
    """Return the names of temporary files in a folder."""
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def test_writes_a_new_file_and_its_folders(tmp_path: Path) -> None:
    path = tmp_path / "public" / layout.feed("en")
    assert write_atomic(path, FEED) is True
    assert path.read_bytes() == FEED
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by the web server
    assert leftovers(path.parent) == []


def test_identical_content_keeps_the_file_and_its_mtime(tmp_path: Path) -> None:
    path = tmp_path / "feeds" / "en.atom"
    write_atomic(path, FEED)
    before = age(path, 3600)
    inode = path.stat().st_ino
    assert write_atomic(path, FEED) is False
    assert path.stat().st_mtime_ns == before
    assert path.stat().st_ino == inode


def test_changed_content_replaces_the_file_and_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "events.ics"
    path.write_bytes(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    path.chmod(0o640)
    before = age(path, 3600)
    # Same length, different bytes: the size check alone must not decide.
    assert write_atomic(path, b"BEGIN:VCALENDAR\r\nEND:VCALENDAX\r\n") is True
    assert path.read_bytes() == b"BEGIN:VCALENDAR\r\nEND:VCALENDAX\r\n"
    assert path.stat().st_mtime_ns > before
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_failed_replace_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "feeds" / "nl.atom"
    write_atomic(path, FEED)
    before = age(path, 60)

    def disk_full(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, FEED.replace(b"/>", b"><title>Nieuw</title></feed>"))
    assert path.read_bytes() == FEED
    assert path.stat().st_mtime_ns == before
    assert leftovers(path.parent) == []


def test_a_failed_write_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.ics"

    def broken_disk(descriptor: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_disk)
    with pytest.raises(OSError, match="Input/output"):
        write_atomic(path, b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_remove_stale_deletes_only_unlisted_matching_files(tmp_path: Path) -> None:
    events = tmp_path / "events"
    upcoming = tmp_path / layout.event_ics("training-academies-inclucities@example.org", "")
    past = tmp_path / layout.event_ics("networking-lunch-urbact-cities@example.org", "")
    for path in (upcoming, past):
        write_atomic(path, b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    notes = events / "README.txt"
    notes.write_text("kept: does not match the pattern\n")
    removed = remove_stale(events, {upcoming}, "*.ics")
    assert removed == [past]
    assert sorted(path.name for path in events.iterdir()) == sorted([upcoming.name, notes.name])


def test_remove_stale_accepts_relative_keep_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "events" / "a.ics"
    write_atomic(path, b"x")
    assert remove_stale(tmp_path / "events", {Path("events/a.ics")}, "*.ics") == []
    assert path.exists()


def test_remove_stale_in_a_missing_folder_removes_nothing(tmp_path: Path) -> None:
    assert remove_stale(tmp_path / "events", set(), "*.ics") == []


def test_remove_stale_refuses_patterns_that_leave_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="names"):
        remove_stale(tmp_path, set(), "../*.ics")
