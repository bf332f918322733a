"""The ``tunewell`` command line: demo, ingest, nightly, query, server, serve.

Thin by design: each command parses options, calls the same plain functions the flows use, and
prints a summary a person can act on (what came in, what was rejected and why, where it went).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tunewell.settings import Settings, UserSettings, load_settings, save_settings

if TYPE_CHECKING:
    from tunewell.pipelines.quality import QualityReport

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="tunewell: wearable and sleep exports → a private Parquet lake.",
)
console = Console()

# A string, not a Path: the lake may be an fsspec URL (s3://bucket/lake), which Path would mangle.
LakeOpt = Annotated[
    str | None,
    typer.Option(
        "--lake", help="Lake folder or s3://bucket/prefix (default: $TUNEWELL_LAKE or data/lake)"
    ),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="tunewell.toml to use")]


def _quiet_prefect() -> None:
    if not os.environ.get("PREFECT_API_URL"):
        # With the temporary API nobody reads task-run history after the process exits, and its
        # recorder, still flushing when the process ends, logs CancelledError tracebacks.
        os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _print_run(rep: QualityReport) -> None:
    from tunewell.lake.manifest import FileStatus

    run = rep.run
    t = Table(title="files")
    for c in ("seen", "ingested", "already seen", "quarantined", "skipped"):
        t.add_column(c, justify="right")
    statuses = (FileStatus.INGESTED, FileStatus.ALREADY_SEEN)
    t.add_row(
        str(len(run.files)),
        *(str(run.count(s)) for s in (*statuses, FileStatus.QUARANTINED, FileStatus.SKIPPED)),
    )
    console.print(t)
    rows = Table(title="rows per table")
    for c in ("table", "in", "new", "updated", "unchanged", "duplicate", "invalid"):
        rows.add_column(c, justify="right" if c != "table" else "left")
    for name, s in sorted(run.tables.items()):
        invalid = sum(run.invalid_rows.get(name, {}).values())
        rows.add_row(
            name,
            str(s.rows_in + invalid),
            str(s.inserted),
            str(s.updated),
            str(s.unchanged),
            str(s.duplicates_in_batch),
            str(invalid),
        )
    if run.tables:
        console.print(rows)
    quarantined = [f for f in run.files if f.status == FileStatus.QUARANTINED]
    for f in quarantined:
        console.print(f"[yellow]quarantined[/] {f.error}")
    for f in run.files:
        if f.status == FileStatus.SKIPPED:
            console.print(f"[dim]skipped (no reader for its content)[/] {f.file}")
    if quarantined:
        console.print(
            "Quarantined files are kept with their reason in <lake>/quarantine/. Once the cause "
            "is fixed (e.g. a missing --start-date), run again with --retry-quarantined."
        )


@contextlib.contextmanager
def _second_writer_exits():
    """A second writer gets the lock's message and exit code 3, a full or read-only disk its
    path and exit code 4, an unusable user id exit code 2: a sentence, not a traceback."""
    from tunewell.lake.store import LakeLockedError, LakeWriteError, UnsafeUserIdError

    try:
        yield
    except LakeLockedError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(3) from None
    except LakeWriteError as exc:
        console.print(f"[red]{exc.strerror}[/]")
        raise typer.Exit(4) from None
    except UnsafeUserIdError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files, folders or zip archives")],
    user: Annotated[str, typer.Option("--user", help="Whose data this is")],
    lake: LakeOpt = None,
    config: ConfigOpt = None,
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz", help="The user's home time zone, used where a record carries no offset"
        ),
    ] = None,
    fitabase_id: Annotated[
        str | None,
        typer.Option("--fitabase-id", help="Participant Id to take from Fitabase files"),
    ] = None,
    start_date: Annotated[
        str | None,
        typer.Option(
            "--start-date",
            help="Recording start date (YYYY-MM-DD) for files with day indexes "
            "only (MMASH RR.csv / Actigraph.csv)",
        ),
    ] = None,
    retry_quarantined: Annotated[bool, typer.Option(help="Read quarantined files again")] = False,
    features: Annotated[bool, typer.Option(help="Update gold features afterwards")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes that read files (default: [ingest] workers in tunewell.toml, else 1)",
        ),
    ] = None,
) -> None:
    """Ingest exports for one user. Exits 0 when the run completed, even if files were
    quarantined (their reasons are printed and kept in <lake>/quarantine/)."""
    from tunewell.ingest import runner
    from tunewell.pipelines import steps

    settings = load_settings(config, lake)
    if tz:
        base = settings.users.get(user) or UserSettings(user)
        settings = settings.with_user(replace(base, tz=tz))
    options: dict = {"start_date": date.fromisoformat(start_date)} if start_date else {}
    if fitabase_id:
        options["fitabase_id"] = fitabase_id
    with _second_writer_exits():
        cands = list(runner.discover(paths, user))
        runner.safety.check_user_id(settings.user(user).user_id)
    request = steps.NightlyRequest(
        options=options, retry_quarantined=retry_quarantined, gold=features
    )
    with _progress() as prog, _second_writer_exits():
        task = prog.add_task("reading", total=len(cands))

        def advance(step, item) -> None:
            if step is steps.stage_one:
                prog.advance(task)
            elif step is steps.build_gold:
                prog.update(task, description="updating features")

        # The nightly flow's own path (steps.run_nightly), in this process: ingest, this run's
        # gold and any a crashed run left owed, the touched weeks' summaries, both reports.
        n = workers if workers is not None else settings.ingest_workers
        rep = steps.run_nightly(settings, cands, request, steps.InProcess(advance, workers=n))
    if as_json:
        # Plain text, not rich's highlighter: a year of FIT files makes a ~650 kB report, which
        # rich took seconds of CPU to colour and wrap for a pipe.
        typer.echo(json.dumps(rep.to_dict(), default=str, indent=2, ensure_ascii=False))
    else:
        _print_run(rep)
        console.print(f"lake: [bold]{settings.lake}[/]   report: {rep.report_path}")


RunnerOpt = Annotated[
    str,
    typer.Option(
        "--runner",
        help="default (threads in this process) | sequential (one task at a time) | dask "
        "(a Dask cluster, `scale` extra)",
    ),
]
DaskAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--dask-address",
        help="Dask scheduler (tcp://host:8786); without it --runner dask starts a local "
        "cluster of 2 workers",
    ),
]


@contextlib.contextmanager
def _on_runner(runner: str, dask_address: str | None):
    """Yields ``wrap(flow)``: the flow on the chosen task runner. Dask workers and this process
    share one API (a temporary local one when no PREFECT_API_URL is set) for every flow run in
    the block."""
    from tunewell.pipelines.runners import Runner, shared_api, task_runner

    try:
        kind = Runner(runner)
        tr = task_runner(kind, dask_address)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    def wrap(flow):
        return flow if tr is None else flow.with_options(task_runner=tr)

    with shared_api(kind), _second_writer_exits():
        yield wrap


def _run_nightly(runner: str, dask_address: str | None, **params) -> QualityReport:
    from tunewell.pipelines.nightly import nightly as flow

    with _on_runner(runner, dask_address) as wrap:
        return wrap(flow)(runner_name=runner, **params)


@app.command()
def nightly(
    lake: LakeOpt = None,
    config: ConfigOpt = None,
    inbox: Annotated[Path | None, typer.Option(help="Inbox folder (<inbox>/<user>/…)")] = None,
    full: Annotated[bool, typer.Option(help="Recompute all gold rows")] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Backfill: re-derive gold from this date (YYYY-MM-DD) onwards"
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Backfill: last date to re-derive (default: the last one)"),
    ] = None,
    user: Annotated[
        list[str] | None, typer.Option("--user", help="Backfill only these users (repeatable)")
    ] = None,
    runner: RunnerOpt = "default",
    dask_address: DaskAddressOpt = None,
) -> None:
    """Run the nightly flow once: new inbox files → silver → features → quality report."""
    _quiet_prefect()
    try:
        since_d = date.fromisoformat(since) if since else None
        until_d = date.fromisoformat(until) if until else None
    except ValueError as exc:
        raise typer.BadParameter(f"--since/--until: {exc}") from None
    if (until_d or user) and since_d is None:
        raise typer.BadParameter("--until and --user need --since")
    if since_d and until_d and until_d < since_d:
        raise typer.BadParameter("--until is before --since")
    rep = _run_nightly(
        runner,
        dask_address,
        config=str(config) if config else None,
        lake=str(lake) if lake else None,
        inbox=str(inbox) if inbox else None,
        full=full,
        since=since_d,
        until=until_d,
        users=user or None,
    )
    _print_run(rep)
    console.print(f"report: {rep.report_path}")


@app.command()
def demo(
    lake: Annotated[
        Path | None, typer.Option("--lake", help="Lake folder (default: <out>/lake)")
    ] = None,
    users: Annotated[int, typer.Option("--users", min=1, help="Synthetic people")] = 3,
    days: Annotated[int, typer.Option("--days", min=7, help="Days per person")] = 35,
    seed: Annotated[int, typer.Option(help="Random seed")] = 7,
    out: Annotated[Path, typer.Option(help="Folder for the demo inbox and settings")] = Path(
        "data/demo"
    ),
    runner: RunnerOpt = "default",
    dask_address: DaskAddressOpt = None,
) -> None:
    """Generate synthetic people in real vendor formats and run the nightly flow on them."""
    _quiet_prefect()
    from tunewell.synth.generate import write_inbox
    from tunewell.synth.people import simulate

    t0 = time.perf_counter()
    lake = lake or out / "lake"
    inbox = out / "inbox"
    with console.status(f"simulating {users} people × {days} days"):
        pop = simulate(users, days, seed)
        user_settings = write_inbox(pop, inbox)
    n_files = sum(1 for p in inbox.rglob("*") if p.is_file())
    console.print(f"wrote {n_files} files in real vendor formats to {inbox}")
    settings = Settings(lake=Path(lake), inbox=inbox, users=user_settings)
    cfg = save_settings(settings, out / "tunewell.toml")
    from tunewell.pipelines.nightly import nightly as nightly_flow
    from tunewell.pipelines.weekly import weekly as weekly_flow

    with _on_runner(runner, dask_address) as wrap:
        with console.status(f"running the nightly flow (Prefect, runner: {runner})"):
            rep = wrap(nightly_flow)(
                config=str(cfg), lake=str(lake), inbox=str(inbox), runner_name=runner
            )
        _print_run(rep)
        _print_outputs(Path(lake), time.perf_counter() - t0, rep)
        # The demo ends where a coach starts: the weekly pages of the latest complete week.
        with console.status("writing the weekly coach pages"):
            res = wrap(weekly_flow)(config=str(cfg), lake=str(lake))
    console.print(f"weekly pages:    {res['folder']}")
    console.print(f"roster page:     {res['roster']}")


def _print_outputs(lake: Path, seconds: float, rep: QualityReport) -> None:
    from tunewell.lake import store

    t = Table(title=f"lake {lake}")
    t.add_column("table")
    t.add_column("rows", justify="right")
    t.add_column("path")
    for layer in ("silver", "gold"):
        for name in store.table_names(layer):
            n = store.scan(lake, name).select("record_id").collect().height
            if n:
                t.add_row(f"{layer}.{name}", str(n), str(store.table_dir(lake, name)))
    console.print(t)
    console.print(f"data dictionary: {lake / 'DICTIONARY.md'}")
    console.print(f"quality report:  {rep.report_path}")
    console.print(
        f'query it:        tunewell query --lake {lake} "select * from nightly_features limit 5"'
    )
    console.print(f"done in {seconds:.0f} s")


DEFAULT_SERVER_PORT = 4200


@app.command()
def server(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = DEFAULT_SERVER_PORT,
) -> None:
    """Run a local Prefect server (UI and API) on loopback, for `tunewell serve`."""
    import subprocess
    import sys

    _quiet_prefect()
    url = f"http://127.0.0.1:{port}"
    console.print(
        f"Prefect UI: {url}   then, in another shell: PREFECT_API_URL={url}/api tunewell serve"
    )
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    with contextlib.suppress(KeyboardInterrupt):
        raise typer.Exit(subprocess.call([*cmd, "--port", str(port)], env=env))


@app.command()
def serve(
    lake: LakeOpt = None,
    config: ConfigOpt = None,
    inbox: Annotated[Path | None, typer.Option(help="Inbox folder (<inbox>/<user>/…)")] = None,
    every: Annotated[
        float | None,
        typer.Option(
            "--every", help="Run every N seconds instead of the schedules (to watch it work)"
        ),
    ] = None,
) -> None:
    """Serve the scheduled flows (nightly 03:00, weekly Monday 06:00, in [schedule] tz) until
    interrupted."""
    _quiet_prefect()
    if not os.environ.get("PREFECT_API_URL"):
        console.print(
            "[red]tunewell serve needs a Prefect server[/]: run `tunewell server` and set "
            f"PREFECT_API_URL=http://127.0.0.1:{DEFAULT_SERVER_PORT}/api (schedules do not run "
            "on the temporary API)"
        )
        raise typer.Exit(1)
    from tunewell.pipelines.serve import SCHEDULES
    from tunewell.pipelines.serve import serve as serve_flows

    # A scheduled run that finds another still writing the lake (a long nightly when the weekly
    # is due) waits for it, up to an hour, instead of failing.
    os.environ.setdefault("TUNEWELL_LOCK_WAIT_S", "3600")
    settings = load_settings(config, lake)
    params = {
        "config": str(Path(config).resolve()) if config else None,
        "lake": str(settings.lake)
        if "://" in str(settings.lake)
        else str(Path(settings.lake).resolve()),
        "inbox": str(Path(inbox).resolve()) if inbox else None,
    }
    for s in SCHEDULES:
        when = f"every {every:g} s" if every else f"{s.cron} ({settings.schedule_tz})"
        console.print(f"serving {s.name}: {when}")
    serve_flows(settings, params, every=every)


@app.command()
def weekly(
    week: Annotated[
        str | None,
        typer.Option(
            "--week", help="ISO week YYYY-Www (default: the latest complete week with data)"
        ),
    ] = None,
    lake: LakeOpt = None,
    config: ConfigOpt = None,
    runner: RunnerOpt = "default",
    dask_address: DaskAddressOpt = None,
) -> None:
    """Write the weekly coach pages: a roster and a page per person, in HTML and Markdown,
    under <lake>/reports/weekly/<week>/ (also stored as gold weekly_summary)."""
    _quiet_prefect()
    from tunewell.coach.week import IsoWeek
    from tunewell.pipelines.weekly import weekly as weekly_flow

    if week:
        try:
            IsoWeek.parse(week)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--week") from None
    settings = load_settings(config, lake)
    from tunewell.lake.paths import lake_path

    if not (lake_path(settings.lake) / "DICTIONARY.md").exists():
        console.print(
            f"[red]no tunewell lake at {settings.lake}[/] (give --lake or run `tunewell demo`)"
        )
        raise typer.Exit(1)
    with _on_runner(runner, dask_address) as wrap:
        res = wrap(weekly_flow)(
            config=str(config) if config else None, lake=str(settings.lake), week=week
        )
    console.print(f"week {res['week']}: {len(res['people'])} person pages in {res['folder']}")
    for cid, path in res["coach_rosters"].items():
        console.print(f"roster for coach {cid}: {path}")
    console.print(f"roster page: {res['roster']}")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL over views named after the tables")],
    lake: LakeOpt = None,
    config: ConfigOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
) -> None:
    """Run SQL (DuckDB) over every silver and gold table of the lake."""
    import duckdb

    from tunewell.lake.query import run_query

    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    settings = load_settings(config, lake)
    from tunewell.lake.paths import lake_path

    if not (lake_path(settings.lake) / "DICTIONARY.md").exists():
        console.print(
            f"[red]no tunewell lake at {settings.lake}[/] (give --lake, set TUNEWELL_LAKE, or "
            "run `tunewell demo`, whose lake is data/demo/lake)"
        )
        raise typer.Exit(1)
    try:
        result = run_query(settings.lake, sql)
    except duckdb.Error as exc:
        console.print(f"[red]query failed:[/] {exc}")
        raise typer.Exit(2) from None
    if fmt == "csv":
        typer.echo(result.write_csv(), nl=False)
    elif fmt == "json":
        typer.echo(json.dumps(result.to_dicts(), default=str, indent=1))
    else:
        t = Table()
        for c in result.columns:
            t.add_column(c)
        for row in result.iter_rows():
            t.add_row(*("" if v is None else str(v) for v in row))
        console.print(t)


SharedOpt = Annotated[
    Path,
    typer.Option("--shared-data", help="Folder with pmdata/ and lifesnaps/ (the labelled data)"),
]


@app.command()
def train(
    user: Annotated[
        str | None,
        typer.Option("--user", help="Fit a personal calibration from this person's self-reports"),
    ] = None,
    lake: LakeOpt = None,
    config: ConfigOpt = None,
    shared_data: SharedOpt = Path("../shared/data"),
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where the default model and cards go (default: the package)"),
    ] = None,
    runner: RunnerOpt = "default",
    dask_address: DaskAddressOpt = None,
) -> None:
    """Train the default sleep-quality model on PMData (and write both model cards), or with
    --user a personal calibration, kept only if it beats the default on the person's later
    nights."""
    _quiet_prefect()
    from tunewell.models.sleep_quality import default_model_path
    from tunewell.pipelines.train import train as flow

    out_dir = out or default_model_path().parent
    if not user and not (shared_data / "pmdata").exists():
        console.print(f"[red]no PMData at {shared_data / 'pmdata'}[/] (give --shared-data)")
        raise typer.Exit(1)
    with console.status("training"), _on_runner(runner, dask_address) as wrap:
        res = wrap(flow)(
            shared_data=str(shared_data),
            out_dir=str(out_dir),
            user=user,
            config=str(config) if config else None,
            lake=str(lake) if lake else None,
        )
    if user:
        r = res["personal"]
        console.print(
            f"{r.user_id}: past {r.n_past} / future {r.n_future} nights; MAE default "
            f"{_num(r.mae_default)} vs personal {_num(r.mae_personal)}; ρ default "
            f"{_num(r.rho_default)} vs personal {_num(r.rho_personal)}"
        )
        console.print(("[green]using[/] " if r.used else "[yellow]not using[/] ") + r.reason)
        return
    r = res["default"]
    e = r.evaluation
    console.print(
        f"model {r.model_path}\ncard  {r.card_path}\nbalance card {res['balance_card']}\n"
        f"leave-one-person-out: pooled ρ {_num(e.pooled_rho_ours)} (Fitbit "
        f"{_num(e.pooled_rho_vendor)}), within-person ρ {_num(e.within_rho_ours)} (Fitbit "
        f"{_num(e.within_rho_vendor)}), MAE {_num(e.mae_ours)} (Fitbit {_num(e.mae_vendor)})"
    )


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


@app.command()
def evaluate(
    lake: LakeOpt = None,
    config: ConfigOpt = None,
    pmdata: Annotated[
        Path | None,
        typer.Option("--pmdata", help="Ingest these PMData participants into the lake first"),
    ] = None,
) -> None:
    """Grouped evaluation on a lake: sleep quality vs self-reports and Fitbit (per person and
    pooled), balance index vs every vendor score next to z(lnRMSSD) − z(resting HR)."""
    _quiet_prefect()
    from tunewell.models.evaluate import render_markdown
    from tunewell.pipelines.train import evaluate_flow

    settings = load_settings(config, lake)
    with console.status("evaluating"), _second_writer_exits():
        res = evaluate_flow(lake=str(settings.lake), pmdata=str(pmdata) if pmdata else None)
    console.print(render_markdown(res["report"]), markup=False)
    console.print(f"report: {res['path']}")


if __name__ == "__main__":
    app()


def _lake_user(settings: Settings, user: str) -> str:
    """The id the lake stores for a person named as in the config (pseudonymised or not)."""
    from tunewell.lake.store import users_in

    lake_id = settings.user(user).user_id
    return (
        user
        if user in users_in(settings.lake) and lake_id not in users_in(settings.lake)
        else lake_id
    )


@app.command()
def export(
    user: Annotated[str, typer.Option("--user", help="Whose data to export")],
    out: Annotated[Path | None, typer.Option("--out", help="Zip to write")] = None,
    lake: LakeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write everything held about one person (rows, pages, reports, quarantine) to one zip."""
    from tunewell.lake.privacy import export_user

    settings = load_settings(config, lake)
    with _second_writer_exits():
        uid = _lake_user(settings, user)
        target = out or Path(f"tunewell-export-{uid}.zip")
        inv = export_user(settings.lake, uid, target)
    t = Table(title=f"exported {uid} to {target}")
    t.add_column("what")
    t.add_column("count", justify="right")
    for k, v in inv.as_dict().items():
        t.add_row(k, str(v))
    console.print(t)


@app.command()
def forget(
    user: Annotated[str, typer.Option("--user", help="Whose data to remove")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    lake: LakeOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Remove every row and file of one person from the lake, and show the counts before and
    after (all zero after). Exit 1 if anything of theirs is left."""
    from tunewell.lake.privacy import forget_user, inventory

    settings = load_settings(config, lake)
    with _second_writer_exits():
        uid = _lake_user(settings, user)
        if not yes:
            console.print(inventory(settings.lake, uid).as_dict())
            typer.confirm(f"remove all of the above about {uid} from {settings.lake}?", abort=True)
        rep = forget_user(settings.lake, uid)
    t = Table(title=f"forgot {uid} ({rep.removed_files} files removed or rewritten)")
    t.add_column("what")
    t.add_column("before", justify="right")
    t.add_column("after", justify="right")
    after = rep.after.as_dict()
    for k, v in rep.before.as_dict().items():
        t.add_row(k, str(v), str(after.get(k, 0)))
    console.print(t)
    if rep.after.total:
        raise typer.Exit(1)
