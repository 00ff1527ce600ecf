//! Reading requests: one, or a filtered page. Callers see the requests of their teams and
//! their own; admins and approvers see all.
//!
//! A page reads the listing index ([`crate::requests::Selector`]): the partition the filters
//! name for an admin or an approver, and for anyone else the merge of one partition per
//! principal that may let them see a request (each of their groups, themselves as an owner,
//! themselves as the requester). Until every request stored before the index is indexed, a
//! page reads every request, as it always did, and starts the backfill.

use crate::ErrorCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{RequestsService, cursor, request_view};
use crate::Error;
use crate::auth::Identity;
use crate::catalog::{EntityRef, OwnerRef, RefDefaults};
use crate::requests::{
    Narrow, ProvisioningRequest, RequestId, RequestStatus, Selector, owner_key, requester_key,
};

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

/// Whether `who` is the principal `reference` names (`kind` when it names none).
pub(super) fn principal_is(who: &Identity, reference: &str, kind: &'static str) -> bool {
    EntityRef::parse(
        reference,
        RefDefaults {
            kind: Some(kind),
            namespace: "default",
        },
    )
    .is_ok_and(|e| who.is(&e))
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
        let keep = |r: &ProvisioningRequest| {
            status.is_none_or(|st| r.status == st)
                && owner.as_ref().is_none_or(|o| owner_key(&r.owner) == *o)
                && requester
                    .as_ref()
                    .is_none_or(|u| requester_key(&r.requester) == *u)
                && listing.template.as_ref().is_none_or(|t| &r.template == t)
                && listing
                    .environment
                    .as_ref()
                    .is_none_or(|e| &r.environment == e)
                && self.may_see(who, r)
        };
        if !self.requests.index_ready().await? {
            self.requests.start_backfill();
            return self.list_every_request(keep, after, limit, &filters).await;
        }
        let selectors = self.selectors(who, status, owner.as_deref(), requester.as_deref());
        let narrow = Narrow {
            template: listing.template.clone(),
            environment: listing.environment.clone(),
        };
        let page = self
            .requests
            .page(
                &selectors,
                &narrow,
                after.as_ref().map(|p| (p.created_at, p.id.as_str())),
                limit,
            )
            .await?;
        // The selectors already say who sees what; the same rules again cost nothing here.
        let items = page.items.into_iter().filter(|r| keep(r)).collect();
        let next_cursor = page
            .next
            .map(|(created_at, id)| cursor::encode(&filters, cursor::Position { created_at, id }));
        Ok(RequestPage {
            items,
            total: page.total,
            next_cursor,
        })
    }

    /// The index partitions whose union is what `who` may see with these filters: one for an
    /// admin or an approver; otherwise one per group of theirs and one for themselves as the
    /// owner (owners never overlap), and one for themselves as the requester (overlapping
    /// each of those at most).
    fn selectors(
        &self,
        who: &Identity,
        status: Option<RequestStatus>,
        owner: Option<&str>,
        requester: Option<&str>,
    ) -> Vec<Selector> {
        let owner = owner.map(owner_key);
        let requester = requester.map(requester_key);
        if self.sees_all(who) {
            return vec![Selector {
                owner,
                requester,
                status,
            }];
        }
        let me = who.user().key();
        let mut owners: Vec<String> = who.groups().iter().map(|g| g.key()).collect();
        owners.push(me.clone());
        owners.sort_unstable();
        owners.dedup();
        let mut selectors: Vec<Selector> = owners
            .into_iter()
            .filter(|o| owner.as_ref().is_none_or(|f| f == o))
            .map(|o| Selector {
                owner: Some(o),
                requester: requester.clone(),
                status,
            })
            .collect();
        if requester.as_ref().is_none_or(|u| *u == me) {
            selectors.push(Selector {
                owner,
                requester: Some(me),
                status,
            });
        }
        selectors
    }

    /// The page as it was read before the index: every request, filtered and sorted here.
    async fn list_every_request(
        &self,
        keep: impl Fn(&ProvisioningRequest) -> bool,
        after: Option<cursor::Position>,
        limit: usize,
        filters: &str,
    ) -> Result<RequestPage, Error> {
        let mut items = self.requests.list(keep).await?;
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
                    filters,
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

    /// Admins and approvers see every request.
    pub(super) fn sees_all(&self, who: &Identity) -> bool {
        self.access.is_admin(who) || principal_is(who, &self.approver_group, "group")
    }

    /// Whether `who` may see (and, for the requester's team, act on) `r`.
    fn may_see(&self, who: &Identity, r: &ProvisioningRequest) -> bool {
        self.sees_all(who)
            || principal_is(who, &r.owner, "group")
            || principal_is(who, &r.requester, "user")
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
