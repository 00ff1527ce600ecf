//! The live resources as people see them: list and read their reconciliation status, change
//! how they are managed, and ask for an observation now. Who may see a resource is who may
//! see its request; who may change it is who may deprovision it (its owners and admins).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::RequestsService;
use super::cursor::fingerprint;
use crate::ErrorCode;
use crate::auth::Identity;
use crate::catalog::OwnerRef;
use crate::error::Error;
use crate::messages::WorkerMessage;
use crate::ports::QueueMessage;
use crate::requests::{RequestStatus, owner_key};
use crate::resources::leaks::{Leak, LeakFilter, LeakRemoval, RemoveLeakTask};
use crate::resources::{
    ManagementPolicy, ResourceFilter, ResourceState, SyncState, check_ignore_fields, is_leak_id,
};

/// `GET /v1/resources`'s query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceListing {
    pub owner: Option<String>,
    #[serde(rename = "type")]
    pub resource_type: Option<String>,
    pub environment: Option<String>,
    /// `true`, `false` or `unknown`.
    pub synced: Option<String>,
    /// `true` is `synced=false`.
    pub drifted: Option<bool>,
    /// `true`: the leaks (paved's things with no live request) instead of the live resources.
    pub leaked: Option<bool>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// `PATCH /v1/resources/{id}`'s body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcePatch {
    pub management_policy: Option<ManagementPolicy>,
    pub ignore_fields: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    v: u8,
    f: String,
    after: String,
}

fn bounded(name: &str, value: &str) -> Result<(), Error> {
    let ok = !value.is_empty()
        && value.len() <= 100
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            ErrorCode::InvalidQuery,
            format!("{name} must be 1-100 letters, digits, '-', '_' or '.'"),
        ))
    }
}

impl RequestsService {
    /// The live resources `who` may see that match `listing`, a page at a time (about
    /// `limit` index entries and states read, on both backends).
    pub async fn resources(
        &self,
        who: &Identity,
        listing: &ResourceListing,
    ) -> Result<Value, Error> {
        let query = |m: String| Error::bad_request(ErrorCode::InvalidQuery, m);
        let owner = listing
            .owner
            .as_deref()
            .map(|o| OwnerRef::parse(o).map(|o| owner_key(&o.to_string())))
            .transpose()
            .map_err(query)?;
        if let Some(t) = &listing.resource_type {
            bounded("type", t)?;
        }
        if let Some(e) = &listing.environment {
            bounded("environment", e)?;
        }
        if listing.leaked == Some(true) {
            if listing.synced.is_some() || listing.drifted.is_some() {
                return Err(query(
                    "synced and drifted are about live resources; a leak has neither".into(),
                ));
            }
            return self.leak_listing(who, listing, owner).await;
        }
        let state = match (listing.synced.as_deref(), listing.drifted) {
            (Some(_), Some(_)) => {
                return Err(query("give synced or drifted, not both".into()));
            }
            (Some(s), None) => Some(SyncState::parse(s)?),
            (None, Some(true)) => Some(SyncState::Drifted),
            (None, Some(false)) => Some(SyncState::Synced),
            (None, None) => None,
        };
        let limit = listing.limit.unwrap_or(100).clamp(1, 500);
        let filter = ResourceFilter {
            owner,
            resource_type: listing.resource_type.clone(),
            environment: listing.environment.clone(),
            state,
        };
        let state_name = state.map(SyncState::as_str);
        let filters = fingerprint(&[
            filter.owner.as_deref(),
            filter.resource_type.as_deref(),
            filter.environment.as_deref(),
            state_name,
        ]);
        let after = listing
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, &filters))
            .transpose()?;
        let now = self.requests.now();
        // A caller who sees only some resources reads on (a few pages at most) until the page
        // is full, so their first page is not empty on a large platform.
        let mut items: Vec<Value> = Vec::new();
        let mut cursor = after;
        let mut next = None;
        for _ in 0..MAX_PAGES_READ {
            let page = self
                .reconciler
                .resources()
                .page(&filter, cursor.as_deref(), limit - items.len())
                .await?;
            items.extend(
                page.items
                    .iter()
                    .filter(|s| self.may_see_resource(who, s))
                    // A stale resource reads Synced=Unknown; the synced filter goes by that.
                    .filter(|s| state != Some(SyncState::Synced) || !s.is_stale(now))
                    .map(|s| s.view(now)),
            );
            next = page.next;
            if items.len() >= limit || next.is_none() {
                break;
            }
            cursor.clone_from(&next);
        }
        let next = next.map(|after| encode_cursor(&filters, after));
        Ok(json!({"items": items, "nextCursor": next}))
    }

    /// `GET /v1/resources?leaked=true`: the leaks `who` may see (admins and approvers all of
    /// them, a team those its own requests left), a page at a time.
    async fn leak_listing(
        &self,
        who: &Identity,
        listing: &ResourceListing,
        owner: Option<String>,
    ) -> Result<Value, Error> {
        let limit = listing.limit.unwrap_or(100).clamp(1, 500);
        let filter = LeakFilter {
            owner,
            resource_type: listing.resource_type.clone(),
            environment: listing.environment.clone(),
        };
        let filters = fingerprint(&[
            Some("leaked"),
            filter.owner.as_deref(),
            filter.resource_type.as_deref(),
            filter.environment.as_deref(),
        ]);
        let mut cursor = listing
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, &filters))
            .transpose()?;
        let mut items: Vec<Value> = Vec::new();
        let mut next = None;
        for _ in 0..MAX_PAGES_READ {
            let (leaks, last) = self
                .reconciler
                .leaks()
                .page(&filter, cursor.as_deref(), limit - items.len())
                .await?;
            items.extend(
                leaks
                    .iter()
                    .filter(|l| self.may_see_leak(who, l))
                    .map(Leak::view),
            );
            next = last;
            if items.len() >= limit || next.is_none() {
                break;
            }
            cursor.clone_from(&next);
        }
        Ok(json!({"items": items, "nextCursor": next.map(|after| encode_cursor(&filters, after))}))
    }

    fn may_see_leak(&self, who: &Identity, leak: &Leak) -> bool {
        self.sees_all(who)
            || leak
                .owner
                .as_deref()
                .is_some_and(|o| super::read::principal_is(who, o, "group"))
    }

    /// A leak `who` may see; others are not found (as requests are).
    async fn visible_leak(&self, who: &Identity, id: &str) -> Result<Leak, Error> {
        match self.reconciler.leaks().get(id).await? {
            Some(leak) if self.may_see_leak(who, &leak) => Ok(leak),
            _ => Err(Error::NotFound(format!("leak {id}"))),
        }
    }

    /// A leak an admin may act on: one whose marker names a request of this platform that
    /// no longer holds its name.
    async fn actionable_leak(
        &self,
        who: &Identity,
        id: &str,
    ) -> Result<(Leak, crate::requests::ProvisioningRequest), Error> {
        let leak = self.visible_leak(who, id).await?;
        if !self.access.is_admin(who) {
            return Err(Error::Forbidden(
                "only platform admins may adopt or delete a leak".into(),
            ));
        }
        let not_actionable = || Error::Invalid {
            code: ErrorCode::LeakNotActionable,
            message: leak.message(),
            violations: Vec::new(),
        };
        let Some(request_id) = leak.found.request_id.as_deref() else {
            return Err(not_actionable());
        };
        let request = match self.requests.get(request_id).await {
            Ok(r) => r,
            Err(Error::NotFound(_)) => return Err(not_actionable()),
            Err(e) => return Err(e),
        };
        if !request.status.releases_name() {
            return Err(Error::Invalid {
                code: ErrorCode::InvalidTransition,
                message: format!(
                    "request {} is {:?}: what it made is live, not a leak (the next scan forgets this one)",
                    request.id, request.status
                ),
                violations: Vec::new(),
            });
        }
        Ok((leak, request))
    }

    /// `POST /v1/resources/{leak id}/adopt` (admins): the leak's request is READY again, holds
    /// its name again, and is reconciled from now on (observed at once: under `enforce` what
    /// is missing of it is made again). Refused when another live request holds the name.
    pub async fn adopt_leak(&self, who: &Identity, id: &str) -> Result<Value, Error> {
        let (leak, request) = self.actionable_leak(who, id).await?;
        let by = who.user().to_string();
        let request = self
            .requests
            .adopt(
                &request.id,
                &format!(
                    "{by} adopted the {} {} it left",
                    leak.found.kind, leak.found.name
                ),
            )
            .await?;
        self.reconciler.track(&request).await?;
        let state = self
            .reconciler
            .resources()
            .get(&request.id)
            .await?
            .ok_or_else(|| Error::Internal(format!("resource {} vanished", request.id)))?;
        self.reconciler.request_observation(&state).await?;
        // Its other leaks (a database's role, say) are live again too.
        self.reconciler
            .leaks()
            .forget_request(&leak.resource_type, &request.id)
            .await?;
        tracing::info!(leak_id = %leak.id, request_id = %request.id, user = %by, "leak adopted");
        Ok(state.view(self.requests.now()))
    }

    /// `DELETE /v1/resources/{leak id}` (admins): queues the deletion; the worker removes the
    /// thing through its driver while its marker still names the leak's request, and the
    /// leak is gone from the listing once it is.
    pub async fn delete_leak(&self, who: &Identity, id: &str) -> Result<Value, Error> {
        let (mut leak, _) = self.actionable_leak(who, id).await?;
        let by = who.user().to_string();
        leak.removal = Some(LeakRemoval {
            requested_by: by.clone(),
            requested_at: self.requests.now(),
            error: None,
        });
        self.reconciler.leaks().put(&leak).await?;
        let task = RemoveLeakTask {
            leak_id: leak.id.clone(),
            by: by.clone(),
        };
        self.queue
            .send(
                &self.task_queue,
                QueueMessage::new(WorkerMessage::RemoveLeak(task).to_json()),
            )
            .await?;
        tracing::info!(leak_id = %leak.id, user = %by, "leak deletion queued");
        Ok(leak.view())
    }

    fn may_see_resource(&self, who: &Identity, s: &ResourceState) -> bool {
        self.sees_all(who) || super::read::principal_is(who, &s.owner, "group")
    }

    /// A live resource's state, tracking it now if it was READY before the loop existed.
    async fn resource_state(&self, who: &Identity, id: &str) -> Result<ResourceState, Error> {
        let request = self.visible(who, id).await?;
        if let Some(state) = self.reconciler.resources().get(&request.id).await? {
            return Ok(state);
        }
        if request.status == RequestStatus::Ready {
            self.reconciler.track(&request).await?;
            if let Some(state) = self.reconciler.resources().get(&request.id).await? {
                return Ok(state);
            }
        }
        Err(Error::Invalid {
            code: ErrorCode::NotLive,
            message: format!(
                "request {} is {:?}: only a READY request's resource is reconciled",
                request.id, request.status
            ),
            violations: Vec::new(),
        })
    }

    /// `GET /v1/resources/{id}`: status, conditions, drift and history.
    pub async fn resource(&self, who: &Identity, id: &str) -> Result<Value, Error> {
        if is_leak_id(id) {
            return Ok(self.visible_leak(who, id).await?.view());
        }
        let state = self.resource_state(who, id).await?;
        Ok(state.view(self.requests.now()))
    }

    /// `PATCH /v1/resources/{id}`: the management policy and the ignored fields (owners and
    /// admins). The next observation applies them; nothing is repaired by the change itself.
    pub async fn patch_resource(
        &self,
        who: &Identity,
        id: &str,
        patch: &ResourcePatch,
    ) -> Result<Value, Error> {
        if let Some(fields) = &patch.ignore_fields {
            check_ignore_fields(fields).map_err(|m| Error::Invalid {
                code: ErrorCode::InvalidResourcePatch,
                message: m,
                violations: Vec::new(),
            })?;
        }
        let request = self.visible(who, id).await?;
        self.check_owner(who, &request)?;
        let by = who.user().to_string();
        let mut attempt = 0;
        loop {
            let state = self.resource_state(who, id).await?;
            let mut next = state.clone();
            if let Some(p) = patch.management_policy {
                next.management_policy = p;
            }
            if let Some(f) = &patch.ignore_fields {
                next.ignore_fields = f.clone();
            }
            if next == state {
                return Ok(state.view(self.requests.now()));
            }
            let now = self.requests.now();
            next.record(
                now,
                "policy_changed",
                format!(
                    "{by} set managementPolicy {:?} and ignoreFields [{}]",
                    next.management_policy,
                    next.ignore_fields.join(", ")
                ),
                Vec::new(),
            );
            // Drift on a path now ignored is no longer drift.
            next.drift
                .retain(|d| !crate::resources::is_ignored(&d.path, &next.ignore_fields));
            match self.reconciler.resources().save(&state, &mut next).await {
                Ok(()) => return Ok(next.view(now)),
                Err(Error::Conflict(_)) if attempt < 5 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// `POST /v1/resources/{id}/reconcile`: observe now (and repair under `enforce`); the
    /// result appears in the status.
    pub async fn reconcile_resource(&self, who: &Identity, id: &str) -> Result<Value, Error> {
        let request = self.visible(who, id).await?;
        self.check_owner(who, &request)?;
        let state = self.resource_state(who, id).await?;
        self.reconciler.request_observation(&state).await?;
        tracing::info!(request_id = %state.id, user = %who.user(), "observation requested");
        Ok(state.view(self.requests.now()))
    }
}

/// The most listing pages one call reads for a caller who sees only some resources.
const MAX_PAGES_READ: usize = 10;

fn encode_cursor(filters: &str, after: String) -> String {
    URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&Cursor {
            v: 1,
            f: filters.to_owned(),
            after,
        })
        .unwrap_or_default(),
    )
}

fn decode_cursor(cursor: &str, filters: &str) -> Result<String, Error> {
    let bad = || {
        Error::bad_request(
            ErrorCode::InvalidCursor,
            "the cursor is not one this listing issued; start again without it",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if c.v != 1 || c.f != filters || c.after.len() > 400 {
        return Err(bad());
    }
    Ok(c.after)
}
