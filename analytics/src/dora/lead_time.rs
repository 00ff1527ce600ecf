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

use std::collections::HashMap;

use polars::prelude::*;
use rayon::prelude::*;

use std::sync::Mutex;

use super::engine::CollectStreaming;
use super::service_numbers::{SERVICE_NUMBER, ServiceNumbers};
use super::sha_keys::{self, NO_SHA, ShaKey, ShaKeys};
use super::team_numbers::{TEAM_NUMBER, TeamNumbers};

const MINUTE: f64 = 60e6;

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

/// Per deployment, indexed by `seq`.
struct ByDeployment {
    row: Vec<u32>,
    /// The service's number (0 for none).
    service: Vec<u32>,
    /// What the walk reads; their lists' ranges are filled in once the lists are read.
    walk: Vec<Deployment>,
    teams: Vec<String>,
}

const NOT_OWNER: u32 = u32::MAX;
/// No `authored_at` (yet) for a sha.
const UNAUTHORED: i64 = i64::MAX;

/// One service's sha: its earliest authoring and whether a deployment shipped it already.
#[derive(Clone, Copy)]
struct Sha {
    authored_at: i64,
    shipped: bool,
}

/// Rows grouped by a small key (a service's number), each group in row order: a counting
/// sort, which moves 4-byte indices, never the rows.
struct Groups {
    starts: Vec<usize>,
    rows: Vec<u32>,
}

impl Groups {
    /// `keys[row]` is the row's group; [`Groups::NONE`] leaves the row out.
    fn new(keys: &[u32], groups: usize) -> Self {
        let mut starts = vec![0usize; groups + 1];
        for key in keys.iter().filter(|k| **k != Self::NONE) {
            starts[*key as usize + 1] += 1;
        }
        for group in 0..groups {
            starts[group + 1] += starts[group];
        }
        let mut next = starts.clone();
        let mut rows = vec![0u32; starts[groups]];
        for (row, key) in keys.iter().enumerate() {
            if *key != Self::NONE {
                let slot = &mut next[*key as usize];
                rows[*slot] = row as u32;
                *slot += 1;
            }
        }
        Self { starts, rows }
    }

    const NONE: u32 = u32::MAX;

    fn group(&self, key: usize) -> &[u32] {
        &self.rows[self.starts[key]..self.starts[key + 1]]
    }
}

/// What one thread gathers over the services it walks.
#[derive(Default)]
struct Gathered {
    /// Sample minutes (`> 0`), with the team and week of the deployment owning each.
    minutes: Vec<f64>,
    teams: Vec<u32>,
    weeks: Vec<i32>,
    /// Each service's pooled samples, by its number.
    services: Vec<(u64, LeadSummary)>,
    dropped: u64,
    unknown: u64,
    shipped: Vec<(u32, u64, ShaKey)>,
    /// Room for one service's samples while its median is taken.
    scratch: Vec<f64>,
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

/// The arrays one service's walk reads.
struct Walk<'a> {
    by_seq: &'a [Deployment],
    changes: &'a Changes,
    /// [`Lists::shas`]; each deployment has its range.
    shas: &'a [ShaKey],
    wanted: &'a PlHashSet<ShaKey>,
    end: i64,
}

impl Walk<'_> {
    /// One service: its changes' earliest authoring per sha, then its deployments in order,
    /// each owning the shas no earlier one shipped.
    fn service(
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

/// What the walk reads of a deployment, in one place: a service's deployments are spread over
/// the whole `seq` range, so one record is one cache miss where an array per field was one
/// each.
#[derive(Clone, Copy)]
struct Deployment {
    finished_at: i64,
    /// Its list's range in [`Lists::shas`] (`(0, 0)` for none).
    shas: (u32, u32),
    /// Index into [`ByDeployment::teams`], or `NOT_OWNER` for a deployment that owns no
    /// sample.
    team: u32,
    /// The Monday (days since the epoch, local) of the owner's week.
    week: i32,
}

/// Gives each deployment its list's range in `lists`.
fn attach_lists(by: &mut ByDeployment, lists: &Lists) {
    for (deployment, row) in by.walk.iter_mut().zip(&by.row) {
        deployment.shas = lists.ranges.get(*row as usize).copied().unwrap_or((0, 0));
    }
}

/// The `changes` table, compact: rows of numbered services only (no other can be shipped).
#[derive(Default)]
struct Changes {
    /// The service's number; `Groups` reads it.
    service: Vec<u32>,
    sha: Vec<ShaKey>,
    authored_at: Vec<i64>,
}

/// The production deployments' `changes` lists, compact, by input row.
#[derive(Default)]
struct Lists {
    /// `(start, end)` in `shas` per input row; rows that are not R1's stay `(0, 0)`.
    ranges: Vec<(u32, u32)>,
    shas: Vec<ShaKey>,
}

#[cfg(test)]
impl Lists {
    fn of_row(&self, row: u32) -> Option<&[ShaKey]> {
        let (start, end) = *self.ranges.get(row as usize)?;
        self.shas.get(start as usize..end as usize)
    }
}

/// Rows converted by one task: the conversion runs on every core, whatever the chunking.
const TASK_ROWS: usize = 1 << 16;

/// `(chunk, rows in the chunk, first global row)` tasks covering chunks of `lengths` rows.
fn tasks(lengths: impl Iterator<Item = usize>) -> Vec<(usize, std::ops::Range<usize>, usize)> {
    let mut tasks = Vec::new();
    let mut global = 0;
    for (chunk, length) in lengths.enumerate() {
        for start in (0..length).step_by(TASK_ROWS) {
            let end = (start + TASK_ROWS).min(length);
            tasks.push((chunk, start..end, global + start));
        }
        global += length;
    }
    tasks
}

/// Splits `items` into consecutive pieces of `sizes`.
fn pieces<T>(mut items: &mut [T], sizes: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    let mut out = Vec::new();
    for size in sizes {
        let (piece, rest) = std::mem::take(&mut items).split_at_mut(size);
        out.push(piece);
        items = rest;
    }
    out
}

/// A sha's key: canonical shas are packed without a lock; others are interned under it.
fn key_of(keys: &Mutex<ShaKeys>, sha: &str) -> PolarsResult<ShaKey> {
    if let Some(key) = sha_keys::canonical(sha) {
        return Ok(key);
    }
    let mut keys = keys
        .lock()
        .map_err(|_| polars_err!(ComputeError: "a sha conversion panicked"))?;
    Ok(keys.key(sha))
}

/// Rows of the `changes` table collected at once: at most ~0.6 GB of strings at the
/// benchmark's scale, where the whole table is 2.2 GB, and the report's peak memory is taken
/// while it is read.
const CHANGES_SLICE: usize = 8 << 20;

/// Reads the `changes` table into [`Changes`] (row for row; a row of a service that is not
/// numbered, which has no production deployment, or with a null, keeps [`Groups::NONE`]).
/// polars' reader collects a slice of the table at a time on every core; its strings are turned
/// into keys in place, in parallel, and dropped before the next slice.
fn read_changes(
    changes: LazyFrame,
    numbers: &ServiceNumbers,
    keys: &Mutex<ShaKeys>,
    slice_rows: usize,
) -> PolarsResult<Changes> {
    let frame = changes.select([col("service"), col("sha"), col("authored_at")]);
    let slice_rows = slice_rows.max(1);
    // Sized once: growing by doubling would copy the keys into fresh pages at every step. The
    // count is only a hint (polars cannot count a union of frames without 128-bit integers,
    // which this build leaves out); the reading below reports any real error.
    let total = row_count(&frame).unwrap_or(0);
    let mut out = Changes {
        service: Vec::with_capacity(total),
        sha: Vec::with_capacity(total),
        authored_at: Vec::with_capacity(total),
    };
    loop {
        let offset = out.sha.len();
        let Some(mut slice) = collect_slice(&frame, offset, slice_rows)? else {
            break;
        };
        let rows = slice.height();
        slice.align_chunks_par();
        let services: Vec<_> = slice.column("service")?.str()?.downcast_iter().collect();
        let shas: Vec<_> = slice.column("sha")?.str()?.downcast_iter().collect();
        let authored: Vec<_> = slice
            .column("authored_at")?
            .i64()?
            .downcast_iter()
            .collect();
        let end = offset + rows;
        out.service.resize(end, Groups::NONE);
        out.sha.resize(end, [0; 21]);
        out.authored_at.resize(end, 0);
        let tasks = tasks(shas.iter().map(|array| array.len()));
        let sizes = || tasks.iter().map(|(_, rows, _)| rows.len());
        let outputs = pieces(&mut out.service[offset..end], sizes())
            .into_iter()
            .zip(pieces(&mut out.sha[offset..end], sizes()))
            .zip(pieces(&mut out.authored_at[offset..end], sizes()));
        tasks
            .par_iter()
            .zip(outputs.collect::<Vec<_>>())
            .try_for_each(|((chunk, rows, _), ((service_out, sha_out), at_out))| {
                let (services, shas, authored) = (services[*chunk], shas[*chunk], authored[*chunk]);
                let mut last = None;
                for (slot, row) in rows.clone().enumerate() {
                    let (Some(service), Some(sha), Some(at)) =
                        (services.get(row), shas.get(row), authored.get(row))
                    else {
                        continue;
                    };
                    let number = numbers
                        .number_in_run(service, &mut last)
                        .and_then(|n| u32::try_from(n).ok());
                    if let Some(number) = number {
                        service_out[slot] = number;
                        sha_out[slot] = key_of(keys, sha)?;
                        at_out[slot] = at;
                    }
                }
                PolarsResult::Ok(())
            })?;
        if rows < slice_rows {
            break;
        }
    }
    Ok(out)
}

/// Rows of the `deployments` table whose lists are collected at once: a third of the
/// benchmark's 9 million, so the ~27 million shas' strings are never held at once (and their
/// memory is reused from one slice to the next).
const LISTS_SLICE: usize = 3 << 20;

/// Reads the `changes` lists of R1's deployments (`rows`, by `seq`) into [`Lists`], as
/// [`read_changes`] reads the changes, a slice of rows at a time: each production row's range
/// is known from the list offsets, so every task writes its rows' keys in place. Rows after
/// the last production row are not read.
fn read_lists(
    deployments: LazyFrame,
    rows: &[u32],
    keys: &Mutex<ShaKeys>,
    slice_rows: usize,
) -> PolarsResult<Lists> {
    let last_row = rows.iter().copied().filter(|r| *r != u32::MAX).max();
    let mut production = vec![false; last_row.map_or(0, |r| r as usize + 1)];
    for row in rows.iter().filter(|r| **r != u32::MAX) {
        production[*row as usize] = true;
    }
    let is_production = |row: usize| production.get(row).copied().unwrap_or(false);
    let frame = deployments.select([col("changes")]);
    let slice_rows = slice_rows.max(1);
    let mut lists = Lists {
        ranges: vec![(0u32, 0u32); production.len()],
        shas: Vec::new(),
    };
    let mut offset = 0;
    while offset < production.len() {
        let Some(slice) = collect_slice(&frame, offset, slice_rows)? else {
            break;
        };
        let height = slice.height();
        let column = slice.column("changes")?.list()?;
        let arrays: Vec<_> = column.downcast_iter().collect();
        let first_sha = lists.shas.len();
        let mut next = u32::try_from(first_sha)
            .map_err(|_| polars_err!(ComputeError: "more than 4 billion shipped shas"))?;
        let mut row = offset;
        for array in &arrays {
            let offsets = array.offsets().as_slice();
            for position in 0..array.len() {
                if is_production(row) {
                    let count = (offsets[position + 1] - offsets[position]) as u32;
                    lists.ranges[row] = (next, next + count);
                    next += count;
                }
                row += 1;
            }
        }
        if lists.shas.capacity() < next as usize {
            // Room for the rest of the table at the density read so far (and a margin): an
            // array grown by doubling is copied into fresh pages at every step, and capacity
            // that is never written costs no memory.
            let read = (offset + height).max(1);
            let per_row = next as f64 / read as f64;
            let expected = (per_row * production.len() as f64 * 1.25) as usize;
            lists
                .shas
                .reserve_exact(expected.max(next as usize) - lists.shas.len());
        }
        lists.shas.resize(next as usize, [0u8; 21]);
        let tasks = tasks(arrays.iter().map(|array| array.len()));
        // A task's rows' ranges are consecutive: its piece is as long as their counts.
        let span = |first: usize, count: usize| -> usize {
            (first..first + count)
                .filter(|row| is_production(*row))
                .map(|row| (lists.ranges[row].1 - lists.ranges[row].0) as usize)
                .sum()
        };
        let sizes: Vec<usize> = tasks
            .iter()
            .map(|(_, local, first)| span(offset + first, local.len()))
            .collect();
        let outputs = pieces(&mut lists.shas[first_sha..], sizes.into_iter());
        let values: Vec<Series> = arrays
            .iter()
            .map(|array| Series::try_from((PlSmallStr::from("sha"), array.values().clone())))
            .collect::<PolarsResult<_>>()?;
        let values: Vec<_> = values
            .iter()
            .map(|series| Ok(series.str()?.downcast_as_array()))
            .collect::<PolarsResult<_>>()?;
        tasks
            .par_iter()
            .zip(outputs)
            .try_for_each(|((chunk, local, first), out)| {
                let offsets = arrays[*chunk].offsets().as_slice();
                let strings = values[*chunk];
                let mut slot = 0;
                for (position, row) in local.clone().zip(offset + first..) {
                    if !is_production(row) {
                        continue;
                    }
                    for index in offsets[position] as usize..offsets[position + 1] as usize {
                        out[slot] = match strings.get(index) {
                            Some(sha) => key_of(keys, sha)?,
                            None => NO_SHA,
                        };
                        slot += 1;
                    }
                }
                PolarsResult::Ok(())
            })?;
        offset += height;
        if height < slice_rows {
            break;
        }
    }
    Ok(lists)
}

/// Rows `offset..offset + rows` of `frame`, collected; `None` past its end.
fn collect_slice(frame: &LazyFrame, offset: usize, rows: usize) -> PolarsResult<Option<DataFrame>> {
    let slice = frame
        .clone()
        .slice(offset as i64, rows as IdxSize)
        .collect_streaming()?;
    Ok((slice.height() > 0).then_some(slice))
}

/// How many rows `frame` has (a Parquet scan answers from the file's metadata).
fn row_count(frame: &LazyFrame) -> PolarsResult<usize> {
    let counted = frame.clone().select([len().alias("rows")]).collect()?;
    let rows = counted.column("rows")?.cast(&DataType::UInt64)?;
    Ok(rows.u64()?.get(0).unwrap_or(0) as usize)
}

/// A `u32` view of an index column (`seq`, `row`).
fn u32_column(frame: &DataFrame, name: &str) -> PolarsResult<Vec<Option<u32>>> {
    let column = frame.column(name)?.cast(&DataType::UInt32)?;
    Ok(column.u32()?.iter().collect())
}

/// Spreads the deployment columns the walk and the pooling read into arrays indexed by `seq`
/// (the walk's in one packed record per deployment).
fn by_deployment(inputs: &Inputs<'_>, teams: &TeamNumbers) -> PolarsResult<ByDeployment> {
    let count = inputs.production.height();
    let mut by = ByDeployment {
        row: vec![u32::MAX; count],
        service: vec![0; count],
        walk: vec![
            Deployment {
                finished_at: i64::MAX,
                shas: (0, 0),
                team: NOT_OWNER,
                week: 0,
            };
            count
        ],
        teams: (0..teams.len() as u64)
            .map(|number| teams.name(number).unwrap_or_default().to_owned())
            .collect(),
    };
    let seqs = u32_column(inputs.production, "seq")?;
    for (seq, row) in seqs.iter().zip(u32_column(inputs.production, "row")?) {
        if let (Some(seq), Some(row)) = (seq, row) {
            by.row[*seq as usize] = row;
        }
    }
    let finished = inputs.order.column("finished_at")?.i64()?;
    let services = inputs.order.column(SERVICE_NUMBER)?.u64()?;
    for ((seq, at), service) in u32_column(inputs.order, "seq")?
        .into_iter()
        .zip(finished.iter())
        .zip(services.iter())
    {
        if let (Some(seq), Some(at)) = (seq, at) {
            by.walk[seq as usize].finished_at = at;
            by.service[seq as usize] = service.and_then(|s| u32::try_from(s).ok()).unwrap_or(0);
        }
    }
    let team_numbers = inputs.owners.column(TEAM_NUMBER)?.u32()?;
    let days = inputs.owners.column("local_day")?.i32()?;
    for ((seq, team), day) in u32_column(inputs.owners, "seq")?
        .into_iter()
        .zip(team_numbers.iter())
        .zip(days.iter())
    {
        let (Some(seq), Some(team), Some(day)) = (seq, team, day) else {
            continue;
        };
        let deployment = &mut by.walk[seq as usize];
        deployment.team = team;
        deployment.week = day - (day + 3).rem_euclid(7);
    }
    Ok(by)
}

/// R10 and R11 for the samples: the org's median, each team's (pooled, not averaged) and each
/// week's. The services' were taken during the walk; `all` holds the parts' other figures.
fn pool(parts: &[Gathered], all: Gathered, by: &ByDeployment) -> LeadTimes {
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

/// R10's median as polars computes it (linear interpolation between the two middle values).
pub(super) fn median(values: &mut [f64]) -> Option<f64> {
    let count = values.len();
    if count == 0 {
        return None;
    }
    let middle = (count - 1) / 2;
    let (_, lower, upper) = values.select_nth_unstable_by(middle, f64::total_cmp);
    let lower = *lower;
    if count % 2 == 1 {
        return Some(lower);
    }
    let upper = upper
        .iter()
        .copied()
        .min_by(f64::total_cmp)
        .unwrap_or(lower);
    Some(if lower == upper {
        lower
    } else {
        0.5 * (upper - lower) + lower
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_interpolates_between_the_middle_two() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut [1.0, 1.0]), Some(1.0));
    }

    #[test]
    fn tasks_cover_every_chunk_with_global_rows() {
        let tasks = tasks([3, 0, TASK_ROWS + 2].into_iter());
        assert_eq!(
            tasks,
            [
                (0, 0..3, 0),
                (2, 0..TASK_ROWS, 3),
                (2, TASK_ROWS..TASK_ROWS + 2, TASK_ROWS + 3)
            ]
        );
        let mut items = [1, 2, 3, 4, 5];
        let split = pieces(&mut items, [2, 0, 3].into_iter());
        assert_eq!(split, [&mut [1, 2][..], &mut [][..], &mut [3, 4, 5][..]]);
    }

    /// A frame of several chunks, as polars' reader returns a large table.
    fn chunked(frames: Vec<DataFrame>) -> PolarsResult<LazyFrame> {
        concat(
            frames.into_iter().map(DataFrame::lazy).collect::<Vec<_>>(),
            UnionArgs {
                rechunk: false,
                ..UnionArgs::default()
            },
        )
    }

    #[test]
    fn lists_of_production_rows_are_read_across_chunks() -> PolarsResult<()> {
        let list = |shas: &[Option<&str>]| Series::new("".into(), shas);
        let part = |lists: Vec<Series>| df!("changes" => lists);
        let frame = chunked(vec![
            part(vec![list(&[Some("a"), Some("b")]), list(&[Some("x")])])?,
            part(vec![list(&[]), list(&[Some("c"), None])])?,
            part(vec![list(&[Some("y")]), list(&[Some("d")])])?,
        ])?;
        // Production rows 0, 3 and 5 (by seq: 5, 0, 3); slices of 1 to all rows.
        for slice_rows in [1, 2, 4, 100] {
            let keys = Mutex::new(ShaKeys::default());
            let lists = read_lists(frame.clone(), &[5, 0, 3], &keys, slice_rows)?;
            let keys = keys.into_inner().expect("keys");
            let texts = |row: u32| -> Vec<String> {
                lists
                    .of_row(row)
                    .unwrap_or_default()
                    .iter()
                    .map(|key| {
                        if *key == NO_SHA {
                            "null".to_owned()
                        } else {
                            keys.text(key)
                        }
                    })
                    .collect()
            };
            assert_eq!(texts(0), ["a", "b"], "slices of {slice_rows}");
            assert!(texts(1).is_empty() && texts(2).is_empty() && texts(4).is_empty());
            assert_eq!(texts(3), ["c", "null"], "slices of {slice_rows}");
            assert_eq!(texts(5), ["d"], "slices of {slice_rows}");
            assert_eq!(lists.shas.len(), 5, "only production rows' shas are kept");
        }
        Ok(())
    }

    #[test]
    fn changes_are_read_across_chunks_and_unknown_services_left_out() -> PolarsResult<()> {
        let part = |services: &[&str], shas: &[&str], at: &[i64]| df!("service" => services, "sha" => shas, "authored_at" => at);
        let frame = chunked(vec![
            part(&["a", "zz"], &["s1", "s2"], &[1, 2])?,
            part(&["b"], &["s3"], &[3])?,
        ])?;
        let numbers = ServiceNumbers::new([&Column::new("service".into(), ["a", "b"])])?;
        let keys = Mutex::new(ShaKeys::default());
        // Slices of two rows: the second slice starts inside the first chunk.
        let changes = read_changes(frame, &numbers, &keys, 2)?;
        let keys = keys.into_inner().expect("keys");
        assert_eq!(changes.service, [1, Groups::NONE, 2]);
        assert_eq!(keys.text(&changes.sha[2]), "s3");
        assert_eq!(changes.authored_at[2], 3);
        Ok(())
    }

    #[test]
    fn groups_keep_row_order_and_leave_out_rows_without_a_key() {
        let groups = Groups::new(&[1, Groups::NONE, 0, 1, 2], 3);
        assert_eq!(groups.group(0), [2]);
        assert_eq!(groups.group(1), [0, 3]);
        assert_eq!(groups.group(2), [4]);
    }
}
