//! Which polars engine runs the DORA queries.
//!
//! polars' streaming engine runs the group-bys and joins of the benchmark's 27 million
//! `(service, sha)` pairs in morsels on every core, with less memory than the in-memory engine:
//! 40.7 s and 11.1 GiB against 89.8 s and 13.8 GiB for the whole report (profiling build,
//! docs/analytics.md#performance). The results are the same: every query here either sorts
//! explicitly or does not depend on row order.

use polars::prelude::*;

/// `collect`, on the streaming engine.
pub(super) trait CollectStreaming {
    fn collect_streaming(self) -> PolarsResult<DataFrame>;
}

impl CollectStreaming for LazyFrame {
    fn collect_streaming(self) -> PolarsResult<DataFrame> {
        Ok(self.collect_with_engine(Engine::Streaming)?.unwrap_single())
    }
}

/// Runs `frame` on the streaming engine and hands each batch to `each` with `state`, which
/// comes back at the end: a table is turned into compact arrays without ever being held
/// whole as strings. With `in_order`, batches come in the frame's row order.
pub(super) fn for_each_batch<S: Send + 'static>(
    frame: LazyFrame,
    state: S,
    in_order: bool,
    each: impl Fn(&mut S, DataFrame) -> PolarsResult<()> + Send + Sync + 'static,
) -> PolarsResult<S> {
    use std::sync::{Arc, Mutex};
    let shared = Arc::new(Mutex::new(state));
    let sink = Arc::clone(&shared);
    frame
        .sink_batches(
            PlanCallback::new(move |batch: DataFrame| {
                let mut state = sink
                    .lock()
                    .map_err(|_| polars_err!(ComputeError: "a batch handler panicked"))?;
                each(&mut state, batch)?;
                // `false`: keep the batches coming.
                Ok(false)
            }),
            in_order,
            None,
        )?
        .collect_with_engine(Engine::Streaming)?;
    let state = Arc::try_unwrap(shared)
        .map_err(|_| polars_err!(ComputeError: "the batch sink outlived its query"))?;
    state
        .into_inner()
        .map_err(|_| polars_err!(ComputeError: "a batch handler panicked"))
}
