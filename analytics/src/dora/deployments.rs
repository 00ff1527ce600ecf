//! R1 (production deployments) and the per-service order R4–R7 rely on.

use std::hash::BuildHasher;

use polars::prelude::*;

use super::engine::CollectStreaming;
use super::service_numbers::{SERVICE_NUMBER, ServiceNumbers};

use super::settings::{DoraSettings, micros};

pub(super) const FIX_KINDS: [&str; 2] = ["rollback", "hotfix"];

/// R1's rows: successful deployments to a production environment, with `row` (their position
/// in the input, to find their `changes` again) and `kind` lower-cased, null as `normal`.
fn successful_production(deployments: LazyFrame, settings: &DoraSettings) -> LazyFrame {
    let envs: Vec<String> = settings
        .production_envs
        .iter()
        .map(|env| env.to_lowercase())
        .collect();
    deployments.with_row_index("row", None).filter(
        lowercase_is_in(col("status"), vec!["success".to_owned()])
            .and(lowercase_is_in(col("environment"), envs)),
    )
}

/// Whether `value.to_lowercase()` is one of `targets` (lower-case already), for every row
/// (false for null): an ASCII value is compared in place, so no row is copied to be compared.
fn lowercase_is_in(value: Expr, targets: Vec<String>) -> Expr {
    value.map(
        move |column: Column| {
            let matches = |value: &str| {
                if value.is_ascii() {
                    targets
                        .iter()
                        .any(|target| value.eq_ignore_ascii_case(target))
                } else {
                    targets.contains(&value.to_lowercase())
                }
            };
            let found: BooleanChunked = column
                .str()?
                .iter()
                .map(|value| Some(value.is_some_and(matches)))
                .collect();
            Ok(found.into_column())
        },
        |_, field| Ok(Field::new(field.name().clone(), DataType::Boolean)),
    )
}

/// R1: production deployments de-duplicated on `(service, deploy_id)` keeping the latest
/// `finished_at`, in the order R5 uses (all time, `(finished_at, deploy_id)`), numbered by
/// `seq`: `seq`, `row`, `deploy_id`, `service`, `kind`, `commit_sha`, `finished_at`. The
/// `changes` lists stay behind: sorting them would move tens of millions of strings.
pub(super) fn production(
    deployments: LazyFrame,
    settings: &DoraSettings,
) -> PolarsResult<DataFrame> {
    let rows = successful_production(deployments, settings)
        .select([
            col("row"),
            col("deploy_id"),
            col("service"),
            col("kind")
                .str()
                .to_lowercase()
                .fill_null(lit("normal"))
                .alias("kind"),
            col("commit_sha"),
            col("finished_at"),
        ])
        .collect_streaming()?;
    tracing::debug!(rows = rows.height(), "dora: production rows read");
    let repeated = if distinct_pair_hashes(&rows)? == rows.height() {
        0
    } else {
        repeated_pairs(&rows)?
    };
    tracing::debug!(repeated, "dora: production repeats counted");
    let unique = if repeated == 0 {
        rows.lazy()
    } else {
        // The row kept for a repeated (service, deploy_id) is the latest; the later keys only
        // make the choice between exact ties independent of the input's row order.
        rows.lazy()
            .sort(
                ["service", "deploy_id", "finished_at", "kind", "commit_sha"],
                SortMultipleOptions::default().with_nulls_last(false),
            )
            .unique_stable(
                Some(cols(["service", "deploy_id"])),
                UniqueKeepStrategy::Last,
            )
    };
    // Most instants are shared by two or three deployments (whole seconds), so the tie-break
    // on `deploy_id` runs for most rows: two numeric prefixes of it settle nearly all of them
    // before any string is compared.
    unique
        .sort_by_exprs(
            [
                col("finished_at"),
                byte_prefix(col("deploy_id"), 0),
                byte_prefix(col("deploy_id"), 8),
                col("deploy_id"),
                col("service"),
            ],
            SortMultipleOptions::default(),
        )
        .with_row_index("seq", None)
        .collect_streaming()
}

/// Bytes `from..from + 8` of a string as a big-endian `u64`, zero-padded: a smaller prefix
/// means a smaller string (byte order, as polars sorts strings), and equal prefixes say
/// nothing, so the string itself must follow it among the sort keys.
fn byte_prefix(text: Expr, from: usize) -> Expr {
    text.map(
        move |column: Column| {
            let prefixes: UInt64Chunked = column
                .str()?
                .iter()
                .map(|text| {
                    let bytes = text?.as_bytes().get(from..).unwrap_or_default();
                    let mut prefix = [0u8; 8];
                    let len = bytes.len().min(8);
                    prefix[..len].copy_from_slice(&bytes[..len]);
                    Some(u64::from_be_bytes(prefix))
                })
                .collect();
            Ok(prefixes.into_column())
        },
        |_, field| Ok(Field::new(field.name().clone(), DataType::UInt64)),
    )
}

/// How many distinct 64-bit hashes the rows' `(service, deploy_id)` pairs have. Distinct hashes
/// are distinct pairs, so only a run with two equal hashes needs [`repeated_pairs`]' exact
/// count on the strings (about a second at the benchmark's scale).
fn distinct_pair_hashes(rows: &DataFrame) -> PolarsResult<usize> {
    let state = PlRandomState::default();
    let hashes = map_multiple(
        move |columns: &mut [Column]| {
            let hashes: UInt64Chunked = columns[0]
                .str()?
                .iter()
                .zip(columns[1].str()?.iter())
                .map(|pair| Some(state.hash_one(pair)))
                .collect();
            Ok(hashes.into_column())
        },
        [col("service"), col("deploy_id")],
        |_, _| Ok(Field::new("hash".into(), DataType::UInt64)),
    );
    let distinct = rows
        .clone()
        .lazy()
        .select([hashes.alias("hash").n_unique().cast(DataType::UInt64)])
        .collect()?;
    Ok(distinct.column("hash")?.u64()?.get(0).unwrap_or(0) as usize)
}

/// How many `(service, deploy_id)` pairs repeat among the rows.
fn repeated_pairs(rows: &DataFrame) -> PolarsResult<u64> {
    Ok(rows
        .clone()
        .lazy()
        .group_by([col("service"), col("deploy_id")])
        .agg([len().alias("n")])
        .filter(col("n").gt(lit(1)))
        .select([len().alias("repeated")])
        .collect_streaming()?
        .column("repeated")?
        .as_materialized_series()
        .cast(&DataType::UInt64)?
        .u64()?
        .get(0)
        .unwrap_or(0))
}

/// Per service, in order: whether a deployment is the service's first (R4's baseline), whether
/// a rollback or hotfix follows it within the rollback window (R6), when the first later
/// rollback or hotfix finished (R7), and whether it is the last of the service's deployments
/// finished at its instant (R5). The rows come out in no particular order.
pub(super) fn service_order(
    production: LazyFrame,
    settings: &DoraSettings,
    keys: &ServiceNumbers,
) -> LazyFrame {
    let is_fix = col("kind").is_in(
        lit(Series::new("fix".into(), FIX_KINDS)).implode(false),
        false,
    );
    let same_service_next = col("service").shift(lit(-1)).eq(col("service"));
    production
        .select([col("seq"), col("service"), col("kind"), col("finished_at")])
        .with_column(keys.service_number(col("service")))
        // (service, seq) as one integer: sorting it moves no strings.
        .with_column(
            (col(SERVICE_NUMBER) * lit(1u64 << 32) + col("seq").cast(DataType::UInt64))
                .alias("service_seq"),
        )
        .sort(["service_seq"], SortMultipleOptions::default())
        .with_columns([
            col("service")
                .shift(lit(1))
                .neq_missing(col("service"))
                .alias("is_baseline"),
            when(is_fix.clone())
                .then(col("finished_at"))
                .otherwise(lit(NULL).cast(DataType::Int64))
                .alias("fix_at"),
            when(is_fix.clone())
                .then(col("service"))
                .otherwise(lit(NULL).cast(DataType::String))
                .alias("fix_service"),
        ])
        .with_columns([
            same_service_next
                .clone()
                .and(is_fix.shift(lit(-1)))
                .and(
                    (col("finished_at").shift(lit(-1)) - col("finished_at"))
                        .lt_eq(lit(micros(settings.rollback_window))),
                )
                .fill_null(lit(false))
                .alias("followed_by_fix"),
            // R5 step 3: of a service's deployments finished at one instant, the last in seq
            // order is the latest.
            same_service_next
                .clone()
                .and(col("finished_at").shift(lit(-1)).eq(col("finished_at")))
                .fill_null(lit(false))
                .not()
                .alias("latest_at_instant"),
            // The next fix in the service-sorted order, kept only if it is this service's.
            col("fix_at")
                .shift(lit(-1))
                .fill_null_with_strategy(FillNullStrategy::Backward(None))
                .alias("next_fix_at"),
            col("fix_service")
                .shift(lit(-1))
                .fill_null_with_strategy(FillNullStrategy::Backward(None))
                .alias("next_fix_service"),
        ])
        .with_column(
            when(col("next_fix_service").eq(col("service")))
                .then(col("next_fix_at"))
                .otherwise(lit(NULL).cast(DataType::Int64))
                .alias("next_fix_at"),
        )
        .select([
            col("seq"),
            col("service"),
            col(SERVICE_NUMBER),
            col("kind"),
            col("finished_at"),
            col("is_baseline"),
            col("followed_by_fix"),
            col("next_fix_at"),
            col("latest_at_instant"),
        ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluate(values: &[Option<&str>], expr: Expr) -> PolarsResult<Series> {
        let frame = df!("value" => values)?
            .lazy()
            .select([expr.alias("out")])
            .collect()?;
        Ok(frame.column("out")?.as_materialized_series().clone())
    }

    #[test]
    fn lowercase_matching_is_to_lowercase_without_the_copies() -> PolarsResult<()> {
        let values = [
            Some("PROD"),
            Some("Étape"),
            Some("ÉTAPE"),
            Some("staging"),
            None,
            Some("prod "),
        ];
        let targets = vec!["prod".to_owned(), "étape".to_owned()];
        let got: Vec<Option<bool>> = evaluate(&values, lowercase_is_in(col("value"), targets))?
            .bool()?
            .iter()
            .collect();
        let want: Vec<Option<bool>> = values
            .iter()
            .map(|value| {
                Some(value.is_some_and(|v| ["prod", "étape"].contains(&v.to_lowercase().as_str())))
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            got,
            [
                Some(true),
                Some(true),
                Some(true),
                Some(false),
                Some(false),
                Some(false)
            ]
        );
        Ok(())
    }

    #[test]
    fn a_smaller_prefix_is_a_smaller_string() -> PolarsResult<()> {
        let values = [
            "svc-00001-10",
            "svc-00001-9",
            "ab",
            "ab\0",
            "ab\0c",
            "",
            "zzzzzzzzz",
        ];
        let options: Vec<Option<&str>> = values.iter().copied().map(Some).collect();
        let high = evaluate(&options, byte_prefix(col("value"), 0))?;
        let low = evaluate(&options, byte_prefix(col("value"), 8))?;
        let keys: Vec<(u64, u64)> = high
            .u64()?
            .iter()
            .zip(low.u64()?.iter())
            .map(|(a, b)| (a.unwrap_or(0), b.unwrap_or(0)))
            .collect();
        for (i, a) in values.iter().enumerate() {
            for (j, b) in values.iter().enumerate() {
                if keys[i] < keys[j] {
                    assert!(a.as_bytes() < b.as_bytes(), "{a:?} before {b:?}");
                }
            }
        }
        // The ids differ in their first 16 bytes: the prefixes settle them.
        assert_ne!(keys[0], keys[1]);
        // Zero padding: "ab" and "ab\0" tie, and the string itself must follow.
        assert_eq!(keys[2], keys[3]);
        Ok(())
    }
}
