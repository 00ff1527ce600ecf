//! Reading the `changes` table into compact per-row arrays: the service's number, the sha's key
//! and the authoring time.

use std::sync::Mutex;

use polars::prelude::*;
use rayon::prelude::*;

use super::groups::Groups;
use super::slices::{collect_slice, key_of, pieces, row_count, tasks};
use crate::dora::service_numbers::ServiceNumbers;
use crate::dora::sha_keys::{ShaKey, ShaKeys};

/// The `changes` table, compact: rows of numbered services only (no other can be shipped).
#[derive(Default)]
pub(super) struct Changes {
    /// The service's number; `Groups` reads it.
    pub(super) service: Vec<u32>,
    pub(super) sha: Vec<ShaKey>,
    pub(super) authored_at: Vec<i64>,
}

/// Rows of the `changes` table collected at once: at most ~0.6 GB of strings at the
/// benchmark's scale, where the whole table is 2.2 GB, and the report's peak memory is taken
/// while it is read.
pub(super) const CHANGES_SLICE: usize = 8 << 20;

/// Reads the `changes` table into [`Changes`] (row for row; a row of a service that is not
/// numbered, which has no production deployment, or with a null, keeps [`Groups::NONE`]).
/// polars' reader collects a slice of the table at a time on every core; its strings are turned
/// into keys in place, in parallel, and dropped before the next slice.
pub(super) fn read_changes(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dora::lead_time::slices::chunked;

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
}
