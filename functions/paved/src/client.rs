//! The CLI's HTTP client for a running paved.

use anyhow::{Context, Result, bail};
use serde_json::Value;

#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(base: &str, token: String) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    async fn answer(response: reqwest::Response) -> Result<Value> {
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = body
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or("no detail");
            let mut message = format!("{status}: {detail}");
            for doc in body
                .get("documents")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .take(20)
            {
                for err in doc
                    .get("errors")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    message.push_str(&format!(
                        "\n  document {} {}: {} {}",
                        doc["document"],
                        doc.get("entityRef").and_then(Value::as_str).unwrap_or(""),
                        err.get("field").and_then(Value::as_str).unwrap_or(""),
                        err.get("message").and_then(Value::as_str).unwrap_or("")
                    ));
                }
            }
            bail!(message);
        }
        Ok(body)
    }

    pub async fn import(&self, yaml: String) -> Result<Value> {
        let response = self
            .http
            .post(format!("{}/v1/entities/import", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/yaml")
            .body(yaml)
            .send()
            .await
            .with_context(|| format!("calling {}", self.base))?;
        Self::answer(response).await
    }

    /// `base` with `segments` appended, each percent-encoded (an id cannot add a path or a
    /// query), and `query`.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&self.base)
            .with_context(|| format!("{} is not a URL", self.base))?;
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("{} cannot take a path", self.base))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("calling {}", self.base))?;
        Self::answer(response).await
    }

    /// `GET /v1/resources` with `query` (owner, type, environment, synced, drifted, limit,
    /// cursor): one page, `{items, nextCursor}`.
    pub async fn resources(&self, query: &[(&str, String)]) -> Result<Value> {
        let url = self.url(&["v1", "resources"], query)?;
        self.send(self.http.get(url)).await
    }

    /// `GET /v1/resources/{id}`
    pub async fn resource(&self, id: &str) -> Result<Value> {
        let url = self.url(&["v1", "resources", id], &[])?;
        self.send(self.http.get(url)).await
    }

    /// `PATCH /v1/resources/{id}` with `{managementPolicy?, ignoreFields?}`.
    pub async fn patch_resource(&self, id: &str, patch: &Value) -> Result<Value> {
        let url = self.url(&["v1", "resources", id], &[])?;
        self.send(self.http.patch(url).json(patch)).await
    }

    /// `POST /v1/resources/{id}/reconcile` (202: queued; the status as it was).
    pub async fn reconcile(&self, id: &str) -> Result<Value> {
        let url = self.url(&["v1", "resources", id, "reconcile"], &[])?;
        self.send(self.http.post(url)).await
    }

    /// `POST /v1/resources/{leak id}/adopt` (admins).
    pub async fn adopt_leak(&self, id: &str) -> Result<Value> {
        let url = self.url(&["v1", "resources", id, "adopt"], &[])?;
        self.send(self.http.post(url)).await
    }

    /// `DELETE /v1/resources/{id}`: deprovisions a request's resource, or (admins) deletes a
    /// leak.
    pub async fn delete_resource(&self, id: &str) -> Result<Value> {
        let url = self.url(&["v1", "resources", id], &[])?;
        self.send(self.http.delete(url)).await
    }

    pub async fn get(&self, kind: &str, namespace: &str, name: &str) -> Result<Value> {
        let response = self
            .http
            .get(format!(
                "{}/api/catalog/entities/by-name/{kind}/{namespace}/{name}",
                self.base
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("calling {}", self.base))?;
        Self::answer(response).await
    }
}
