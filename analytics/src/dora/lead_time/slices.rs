//! What the table readers share: collecting a frame a slice at a time, splitting a slice's
//! chunks into parallel tasks, and keying shas.

use std::sync::Mutex;

use polars::prelude::*;

use crate::dora::engine::CollectStreaming;
use crate::dora::sha_keys::{self, ShaKey, ShaKeys};

/// Rows converted by one task: the conversion runs on every core, whatever the chunking.
const TASK_ROWS: usize = 1 << 16;

/// `(chunk, rows in the chunk, first global row)` tasks covering chunks of `lengths` rows.
pub(super) fn tasks(
    lengths: impl Iterator<Item = usize>,
) -> Vec<(usize, std::ops::Range<usize>, usize)> {
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
pub(super) fn pieces<T>(mut items: &mut [T], sizes: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    let mut out = Vec::new();
    for size in sizes {
        let (piece, rest) = std::mem::take(&mut items).split_at_mut(size);
        out.push(piece);
        items = rest;
    }
    out
}

/// A sha's key: canonical shas are packed without a lock; others are interned under it.
pub(super) fn key_of(keys: &Mutex<ShaKeys>, sha: &str) -> PolarsResult<ShaKey> {
    if let Some(key) = sha_keys::canonical(sha) {
        return Ok(key);
    }
    let mut keys = keys
        .lock()
        .map_err(|_| polars_err!(ComputeError: "a sha conversion panicked"))?;
    Ok(keys.key(sha))
}

/// Rows `offset..offset + rows` of `frame`, collected; `None` past its end.
pub(super) fn collect_slice(
    frame: &LazyFrame,
    offset: usize,
    rows: usize,
) -> PolarsResult<Option<DataFrame>> {
    let slice = frame
        .clone()
        .slice(offset as i64, rows as IdxSize)
        .collect_streaming()?;
    Ok((slice.height() > 0).then_some(slice))
}

/// How many rows `frame` has (a Parquet scan answers from the file's metadata).
pub(super) fn row_count(frame: &LazyFrame) -> PolarsResult<usize> {
    let counted = frame.clone().select([len().alias("rows")]).collect()?;
    let rows = counted.column("rows")?.cast(&DataType::UInt64)?;
    Ok(rows.u64()?.get(0).unwrap_or(0) as usize)
}

/// A frame of several chunks, as polars' reader returns a large table.
#[cfg(test)]
pub(super) fn chunked(frames: Vec<DataFrame>) -> PolarsResult<LazyFrame> {
    concat(
        frames.into_iter().map(DataFrame::lazy).collect::<Vec<_>>(),
        UnionArgs {
            rechunk: false,
            ..UnionArgs::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
