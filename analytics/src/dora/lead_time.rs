//! R4: lead time for changes.

use polars::prelude::*;

use super::settings::DoraSettings;

const MINUTE: f64 = 60e6;

/// One row per `(service, sha)` whose first deployment (in `seq` order) lies in the window and
/// is not its service's baseline: `service`, the deployment's `local_day`, `minutes` (null when the sha is not in `changes`).
/// The caller counts samples, drops (`minutes <= 0`) and unknowns from it.
pub(super) fn pairs(
    production: LazyFrame,
    order: LazyFrame,
    changes: LazyFrame,
    settings: &DoraSettings,
) -> LazyFrame {
    // A deployment finished at or after `to` cannot own an in-window sample, and one that comes
    // later than a pair's first deployment never owns the pair: both are safe to skip.
    let shipped = production
        .filter(col("finished_at").lt(lit(settings.end_micros())))
        .select([col("seq"), col("service"), col("changes").alias("sha")])
        .explode(
            cols(["sha"]),
            ExplodeOptions {
                empty_as_null: false,
                keep_nulls: false,
            },
        )
        .filter(col("sha").is_not_null())
        .group_by([col("service"), col("sha")])
        .agg([col("seq").min()]);
    let owners = order
        .filter(
            col("finished_at")
                .gt_eq(lit(settings.start_micros()))
                .and(col("finished_at").lt(lit(settings.end_micros())))
                .and(col("is_baseline").not()),
        )
        .select([col("seq"), col("finished_at")]);
    let authored = changes
        .group_by([col("service"), col("sha")])
        .agg([col("authored_at").min()]);
    shipped
        .join(
            owners,
            [col("seq")],
            [col("seq")],
            JoinArgs::new(JoinType::Inner),
        )
        .join(
            authored,
            [col("service"), col("sha")],
            [col("service"), col("sha")],
            JoinArgs::new(JoinType::Left),
        )
        .select([
            col("service"),
            super::facts::local_day(col("finished_at"), settings).alias("local_day"),
            ((col("finished_at") - col("authored_at")).cast(DataType::Float64) / lit(MINUTE))
                .alias("minutes"),
        ])
}
