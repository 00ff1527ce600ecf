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
