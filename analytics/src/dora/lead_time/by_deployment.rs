//! The deployments as the walk and the pooling read them: arrays indexed by `seq`, the walk's
//! in one packed record per deployment.

use polars::prelude::*;

use super::Inputs;
use super::lists::Lists;
use crate::dora::service_numbers::SERVICE_NUMBER;
use crate::dora::team_numbers::{TEAM_NUMBER, TeamNumbers};

/// Per deployment, indexed by `seq`.
pub(super) struct ByDeployment {
    pub(super) row: Vec<u32>,
    /// The service's number (0 for none).
    pub(super) service: Vec<u32>,
    /// What the walk reads; their lists' ranges are filled in once the lists are read.
    pub(super) walk: Vec<Deployment>,
    pub(super) teams: Vec<String>,
}

pub(super) const NOT_OWNER: u32 = u32::MAX;

/// What the walk reads of a deployment, in one place: a service's deployments are spread over
/// the whole `seq` range, so one record is one cache miss where an array per field was one
/// each.
#[derive(Clone, Copy)]
pub(super) struct Deployment {
    pub(super) finished_at: i64,
    /// Its list's range in [`Lists::shas`] (`(0, 0)` for none).
    pub(super) shas: (u32, u32),
    /// Index into [`ByDeployment::teams`], or `NOT_OWNER` for a deployment that owns no
    /// sample.
    pub(super) team: u32,
    /// The Monday (days since the epoch, local) of the owner's week.
    pub(super) week: i32,
}

/// Gives each deployment its list's range in `lists`.
pub(super) fn attach_lists(by: &mut ByDeployment, lists: &Lists) {
    for (deployment, row) in by.walk.iter_mut().zip(&by.row) {
        deployment.shas = lists.ranges.get(*row as usize).copied().unwrap_or((0, 0));
    }
}

/// A `u32` view of an index column (`seq`, `row`).
fn u32_column(frame: &DataFrame, name: &str) -> PolarsResult<Vec<Option<u32>>> {
    let column = frame.column(name)?.cast(&DataType::UInt32)?;
    Ok(column.u32()?.iter().collect())
}

/// Spreads the deployment columns the walk and the pooling read into arrays indexed by `seq`
/// (the walk's in one packed record per deployment).
pub(super) fn by_deployment(
    inputs: &Inputs<'_>,
    teams: &TeamNumbers,
) -> PolarsResult<ByDeployment> {
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
