//! Reading the production deployments' `changes` lists into one compact array of sha keys, with
//! each input row's range in it.

use std::sync::Mutex;

use polars::prelude::*;
use rayon::prelude::*;

use super::slices::{collect_slice, key_of, pieces, tasks};
use crate::dora::sha_keys::{NO_SHA, ShaKey, ShaKeys};

/// The production deployments' `changes` lists, compact, by input row.
#[derive(Default)]
pub(super) struct Lists {
    /// `(start, end)` in `shas` per input row; rows that are not R1's stay `(0, 0)`.
    pub(super) ranges: Vec<(u32, u32)>,
    pub(super) shas: Vec<ShaKey>,
}

#[cfg(test)]
impl Lists {
    fn of_row(&self, row: u32) -> Option<&[ShaKey]> {
        let (start, end) = *self.ranges.get(row as usize)?;
        self.shas.get(start as usize..end as usize)
    }
}

/// Rows of the `deployments` table whose lists are collected at once: a third of the
/// benchmark's 9 million, so the ~27 million shas' strings are never held at once (and their
/// memory is reused from one slice to the next).
pub(super) const LISTS_SLICE: usize = 3 << 20;

/// Reads the `changes` lists of R1's deployments (`rows`, by `seq`) into [`Lists`], as
/// [`read_changes`](super::changes::read_changes) reads the changes, a slice of rows at a
/// time: each production row's range is known from the list offsets, so every task writes its
/// rows' keys in place. Rows after the last production row are not read.
pub(super) fn read_lists(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dora::lead_time::slices::chunked;

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
}
