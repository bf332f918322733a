"""Settings from ``tunewell.toml`` and the environment, validated once at the edge.

One small module every layer may import, so a nightly flow, the CLI and an analyst's notebook
agree on where the lake is, which time zone each person lives in, and which device wins when two
saw the same minute. Environment wins over the file (``TUNEWELL_LAKE``, ``TUNEWELL_INBOX``,
``TUNEWELL_CONFIG``, ``TUNEWELL_PSEUDONYM_KEY``).

The models are pydantic dataclasses with ``extra="forbid"``: a typo in ``tunewell.toml`` would
otherwise be ignored and silently fall back to a default, and a misspelt zone would only surface
as wrong local dates weeks later. ``load_settings`` turns every such problem into one
``SettingsError`` naming the file and the key. They are frozen, and their mappings are read-only
views, so code that wants other settings builds new ones (``dataclasses.replace``) instead of
changing what every other caller holds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import field, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic.dataclasses import dataclass

from tunewell.lake.paths import RemotePath, is_url, lake_path

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
    # Lab results: no other source measures the same thing, so they never compete.
    "fhir",
    "lab_csv",
    "mmash",
)

Sex = Literal["male", "female"]  # for TRIMP constants
# Worker processes: more than a few only adds imports and memory on the machines this runs on.
Workers = Annotated[int, Field(ge=1, le=64)]
_STRICT = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class SettingsError(ValueError):
    """A settings file that cannot be used; the message names the file and the key."""


def check_zone(tz: str) -> str:
    """An IANA zone name that zoneinfo knows, else a ValueError naming it."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {tz!r} (an IANA name such as 'Europe/Berlin')"
        raise ValueError(msg) from None
    return tz


class FrozenDict(dict[str, Any]):
    """A dict that refuses changes, so a frozen settings object stays frozen all the way down.

    A ``MappingProxyType`` would do the same but cannot be pickled, and Prefect's task runners
    pickle task arguments.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("settings are read-only: build new ones with dataclasses.replace")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


# An IANA zone name, checked when settings are built.
Zone = Annotated[str, AfterValidator(check_zone)]


def _read_only(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return value if isinstance(value, FrozenDict) else FrozenDict(value)


@dataclass(frozen=True, config=_STRICT)
class ZonePeriod:
    """The user lived in ``tz`` from ``since`` (local date) until the next period starts."""

    since: date
    tz: Zone


@dataclass(frozen=True, config=_STRICT)
class UserSettings:
    user_id: str
    tz: Zone | None = None  # None: not configured, so times without an offset are assumed UTC
    tz_history: tuple[ZonePeriod, ...] = ()
    sex: Sex | None = None
    hr_max: float | None = Field(default=None, gt=0, le=260)
    hr_rest: float | None = Field(default=None, gt=0, le=200)
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    # Reader options for this user's files, e.g. start_date (MMASH) or fitabase_id (Fitabase).
    options: Mapping[str, Any] = field(default_factory=dict)

    @field_validator("options", mode="after")
    @classmethod
    def _frozen_options(cls, v: Mapping[str, Any]) -> Mapping[str, Any]:
        return _read_only(v)

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


@dataclass(frozen=True, config=_STRICT)
class CoachSettings:
    """A coach and the people (user ids as in the inbox/config) on their roster."""

    name: str | None = None
    people: tuple[str, ...] = ()


@dataclass(frozen=True, config=_STRICT)
class IngestLimits:
    """Bounds on what one input file may cost (``[limits]`` in ``tunewell.toml``). Defaults are
    far above any real export (a decade of Apple Health is ~5 GB of XML, compressing ~10–30×) and
    far below what a bomb claims; a user with a bigger export raises them here, in one place."""

    max_member_bytes: int = Field(default=8 << 30, gt=0)  # one uncompressed archive member
    max_total_bytes: int = Field(default=16 << 30, gt=0)  # all members of an archive, inflated
    # uncompressed / compressed per member (deflate tops out at ~1032:1)
    max_ratio: float = Field(default=250.0, gt=1)
    ratio_floor_bytes: int = Field(default=1 << 20, ge=0)  # smaller members are never bombs
    max_members: int = Field(default=100_000, gt=0)
    max_depth: int = Field(default=2, ge=0)  # a zip in a zip in a zip is refused
    max_fit_bytes: int = Field(default=256 << 20, gt=0)
    max_fit_chain: int = Field(default=1_000, gt=0)  # FIT files concatenated in one
    max_json_bytes: int = Field(default=64 << 20, gt=0)  # a larger unclaimed .json is not parsed
    xml_prologue_bytes: int = Field(default=1 << 20, gt=0)  # how far the DTD may run


@dataclass(frozen=True, config=_STRICT)
class Settings:
    # A folder, or an fsspec URL (s3://bucket/lake) for a lake on object storage.
    lake: Path | RemotePath = DEFAULT_LAKE
    inbox: Path = DEFAULT_INBOX
    source_priority: tuple[str, ...] = DEFAULT_PRIORITY
    users: Mapping[str, UserSettings] = field(default_factory=dict)
    schedule_tz: Zone = "UTC"
    pseudonymise_key: str | None = None
    config_path: Path | None = None
    # No coaches configured: the coach layer shows one roster of everyone.
    coaches: Mapping[str, CoachSettings] = field(default_factory=dict)
    ingest_limits: IngestLimits = field(default_factory=IngestLimits)
    # Processes that read (stage) files in ``tunewell ingest``; the commit is always one writer.
    ingest_workers: Workers = 1

    @field_validator("lake", mode="before")
    @classmethod
    def _lake(cls, v: Any) -> Any:
        return lake_path(v) if isinstance(v, str) else v

    @field_validator("users", "coaches", mode="after")
    @classmethod
    def _frozen_maps(cls, v: Mapping[str, Any]) -> Mapping[str, Any]:
        return _read_only(v)

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

    def with_user(self, user: UserSettings) -> Settings:
        """These settings with one user's entry added or replaced (the CLI's ``--tz``)."""
        return replace(self, users={**self.users, user.user_id: user})


# ---- the TOML file ---------------------------------------------------------------------------


@dataclass(frozen=True, config=_STRICT)
class _PathSection:
    path: str | None = None


@dataclass(frozen=True, config=_STRICT)
class _SourcesSection:
    priority: tuple[str, ...] = DEFAULT_PRIORITY


@dataclass(frozen=True, config=_STRICT)
class _ScheduleSection:
    tz: Zone = "UTC"


@dataclass(frozen=True, config=_STRICT)
class _PrivacySection:
    pseudonymise_key: str | None = None


@dataclass(frozen=True, config=_STRICT)
class _IngestSection:
    workers: Workers = 1


@dataclass(frozen=True, config=_STRICT)
class _SettingsFile:
    """The layout of ``tunewell.toml``; every key not named here is an error."""

    lake: _PathSection = field(default_factory=_PathSection)
    inbox: _PathSection = field(default_factory=_PathSection)
    sources: _SourcesSection = field(default_factory=_SourcesSection)
    schedule: _ScheduleSection = field(default_factory=_ScheduleSection)
    privacy: _PrivacySection = field(default_factory=_PrivacySection)
    ingest: _IngestSection = field(default_factory=_IngestSection)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # checked as UserSettings
    coaches: dict[str, CoachSettings] = field(default_factory=dict)
    limits: IngestLimits = field(default_factory=IngestLimits)


_FILE = TypeAdapter(_SettingsFile)


def _problems(exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in (*prefix, *e['loc'])) or '(top level)'}: "
        + ("unknown key" if e["type"] == "unexpected_keyword_argument" else e["msg"])
        for e in exc.errors()
    )


def load_settings(config: Path | str | None = None, lake: Path | str | None = None) -> Settings:
    """Read settings: explicit arguments > environment > ``tunewell.toml`` > defaults.

    Raises ``SettingsError`` naming the file and the key for unknown keys, bad zones, bad values
    and TOML syntax errors.
    """
    path = Path(config) if config else Path(os.environ.get("TUNEWELL_CONFIG", "tunewell.toml"))
    raw: dict[str, Any] = {}
    if path.is_file():
        try:
            with path.open("rb") as fh:
                raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    try:
        parsed = _FILE.validate_python(raw)
    except ValidationError as exc:
        raise SettingsError(f"{path}: {_problems(exc)}") from None
    base = path.parent if path.is_file() else Path.cwd()

    def _path(value: str | None, env: str, default: Path) -> Path:
        if os.environ.get(env):
            return Path(os.environ[env])
        if value:
            p = Path(value)
            return p if p.is_absolute() else base / p
        return default

    raw_lake = lake or os.environ.get("TUNEWELL_LAKE") or parsed.lake.path
    lake_at: Path | RemotePath = (
        lake_path(str(raw_lake))  # an fsspec URL stays a URL
        if raw_lake and is_url(raw_lake)
        else Path(lake)
        if lake
        else _path(parsed.lake.path, "TUNEWELL_LAKE", DEFAULT_LAKE)
    )
    inbox_path = _path(parsed.inbox.path, "TUNEWELL_INBOX", DEFAULT_INBOX)
    users = {}
    for uid, raw_user in parsed.users.items():
        if "user_id" in raw_user:
            raise SettingsError(
                f"{path}: users.{uid}.user_id: unknown key (the id is the table name)"
            )
        try:
            users[uid] = UserSettings(uid, **raw_user)
        except ValidationError as exc:
            raise SettingsError(f"{path}: {_problems(exc, ('users', uid))}") from None
    try:
        return Settings(
            lake=lake_at,
            inbox=inbox_path,
            source_priority=parsed.sources.priority,
            users=users,
            schedule_tz=parsed.schedule.tz,
            pseudonymise_key=os.environ.get("TUNEWELL_PSEUDONYM_KEY")
            or parsed.privacy.pseudonymise_key,
            config_path=path if path.is_file() else None,
            coaches=parsed.coaches,
            ingest_limits=parsed.limits,
            ingest_workers=parsed.ingest.workers,
        )
    except ValidationError as exc:
        raise SettingsError(f"{path}: {_problems(exc)}") from None


_DEFAULT_LIMITS = IngestLimits()
_USER_KEYS = ("tz", "tz_history", "sex", "hr_max", "hr_rest", "birth_year", "options")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _value(v: Any) -> str:
    """One TOML value; strings as JSON strings, which are valid TOML basic strings."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, datetime | date | time):
        return v.isoformat()
    if isinstance(v, Path | RemotePath):
        return json.dumps(v.as_posix())
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_key(str(k))} = {_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, ZonePeriod):
        return _value({"since": v.since, "tz": v.tz})
    raise TypeError(f"cannot write {type(v).__name__} to TOML: {v!r}")


def _rel(p: Path, base: Path | None) -> Path:
    """``p`` as the loader will resolve it from a file in ``base``: relative where it can be."""
    if base is None or isinstance(p, RemotePath):
        return p
    try:
        return Path(os.path.relpath(p.resolve(), base.resolve()))
    except ValueError:  # another drive (Windows)
        return p.resolve()


def settings_toml(settings: Settings, base: Path | None = None) -> str:
    """Serialise settings to TOML that ``load_settings`` reads back to equal settings.

    ``base`` is the folder the file will live in: relative lake and inbox paths are written
    relative to it, because the loader resolves them from the file's folder. Without it they are
    written as they are. ``config_path`` is where the file is, so it is not written.
    """
    lines = [
        "# tunewell settings. Environment variables TUNEWELL_LAKE / TUNEWELL_INBOX override paths.",
        "[lake]",
        f"path = {_value(_rel(settings.lake, base))}",
        "",
        "[inbox]",
        f"path = {_value(_rel(settings.inbox, base))}",
        "",
        "[sources]",
        "# When two devices saw the same time slice of one metric, the first listed wins.",
        f"priority = {_value(settings.source_priority)}",
        "",
        "[schedule]",
        f"tz = {_value(settings.schedule_tz)}",
        "",
    ]
    if settings.pseudonymise_key:
        lines += ["[privacy]", f"pseudonymise_key = {_value(settings.pseudonymise_key)}", ""]
    changed = {
        k: v
        for k, v in vars(settings.ingest_limits).items()
        if not k.startswith("_") and v != getattr(_DEFAULT_LIMITS, k)
    }
    if changed:
        lines += ["[limits]", *(f"{k} = {_value(v)}" for k, v in changed.items()), ""]
    if settings.ingest_workers != 1:
        lines += ["[ingest]", f"workers = {settings.ingest_workers}", ""]
    for uid, u in settings.users.items():
        lines.append(f"[users.{_key(uid)}]")
        for k in _USER_KEYS:
            v = getattr(u, k)
            if k == "options" and v:
                continue  # its own table below
            if v is not None and v != ():
                lines.append(f"{k} = {_value(v)}")
        if u.options:
            lines += ["", f"[users.{_key(uid)}.options]"]
            lines += [f"{_key(k)} = {_value(v)}" for k, v in u.options.items()]
        lines.append("")
    for cid, c in settings.coaches.items():
        lines.append(f"[coaches.{_key(cid)}]")
        if c.name is not None:
            lines.append(f"name = {_value(c.name)}")
        lines += [f"people = {_value(c.people)}", ""]
    return "\n".join(lines)


def save_settings(settings: Settings, path: Path) -> Path:
    """Write ``settings`` to ``path`` so that ``load_settings(path)`` gives them back."""
    path.write_text(settings_toml(settings, base=path.parent))
    return path
