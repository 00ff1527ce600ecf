"""Shared by the DuckDB and pandas peers of the DORA benchmark: the window's calendar (UTC)
and the output shape the comparison reads. Both peers implement metrics-spec.md version 1
(R1-R11) independently of paved; bands and scores (R12, R13) derive from these figures."""
import datetime as dt
import statistics

UTC = dt.timezone.utc
FIX_KINDS = ("rollback", "hotfix")
ROLLBACK_WINDOW_US = 24 * 3600 * 10**6
ATTRIBUTION_WINDOW_US = 7 * 24 * 3600 * 10**6


def parse_day(text):
    return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)


def micros(instant):
    return int(instant.timestamp()) * 10**6


def epoch_day(day):
    return (day - dt.date(1970, 1, 1)).days


def whole_weeks(start, end):
    """Mondays (as epoch days) of the ISO weeks wholly inside [start, end)."""
    first = start.date() - dt.timedelta(days=start.date().weekday())
    weeks = []
    while first < end.date() or dt.datetime.combine(first, dt.time(), UTC) < end:
        week_start = dt.datetime.combine(first, dt.time(), UTC)
        if week_start >= start and week_start + dt.timedelta(days=7) <= end:
            weeks.append(epoch_day(first))
        first += dt.timedelta(days=7)
        if dt.datetime.combine(first, dt.time(), UTC) >= end:
            break
    return weeks


def whole_months(start, end):
    """year * 12 + month - 1 of the calendar months wholly inside [start, end)."""
    months = []
    year, month = start.year, start.month
    while True:
        first = dt.datetime(year, month, 1, tzinfo=UTC)
        if first >= end:
            break
        year2, month2 = (year + 1, 1) if month == 12 else (year, month + 1)
        after = dt.datetime(year2, month2, 1, tzinfo=UTC)
        if first >= start and after <= end:
            months.append(year * 12 + month - 1)
        year, month = year2, month2
    return months


def median_of_counts(counts_by_period, periods):
    if not periods:
        return None
    return float(statistics.median([counts_by_period.get(p, 0) for p in periods]))


def figures(deployments, deployment_days, weekly, monthly, lead_median, lead_samples,
            failed, fdrt_median, fdrt_samples, unrecovered, ttr_median, ttr_samples, rework):
    rate = (lambda n: n / deployments) if deployments else (lambda n: None)
    nan_to_none = lambda v: None if v is None or v != v else float(v)
    return {
        "deployments": int(deployments),
        "deployment_days": int(deployment_days),
        "median_deploy_days_per_week": weekly,
        "median_deploy_days_per_month": monthly,
        "lead_time_median_minutes": nan_to_none(lead_median),
        "lead_time_samples": int(lead_samples),
        "failed_deployments": int(failed),
        "change_failure_rate": rate(failed),
        "fdrt_median_minutes": nan_to_none(fdrt_median),
        "fdrt_samples": int(fdrt_samples),
        "unrecovered_failures": int(unrecovered),
        "ttr_median_minutes": nan_to_none(ttr_median),
        "ttr_samples": int(ttr_samples),
        "rework_rate": rate(rework),
    }


EMPTY = figures(0, 0, None, None, None, 0, 0, None, 0, 0, None, 0, 0)
