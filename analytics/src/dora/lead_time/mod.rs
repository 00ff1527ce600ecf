//! R4: lead time for changes, in one pass per service.
//!
//! Each `(service, sha)` belongs to the first deployment of its service (in `seq` order) whose
//! `changes` contain it, and its sample runs from the sha's earliest `authored_at`. The pass
//! partitions the changes on their service's number, then walks each service's deployments in
//! order with a small table of that service's shas: the first deployment to ship a sha owns it.
//! A service's table holds a few thousand shas and stays in the CPU's caches, and the services
//! run in parallel. Grouping the benchmark's ~54 million shipped and authored rows on
//! `(service, sha)` in polars was the largest part of the report's time
//! (docs/analytics.md#performance). Shas are compared as the exact strings, so `ABC…` and
//! `abc…` stay two shas, as the spec reads them.
//!
//! This module runs the pass; [`changes`] and [`lists`] read the tables (with [`slices`]),
//! [`by_deployment`] and [`groups`] lay them out for [`walk`], which matches shas to
//! deployments, and [`pool`] takes each scope's [`median`].

mod by_deployment;
mod changes;
mod groups;
mod lists;
mod median;
mod pool;
mod slices;
mod walk;

use std::collections::HashMap;
use std::sync::Mutex;

use polars::prelude::*;
use rayon::prelude::*;

use super::service_numbers::ServiceNumbers;
use super::sha_keys::{ShaKey, ShaKeys};
use super::team_numbers::TeamNumbers;
use by_deployment::{attach_lists, by_deployment};
use changes::{CHANGES_SLICE, read_changes};
use groups::Groups;
use lists::{LISTS_SLICE, read_lists};
use pool::pool;
use walk::{Gathered, Sha, Walk};

/// A scope's pooled lead time: the median of its samples (R10) and how many there are.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct LeadSummary {
    pub median_minutes: Option<f64>,
    pub samples: u64,
}

/// R4's figures for every scope, the weekly series, and the diagnostics' two counters.
#[derive(Debug, Default)]
pub(super) struct LeadTimes {
    pub org: LeadSummary,
    pub teams: HashMap<String, LeadSummary>,
    pub services: HashMap<u64, LeadSummary>,
    /// By the Monday (days since the epoch, local) of the week the owning deployment is in.
    pub weeks: HashMap<i32, LeadSummary>,
    /// Samples `<= 0`.
    pub dropped: u64,
    /// Shas shipped but missing from `changes`.
    pub unknown: u64,
}

/// What the pass reads.
pub(super) struct Inputs<'a> {
    /// R1's deployments: `seq`, `row` (their position in the input table).
    pub production: &'a DataFrame,
    /// Per deployment: `seq`, the service's number, `finished_at`.
    pub order: &'a DataFrame,
    /// The deployments that can own a sample (in the window, not their service's baseline):
    /// `seq`, `team`, `local_day`.
    pub owners: &'a DataFrame,
    /// The input's deployments, for their `changes` lists.
    pub deployments: LazyFrame,
    /// The input's `changes` table.
    pub changes: LazyFrame,
    /// Incidents' `commit_sha`s: [`Pass::shipped`] lists the deployments that first shipped
    /// them (R5 step 2).
    pub wanted: &'a [String],
}

/// The pass's results.
pub(super) struct Pass {
    pub lead_times: LeadTimes,
    /// `seq`, `service`, `sha`: for each wanted sha, the first deployment of each service that
    /// shipped it (the earliest is all R5 asks for).
    pub shipped: DataFrame,
}

/// Runs R4 over every service, and finds the deployments that first shipped `wanted` shas.
pub(super) fn pass(
    inputs: Inputs<'_>,
    numbers: &ServiceNumbers,
    teams: &TeamNumbers,
    end: i64,
) -> PolarsResult<Pass> {
    let started = std::time::Instant::now();
    let lap = |stage: &str| {
        let elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(stage, elapsed_ms, "dora");
    };
    let groups = numbers.len() + 1;
    let mut by_deployment = by_deployment(&inputs, teams)?;
    let deployments_of = {
        let keys: Vec<u32> = by_deployment
            .service
            .iter()
            .map(|s| {
                if *s > 0 && (*s as usize) < groups {
                    *s
                } else {
                    Groups::NONE
                }
            })
            .collect();
        Groups::new(&keys, groups)
    };

    let keys = Mutex::new(ShaKeys::default());
    let mut changes = read_changes(inputs.changes, numbers, &keys, CHANGES_SLICE)?;
    lap("r4 changes keyed");
    let changes_of = Groups::new(&changes.service, groups);
    changes.service = Vec::new();
    lap("r4 changes read");
    let lists = read_lists(inputs.deployments, &by_deployment.row, &keys, LISTS_SLICE)?;
    lap("r4 lists read");
    let mut keys = keys
        .into_inner()
        .map_err(|_| polars_err!(ComputeError: "a sha conversion panicked"))?;
    let wanted: PlHashSet<ShaKey> = inputs.wanted.iter().map(|sha| keys.key(sha)).collect();
    attach_lists(&mut by_deployment, &lists);
    let walk = Walk {
        by_seq: &by_deployment.walk,
        changes: &changes,
        shas: &lists.shas,
        wanted: &wanted,
        end,
    };
    let mut gathered: Vec<Gathered> = (1..groups)
        .into_par_iter()
        .with_min_len(64)
        .fold(
            || (Gathered::default(), PlHashMap::<ShaKey, Sha>::new()),
            |(mut gathered, mut table), service| {
                walk.service(
                    deployments_of.group(service),
                    changes_of.group(service),
                    service as u64,
                    &mut table,
                    &mut gathered,
                );
                (gathered, table)
            },
        )
        .map(|(gathered, _)| gathered)
        .collect();
    lap("r4 walked");

    // The samples stay in their parts (the pooling reads them where they are: copying ~27
    // million of them into one array cost more in fresh pages than the medians themselves).
    let mut all = Gathered::default();
    for part in &mut gathered {
        all.services.append(&mut part.services);
        all.dropped += part.dropped;
        all.unknown += part.unknown;
        all.shipped.append(&mut part.shipped);
    }
    let shipped = DataFrame::new_infer_height(vec![
        Column::new(
            "seq".into(),
            all.shipped
                .iter()
                .map(|(seq, _, _)| *seq as IdxSize)
                .collect::<Vec<IdxSize>>(),
        ),
        Column::new(
            "service".into(),
            all.shipped
                .iter()
                .map(|(_, service, _)| numbers.name(*service))
                .collect::<Vec<Option<&str>>>(),
        ),
        Column::new(
            "sha".into(),
            all.shipped
                .iter()
                .map(|(_, _, sha)| keys.text(sha))
                .collect::<Vec<String>>(),
        ),
    ])?;
    let lead_times = pool(&gathered, all, &by_deployment);
    lap("r4 pooled");
    Ok(Pass {
        lead_times,
        shipped,
    })
}
