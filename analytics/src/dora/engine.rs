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
