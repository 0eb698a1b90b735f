"""Mail in the reader's language from the sender's side too: the title and display name
per language, the section labels from the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from digest.pipeline import sending
from tests.test_draft import MONDAY
from tests.test_send import SECRETS, add_people, approved_issue, parsed, settings_for

LOCALIZED = """
[publication]
titles = { nl = "Digest Steden & Migratie" }
sender_names = { nl = "Digest Steden & Migratie", fr = "Digest « Villes & Migration »" }
[labels.sections.projects]
nl = "Lopende projecten"
"""


def test_each_reader_gets_the_title_sender_and_labels_of_their_language(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings_for(make_settings, tmp_path, None)  # writes the example's sources
    text = (tmp_path / "digest.toml").read_text(encoding="utf-8")
    settings = make_settings(LOCALIZED + SECRETS + text[text.index("[[sources]]") :])
    add_people(settings, factory)
    approved_issue(settings, factory)
    report = sending.send(settings, factory, now=MONDAY)
    assert report.finished
    messages = {}
    for path in settings.delivery.outbox_dir.rglob("*.eml"):
        message = parsed(path.read_bytes())
        messages[str(message["To"])] = message
    dutch = messages["bram@example.be"]
    assert dutch["From"].addresses[0].display_name == "Digest Steden & Migratie"
    assert dutch["Subject"].startswith("Digest Steden & Migratie — ")
    html = dutch.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Lopende projecten" in html
    french = messages["chloe@example.fr"]
    assert french["From"].addresses[0].display_name == "Digest « Villes & Migration »"
    assert french["Subject"].startswith("Cities & Migration Digest — ")
    english = messages["ana@example.net"]
    assert english["From"].addresses[0].display_name == "Cities & Migration Digest"
