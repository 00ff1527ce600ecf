//! R4: lead time for changes.

use polars::prelude::*;

use super::settings::DoraSettings;

const MINUTE: f64 = 60e6;

/// One row per `(service, sha)` whose first deployment (in `seq` order) lies in the window and
/// is not its service's baseline: `service`, `team`, the deployment's `local_day`, and `minutes` (null
/// when the sha is not in `changes`). The caller counts samples, drops (`minutes <= 0`) and
/// unknowns from it. `before_end` is how many production deployments finished before the
/// window's end.
pub(super) fn pairs(
    shipped: LazyFrame,
    order: LazyFrame,
    changes: LazyFrame,
    settings: &DoraSettings,
    before_end: u64,
) -> PolarsResult<LazyFrame> {
    // A deployment finished at or after `to` cannot own an in-window sample, and one that comes
    // later than a pair's first deployment never owns the pair: both are safe to skip.
    // `seq` follows `finished_at`, so the deployments before `to` are the first `before_end`.
    let shipped = shipped
        .filter(col("seq").cast(DataType::UInt64).lt(lit(before_end)))
        .select([
            col("service"),
            col("sha"),
            col("seq"),
            lit(NULL).cast(DataType::Int64).alias("authored_at"),
        ]);
    let authored = changes.select([
        col("service"),
        col("sha"),
        lit(NULL).cast(IDX_DTYPE).alias("seq"),
        col("authored_at"),
    ]);
    // One pass over both tables: per (service, sha), its first deployment and its earliest
    // authoring.
    let pairs = concat([shipped, authored], UnionArgs::default())?
        .group_by([col("service"), col("sha")])
        .agg([col("seq").min(), col("authored_at").min()])
        .filter(col("seq").is_not_null());
    let owners = order
        .filter(
            col("finished_at")
                .gt_eq(lit(settings.start_micros()))
                .and(col("finished_at").lt(lit(settings.end_micros())))
                .and(col("is_baseline").not()),
        )
        .select([col("seq"), col("team"), col("finished_at")]);
    Ok(pairs
        .join(
            owners,
            [col("seq")],
            [col("seq")],
            JoinArgs::new(JoinType::Inner),
        )
        .select([
            col("service"),
            col("team"),
            super::facts::local_day(col("finished_at"), settings).alias("local_day"),
            ((col("finished_at") - col("authored_at")).cast(DataType::Float64) / lit(MINUTE))
                .alias("minutes"),
        ]))
}
