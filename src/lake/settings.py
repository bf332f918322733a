"""Settings from ``tunewell.toml`` and the environment.

One small file so a nightly flow, the CLI and an analyst's notebook agree on where the lake is,
which time zone each person lives in, and which device wins when two saw the same minute.
Environment wins over the file (``TUNEWELL_LAKE``, ``TUNEWELL_INBOX``, ``TUNEWELL_CONFIG``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

DEFAULT_LAKE = Path("data/lake")
DEFAULT_INBOX = Path("data/inbox")
# Dedicated sleep/HRV wearables first, then watches, then phones and self-tracking exports.
DEFAULT_PRIORITY = (
    "oura",
    "whoop",
    "garmin_fit",
    "polar",
    "fitbit",
    "apple_health",
    "gadgetbridge",
    "google_fit",
    "rr_csv",
    "actigraph_csv",
    "fitabase",
    "pmdata",
)


@dataclass(frozen=True)
class ZonePeriod:
    """The user lived in ``tz`` from ``since`` (local date) until the next period starts."""

    since: date
    tz: str


@dataclass(frozen=True)
class UserSettings:
    user_id: str
    tz: str | None = None  # None: not configured, so times without an offset are assumed UTC
    tz_history: tuple[ZonePeriod, ...] = ()
    sex: str | None = None  # "male" | "female" | None, for TRIMP constants
    hr_max: float | None = None
    hr_rest: float | None = None
    birth_year: int | None = None
    # Reader options for this user's files, e.g. start_date (MMASH) or fitabase_id (Fitabase).
    options: dict = field(default_factory=dict)

    def zone_periods(self) -> tuple[ZonePeriod, ...]:
        """Zone history sorted by start, with the home zone covering everything before it."""
        periods = sorted(self.tz_history, key=lambda p: p.since)
        return (ZonePeriod(date(1900, 1, 1), self.home_tz), *periods)

    @property
    def home_tz(self) -> str:
        return self.tz or "UTC"

    @property
    def zone_configured(self) -> bool:
        return self.tz is not None or bool(self.tz_history)


@dataclass(frozen=True)
class Settings:
    lake: Path = DEFAULT_LAKE
    inbox: Path = DEFAULT_INBOX
    source_priority: tuple[str, ...] = DEFAULT_PRIORITY
    users: dict[str, UserSettings] = field(default_factory=dict)
    schedule_tz: str = "UTC"
    pseudonymise_key: str | None = None
    config_path: Path | None = None

    def lake_id(self, user_id: str) -> str:
        """The id stored in the lake: a keyed hash of the user's name when a pseudonymisation
        key is configured, so lake files and reports shared with an analyst carry no names."""
        if not self.pseudonymise_key:
            return user_id
        mac = hmac.new(self.pseudonymise_key.encode(), user_id.encode(), hashlib.sha256)
        return "u" + mac.hexdigest()[:15]

    def user(self, user_id: str) -> UserSettings:
        """Settings of a user named as in the inbox/config, carrying the lake id."""
        u = self.users.get(user_id) or UserSettings(user_id)
        return replace(u, user_id=self.lake_id(u.user_id))

    def lake_user(self, lake_id: str) -> UserSettings:
        """Settings of a user named by their lake id (as the gold refresh sees them)."""
        for name, u in self.users.items():
            if self.lake_id(name) == lake_id:
                return replace(u, user_id=lake_id)
        return UserSettings(lake_id)

    def priority_rank(self, source: str) -> int:
        try:
            return self.source_priority.index(source)
        except ValueError:
            return len(self.source_priority)


def _user(user_id: str, raw: dict) -> UserSettings:
    hist = tuple(
        ZonePeriod(date.fromisoformat(str(p["since"])), str(p["tz"]))
        for p in raw.get("tz_history", [])
    )
    return UserSettings(
        user_id=user_id,
        tz=raw.get("tz"),
        tz_history=hist,
        sex=raw.get("sex"),
        hr_max=raw.get("hr_max"),
        hr_rest=raw.get("hr_rest"),
        birth_year=raw.get("birth_year"),
        options=dict(raw.get("options", {})),
    )


def load_settings(config: Path | str | None = None, lake: Path | str | None = None) -> Settings:
    """Read settings: explicit arguments > environment > ``tunewell.toml`` > defaults."""
    path = Path(config) if config else Path(os.environ.get("TUNEWELL_CONFIG", "tunewell.toml"))
    raw: dict = {}
    if path.is_file():
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    base = path.parent if path.is_file() else Path.cwd()

    def _path(value: str | None, env: str, default: Path) -> Path:
        if os.environ.get(env):
            return Path(os.environ[env])
        if value:
            p = Path(value)
            return p if p.is_absolute() else base / p
        return default

    lake_path = (
        Path(lake)
        if lake
        else _path(raw.get("lake", {}).get("path"), "TUNEWELL_LAKE", DEFAULT_LAKE)
    )
    inbox_path = _path(raw.get("inbox", {}).get("path"), "TUNEWELL_INBOX", DEFAULT_INBOX)
    users = {uid: _user(uid, u) for uid, u in raw.get("users", {}).items()}
    prio = tuple(raw.get("sources", {}).get("priority", DEFAULT_PRIORITY))
    return Settings(
        lake=lake_path,
        inbox=inbox_path,
        source_priority=prio,
        users=users,
        schedule_tz=raw.get("schedule", {}).get("tz", "UTC"),
        pseudonymise_key=os.environ.get("TUNEWELL_PSEUDONYM_KEY")
        or raw.get("privacy", {}).get("pseudonymise_key"),
        config_path=path if path.is_file() else None,
    )


def settings_toml(settings: Settings) -> str:
    """Serialise settings back to TOML (used by the demo to leave an editable example)."""
    lines = [
        "# tunewell settings. Environment variables TUNEWELL_LAKE / TUNEWELL_INBOX override paths.",
        "[lake]",
        f'path = "{settings.lake.as_posix()}"',
        "",
        "[inbox]",
        f'path = "{settings.inbox.as_posix()}"',
        "",
        "[sources]",
        "# When two devices saw the same time slice of one metric, the first listed wins.",
        "priority = [" + ", ".join(f'"{s}"' for s in settings.source_priority) + "]",
        "",
        "[schedule]",
        f'tz = "{settings.schedule_tz}"',
        "",
    ]
    for u in settings.users.values():
        lines.append(f"[users.{u.user_id}]")
        if u.tz:
            lines.append(f'tz = "{u.tz}"')
        if u.sex:
            lines.append(f'sex = "{u.sex}"')
        if u.hr_max:
            lines.append(f"hr_max = {u.hr_max}")
        if u.hr_rest:
            lines.append(f"hr_rest = {u.hr_rest}")
        if u.tz_history:
            hist = ", ".join(f'{{since = "{p.since}", tz = "{p.tz}"}}' for p in u.tz_history)
            lines.append(f"tz_history = [{hist}]")
        lines.append("")
    return "\n".join(lines)
