"""Write a simulated population into an inbox the way people would drop their exports there.

Device assignment (by person index i): i % 3 == 0 wears a Garmin *and* carries an iPhone/Apple
Watch (so merging two sources of one night is exercised), i % 3 == 1 is Apple (plus a Fitbit when
"fitbit" is requested), i % 3 == 2 is Garmin only. A person left without any requested format gets
the first requested one. Layout: ``inbox/<user>/garmin/*.fit``, ``inbox/<user>/apple/export.zip``,
``inbox/<user>/fitbit/user-site-export/*.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tunewell.settings import UserSettings
from tunewell.synth.apple_health import write_apple
from tunewell.synth.fitbit import write_fitbit
from tunewell.synth.garmin_fit import write_garmin
from tunewell.synth.people import Population
from tunewell.synth.zones import user_settings

FORMATS = ("garmin_fit", "apple_health")
ALL_FORMATS = (*FORMATS, "fitbit")


def devices_for(index: int, formats: Iterable[str] = FORMATS) -> tuple[str, ...]:
    wanted = {0: FORMATS, 1: ("apple_health", "fitbit"), 2: ("garmin_fit",)}[index % 3]
    allowed = tuple(formats)
    chosen = tuple(f for f in wanted if f in allowed)
    return chosen or allowed[:1]


def write_inbox(
    pop: Population, inbox: Path, formats: Iterable[str] = FORMATS, seed: int = 0
) -> dict[str, UserSettings]:
    """Write every person's files under ``inbox``; returns the settings the demo should use."""
    formats = tuple(formats)
    unknown = set(formats) - set(ALL_FORMATS)
    if unknown:
        raise ValueError(f"unknown synthetic formats: {sorted(unknown)}")
    users: dict[str, UserSettings] = {}
    for i, person in enumerate(pop.people):
        base = Path(inbox) / person.user_id
        for fmt in devices_for(i, formats):
            if fmt == "garmin_fit":
                write_garmin(pop, person, base / "garmin", seed=seed)
            elif fmt == "apple_health":
                write_apple(pop, person, base / "apple", seed=seed)
            else:
                write_fitbit(pop, person, base / "fitbit" / "user-site-export", seed=seed)
        users[person.user_id] = user_settings(pop, person)
    return users
