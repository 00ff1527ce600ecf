//! Reading requests: one, or a filtered page. Callers see the requests of their teams and
//! their own; admins and approvers see all.

use crate::ErrorCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{RequestsService, cursor, request_view};
use crate::Error;
use crate::auth::Identity;
use crate::catalog::{EntityRef, OwnerRef, RefDefaults};
use crate::requests::{ProvisioningRequest, RequestId, RequestStatus};

/// The filters of a request listing, as a caller writes them (`GET /v1/requests`' query).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestListing {
    pub status: Option<String>,
    /// An owner ref (`team-a` or `group:default/team-a`).
    pub owner: Option<String>,
    pub template: Option<String>,
    pub environment: Option<String>,
    /// A user ref.
    pub requester: Option<String>,
    /// 1-1000, default 100.
    pub limit: Option<usize>,
    /// `nextCursor` of the previous page, with the same filters.
    pub cursor: Option<String>,
}

/// One page of requests, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestPage {
    pub items: Vec<ProvisioningRequest>,
    /// How many requests match the filters in all.
    pub total: usize,
    pub next_cursor: Option<String>,
}

impl RequestPage {
    /// `{items, total, nextCursor}` with each request as [`request_view`] shows it.
    pub fn to_json(&self) -> Value {
        let items: Vec<Value> = self.items.iter().map(request_view).collect();
        json!({"items": items, "total": self.total, "nextCursor": self.next_cursor})
    }
}

const STATUSES: &str = "SUBMITTED, WAITING_FOR_APPROVAL, QUEUED, PROVISIONING, READY, FAILED, REJECTED, CANCELLED, DEPROVISIONING, DELETED, DELETE_FAILED";

impl RequestsService {
    /// One request, if `who` may see it; otherwise (or for an id paved never issues) 404, so
    /// whether a request exists is not the caller's business.
    pub async fn get(&self, who: &Identity, id: &str) -> Result<ProvisioningRequest, Error> {
        self.visible(who, id).await
    }

    /// The requests `who` may see that match `listing`, newest first, a page at a time.
    pub async fn list(
        &self,
        who: &Identity,
        listing: &RequestListing,
    ) -> Result<RequestPage, Error> {
        let query = |m: String| Error::bad_request(ErrorCode::InvalidQuery, m);
        let status = listing
            .status
            .as_deref()
            .map(|st| {
                serde_json::from_value::<RequestStatus>(Value::String(st.to_ascii_uppercase()))
            })
            .transpose()
            .map_err(|_| query(format!("status must be one of {STATUSES}")))?;
        let owner = listing
            .owner
            .as_deref()
            .map(|o| OwnerRef::parse(o).map(|o| o.to_string()))
            .transpose()
            .map_err(query)?;
        let requester = listing
            .requester
            .as_deref()
            .map(|x| {
                EntityRef::parse(
                    x,
                    RefDefaults {
                        kind: Some("user"),
                        namespace: "default",
                    },
                )
                .map(|e| e.canonical().to_string())
            })
            .transpose()
            .map_err(query)?;
        let limit = listing.limit.unwrap_or(100).clamp(1, 1000);
        let status_name = status.map(|st| format!("{st:?}"));
        let filters = cursor::fingerprint(&[
            status_name.as_deref(),
            owner.as_deref(),
            requester.as_deref(),
            listing.template.as_deref(),
            listing.environment.as_deref(),
        ]);
        let after = listing
            .cursor
            .as_deref()
            .map(|c| cursor::decode(c, &filters))
            .transpose()?;
        let mut items = self
            .requests
            .list(|r| {
                status.is_none_or(|st| r.status == st)
                    && owner
                        .as_ref()
                        .is_none_or(|o| r.owner.eq_ignore_ascii_case(o))
                    && requester
                        .as_ref()
                        .is_none_or(|u| r.requester.eq_ignore_ascii_case(u))
                    && listing.template.as_ref().is_none_or(|t| &r.template == t)
                    && listing
                        .environment
                        .as_ref()
                        .is_none_or(|e| &r.environment == e)
                    && self.may_see(who, r)
            })
            .await?;
        let total = items.len();
        // Newest first; the id breaks ties, so the order is total and a cursor is exact.
        items.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let start = after.map_or(0, |p| {
            items.partition_point(|r| (r.created_at, &r.id) >= (p.created_at, &p.id))
        });
        let end = (start + limit).min(items.len());
        let start = start.min(end);
        let next_cursor = (end < items.len())
            .then(|| items[..end].last())
            .flatten()
            .map(|last| {
                cursor::encode(
                    &filters,
                    cursor::Position {
                        created_at: last.created_at,
                        id: last.id.clone(),
                    },
                )
            });
        items.truncate(end);
        items.drain(..start);
        Ok(RequestPage {
            items,
            total,
            next_cursor,
        })
    }

    /// Whether `who` may see (and, for the requester's team, act on) `r`.
    fn may_see(&self, who: &Identity, r: &ProvisioningRequest) -> bool {
        let is = |reference: &str, kind: &'static str| {
            EntityRef::parse(
                reference,
                RefDefaults {
                    kind: Some(kind),
                    namespace: "default",
                },
            )
            .is_ok_and(|e| who.is(&e))
        };
        self.access.is_admin(who)
            || is(&self.approver_group, "group")
            || is(&r.owner, "group")
            || is(&r.requester, "user")
    }

    /// The request `id` if `who` may see it; 404 otherwise.
    pub(super) async fn visible(
        &self,
        who: &Identity,
        id: &str,
    ) -> Result<ProvisioningRequest, Error> {
        let Some(id) = RequestId::parse(id) else {
            return Err(Error::NotFound(format!("request {id}")));
        };
        let r = self.requests.get(id.as_str()).await?;
        if self.may_see(who, &r) {
            Ok(r)
        } else {
            Err(Error::NotFound(format!("request {id}")))
        }
    }
}
