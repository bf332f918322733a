"""A straightforward pandas implementation of the core nightly features, for the benchmark.

Written the way an analyst would in a notebook (groupby/apply, rolling on a date index, merge_asof,
a Python loop per user-day for IS/IV), independently of ``tunewell.features``; the benchmark
checks both give the same numbers before timing them. Covers: sleep per night (main sleep by the
noon split, TIB/TST/SOL/WASO/awakenings/SE), 5-min RR HRV and nightly RMSSD, lnRMSSD baselines
(7-day acute, 60-day chronic before the acute week) and IS/IV of hourly steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ASLEEP = {"light", "deep", "rem", "asleep"}


def _local(ts: pd.Series, off: pd.Series) -> pd.Series:
    return ts.dt.tz_localize(None) + pd.to_timedelta(off, unit="min")


def sleep_nights(episodes: pd.DataFrame, stages: pd.DataFrame) -> pd.DataFrame:
    ep = episodes.copy()
    ep["local_start"] = _local(ep["start_utc"], ep["utc_offset_min"])
    noon = pd.to_datetime(ep["sleep_date"]) + pd.Timedelta(hours=12)
    ep["cand"] = (ep["local_start"] >= noon - pd.Timedelta(days=1)) & (ep["local_start"] < noon)
    ep["dur"] = (ep["end_utc"] - ep["start_utc"]).dt.total_seconds() / 60
    ep = ep[ep["cand"]].sort_values(
        ["user_id", "sleep_date", "dur", "start_utc"], ascending=[True, True, False, True]
    )
    main = ep.groupby(["user_id", "sleep_date"], as_index=False).first()
    st = stages[stages["stage"].isin(ASLEEP)].copy()
    st["m"] = (st["end_utc"] - st["start_utc"]).dt.total_seconds() / 60

    def per_episode(g: pd.DataFrame) -> pd.Series:
        g = g.sort_values("start_utc")
        prev_end = g["end_utc"].cummax().shift(1)
        gaps = (g["start_utc"] - prev_end).dt.total_seconds() / 60
        return pd.Series(
            {
                "tst": g["m"].sum(),
                "onset": g["start_utc"].min(),
                "final": g["end_utc"].max(),
                "awak": int((gaps > 5).sum()),
            }
        )

    s = st.groupby("episode_id").apply(per_episode, include_groups=False).reset_index()
    m = main.merge(s, left_on="record_id", right_on="episode_id", how="left")
    out = pd.DataFrame(
        {
            "user_id": m["user_id"],
            "sleep_date": m["sleep_date"],
            "episode_start": m["start_utc"],
            "episode_end": m["end_utc"],
        }
    )
    out["tib_min"] = m["dur"]
    out["tst_min"] = m["tst"]
    out["sol_min"] = (m["onset"] - m["start_utc"]).dt.total_seconds() / 60
    out["waso_min"] = ((m["final"] - m["onset"]).dt.total_seconds() / 60 - m["tst"]).clip(lower=0)
    out["awakenings"] = m["awak"]
    out["efficiency_pct"] = m["tst"] / m["dur"] * 100
    return out


def clean(rr: np.ndarray, new_seg: np.ndarray) -> np.ndarray:
    keep = np.zeros(len(rr), dtype=bool)
    ref = None
    for i, r in enumerate(rr):
        if new_seg[i]:
            ref = None
        if r < 300 or r > 2000:
            continue
        if ref is None or abs(r - ref) <= 0.2 * ref:
            keep[i] = True
            ref = r
    return keep


def nightly_rmssd(rr: pd.DataFrame, nights: pd.DataFrame) -> pd.DataFrame:
    rr = rr.sort_values(["user_id", "start_utc"]).reset_index(drop=True)
    gap = rr.groupby("user_id")["start_utc"].diff().dt.total_seconds()
    new_seg = (gap.isna() | (gap > 5)).to_numpy()
    rr["kept"] = clean(rr["rr_ms"].to_numpy(), new_seg)
    eps = nights[["user_id", "sleep_date", "episode_start", "episode_end"]].sort_values(
        "episode_start"
    )
    b = pd.merge_asof(
        rr.sort_values("start_utc"),
        eps,
        left_on="start_utc",
        right_on="episode_start",
        by="user_id",
        direction="backward",
    )
    b = b[b["start_utc"] < b["episode_end"]]
    b = b[b["kept"]].copy()
    b["w"] = b["start_utc"].dt.floor("5min")
    b = b.sort_values(["user_id", "sleep_date", "w", "start_utc"])

    def window(g: pd.DataFrame) -> pd.Series:
        x = g["rr_ms"].to_numpy()
        d = np.diff(x)
        return pd.Series(
            {"rmssd": np.sqrt(np.mean(d**2)) if d.size else np.nan, "cov": x.sum() / 300_000}
        )

    w = b.groupby(["user_id", "sleep_date", "w"]).apply(window, include_groups=False)
    w = w.reset_index()
    w = w[w["cov"] >= 0.6]
    n = w.groupby(["user_id", "sleep_date"]).agg(
        rr_rmssd=("rmssd", "median"), rr_windows=("rmssd", "size")
    )
    return n.reset_index()


def baselines(nightly: pd.DataFrame, col: str = "ln_rmssd") -> pd.DataFrame:
    parts = []
    for uid, g in nightly.groupby("user_id"):
        s = g.set_index(pd.to_datetime(g["sleep_date"]))[col]
        s = s.reindex(pd.date_range(s.index.min(), s.index.max(), freq="D"))
        acute = s.rolling(7, min_periods=1)
        chronic = s.shift(7).rolling(60, min_periods=1)
        df = pd.DataFrame(
            {
                "user_id": uid,
                "sleep_date": s.index.date,
                f"{col}_b7": acute.mean().where(acute.count() >= 4),
                f"{col}_mu60": chronic.mean().where(chronic.count() >= 14),
                f"{col}_sd60": chronic.std().where(chronic.count() >= 14),
            }
        )
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def is_iv(steps: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    st = steps.copy()
    st["local"] = _local(st["start_utc"], st["utc_offset_min"])
    st["date"] = st["local"].dt.date
    st["hour"] = st["local"].dt.hour
    rows = []
    for uid, g in st.groupby("user_id"):
        mat = g.pivot_table(
            index="date", columns="hour", values="steps", aggfunc="sum", fill_value=0.0
        ).reindex(columns=range(24), fill_value=0.0)
        have = set(mat.index)
        for d in targets.loc[targets["user_id"] == uid, "sleep_date"]:
            days = [d - pd.Timedelta(days=k) for k in range(7, 0, -1)]
            if not all(x in have for x in days):
                continue
            x = mat.loc[days].to_numpy(dtype=float)
            flat = x.ravel()
            n, mean = flat.size, flat.mean()
            dev2 = ((flat - mean) ** 2).sum()
            if dev2 == 0:
                continue
            is_ = n * ((x.mean(axis=0) - mean) ** 2).sum() / (24 * dev2)
            iv = n * (np.diff(flat) ** 2).sum() / ((n - 1) * dev2)
            rows.append((uid, d, is_, iv))
    return pd.DataFrame(rows, columns=["user_id", "sleep_date", "rar_is", "rar_iv"])


def nightly_features(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    nights = sleep_nights(tables["sleep_episode"], tables["sleep_stage"])
    hrv = nightly_rmssd(tables["rr_interval"], nights)
    f = nights.merge(hrv, on=["user_id", "sleep_date"], how="left")
    f["ln_rmssd"] = np.log(f["rr_rmssd"].where(f["rr_windows"] >= 6))
    f = f.merge(baselines(f), on=["user_id", "sleep_date"], how="left")
    return f.merge(
        is_iv(tables["steps"], f[["user_id", "sleep_date"]]),
        on=["user_id", "sleep_date"],
        how="left",
    )
