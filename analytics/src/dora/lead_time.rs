//! R4: lead time for changes.

use polars::prelude::*;

use super::engine::CollectStreaming;
use super::pair_keys::{KEY, MIDDLE, PairKeys, SERVICE_NUMBER, TAIL};
use super::settings::DoraSettings;

const MINUTE: f64 = 60e6;

/// The shipped pairs R4 reads: `seq`, `service`, `sha`, one row per sha of a production
/// deployment's `changes`.
pub(super) struct Shipped<'a> {
    pub frame: DataFrame,
    /// Derives `frame` again, for the rare run whose pair keys collide: the strings are not
    /// kept in memory while the keys are grouped.
    pub again: &'a dyn Fn() -> PolarsResult<DataFrame>,
}

/// One row per `(service, sha)` whose first deployment (in `seq` order) lies in the window and
/// is not its service's baseline: the service's number, `team`, the deployment's `local_day`, and
/// `minutes` (null when the sha is not in `changes`). The caller counts samples, drops
/// (`minutes <= 0`) and unknowns from it. `before_end` is how many production deployments
/// finished before the window's end.
pub(super) fn pairs(
    shipped: Shipped<'_>,
    order: LazyFrame,
    changes: LazyFrame,
    settings: &DoraSettings,
    before_end: u64,
    keys: &PairKeys,
) -> PolarsResult<LazyFrame> {
    let firsts = first_deployments(shipped, changes, keys, before_end)?;
    let owners = order
        .filter(
            col("finished_at")
                .gt_eq(lit(settings.start_micros()))
                .and(col("finished_at").lt(lit(settings.end_micros())))
                .and(col("is_baseline").not()),
        )
        // The local day once per deployment, not once per sample.
        .select([
            col("seq"),
            col("service"),
            col(SERVICE_NUMBER),
            col("team"),
            col("finished_at"),
            super::facts::local_day(col("finished_at"), settings).alias("local_day"),
        ]);
    Ok(firsts
        .lazy()
        .join(
            owners,
            [col("seq")],
            [col("seq")],
            JoinArgs::new(JoinType::Inner),
        )
        .select([
            col(SERVICE_NUMBER),
            col("team"),
            col("local_day"),
            ((col("finished_at") - col("authored_at")).cast(DataType::Float64) / lit(MINUTE))
                .alias("minutes"),
        ]))
}

/// A deployment finished at or after `to` cannot own an in-window sample, and one that comes
/// later than a pair's first deployment never owns the pair: both are safe to skip. `seq`
/// follows `finished_at`, so the deployments before `to` are the first `before_end`.
fn before_end(shipped: DataFrame, before_end: u64) -> LazyFrame {
    shipped
        .lazy()
        .filter(col("seq").cast(DataType::UInt64).lt(lit(before_end)))
}

/// Per shipped `(service, sha)`: the `seq` of its first deployment and its earliest
/// `authored_at` (null when the sha is not in `changes`). Canonical shas are grouped on their
/// [`PairKeys`]; the others, and every pair again if two keys collide, on the strings.
fn first_deployments(
    shipped: Shipped<'_>,
    changes: LazyFrame,
    keys: &PairKeys,
    end: u64,
) -> PolarsResult<DataFrame> {
    let started = std::time::Instant::now();
    let lap = |stage: &str| {
        let elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(stage, elapsed_ms, "dora");
    };
    let keyed = before_end(shipped.frame, end)
        .with_column(keys.key(col("service"), col("sha")))
        .with_columns([keys.middle(col("sha")), keys.tail(col("sha"))])
        .collect_streaming()?;
    // A sha that is not canonical only equals another that is not.
    let odd = if keyed.column(KEY)?.null_count() > 0 {
        Some(
            keyed
                .clone()
                .lazy()
                .filter(col(KEY).is_null())
                .select([col("service"), col("sha"), col("seq")])
                .collect()?,
        )
    } else {
        None
    };
    // The shipped strings are dropped here: the keys carry every bit of them.
    let keyed = keyed
        .lazy()
        .filter(col(KEY).is_not_null())
        .select([col(KEY), col(MIDDLE), col(TAIL), col("seq")])
        .collect()?;
    lap("r4 keys");
    let authored = changes
        .clone()
        .with_column(keys.key(col("service"), col("sha")))
        .filter(col(KEY).is_not_null())
        .with_columns([keys.middle(col("sha")), keys.tail(col("sha"))]);
    let by_key = concat(
        [
            keyed.lazy().select([
                col(KEY),
                col(MIDDLE),
                col(TAIL),
                col("seq"),
                lit(NULL).cast(DataType::Int64).alias("authored_at"),
            ]),
            authored.select([
                col(KEY),
                col(MIDDLE),
                col(TAIL),
                lit(NULL).cast(IDX_DTYPE).alias("seq"),
                col("authored_at"),
            ]),
        ],
        UnionArgs::default(),
    )?
    .group_by([col(KEY)])
    // Plain minima and maxima: the streaming engine runs these in parallel, where a compound
    // aggregation would move the group-by to the in-memory engine.
    .agg([
        col("seq").min(),
        col("authored_at").min(),
        col(MIDDLE).min().alias("middle_min"),
        col(MIDDLE).max().alias("middle_max"),
        col(TAIL).min().alias("tail_min"),
        col(TAIL).max().alias("tail_max"),
    ])
    .filter(col("seq").is_not_null())
    .collect_streaming()?;
    lap("r4 grouped");
    // Groups whose middles or tails differ: the keys that stand for two shas.
    let one_value = |min: &str, max: &str| -> PolarsResult<BooleanChunked> {
        Ok(by_key.column(min)?.u64()?.equal(by_key.column(max)?.u64()?))
    };
    let one_sha = one_value("middle_min", "middle_max")? & one_value("tail_min", "tail_max")?;
    let collisions = one_sha.len() - one_sha.sum().unwrap_or(0) as usize;
    if collisions > 0 {
        tracing::info!(
            collisions,
            "shas share a pair key's leading bits: R4 groups on the strings"
        );
        drop(by_key);
        return by_strings(before_end((shipped.again)()?, end), changes);
    }
    let firsts = by_key.select(["seq", "authored_at"])?;
    let Some(odd) = odd else {
        return Ok(firsts);
    };
    let odd = odd.lazy();
    let odd_changes = changes.semi_join(odd.clone().select([col("sha")]), col("sha"), col("sha"));
    let odd_firsts = by_strings(odd, odd_changes)?;
    concat([firsts.lazy(), odd_firsts.lazy()], UnionArgs::default())?.collect_streaming()
}

/// [`first_deployments`] on the `(service, sha)` strings.
fn by_strings(shipped: LazyFrame, changes: LazyFrame) -> PolarsResult<DataFrame> {
    let shipped = shipped.select([
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
    concat([shipped, authored], UnionArgs::default())?
        .group_by([col("service"), col("sha")])
        .agg([col("seq").min(), col("authored_at").min()])
        .filter(col("seq").is_not_null())
        .select([col("seq"), col("authored_at")])
        .collect_streaming()
}
