"""The DORA metrics of metrics-spec.md (version 1, UTC) as the pandas code a data team would
write: the second peer of paved's polars implementation.
Usage: pandas_peer.py DIR FROM TO > figures.json"""
import json
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import common

FIX = list(common.FIX_KINDS)
warnings.filterwarnings("ignore")


def read(path):
    """A Parquet table as pandas; string views (as polars writes them) become plain strings,
    which pandas can convert."""
    table = pq.read_table(path)
    def plain(t):
        if pa.types.is_string_view(t):
            return pa.string()
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
            return pa.list_(plain(t.value_type))
        return t
    schema = pa.schema([pa.field(f.name, plain(f.type)) for f in table.schema])
    return table.cast(schema).to_pandas()


def us(series):
    """Timestamps (any unit, naive = UTC) as int64 microseconds since the epoch."""
    if series.dt.tz is None:
        series = series.dt.tz_localize("UTC")
    utc = series.dt.tz_convert("UTC")
    naive = utc.dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    ints = pd.Series(naive.view("int64"), index=series.index)
    return ints.where(utc.notna()) if utc.isna().any() else ints


def main(folder, start_day, end_day):
    started = time.perf_counter()
    start, end = common.parse_day(start_day), common.parse_day(end_day)
    lo, hi = common.micros(start), common.micros(end)

    dep = read(f"{folder}/deployments.parquet")
    dep["t"] = us(dep["finished_at"])
    dep["kind"] = dep["kind"].fillna("normal").str.lower()
    prod = dep[(dep["status"].str.lower() == "success")
               & dep["environment"].str.lower().isin(["production", "prod"])]
    prod = (prod.sort_values(["service", "deploy_id", "t", "kind", "commit_sha"], na_position="first")
                .drop_duplicates(["service", "deploy_id"], keep="last")
                .sort_values(["t", "deploy_id", "service"]).reset_index(drop=True))
    prod["seq"] = np.arange(len(prod))
    del dep

    # Per-service order: baseline, rollback/hotfix within 24 h, the next fix.
    o = prod[["seq", "service", "kind", "t"]].sort_values(["service", "seq"]).reset_index(drop=True)
    g = o.groupby("service", sort=False)
    o["is_baseline"] = g.cumcount() == 0
    is_fix = o["kind"].isin(FIX)
    nxt_kind, nxt_t = g["kind"].shift(-1), g["t"].shift(-1)
    o["followed_by_fix"] = (nxt_kind.isin(FIX) & ((nxt_t - o["t"]) <= common.ROLLBACK_WINDOW_US)).fillna(False)
    fix_at = o["t"].where(is_fix)
    o["next_fix_at"] = fix_at.groupby(o["service"], sort=False).transform(lambda s: s.shift(-1).bfill())

    # R4.
    shipped = prod.loc[prod["t"] < hi, ["service", "seq", "changes"]].explode("changes")
    shipped = shipped.dropna(subset=["changes"]).rename(columns={"changes": "sha"})
    firsts = shipped.groupby(["service", "sha"], sort=False)["seq"].min().reset_index()
    del shipped
    ch = read(f"{folder}/changes.parquet")
    ch["a"] = us(ch["authored_at"])
    authored = ch.groupby(["service", "sha"], sort=False)["a"].min().reset_index()
    del ch
    owners = o.loc[(o["t"] >= lo) & (o["t"] < hi) & ~o["is_baseline"], ["seq", "t"]]
    lead = firsts.merge(owners, on="seq").merge(authored, on=["service", "sha"], how="left")
    lead["minutes"] = (lead["t"] - lead["a"]) / 60e6
    lead = lead[["service", "minutes"]]

    # R5.
    inc = read(f"{folder}/incidents.parquet")
    inc["c"] = us(inc["created_at"])
    inc["r"] = us(inc["resolved_at"])
    inc = (inc.sort_values(["incident_id", "r", "c"], na_position="first")
              .drop_duplicates("incident_id", keep="last"))
    svc_ok = lambda m: m["service"].isna() | (m["service"] == m["p_service"])
    m = inc[["incident_id", "service", "deploy_id"]].dropna(subset=["deploy_id"]).merge(
        prod[["deploy_id", "service", "seq"]].rename(columns={"service": "p_service"}), on="deploy_id")
    by_id = m[svc_ok(m)].groupby("incident_id")["seq"].min().rename("s1")
    wanted = set(inc["commit_sha"].dropna())
    heads = prod.loc[prod["commit_sha"].isin(wanted), ["seq", "service", "commit_sha"]].rename(columns={"commit_sha": "sha"})
    inner = prod[["seq", "service", "changes"]].explode("changes").rename(columns={"changes": "sha"})
    inner = inner[inner["sha"].isin(wanted)]
    cand = pd.concat([heads, inner]).rename(columns={"service": "p_service"})
    m = inc[["incident_id", "service", "commit_sha"]].dropna(subset=["commit_sha"]).merge(
        cand, left_on="commit_sha", right_on="sha")
    by_sha = m[svc_ok(m)].groupby("incident_id")["seq"].min().rename("s2")
    latest = prod.groupby(["service", "t"], sort=False)["seq"].max().reset_index().sort_values("t")
    left = inc.dropna(subset=["service"])[["incident_id", "service", "c"]].sort_values("c")
    asof = pd.merge_asof(left, latest, left_on="c", right_on="t", by="service",
                         direction="backward", tolerance=common.ATTRIBUTION_WINDOW_US)
    by_time = asof.set_index("incident_id")["seq"].rename("s3")
    att = inc.set_index("incident_id").join([by_id, by_sha, by_time])
    att["seq"] = att["s1"].fillna(att["s2"]).fillna(att["s3"])
    att = att.reset_index()

    # R6, R7, R9.
    per = att.dropna(subset=["seq"]).groupby("seq").agg(
        all_resolved=("r", lambda r: r.notna().all()), last_r=("r", "max"))
    per.index = per.index.astype("int64")
    d = o[(o["t"] >= lo) & (o["t"] < hi)].join(per, on="seq")
    d["failed"] = d["all_resolved"].notna() | d["followed_by_fix"]
    by_inc = d["last_r"].where(d["all_resolved"].fillna(False).astype(bool))
    d["recovered_at"] = pd.concat([by_inc, d["next_fix_at"]], axis=1).min(axis=1)
    d["fdrt"] = ((d["recovered_at"] - d["t"]) / 60e6).clip(lower=0).where(d["failed"])
    d["unrecovered"] = d["failed"] & d["recovered_at"].isna()
    d["rework"] = d["kind"].isin(FIX)
    d["day"] = d["t"] // (86400 * 10**6)
    # R8.
    rs = att[(att["r"] >= lo) & (att["r"] < hi)].copy()
    rs["minutes"] = ((rs["r"] - rs["c"]) / 60e6).clip(lower=0)

    teams_path = f"{folder}/services.parquet"
    teams = (read(teams_path).drop_duplicates("service").set_index("service")["team"]
             if os.path.exists(teams_path) else pd.Series(dtype=object))
    for frame in (d, lead, rs):
        frame["team"] = frame["service"].map(teams).fillna("unowned").where(frame["service"].notna())

    weeks, months = common.whole_weeks(start, end), common.whole_months(start, end)
    d["week"] = d["day"] - (d["day"] + 3) % 7
    days = pd.to_datetime(d["day"], unit="D")
    d["month"] = days.dt.year * 12 + days.dt.month - 1
    out = {"teams": {}, "services": {}}
    for scope, key in (("org", None), ("teams", "team"), ("services", "service")):
        def groups(frame):
            if key is None:
                return [(None, frame)]
            return list(frame.groupby(key, sort=False))
        results = {}
        for k, f in groups(d):
            wk = f.drop_duplicates(["day"]).groupby("week").size().to_dict()
            mo = f.drop_duplicates(["day"]).groupby("month").size().to_dict()
            results.setdefault(k, {}).update(
                n=len(f), days=f["day"].nunique(), failed=int(f["failed"].sum()), rework=int(f["rework"].sum()),
                fdrt=f["fdrt"].median(), fdrt_n=int(f["fdrt"].notna().sum()), unrec=int(f["unrecovered"].sum()),
                weekly=common.median_of_counts(wk, weeks), monthly=common.median_of_counts(mo, months))
        pos = lead[lead["minutes"] > 0]
        for k, f in groups(pos):
            results.setdefault(k, {}).update(lead=f["minutes"].median(), lead_n=len(f))
        for k, f in groups(rs if key is None else rs.dropna(subset=["service"])):
            results.setdefault(k, {}).update(ttr=f["minutes"].median(), ttr_n=len(f))
        for k, r in results.items():
            fig = common.figures(
                r.get("n", 0), r.get("days", 0),
                r.get("weekly", common.median_of_counts({}, weeks)),
                r.get("monthly", common.median_of_counts({}, months)),
                r.get("lead"), r.get("lead_n", 0), r.get("failed", 0), r.get("fdrt"), r.get("fdrt_n", 0),
                r.get("unrec", 0), r.get("ttr"), r.get("ttr_n", 0), r.get("rework", 0))
            if key is None:
                out["org"] = fig
            else:
                out[scope][k] = fig
    out.setdefault("org", dict(common.EMPTY))
    out["diagnostics"] = {
        "lead_time_dropped": int((lead["minutes"] <= 0).sum()),
        "changes_unknown": int(lead["minutes"].isna().sum()),
        "unattributed_incidents": int((att["seq"].isna() & (att["c"] >= lo) & (att["c"] < hi)).sum()),
    }
    out["seconds"] = time.perf_counter() - started
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:4])
