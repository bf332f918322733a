"""Several devices, one truth per time slice.

Silver keeps every source's rows (nothing is thrown away, and changing the priority later needs no
re-ingest); these functions give the *resolved* view that features use: for each time slice of a
metric, the highest-priority source that saw it. Additive metrics are never summed across sources,
and a slice that only one source saw is never lost. Sleep episodes that overlap, or lie within
60 minutes of each other, are one night's sleep.

This lives in the lake layer (not ingest) because features read the resolved view and must not
import ingest; the rules are part of the table contract, like the keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from tunewell.lake.timezones import local_time

SLEEP_JOIN_GAP_MIN = 60


def _rank(priority: Sequence[str]) -> pl.Expr:
    ranks = {s: i for i, s in enumerate(priority)}
    return (
        pl.col("source")
        .replace_strict(ranks, default=len(ranks), return_dtype=pl.Int32)
        .alias("__rank")
    )


def clustered(lf: pl.LazyFrame, by: Sequence[str], gap_min: float) -> pl.LazyFrame:
    """Sort by start and number the clusters (``__grp``) of intervals that overlap or lie within
    ``gap_min`` of each other: a new cluster starts where an interval begins after the latest end
    seen so far plus the gap."""
    gap = pl.duration(microseconds=int(gap_min * 60_000_000))
    by = list(by)
    return (
        lf.sort([*by, "start_utc"])
        .with_columns(pl.col("end_utc").cum_max().over(by).alias("__reach"))
        .with_columns(
            (pl.col("start_utc") > pl.col("__reach").shift(1).over(by) + gap)
            .fill_null(True)
            .cum_sum()
            .over(by)
            .alias("__grp")
        )
        .drop("__reach")
    )


def union_intervals(lf: pl.LazyFrame, by: Sequence[str], gap_min: float = 0) -> pl.LazyFrame:
    """Merge intervals per group that overlap or lie within ``gap_min`` of each other."""
    return (
        clustered(lf, by, gap_min)
        .group_by([*by, "__grp"])
        .agg(pl.col("start_utc").min(), pl.col("end_utc").max())
        .drop("__grp")
    )


def _covered_minutes(items: pl.LazyFrame, cover: pl.LazyFrame) -> pl.LazyFrame:
    """Minutes of each item interval (keyed by __i) covered by the ``cover`` intervals."""
    pairs = items.select("__i", "user_id", "start_utc", "end_utc").join_where(
        cover.rename({"start_utc": "c_start", "end_utc": "c_end", "user_id": "c_user"}),
        pl.col("user_id") == pl.col("c_user"),
        pl.col("start_utc") < pl.col("c_end"),
        pl.col("end_utc") > pl.col("c_start"),
    )
    return pairs.group_by("__i").agg(
        (pl.min_horizontal("end_utc", "c_end") - pl.max_horizontal("start_utc", "c_start"))
        .dt.total_microseconds()
        .sum()
        .alias("__covered_us")
    )


def _grain() -> pl.Expr:
    """Resolution class of an interval: 0 minute-ish (≤ 15 min), 1 hour-ish (≤ 2 h), 2 longer."""
    minutes = (pl.col("end_utc") - pl.col("start_utc")).dt.total_minutes()
    return pl.when(minutes <= 15).then(0).when(minutes <= 120).then(1).otherwise(2).alias("__grain")


def resolve_intervals(lf: pl.LazyFrame, value: str, priority: Sequence[str]) -> pl.LazyFrame:
    """Additive interval metrics (steps): union across sources by priority, never summed.

    Layers are taken in priority order, and within a source from the finest resolution up (a
    Fitabase export has minute, hourly and daily steps of the same day); each layer keeps only
    the part of its intervals that no earlier layer covered, pro rata (a phone's hour overlapping
    20 minutes of watch data keeps 40/60 of its steps). A layer's coverage is where it has
    intervals, zero counts included.
    """
    df = lf.with_columns(_rank(priority), _grain()).with_row_index("__i").collect()
    if df.is_empty():
        return lf
    out = []
    cover: pl.DataFrame | None = None
    layers = df.select("__rank", "source", "__grain").unique().sort("__rank", "source", "__grain")
    for _, src, grain in layers.iter_rows():
        layer = (pl.col("source") == src) & (pl.col("__grain") == grain)
        part = df.filter(layer)
        if cover is not None and not cover.is_empty():
            cov = _covered_minutes(part.lazy(), cover.lazy()).collect()
            part = part.join(cov, on="__i", how="left").with_columns(
                pl.col("__covered_us").fill_null(0)
            )
            dur = (pl.col("end_utc") - pl.col("start_utc")).dt.total_microseconds()
            frac = (1 - pl.col("__covered_us") / dur).clip(0, 1)
            part = (
                part.with_columns((pl.col(value) * frac).alias(value), frac.alias("__f"))
                .filter(pl.col("__f") > 1e-9)
                .drop("__covered_us", "__f")
            )
        out.append(part)
        layer_cover = union_intervals(
            df.filter(layer).lazy().select("user_id", "start_utc", "end_utc"), ["user_id"]
        ).collect()
        cover = (
            layer_cover
            if cover is None
            else union_intervals(pl.concat([cover, layer_cover]).lazy(), ["user_id"]).collect()
        )
    return pl.concat(out).sort("user_id", "start_utc").drop("__i", "__rank", "__grain").lazy()


def resolve_points(
    lf: pl.LazyFrame,
    priority: Sequence[str],
    by: Sequence[str] = (),
    every: str = "1m",
    shift_h: float = 0,
) -> pl.LazyFrame:
    """Sampled metrics (heart rate, vitals, HRV): per slice, the best source's samples only.

    Slices are cut in local time, so a daily value (resting HR) competes with the other
    source's value of the same local day, not of the same UTC day.
    """
    local = local_time() + pl.duration(minutes=int(shift_h * 60))
    slice_ = local.dt.truncate(every).alias("__slice")
    keys = ["user_id", *by, "__slice"]
    return (
        lf.with_columns(_rank(priority), slice_)
        .filter(pl.col("__rank") == pl.col("__rank").min().over(keys))
        .drop("__rank", "__slice")
    )


def resolve_episodes(
    episodes: pl.LazyFrame, priority: Sequence[str], gap_min: float = SLEEP_JOIN_GAP_MIN
) -> pl.LazyFrame:
    """Keep each episode that no higher-priority source's episode overlaps; tag the kept ones
    that lie within ``gap_min`` of each other with a shared ``night_id``.

    Per time slice, as for the other metrics: the ring's night is dropped where the watch saw
    the same night, but a night only the ring recorded survives a watch nap beside it. For sleep
    (gap 60 min) a split night from one device shares a ``night_id``, so features treat it as one
    sleep; for workouts (gap 0) the same session from watch and phone is kept once.
    """
    ranked = episodes.with_columns(_rank(priority)).with_row_index("__i")
    other = ranked.select(
        pl.col("user_id").alias("o_user"),
        pl.col("__rank").alias("o_rank"),
        pl.col("start_utc").alias("o_start"),
        pl.col("end_utc").alias("o_end"),
    )
    beaten = ranked.select("__i", "user_id", "__rank", "start_utc", "end_utc").join_where(
        other,
        pl.col("user_id") == pl.col("o_user"),
        pl.col("o_rank") < pl.col("__rank"),
        pl.col("o_start") < pl.col("end_utc"),
        pl.col("o_end") > pl.col("start_utc"),
    )
    kept = ranked.join(beaten.select("__i").unique(), on="__i", how="anti")
    return (
        clustered(kept, ["user_id"], gap_min)
        .with_columns(
            pl.col("record_id")
            .first()
            .over(["user_id", "__grp"], order_by="start_utc")
            .alias("night_id")
        )
        .drop("__grp", "__rank", "__i", "__reach", strict=False)
    )


def marker_key() -> pl.Expr:
    """Which marker a lab result measures: its system and code, else its name (lower case)."""
    return (
        pl.when(pl.col("code").is_not_null())
        .then(pl.concat_str(pl.col("code_system").fill_null(""), pl.col("code"), separator="|"))
        .otherwise(pl.col("name").str.to_lowercase().str.strip_chars())
        .alias("marker")
    )


def resolve_labs(lf: pl.LazyFrame, priority: Sequence[str]) -> pl.LazyFrame:
    """One lab result reached through two sources (a portal's Bundle and Apple's clinical records
    of the same account) is kept once: per marker, specimen and minute of its time, the
    highest-priority source. Results of one source are never dropped."""
    keys = ["user_id", "__marker", "__specimen", "__minute"]
    return (
        lf.with_columns(
            _rank(priority),
            marker_key().alias("__marker"),
            pl.col("specimen").fill_null("").alias("__specimen"),
            pl.col("start_utc").dt.truncate("1m").alias("__minute"),
        )
        .filter(pl.col("__rank") == pl.col("__rank").min().over(keys))
        .drop("__rank", "__marker", "__specimen", "__minute")
    )


def resolve_sleep(episodes: pl.LazyFrame, priority: Sequence[str]) -> pl.LazyFrame:
    return resolve_episodes(episodes, priority, SLEEP_JOIN_GAP_MIN)


# How each silver table is resolved: (kind, options)
RULES: dict[str, tuple[str, dict]] = {
    "steps": ("intervals", {"value": "steps"}),
    # Per-sample contexts (sample, sleep, workout) compete for the same minute; a vendor's daily
    # statistics (daily_avg, daily_min, daily_max) are resolved among themselves.
    "heart_rate": ("points", {"by": ("__ctx",), "every": "1m"}),
    "vitals": ("points", {"by": ("metric",), "every": "1d"}),
    "rr_interval": ("points", {"every": "5m"}),
}


@dataclass
class MergeCount:
    table: str
    rows_in: int
    rows_out: int

    @property
    def dropped(self) -> int:
        return self.rows_in - self.rows_out


def resolve(table: str, lf: pl.LazyFrame, priority: Sequence[str]) -> pl.LazyFrame:
    """The resolved view of one silver table (tables without a rule pass through)."""
    if table == "sleep_episode":
        return resolve_sleep(lf, priority)
    if table == "sleep_stage":
        return lf  # stages follow their episode: filter them with ``stages_of``
    if table == "lab_result":
        return resolve_labs(lf, priority)
    if table == "workout":
        return resolve_episodes(lf, priority, 0).drop("night_id")
    if table == "hrv":
        # 5-min values compete per 5 minutes; one-per-night values (nightly, last_sws, first_4h,
        # spot) per noon-to-noon night, whenever each device stamps them (bedtime or wake-up),
        # so two devices' nightly RMSSD are never averaged into one number.
        five = pl.col("window") == "5min"
        by = ("metric", "window")
        return pl.concat(
            [
                resolve_points(lf.filter(five), priority, by, "5m"),
                resolve_points(lf.filter(~five), priority, by, "1d", shift_h=12),
            ]
        )
    kind, opts = RULES.get(table, ("none", {}))
    if kind == "intervals":
        return resolve_intervals(lf, opts["value"], priority)
    if kind == "points":
        ctx = pl.when(pl.col("context").str.starts_with("daily")).then(pl.col("context"))
        derived = "__ctx" in opts.get("by", ())
        if derived:
            lf = lf.with_columns(ctx.otherwise(pl.lit("sample")).alias("__ctx"))
        out = resolve_points(lf, priority, opts.get("by", ()), opts.get("every", "1m"))
        return out.drop("__ctx") if derived else out
    return lf


def stages_of(stages: pl.LazyFrame, resolved_episodes: pl.LazyFrame) -> pl.LazyFrame:
    """Stages of the kept episodes, tagged with their night cluster."""
    return stages.join(
        resolved_episodes.select(pl.col("record_id").alias("episode_id"), "night_id"),
        on="episode_id",
        how="inner",
    )


def resolve_silver(
    silver: dict[str, pl.LazyFrame], priority: Sequence[str]
) -> tuple[dict[str, pl.LazyFrame], list[MergeCount]]:
    """Resolve every table; also count what the merge dropped, for the run report."""
    out: dict[str, pl.LazyFrame] = {}
    counts: list[MergeCount] = []
    for name, lf in silver.items():
        if name == "sleep_stage":
            continue
        res = resolve(name, lf, priority).collect()
        n_in = lf.select(pl.len()).collect().item()
        counts.append(MergeCount(name, n_in, res.height))
        out[name] = res.lazy()
    if "sleep_stage" in silver:
        st = silver["sleep_stage"]
        eps = out.get("sleep_episode")
        res = (st if eps is None else stages_of(st, eps)).collect()
        counts.append(MergeCount("sleep_stage", st.select(pl.len()).collect().item(), res.height))
        out["sleep_stage"] = res.lazy()
    return out, counts


# Tables whose resolution can only drop a row in favour of another source's row: with one source
# in them nothing is dropped, so counting needs no resolve at all.
_ONE_SOURCE_KEEPS_ALL = frozenset(
    {"heart_rate", "vitals", "rr_interval", "hrv", "workout", "lab_result"}
)


def merge_counts(silver: dict[str, pl.LazyFrame], priority: Sequence[str]) -> list[MergeCount]:
    """The counts of ``resolve_silver`` (same order) without materialising the resolved view.

    The run report needs only how many rows the merge dropped; a re-ingest that changed nothing
    used to resolve every table of the person's history at once for it. Here each table is
    counted alone: a table with one source in it is counted from its rows when its rule keeps
    every row of a single source, steps are resolved only when they have more than one layer,
    and stages are matched to the (small) resolved episodes by id alone.
    """
    counts: list[MergeCount] = []
    episodes: pl.DataFrame | None = None
    for name, lf in silver.items():
        if name == "sleep_stage":
            continue
        n_in = lf.select(pl.len()).collect().item()
        if name == "sleep_episode":
            episodes = resolve(name, lf, priority).collect()
            n_out = episodes.height
        elif n_in == 0 or (name in _ONE_SOURCE_KEEPS_ALL and _one_source(lf)):
            n_out = n_in
        elif name == "steps" and _layers(lf) <= 1:
            n_out = n_in  # one source at one resolution: no layer covers another
        else:
            n_out = resolve(name, lf, priority).select(pl.len()).collect().item()
        counts.append(MergeCount(name, n_in, n_out))
    if "sleep_stage" in silver:
        st = silver["sleep_stage"]
        n_in = st.select(pl.len()).collect().item()
        n_out = n_in
        if episodes is not None:
            kept = episodes.lazy().select(pl.col("record_id").alias("episode_id"))
            matched = st.select("episode_id").join(kept, on="episode_id").select(pl.len())
            n_out = matched.collect().item()
        counts.append(MergeCount("sleep_stage", n_in, n_out))
    return counts


def _one_source(lf: pl.LazyFrame) -> bool:
    s = lf.select(pl.col("source").n_unique().alias("n"), pl.col("source").null_count().alias("z"))
    n, z = s.collect().row(0)
    return n <= 1 and z == 0


def _layers(lf: pl.LazyFrame) -> int:
    return lf.select("source", _grain()).unique().select(pl.len()).collect().item()
