"""The agenda's dates (badges, ranges, series) and the image policy, in isolation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from digest.compose import PlanItem
from digest.render.agenda import agenda_when, badge, series_note
from digest.render.images import apply_policy, copy_plan, is_tracking, lead_image, media_path

BASE = "https://digest.example.org"
START = datetime(2026, 12, 27, 8, 30, tzinfo=UTC)  # 09:30 in Brussels


def event(**values: object) -> PlanItem:
    fields: dict[str, object] = {
        "key": "event:1",
        "kind": "event",
        "title": "Training Academies IncluCities",
        "link": None,
        "summary_html": "",
        "summary_text": "",
        "language": "nl",
        "foreign": False,
        "starts_at": START,
        "ends_at": START + timedelta(hours=7, minutes=30),
        "uid": "training@x",
    }
    fields.update(values)
    return PlanItem(**fields)  # type: ignore[arg-type]


def test_badge_and_a_multi_day_range() -> None:
    item = event(last_day=date(2026, 12, 28))
    assert badge(item, "en", "Europe/Brussels") == ("DEC", "27")
    assert badge(item, "fr", "Europe/Brussels")[1] == "27"
    assert (
        agenda_when(item, "nl", "Europe/Brussels") == "27–28 december 2026, 09:30\u202f–\u202f17:00"
    )
    assert agenda_when(item, "fr", "Europe/Brussels").startswith("27–28 décembre 2026, 09:30")
    english = agenda_when(item, "en", "Europe/Brussels")
    assert english.startswith("December 27") and "9:30" in english and "5:00" in english


@pytest.mark.parametrize(
    ("language", "rhythm", "also"),
    [
        ("en", "Every other Sunday", "also"),
        ("nl", "Om de andere zondag", "ook"),
        ("fr", "Un dimanche sur deux", "aussi"),
    ],
)
def test_a_series_says_its_rhythm_and_later_dates(language: str, rhythm: str, also: str) -> None:
    later = tuple((START + timedelta(days=14 * n)).isoformat() for n in (1, 2))
    note = series_note(event(recurrence_days=14, later=later), language, "Europe/Brussels")
    assert note.startswith(rhythm), note
    assert f" · {also}" in note
    assert series_note(event(), language, "Europe/Brussels") == ""


def test_a_four_weekly_series() -> None:
    later = tuple((START + timedelta(days=28 * n)).isoformat() for n in (1, 2))
    note = series_note(event(recurrence_days=28, later=later), "nl", "Europe/Brussels")
    assert note.startswith("Om de 4 weken · ook ")


def test_two_dates_are_no_rhythm() -> None:
    later = ((START + timedelta(days=23)).isoformat(),)
    note = series_note(event(recurrence_days=23, later=later), "en", "Europe/Brussels")
    assert note == "Also Tue 19 Jan"


def test_tracking_images_are_recognised() -> None:
    assert is_tracking("https://evil.example/pixel.gif")
    assert is_tracking("https://news.example/wf/open?x=1")
    assert is_tracking("https://cdn.example/a.png", width=1, height=1)
    assert not is_tracking("https://hub.example/files/inclucities-training-academies-manos.jpg")
    assert not is_tracking("https://hub.example/news/open-call-2027.jpg")


HTML = (
    '<p><img src="https://hub.example/files/photo.jpg" alt="Manos" width="1280" height="720">'
    '<img src="https://evil.example/pixel.gif" alt="">'
    '<img src="https://cdn.example/a.png" width="1" height="1" alt="">'
    f'<img src="{BASE}/media/own.png" alt="ours"></p>'
    '<p>A <a>link whose unsafe href was removed</a> and <a href="https://x.example/">one</a>.</p>'
)


def test_drop_keeps_only_our_own_images_and_unwraps_dead_links() -> None:
    cleaned = apply_policy(HTML, "drop", BASE)
    assert "hub.example" not in cleaned and "evil.example" not in cleaned
    assert f'src="{BASE}/media/own.png"' in cleaned
    assert "<a>" not in cleaned and "link whose unsafe href was removed" in cleaned
    assert '<a href="https://x.example/">one</a>' in cleaned


def test_copy_serves_from_base_url_sized_for_the_column() -> None:
    cleaned = apply_policy(HTML, "copy", BASE)
    path = media_path("https://hub.example/files/photo.jpg")
    assert f'<img src="{BASE}/{path}" alt="Manos" width="552" height="310">' in cleaned
    assert "pixel.gif" not in cleaned and "a.png" not in cleaned
    assert copy_plan(
        ["https://hub.example/files/photo.jpg", "https://evil.example/pixel.gif"], "copy", BASE
    ) == {"https://hub.example/files/photo.jpg": path}
    assert copy_plan(["https://hub.example/files/photo.jpg"], "drop", BASE) == {}


def test_remote_keeps_the_source_but_never_a_tracker() -> None:
    cleaned = apply_policy(HTML, "remote", BASE)
    assert 'src="https://hub.example/files/photo.jpg"' in cleaned
    assert "pixel.gif" not in cleaned


def test_lead_image_follows_the_policy() -> None:
    item = event(kind="entry", image_url="https://hub.example/files/photo.jpg")
    assert lead_image(item, "drop", BASE) is None
    remote = lead_image(item, "remote", BASE)
    assert remote is not None and remote.src == item.image_url and remote.width == 552
    copied = lead_image(item, "copy", BASE)
    assert copied is not None and copied.src.startswith(f"{BASE}/media/")
    assert lead_image(event(image_url="https://evil.example/pixel.gif"), "remote", BASE) is None


def test_the_lead_image_takes_its_dimensions_from_the_body() -> None:
    photo = "https://hub.example/files/manos.jpg"
    body = f'<p><img src="{photo}" alt="Manos" width="640" height="360"></p>'
    item = event(kind="entry", image_url=None, summary_html=body)
    image = lead_image(item, "remote", BASE)
    assert image is not None
    assert (image.src, image.width, image.height) == (photo, 552, 310)
    tracked = event(kind="entry", summary_html='<img src="https://x.example/p.gif" width="1">')
    assert lead_image(tracked, "remote", BASE) is None
