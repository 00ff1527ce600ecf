//! The per-scope aggregation (R10, R11): the org's, each team's and each week's pooled median.

use super::by_deployment::ByDeployment;
use super::median::median;
use super::walk::Gathered;
use super::{LeadSummary, LeadTimes};

/// R10 and R11 for the samples: the org's median, each team's (pooled, not averaged) and each
/// week's. The services' were taken during the walk; `all` holds the parts' other figures.
pub(super) fn pool(parts: &[Gathered], all: Gathered, by: &ByDeployment) -> LeadTimes {
    let weeks = || parts.iter().flat_map(|part| part.weeks.iter().copied());
    let first_week = weeks().min().unwrap_or(0);
    let last_week = weeks().max().unwrap_or(0);
    let week_count = ((last_week - first_week) / 7 + 1) as usize;
    let ((mut all_minutes, by_team), (_, by_week)) = rayon::join(
        || {
            grouped_medians(
                samples(parts, |part, index| part.teams[index]),
                by.teams.len(),
            )
        },
        || {
            grouped_medians(
                samples(parts, |part, index| {
                    ((part.weeks[index] - first_week) / 7) as u32
                }),
                week_count,
            )
        },
    );
    // The team-grouped samples are all the samples, in another order.
    let org = LeadSummary {
        samples: all_minutes.len() as u64,
        median_minutes: median(&mut all_minutes),
    };
    let non_empty = |summary: &LeadSummary| summary.samples > 0;
    LeadTimes {
        org,
        teams: by
            .teams
            .iter()
            .cloned()
            .zip(by_team)
            .filter(|(_, s)| non_empty(s))
            .collect(),
        services: all.services.into_iter().collect(),
        weeks: (0..)
            .map(|index| first_week + 7 * index)
            .zip(by_week)
            .filter(|(_, s)| non_empty(s))
            .collect(),
        dropped: all.dropped,
        unknown: all.unknown,
    }
}

/// Every part's samples as `(minutes, key(part, index))`.
fn samples(
    parts: &[Gathered],
    key: impl Fn(&Gathered, usize) -> u32 + Copy,
) -> impl Iterator<Item = (f64, u32)> + Clone {
    parts.iter().flat_map(move |part| {
        part.minutes
            .iter()
            .enumerate()
            .map(move |(index, minutes)| (*minutes, key(part, index)))
    })
}

/// Each group's median and sample count over `(value, group)` samples, and the values grouped:
/// they are scattered group by group (one sequential read, a write stream per group), then each
/// group's median is selected in place.
fn grouped_medians(
    samples: impl Iterator<Item = (f64, u32)> + Clone,
    groups: usize,
) -> (Vec<f64>, Vec<LeadSummary>) {
    let mut starts = vec![0usize; groups + 1];
    for (_, key) in samples.clone() {
        starts[key as usize + 1] += 1;
    }
    for group in 0..groups {
        starts[group + 1] += starts[group];
    }
    let mut next = starts.clone();
    let mut grouped = vec![0.0; starts[groups]];
    for (value, key) in samples {
        let slot = &mut next[key as usize];
        grouped[*slot] = value;
        *slot += 1;
    }
    let summaries = (0..groups)
        .map(|group| {
            let slice = &mut grouped[starts[group]..starts[group + 1]];
            LeadSummary {
                samples: slice.len() as u64,
                median_minutes: median(slice),
            }
        })
        .collect();
    (grouped, summaries)
}
