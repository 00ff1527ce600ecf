//! The DORA report job: every run reads all deployment events from the store and the
//! service→team map from the catalog, computes the report of `metrics-spec.md` over the 90 days
//! ending at today's midnight, and stores it for `GET /v1/metrics/dora`.

use std::sync::Arc;

use crate::dora::{self, DoraReport, DoraSettings};
use crate::input::{EventRecords, EventTables, ServiceRecord};
use crate::window::ReportWindow;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use paved_core::catalog::{CatalogRepository, Kind};
use paved_core::delivery::DeliveryStore;
use paved_core::ports::Table;
use serde::{Deserialize, Serialize};

/// The job's settings, from the environment.
#[derive(Debug, Clone)]
pub struct DoraJobConfig {
    /// `PAVED_DORA_TIMEZONE`: the IANA zone days and weeks are taken in (default UTC).
    pub timezone: Tz,
}

impl DoraJobConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let timezone = match std::env::var("PAVED_DORA_TIMEZONE") {
            Ok(name) if !name.is_empty() => name.parse().map_err(|_| {
                anyhow::anyhow!("PAVED_DORA_TIMEZONE={name:?} is not an IANA time zone name")
            })?,
            _ => Tz::UTC,
        };
        Ok(Self { timezone })
    }
}

/// What a run reports back (to the scheduler's logs, or a direct invoker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub computed_at: DateTime<Utc>,
    pub from: String,
    pub to: String,
    pub deployments: u64,
    pub teams: usize,
    pub services: usize,
    /// `false` when a run as of a later instant had already stored its results, which stay.
    pub stored: bool,
}

pub struct DoraJob {
    table: Arc<dyn Table>,
    events: DeliveryStore,
    config: DoraJobConfig,
}

impl std::fmt::Debug for DoraJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoraJob").finish_non_exhaustive()
    }
}

impl DoraJob {
    pub fn new(table: Arc<dyn Table>, config: DoraJobConfig) -> Self {
        Self {
            events: DeliveryStore::new(Arc::clone(&table)),
            table,
            config,
        }
    }

    /// Computes and stores the report for the window ending at `now`'s local midnight.
    /// The catalog, read once per run: teams, adoption and scorecards all read it.
    pub async fn load_catalog(&self) -> anyhow::Result<CatalogRepository> {
        Ok(CatalogRepository::load(Arc::clone(&self.table)).await?)
    }

    /// Every stored event, with the catalog's service→team map: the report's input.
    pub async fn load_records(&self, catalog: &CatalogRepository) -> anyhow::Result<EventRecords> {
        let mut records = self.events.load().await?;
        records.services = Some(service_teams(catalog));
        Ok(records)
    }

    pub async fn run(&self, now: DateTime<Utc>) -> anyhow::Result<RunSummary> {
        let catalog = self.load_catalog().await?;
        let records = self.load_records(&catalog).await?;
        let activity = paved_core::delivery::service_activity(&records.deployments, now);
        let adoption = self.adoption(&records, &catalog, now).await?;
        let window = ReportWindow::parse(None, None, Some(self.config.timezone.name()), now)?;
        // polars computes on its own threads; keep the async runtime free meanwhile.
        let report: DoraReport = tokio::task::spawn_blocking(move || {
            let tables = EventTables::from_records(&records)?;
            dora::compute(&tables, &DoraSettings::new(window))
        })
        .await??;
        // A newer report means a newer run stores (or stored) the rest too.
        let stored = self
            .events
            .save_report(&serde_json::to_value(&report)?, now)
            .await?
            && self.events.save_activity(&activity, now).await?
            && self
                .events
                .save_adoption(&serde_json::to_value(&adoption)?, now)
                .await?;
        let summary = RunSummary {
            computed_at: now,
            from: report.window.from.clone(),
            to: report.window.to.clone(),
            deployments: report.org.deployments,
            teams: report.teams.len(),
            services: report.services.len(),
            stored,
        };
        if stored {
            tracing::info!(?summary, "stored the DORA report");
        } else {
            tracing::warn!(
                ?summary,
                "kept the stored DORA report: it was computed as of a later instant"
            );
        }
        Ok(summary)
    }

    /// What the leaders' report's platform section needs besides the DORA report: the catalog,
    /// the services' recent activity and the adoption figures.
    pub async fn platform_inputs(
        &self,
        records: &EventRecords,
        catalog: CatalogRepository,
        now: DateTime<Utc>,
    ) -> anyhow::Result<PlatformInputs> {
        let resources = paved_core::resources::ResourceRepository::new(Arc::clone(&self.table));
        let drift = crate::platform::drift_by_team(&resources, now).await?;
        let drifted_1d = resources
            .drifted_since_before(now - chrono::Duration::days(1))
            .await?;
        Ok(PlatformInputs {
            drift,
            drifted_1d,
            activity: paved_core::delivery::service_activity(&records.deployments, now),
            adoption: self.adoption(records, &catalog, now).await?,
            catalog,
            cards: paved_core::scorecards::ScorecardSet::from_env()?,
        })
    }

    /// The platform adoption figures for the 12 weeks ending now.
    async fn adoption(
        &self,
        records: &EventRecords,
        catalog: &CatalogRepository,
        now: DateTime<Utc>,
    ) -> anyhow::Result<paved_core::adoption::AdoptionReport> {
        use paved_core::adoption::{DeployFacts, RequestFacts, ServiceFacts, compute};
        use paved_core::requests::{RequestRepository, RequestStatus};
        const TEMPLATE_ANNOTATIONS: [&str; 3] = [
            "paved.dev/template",
            "backstage.io/source-template",
            "paved.dev/golden-path",
        ];
        let services: Vec<ServiceFacts> = {
            let index = catalog.read();
            index
                .views_of_kind(Kind::Component)
                .map(|view| {
                    let entity: serde_json::Value =
                        serde_json::from_slice(&view.json).unwrap_or_default();
                    let annotations = entity.pointer("/metadata/annotations");
                    ServiceFacts {
                        name: view.entity_ref.name().to_owned(),
                        team: view
                            .owner
                            .as_ref()
                            .filter(|o| o.kind() == "group")
                            .map(|o| o.name().to_owned()),
                        from_template: TEMPLATE_ANNOTATIONS
                            .iter()
                            .any(|k| annotations.and_then(|a| a.get(*k)).is_some()),
                    }
                })
                .collect()
        };
        let repo = RequestRepository::new(
            Arc::clone(&self.table),
            Arc::new(paved_core::ports::SystemClock),
        );
        let team_of = |owner: &str| {
            paved_core::catalog::EntityRef::parse(
                owner,
                paved_core::catalog::RefDefaults {
                    kind: Some("group"),
                    namespace: "default",
                },
            )
            .ok()
            .map(|r| r.name().to_owned())
        };
        let requests: Vec<RequestFacts> = repo
            .list(|_| true)
            .await?
            .into_iter()
            .map(|r| RequestFacts {
                requester: r.requester.clone(),
                team: team_of(&r.owner),
                created_at: r.created_at,
                succeeded: match r.status {
                    RequestStatus::Ready
                    | RequestStatus::Deprovisioning
                    | RequestStatus::Deleted
                    | RequestStatus::DeleteFailed => Some(true),
                    RequestStatus::Failed => Some(false),
                    _ => None,
                },
                ready_at: r.reached_at(RequestStatus::Ready),
            })
            .collect();
        let deploys: Vec<DeployFacts> = records
            .deployments
            .iter()
            .filter(|d| {
                paved_core::environment::is_production(&d.environment) && d.status == "success"
            })
            .map(|d| DeployFacts {
                service: d.service.clone(),
                at: d.finished_at,
            })
            .collect();
        Ok(compute(&services, &requests, &deploys, now, 12))
    }
}

/// Each catalog Component is a service; its team is the Group that owns it.
fn service_teams(catalog: &CatalogRepository) -> Vec<ServiceRecord> {
    let index = catalog.read();
    index
        .views_of_kind(Kind::Component)
        .filter_map(|view| {
            let owner = view.owner.as_ref()?;
            Some(ServiceRecord {
                service: view.entity_ref.name().to_owned(),
                team: owner.name().to_owned(),
            })
        })
        .collect()
}

/// See [`DoraJob::platform_inputs`].
#[derive(Debug)]
pub struct PlatformInputs {
    catalog: CatalogRepository,
    activity: std::collections::BTreeMap<String, paved_core::delivery::ServiceActivity>,
    adoption: paved_core::adoption::AdoptionReport,
    cards: paved_core::scorecards::ScorecardSet,
    drift: Vec<crate::platform::TeamDrift>,
    drifted_1d: std::collections::HashMap<String, usize>,
}

impl PlatformInputs {
    /// The section, once the DORA report (whose bands the scorecards read) is computed.
    pub fn section(self, report: &DoraReport) -> anyhow::Result<crate::platform::PlatformSection> {
        use paved_core::scorecards::{MetricsSnapshot, distribution, distribution_by_team};
        let report = serde_json::to_value(report)?;
        let metrics = MetricsSnapshot::new(Some(report), self.activity).with_drift(self.drifted_1d);
        let card = self.cards.default_card();
        let index = self.catalog.read();
        Ok(crate::platform::PlatformSection {
            scorecard: card.title.clone(),
            levels: card.levels.clone(),
            org: distribution(card, &index, &metrics, None),
            teams: distribution_by_team(card, &index, &metrics),
            adoption: self.adoption,
            drift: self.drift,
        })
    }
}
