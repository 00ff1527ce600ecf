"""The DORA metrics of metrics-spec.md (version 1, UTC) as SQL for DuckDB: the peer paved's
polars implementation is measured against. Usage: duckdb_peer.py DIR FROM TO > figures.json"""
import json
import sys
import time

import duckdb

import common


def main(folder, start_day, end_day):
    started = time.perf_counter()
    start, end = common.parse_day(start_day), common.parse_day(end_day)
    lo, hi = common.micros(start), common.micros(end)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    src = lambda table: f"read_parquet('{folder}/{table}.parquet')"
    fix = "('rollback', 'hotfix')"

    # R1, and the all-time order of R4-R7.
    con.execute(f"""
        CREATE TEMP TABLE prod AS
        WITH d AS (
            SELECT deploy_id, service, lower(coalesce(kind, 'normal')) AS kind, commit_sha,
                   epoch_us(finished_at) AS t, changes
            FROM {src('deployments')}
            WHERE lower(status) = 'success' AND lower(environment) IN ('production', 'prod')
            QUALIFY row_number() OVER (PARTITION BY service, deploy_id
                                       ORDER BY t DESC, kind DESC, commit_sha DESC NULLS LAST) = 1
        )
        SELECT row_number() OVER (ORDER BY t, deploy_id, service) AS seq, * FROM d""")
    con.execute(f"""
        CREATE TEMP TABLE ord AS
        SELECT seq, service, kind, t,
               lag(seq) OVER w IS NULL AS is_baseline,
               coalesce(lead(kind) OVER w IN {fix} AND lead(t) OVER w - t <= {common.ROLLBACK_WINDOW_US}, false)
                   AS followed_by_fix,
               min(CASE WHEN kind IN {fix} THEN t END) OVER (
                   PARTITION BY service ORDER BY seq ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
                   AS next_fix_at
        FROM prod WINDOW w AS (PARTITION BY service ORDER BY seq)""")
    # R4.
    con.execute(f"""
        CREATE TEMP TABLE lead_pairs AS
        WITH shipped AS (
            SELECT service, unnest(changes) AS sha, seq FROM prod WHERE t < {hi}
        ), firsts AS (
            SELECT service, sha, min(seq) AS seq FROM shipped WHERE sha IS NOT NULL GROUP BY ALL
        ), authored AS (
            SELECT service, sha, min(epoch_us(authored_at)) AS a FROM {src('changes')} GROUP BY ALL
        )
        SELECT o.service, (o.t - a.a) / 60e6 AS minutes
        FROM firsts f JOIN ord o ON o.seq = f.seq
        LEFT JOIN authored a ON a.service = f.service AND a.sha = f.sha
        WHERE o.t >= {lo} AND o.t < {hi} AND NOT o.is_baseline""")
    # R5.
    con.execute(f"""
        CREATE TEMP TABLE inc AS
        SELECT incident_id, service, epoch_us(created_at) AS c, epoch_us(resolved_at) AS r,
               deploy_id, commit_sha
        FROM {src('incidents')}
        QUALIFY row_number() OVER (PARTITION BY incident_id ORDER BY r DESC NULLS LAST, c DESC) = 1""")
    con.execute(f"""
        CREATE TEMP TABLE att AS
        WITH by_id AS (
            SELECT i.incident_id, min(p.seq) AS s FROM inc i
            JOIN prod p ON p.deploy_id = i.deploy_id AND (i.service IS NULL OR i.service = p.service)
            GROUP BY 1
        ), candidates AS (
            SELECT seq, service, commit_sha AS sha FROM prod WHERE commit_sha IS NOT NULL
            UNION ALL
            SELECT seq, service, unnest(changes) AS sha FROM prod
        ), by_sha AS (
            SELECT i.incident_id, min(c.seq) AS s FROM inc i
            JOIN (SELECT * FROM candidates WHERE sha IN (SELECT commit_sha FROM inc)) c
              ON c.sha = i.commit_sha AND (i.service IS NULL OR i.service = c.service)
            GROUP BY 1
        ), latest AS (
            SELECT service, t, max(seq) AS seq FROM prod GROUP BY ALL
        ), by_time AS (
            SELECT i.incident_id, l.seq AS s FROM inc i
            ASOF JOIN latest l ON i.service = l.service AND i.c >= l.t
            WHERE i.c - l.t <= {common.ATTRIBUTION_WINDOW_US}
        )
        SELECT inc.incident_id, inc.service, inc.c, inc.r,
               coalesce(by_id.s, by_sha.s, by_time.s) AS seq
        FROM inc
        LEFT JOIN by_id USING (incident_id)
        LEFT JOIN by_sha USING (incident_id)
        LEFT JOIN by_time USING (incident_id)""")
    # R6, R7, R9 per deployment in the window; R8 per incident.
    con.execute(f"""
        CREATE TEMP TABLE dep AS
        WITH per AS (
            SELECT seq, bool_and(r IS NOT NULL) AS all_resolved, max(r) AS last_r
            FROM att WHERE seq IS NOT NULL GROUP BY seq
        ), facts AS (
            SELECT o.service, o.t, o.kind, o.next_fix_at,
                   per.seq IS NOT NULL OR o.followed_by_fix AS failed,
                   CASE WHEN per.all_resolved THEN per.last_r END AS by_incidents
            FROM ord o LEFT JOIN per ON per.seq = o.seq
            WHERE o.t >= {lo} AND o.t < {hi}
        ), recovered AS (
            SELECT *, CASE WHEN by_incidents IS NULL THEN next_fix_at
                           WHEN next_fix_at IS NULL THEN by_incidents
                           ELSE least(by_incidents, next_fix_at) END AS recovered_at
            FROM facts
        )
        SELECT service, CAST(make_timestamp(t) AS DATE) AS day, failed, kind IN {fix} AS rework,
               CASE WHEN failed AND recovered_at IS NOT NULL
                    THEN greatest((recovered_at - t) / 60e6, 0) END AS fdrt,
               failed AND recovered_at IS NULL AS unrecovered
        FROM recovered""")
    con.execute(f"""
        CREATE TEMP TABLE restores AS
        SELECT service, greatest((r - c) / 60e6, 0) AS minutes FROM att WHERE r >= {lo} AND r < {hi}""")
    has_services = True
    try:
        con.execute(f"CREATE TEMP TABLE teams AS SELECT service, any_value(team) AS team FROM {src('services')} GROUP BY 1")
    except duckdb.IOException:
        has_services = False
        con.execute("CREATE TEMP TABLE teams (service VARCHAR, team VARCHAR)")
    for table in ("dep", "lead_pairs", "restores"):
        con.execute(f"""
            CREATE TEMP TABLE {table}_t AS
            SELECT x.*, CASE WHEN x.service IS NULL THEN NULL ELSE coalesce(teams.team, 'unowned') END AS team
            FROM {table} x LEFT JOIN teams USING (service)""")

    weeks, months = common.whole_weeks(start, end), common.whole_months(start, end)
    out = {"org": None, "teams": {}, "services": {}}
    for scope, key in (("org", "''"), ("teams", "team"), ("services", "service")):
        only_known = "" if scope == "org" else f"WHERE {key} IS NOT NULL"
        rows = {}
        get = lambda k: rows.setdefault(k, {})
        for k, n, days, failed, rework, fdrt, fdrt_n, unrec in con.execute(f"""
                SELECT {key}, count(*), count(DISTINCT day), count(*) FILTER (WHERE failed),
                       count(*) FILTER (WHERE rework), median(fdrt), count(fdrt),
                       count(*) FILTER (WHERE unrecovered)
                FROM dep_t GROUP BY 1""").fetchall():
            get(k).update(n=n, days=days, failed=failed, rework=rework, fdrt=fdrt, fdrt_n=fdrt_n, unrec=unrec)
        for k, med, n in con.execute(f"""
                SELECT {key}, median(minutes), count(*) FROM lead_pairs_t WHERE minutes > 0 GROUP BY 1""").fetchall():
            get(k).update(lead=med, lead_n=n)
        for k, med, n in con.execute(f"""
                SELECT {key}, median(minutes), count(*) FROM restores_t {only_known} GROUP BY 1""").fetchall():
            get(k).update(ttr=med, ttr_n=n)
        week_days, month_days = {}, {}
        for k, period, days in con.execute(f"""
                WITH d AS (SELECT DISTINCT {key} AS k, day FROM dep_t)
                SELECT k, (day - DATE '1970-01-01') - isodow(day) + 1, count(*) FROM d GROUP BY 1, 2""").fetchall():
            week_days.setdefault(k, {})[period] = days
        for k, period, days in con.execute(f"""
                WITH d AS (SELECT DISTINCT {key} AS k, day FROM dep_t)
                SELECT k, year(day) * 12 + month(day) - 1, count(*) FROM d GROUP BY 1, 2""").fetchall():
            month_days.setdefault(k, {})[period] = days
        for k, r in rows.items():
            fig = common.figures(
                r.get("n", 0), r.get("days", 0),
                common.median_of_counts(week_days.get(k, {}), weeks),
                common.median_of_counts(month_days.get(k, {}), months),
                r.get("lead"), r.get("lead_n", 0), r.get("failed", 0), r.get("fdrt"),
                r.get("fdrt_n", 0), r.get("unrec", 0), r.get("ttr"), r.get("ttr_n", 0), r.get("rework", 0))
            if scope == "org":
                out["org"] = fig
            else:
                out[scope][k] = fig
    if out["org"] is None:
        out["org"] = dict(common.EMPTY)
    dropped, unknown = con.execute(
        "SELECT count(*) FILTER (WHERE minutes <= 0), count(*) FILTER (WHERE minutes IS NULL) FROM lead_pairs").fetchone()
    (unattributed,) = con.execute(
        f"SELECT count(*) FROM att WHERE seq IS NULL AND c >= {lo} AND c < {hi}").fetchone()
    out["diagnostics"] = {"lead_time_dropped": dropped, "changes_unknown": unknown,
                          "unattributed_incidents": unattributed}
    out["seconds"] = time.perf_counter() - started
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:4])
