"""Checks that paved's JSON report and the peers' figures agree on every figure of every scope,
and prints the timings and ratios.
Usage: compare.py paved.json TIMING peer=figures.json... where TIMING is a JSON file
{"paved": [seconds, peak_rss_kib], "duckdb": [...], ...} measured by the bench script."""
import json
import math
import sys

FIELDS = ["deployments", "deployment_days", "median_deploy_days_per_week",
          "median_deploy_days_per_month", "lead_time_median_minutes", "lead_time_samples",
          "failed_deployments", "change_failure_rate", "fdrt_median_minutes", "fdrt_samples",
          "unrecovered_failures", "ttr_median_minutes", "ttr_samples", "rework_rate"]


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def main(paved_path, timing_path, *peers):
    timing = json.load(open(timing_path))
    paved = json.load(open(paved_path))
    scopes = {("org", ""): paved["org"]}
    scopes.update({("teams", t["team"]): t for t in paved["teams"]})
    scopes.update({("services", s["service"]): s for s in paved["services"]})
    failures = 0
    timings = [("paved", *timing["paved"])]
    for name, path in (p.split("=", 1) for p in peers):
        peer = json.load(open(path))
        timings.append((name, *timing[name]))
        checked = 0
        for (scope, key), ours in scopes.items():
            theirs = peer["org"] if scope == "org" else peer[scope].get(key)
            if theirs is None:
                # The peer lists only scopes with rows in the window: ours must be empty then.
                if ours["deployments"] or ours["lead_time_samples"] or ours["ttr_samples"]:
                    print(f"{name}: {scope} {key!r} missing"); failures += 1
                continue
            for field in FIELDS:
                checked += 1
                if not same(ours[field], theirs[field]):
                    failures += 1
                    if failures <= 20:
                        print(f"{name}: {scope} {key!r} {field}: paved {ours[field]} vs {theirs[field]}")
        for field, value in paved["diagnostics"].items():
            checked += 1
            if value != peer["diagnostics"][field]:
                failures += 1
                print(f"{name}: diagnostics {field}: paved {value} vs {peer['diagnostics'][field]}")
        print(f"{name}: {checked} figures compared")
    print()
    print("| implementation | wall time (s) | peak RSS (GiB) | time vs paved |")
    print("|---|---|---|---|")
    for name, seconds, rss_kib in timings:
        print(f"| {name} | {seconds:.2f} | {rss_kib / 2**20:.2f} | {seconds / timings[0][1]:.2f}x |")
    if failures:
        print(f"\n{failures} figures disagree"); sys.exit(1)
    print("\nall implementations agree on every figure")


if __name__ == "__main__":
    main(*sys.argv[1:])
