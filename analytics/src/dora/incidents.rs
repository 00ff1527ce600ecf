//! R5: each incident goes to at most one deployment.

use polars::prelude::*;

use super::service_numbers::{SERVICE_NUMBER, ServiceNumbers};
use super::settings::{DoraSettings, micros};

/// Incidents with the `seq` of the deployment they are attributed to (null when unattributed):
/// `incident_id`, `service`, `created_at`, `resolved_at`, `seq`.
/// `order` is [`super::deployments::service_order`]'s frame.
pub(super) fn attribute(
    incidents: LazyFrame,
    production: LazyFrame,
    shipped: LazyFrame,
    order: LazyFrame,
    keys: &ServiceNumbers,
    settings: &DoraSettings,
) -> PolarsResult<LazyFrame> {
    // A repeated incident id keeps one row: a resolved one over an open one, then the latest.
    let incidents = incidents
        .sort(
            ["incident_id", "resolved_at", "created_at"],
            SortMultipleOptions::default().with_nulls_last(false),
        )
        .unique_stable(Some(cols(["incident_id"])), UniqueKeepStrategy::Last);
    let service_matches = col("service")
        .is_null()
        .or(col("service").eq(col("deploy_service")));

    // Step 1: by deploy_id.
    let by_deploy_id = incidents
        .clone()
        .filter(col("deploy_id").is_not_null())
        .select([col("incident_id"), col("service"), col("deploy_id")])
        .join(
            production.clone().select([
                col("deploy_id"),
                col("service").alias("deploy_service"),
                col("seq"),
            ]),
            [col("deploy_id")],
            [col("deploy_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(service_matches.clone())
        .group_by([col("incident_id")])
        .agg([col("seq").min().alias("seq_by_deploy")]);

    // Step 2: by commit sha, in a deployment's commit_sha or its changes.
    let wanted_shas = incidents
        .clone()
        .filter(col("commit_sha").is_not_null())
        .select([col("commit_sha").alias("sha")])
        .unique(None, UniqueKeepStrategy::Any);
    let head_commits = production
        .clone()
        .filter(col("commit_sha").is_not_null())
        .select([col("seq"), col("service"), col("commit_sha").alias("sha")]);
    let containing = concat([head_commits, shipped], UnionArgs::default())?
        .semi_join(wanted_shas, col("sha"), col("sha"))
        .select([
            col("seq"),
            col("service").alias("deploy_service"),
            col("sha"),
        ]);
    let by_commit = incidents
        .clone()
        .filter(col("commit_sha").is_not_null())
        .select([
            col("incident_id"),
            col("service"),
            col("commit_sha").alias("sha"),
        ])
        .join(
            containing,
            [col("sha")],
            [col("sha")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(service_matches)
        .group_by([col("incident_id")])
        .agg([col("seq").min().alias("seq_by_commit")]);

    // Step 3: the service's latest deployment at or before created_at, within the window.
    // Of deployments finished at the same instant only the last in seq order is kept for the
    // as-of join. Sorted by seq, each service's rows are in `finished_at` order, which is all the
    // as-of join by group needs; services are matched on their numbers, not their names.
    let latest = order
        .filter(col("latest_at_instant"))
        .select([
            col(SERVICE_NUMBER),
            col("finished_at").alias("at"),
            col("seq").alias("seq_by_time"),
        ])
        .sort(["seq_by_time"], SortMultipleOptions::default());
    let by_time = incidents
        .clone()
        .filter(col("service").is_not_null())
        .select([
            col("incident_id"),
            keys.service_number(col("service")),
            col("created_at").alias("at"),
        ])
        .sort(["at"], SortMultipleOptions::default())
        .join(
            latest,
            [col("at")],
            [col("at")],
            JoinArgs::new(JoinType::AsOf(Box::new(AsOfOptions {
                strategy: AsofStrategy::Backward,
                tolerance: Some(Scalar::from(micros(settings.attribution_window))),
                tolerance_str: None,
                left_by: Some(vec![SERVICE_NUMBER.into()]),
                right_by: Some(vec![SERVICE_NUMBER.into()]),
                allow_eq: true,
                check_sortedness: false,
            }))),
        )
        .select([col("incident_id"), col("seq_by_time")]);

    let join_on_id = |left: LazyFrame, right: LazyFrame| {
        left.join(
            right,
            [col("incident_id")],
            [col("incident_id")],
            JoinArgs::new(JoinType::Left),
        )
    };
    let incidents = join_on_id(incidents, by_deploy_id);
    let incidents = join_on_id(incidents, by_commit);
    let incidents = join_on_id(incidents, by_time);
    Ok(incidents.select([
        col("incident_id"),
        col("service"),
        col("created_at"),
        col("resolved_at"),
        coalesce(&[
            col("seq_by_deploy"),
            col("seq_by_commit"),
            col("seq_by_time"),
        ])
        .alias("seq"),
    ]))
}
