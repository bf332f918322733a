"""The coach's pages: a person page per week and a roster page per coach, as self-contained HTML
(inline CSS and SVG, a Content-Security-Policy that forbids every fetch) and as Markdown for
e-mail or chat. Templates live in ``templates/`` beside this module.

The person page has a named slot for the lab-context panel (``tunewell.coach.labs``): a
``LabProvider`` returns its HTML and Markdown (each with its own "Lab context" heading), or None,
and then nothing is rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from tunewell.coach import labs
from tunewell.coach.insights import MIN_NIGHTS
from tunewell.coach.suggest import DISCLAIMER
from tunewell.coach.summary import PersonWeek
from tunewell.coach.week import IsoWeek

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class LabSlot:
    html: str
    markdown: str


LabProvider = Callable[[Path, str, IsoWeek], LabSlot | None]


def lab_provider(priority: Sequence[str] = ()) -> LabProvider:
    """The lab-context panel from ``tunewell.coach.labs`` (results up to the week's Sunday);
    None when the person has no lab results, so the page shows nothing."""

    def provide(lake: Path, user_id: str, week: IsoWeek) -> LabSlot | None:
        panel = labs.build_panel(lake, user_id, as_of=week.sunday, priority=priority)
        if panel.is_empty:
            return None
        return LabSlot(labs.render_html(panel), labs.render_markdown(panel))

    return provide


def _mdcell(s: object) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["mdcell"] = _mdcell
    return env


ENV = _env()


def attention_order(people: Iterable[PersonWeek]) -> list[PersonWeek]:
    """Who needs attention first: higher attention, then more suggestions, then by id."""
    return sorted(people, key=lambda p: (-p.attention, -len(p.suggestions), p.user_id))


def render_person(
    p: PersonWeek, *, roster_href: str = "index.html", lab: LabSlot | None = None
) -> tuple[str, str]:
    ctx = {
        "p": p,
        "roster_href": roster_href,
        "disclaimer": DISCLAIMER,
        "min_nights": MIN_NIGHTS,
        "lab_html": lab.html if lab else "",
        "lab_markdown": lab.markdown if lab else "",
    }
    html = ENV.get_template("person.html.j2").render(ctx)
    md = ENV.get_template("person.md.j2").render(ctx)
    return html, _tidy_md(md)


@dataclass(frozen=True)
class RosterLink:
    title: str
    href: str


def render_roster(
    title: str,
    week: IsoWeek,
    people: Iterable[PersonWeek],
    others: Iterable[RosterLink] = (),
) -> tuple[str, str]:
    ctx = {
        "title": title,
        "week": week,
        "people": attention_order(people),
        "others": list(others),
        "disclaimer": DISCLAIMER,
    }
    html = ENV.get_template("roster.html.j2").render(ctx)
    md = ENV.get_template("roster.md.j2").render(ctx)
    return html, _tidy_md(md)


def _tidy_md(md: str) -> str:
    """Collapse the blank-line runs that template blocks leave behind."""
    out: list[str] = []
    for line in md.splitlines():
        if not line.strip() and out and not out[-1].strip():
            continue
        out.append(line.rstrip())
    return "\n".join(out).strip() + "\n"
