//! R2: the report window `[from, to)` and the calendar it is cut into, in the report's time
//! zone.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::{AnalyticsError, Result};

/// The half-open window `[from, to)` and the time zone days, weeks and months are taken in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub timezone: Tz,
}

impl ReportWindow {
    /// Parses `--from`/`--to` (a date, meaning local midnight, or an RFC 3339 instant) and
    /// `--timezone` (an IANA name). Missing bounds default to the 90 days ending at today's
    /// local midnight.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        timezone: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let timezone: Tz = match timezone {
            None => Tz::UTC,
            Some(name) => name.parse().map_err(|_| {
                AnalyticsError::InvalidOption(format!(
                    "--timezone {name:?} is not an IANA time zone name (such as Europe/Berlin)"
                ))
            })?,
        };
        let to = match to {
            Some(text) => parse_bound("--to", text, timezone)?,
            None => local_midnight(timezone, now.with_timezone(&timezone).date_naive()),
        };
        let from = match from {
            Some(text) => parse_bound("--from", text, timezone)?,
            None => {
                let last_day = to.with_timezone(&timezone).date_naive();
                local_midnight(timezone, last_day - Duration::days(90))
            }
        };
        Self::new(from, to, timezone)
    }

    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, timezone: Tz) -> Result<Self> {
        if from >= to {
            return Err(AnalyticsError::InvalidOption(format!(
                "the window is empty: --from {} is not before --to {}",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
        Ok(Self { from, to, timezone })
    }

    /// `(to - from) / 24 h`.
    pub fn days(&self) -> f64 {
        (self.to - self.from).num_microseconds().unwrap_or(i64::MAX) as f64 / 86_400e6
    }

    /// The ISO weeks lying wholly inside the window, as their Monday.
    pub fn whole_weeks(&self) -> Vec<NaiveDate> {
        let first = self.from.with_timezone(&self.timezone).date_naive();
        let monday = first - Duration::days(i64::from(first.weekday().num_days_from_monday()));
        let mut weeks = Vec::new();
        let mut start = monday;
        while local_midnight(self.timezone, start) < self.to {
            let end = start + Duration::days(7);
            if self.wholly_inside(start, end) {
                weeks.push(start);
            }
            start = end;
        }
        weeks
    }

    /// The calendar months lying wholly inside the window, as their first day.
    pub fn whole_months(&self) -> Vec<NaiveDate> {
        let first = self.from.with_timezone(&self.timezone).date_naive();
        let mut start = first.with_day(1).unwrap_or(first);
        let mut months = Vec::new();
        while local_midnight(self.timezone, start) < self.to {
            let end = start
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(NaiveDate::MAX);
            if self.wholly_inside(start, end) {
                months.push(start);
            }
            start = end;
        }
        months
    }

    fn wholly_inside(&self, first_day: NaiveDate, day_after: NaiveDate) -> bool {
        local_midnight(self.timezone, first_day) >= self.from
            && local_midnight(self.timezone, day_after) <= self.to
    }
}

/// The first instant of a local date: midnight, or the first valid instant after a gap.
pub fn local_midnight(timezone: Tz, day: NaiveDate) -> DateTime<Utc> {
    let mut at = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..48 {
        if let Some(instant) = timezone.from_local_datetime(&at).earliest() {
            return instant.with_timezone(&Utc);
        }
        at += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
}

fn parse_bound(flag: &str, text: &str, timezone: Tz) -> Result<DateTime<Utc>> {
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(local_midnight(timezone, day));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| {
            AnalyticsError::InvalidOption(format!(
                "{flag} {text:?} is neither a date (2026-01-31) nor an RFC 3339 instant \
                 (2026-01-31T09:00:00+01:00)"
            ))
        })
}
