//! The matching of changes to deployments: each service's deployments walked in order, the
//! first to ship a sha owning its sample.

use polars::prelude::*;

use super::LeadSummary;
use super::by_deployment::{Deployment, NOT_OWNER};
use super::changes::Changes;
use super::median::median;
use crate::dora::sha_keys::{NO_SHA, ShaKey};

const MINUTE: f64 = 60e6;
/// No `authored_at` (yet) for a sha.
const UNAUTHORED: i64 = i64::MAX;

/// One service's sha: its earliest authoring and whether a deployment shipped it already.
#[derive(Clone, Copy)]
pub(super) struct Sha {
    authored_at: i64,
    shipped: bool,
}

/// What one thread gathers over the services it walks.
#[derive(Default)]
pub(super) struct Gathered {
    /// Sample minutes (`> 0`), with the team and week of the deployment owning each.
    pub(super) minutes: Vec<f64>,
    pub(super) teams: Vec<u32>,
    pub(super) weeks: Vec<i32>,
    /// Each service's pooled samples, by its number.
    pub(super) services: Vec<(u64, LeadSummary)>,
    pub(super) dropped: u64,
    pub(super) unknown: u64,
    pub(super) shipped: Vec<(u32, u64, ShaKey)>,
    /// Room for one service's samples while its median is taken.
    scratch: Vec<f64>,
}

/// The arrays one service's walk reads.
pub(super) struct Walk<'a> {
    pub(super) by_seq: &'a [Deployment],
    pub(super) changes: &'a Changes,
    /// [`Lists::shas`](super::lists::Lists::shas); each deployment has its range.
    pub(super) shas: &'a [ShaKey],
    pub(super) wanted: &'a PlHashSet<ShaKey>,
    pub(super) end: i64,
}

impl Walk<'_> {
    /// One service: its changes' earliest authoring per sha, then its deployments in order,
    /// each owning the shas no earlier one shipped.
    pub(super) fn service(
        &self,
        deployments: &[u32],
        changes: &[u32],
        service: u64,
        table: &mut PlHashMap<ShaKey, Sha>,
        gathered: &mut Gathered,
    ) {
        if deployments.is_empty() {
            return;
        }
        table.clear();
        for &row in changes {
            let row = row as usize;
            let (sha, at) = (self.changes.sha[row], self.changes.authored_at[row]);
            let entry = table.entry(sha).or_insert(Sha {
                authored_at: UNAUTHORED,
                shipped: false,
            });
            entry.authored_at = entry.authored_at.min(at);
        }
        let first_sample = gathered.minutes.len();
        for &seq in deployments {
            let deployment = self.by_seq[seq as usize];
            let shipped = self
                .shas
                .get(deployment.shas.0 as usize..deployment.shas.1 as usize)
                .unwrap_or_default();
            // A deployment finished at or after the window's end owns no sample, but it may
            // still be the first to ship an incident's commit.
            let owner = deployment.team != NOT_OWNER && deployment.finished_at < self.end;
            for &sha in shipped {
                if sha == NO_SHA {
                    continue;
                }
                let entry = table.entry(sha).or_insert(Sha {
                    authored_at: UNAUTHORED,
                    shipped: false,
                });
                if entry.shipped {
                    continue;
                }
                entry.shipped = true;
                if !self.wanted.is_empty() && self.wanted.contains(&sha) {
                    gathered.shipped.push((seq, service, sha));
                }
                if !owner {
                    continue;
                }
                if entry.authored_at == UNAUTHORED {
                    gathered.unknown += 1;
                    continue;
                }
                let minutes = (deployment.finished_at - entry.authored_at) as f64 / MINUTE;
                if minutes > 0.0 {
                    gathered.minutes.push(minutes);
                    gathered.teams.push(deployment.team);
                    gathered.weeks.push(deployment.week);
                } else {
                    gathered.dropped += 1;
                }
            }
        }
        // The service's samples are the ones just pushed: its median is taken here, while
        // they are in the cache (on a copy: the three columns stay aligned).
        let samples = &gathered.minutes[first_sample..];
        if !samples.is_empty() {
            gathered.scratch.clear();
            gathered.scratch.extend_from_slice(samples);
            let summary = LeadSummary {
                median_minutes: median(&mut gathered.scratch),
                samples: samples.len() as u64,
            };
            gathered.services.push((service, summary));
        }
    }
}
