"""Settings: a typo or a bad value is an error naming the file and the key; saving loses nothing."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError, replace
from datetime import date
from pathlib import Path

import pytest

from tunewell.settings import (
    CoachSettings,
    IngestLimits,
    Settings,
    SettingsError,
    UserSettings,
    ZonePeriod,
    load_settings,
    save_settings,
)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for var in ("TUNEWELL_LAKE", "TUNEWELL_INBOX", "TUNEWELL_CONFIG", "TUNEWELL_PSEUDONYM_KEY"):
        monkeypatch.delenv(var, raising=False)


def _load(tmp_path: Path, text: str) -> Settings:
    cfg = tmp_path / "tunewell.toml"
    cfg.write_text(text)
    return load_settings(cfg)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[lake]\npth = "x"\n', "lake.pth: unknown key"),
        ('[lakes]\npath = "x"\n', "lakes: unknown key"),
        ('[users.ann]\ntimezone = "Europe/Berlin"\n', "users.ann.timezone: unknown key"),
        ('[users.ann]\ntz = "Europe/Berlim"\n', "users.ann.tz: Value error, unknown time zone"),
        ('[users.ann]\ntz_history = [{since = 2026-04-01, tz = "Mars/Olympus"}]\n', "Mars/Olympus"),
        ('[users.ann]\nsex = "f"\n', "users.ann.sex"),
        ("[users.ann]\nhr_max = -3\n", "users.ann.hr_max"),
        ("[users.ann]\nbirth_year = 1492\n", "users.ann.birth_year"),
        ('[users.ann]\nuser_id = "bob"\n', "users.ann.user_id: unknown key"),
        ('[schedule]\ntz = "Nowhere/Town"\n', "schedule.tz"),
        ('[coaches.kim]\nname = "Kim"\nroster = ["ann"]\n', "coaches.kim.roster: unknown key"),
        ("[limits]\nmax_totl_bytes = 1\n", "limits.max_totl_bytes: unknown key"),
        ("[limits]\nmax_ratio = 0.5\n", "limits.max_ratio"),
        ('[limits]\nmax_depth = "two"\n', "limits.max_depth"),
        ("[lake\n", "not valid TOML"),
    ],
)
def test_bad_settings_name_the_file_and_the_key(tmp_path: Path, text: str, names: str):
    with pytest.raises(SettingsError) as err:
        _load(tmp_path, text)
    assert str(tmp_path / "tunewell.toml") in str(err.value)
    assert names in str(err.value)


def test_settings_round_trip_without_loss(tmp_path: Path):
    s = Settings(
        lake=tmp_path / "lake",
        inbox=tmp_path / "in box",
        source_priority=("garmin_fit", "oura"),
        users={
            "ann": UserSettings(
                "ann",
                tz="Europe/Berlin",
                tz_history=(ZonePeriod(date(2026, 4, 1), "America/New_York"),),
                sex="female",
                hr_max=188.0,
                hr_rest=52.5,
                birth_year=1984,
                options={"start_date": date(2020, 1, 6), "fitabase_id": "6962181067"},
            ),
            "bob.smith": UserSettings("bob.smith"),
        },
        schedule_tz="Europe/Berlin",
        pseudonymise_key='k"ey',
        coaches={
            "kim": CoachSettings(name="Kim Ö", people=("ann",)),
            "lee": CoachSettings(people=("bob.smith", "ann")),
        },
        ingest_limits=IngestLimits(max_total_bytes=40 << 30, max_depth=3),
    )
    cfg = save_settings(s, tmp_path / "tunewell.toml")
    back = load_settings(cfg)
    assert back.config_path == cfg
    assert replace(back, config_path=None) == s


def test_relative_paths_are_written_relative_to_the_file(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    s = Settings(lake=Path("demo/lake"), inbox=Path("demo/inbox"))
    back = load_settings(save_settings(s, tmp_path / "demo" / "tunewell.toml"))
    assert back.lake.resolve() == (tmp_path / "demo" / "lake").resolve()
    assert back.inbox.resolve() == (tmp_path / "demo" / "inbox").resolve()


def test_settings_are_frozen_through_their_mappings():
    s = Settings(users={"ann": UserSettings("ann", options={"fitabase_id": "1"})})
    with pytest.raises(TypeError):
        s.users["bob"] = UserSettings("bob")  # type: ignore[index]
    with pytest.raises(TypeError):
        s.users["ann"].options["fitabase_id"] = "2"  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        s.schedule_tz = "Europe/Berlin"  # type: ignore[misc]
    s2 = s.with_user(UserSettings("bob", tz="Asia/Tokyo"))
    assert set(s2.users) == {"ann", "bob"} and set(s.users) == {"ann"}


def test_settings_survive_pickling():
    """Prefect's task runners pickle task arguments."""
    s = Settings(
        users={"ann": UserSettings("ann", options={"a": 1})},
        coaches={"kim": CoachSettings(people=("ann",))},
    )
    assert pickle.loads(pickle.dumps(s)) == s


def test_no_file_and_no_coaches_gives_defaults(tmp_path: Path):
    s = load_settings(tmp_path / "absent.toml")
    assert s.coaches == {} and s.users == {} and s.config_path is None
    assert s.user("ann") == UserSettings("ann")
