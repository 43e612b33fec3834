//! A small client of the REST gateway for `verify`, `demo` and `eval`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use restoreflow_core::Settings;
use serde_json::Value;

use super::ToolError;

/// Where the gateway is and how to authenticate.
#[derive(Args, Debug, Clone)]
pub struct GatewayArgs {
    /// Gateway base URL [default: http:// + the configured gateway.http_addr].
    #[arg(long, value_name = "URL", alias = "url")]
    pub gateway: Option<String>,
    /// API key (every route but the public ones needs one) [default: $RESTOREFLOW_API_KEY, else the
    /// configured gateway.api_key, else the key `up` keeps in --data-dir].
    #[arg(
        long,
        value_name = "KEY",
        env = "RESTOREFLOW_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Data directory of `restoreflow up`, to read its API key.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
}

/// A connected gateway client.
pub struct Gateway {
    /// Base URL without a trailing slash.
    pub base: String,
    /// The API key, if any.
    pub key: Option<String>,
    http: reqwest::Client,
}

/// An HTTP answer: status and body.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (Null when it is not JSON).
    pub json: Value,
    /// The raw body.
    pub bytes: Vec<u8>,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The error message of a `{"error": {...}}` body, else the status.
    pub fn message(&self) -> String {
        self.json["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {}", self.status))
    }
}

impl Gateway {
    /// From the arguments and settings.
    pub fn new(args: &GatewayArgs, settings: &Settings) -> Result<Self, ToolError> {
        let configured = format!(
            "http://{}",
            settings.gateway.http_addr.replace("0.0.0.0", "127.0.0.1")
        );
        let default = format!(
            "http://{}",
            restoreflow_core::config::GatewaySettings::default().http_addr
        );
        let base = super::endpoint(
            args.gateway.as_deref(),
            &configured,
            &default,
            |u| u.gateway.clone(),
            &args.data_dir,
        )
        .trim_end_matches('/')
        .to_string();
        let key = args
            .api_key
            .clone()
            .or_else(|| {
                settings
                    .gateway
                    .api_key
                    .as_ref()
                    .map(|k| k.expose().to_string())
            })
            .or_else(|| {
                std::fs::read_to_string(args.data_dir.join("api-key"))
                    .ok()
                    .map(|k| k.trim().to_string())
            })
            .filter(|k| !k.is_empty());
        Self::connect(base, key)
    }

    /// A client of the gateway at `base` (`http://host:port`) using `key`.
    pub fn connect(base: impl Into<String>, key: Option<String>) -> Result<Self, ToolError> {
        let base = base.into().trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(900))
            .build()
            .map_err(|e| ToolError::Other(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { base, key, http })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Answer, ToolError> {
        let req = match &self.key {
            Some(k) => req.header("x-api-key", k),
            None => req,
        };
        let resp = req.send().await.map_err(|e| ToolError::Connect {
            service: "gateway",
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ToolError::Other(format!("reading a gateway answer: {e}")))?
            .to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            json,
            bytes,
            headers,
        })
    }

    /// GET a path, the body left to stream; a non-2xx answer is an error
    /// with the gateway's message.
    pub async fn get_stream(&self, path: &str) -> Result<reqwest::Response, ToolError> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(k) = &self.key {
            req = req.header("x-api-key", k);
        }
        let resp = req.send().await.map_err(|e| ToolError::Connect {
            service: "gateway",
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default();
        let answer = Answer {
            status,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            bytes: bytes.to_vec(),
            headers: Default::default(),
        };
        Err(ToolError::Other(format!(
            "GET {path}: {}",
            answer.message()
        )))
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> Result<Answer, ToolError> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// GET a path with query parameters (encoded here).
    pub async fn get_query(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Answer, ToolError> {
        self.send(self.http.get(format!("{}{path}", self.base)).query(query))
            .await
    }

    /// PUT raw bytes to the path made of `segments`, each percent-encoded
    /// (so file names with spaces or `#` reach the gateway intact).
    pub async fn put_bytes(
        &self,
        segments: &[&str],
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Answer, ToolError> {
        let mut url = reqwest::Url::parse(&self.base)
            .map_err(|e| ToolError::Other(format!("bad gateway URL {}: {e}", self.base)))?;
        url.path_segments_mut()
            .map_err(|()| ToolError::Other(format!("bad gateway URL {}", self.base)))?
            .pop_if_empty()
            .extend(segments);
        self.send(
            self.http
                .put(url)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body),
        )
        .await
    }

    /// POST JSON to a path.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Answer, ToolError> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// POST a multipart form.
    pub async fn post_form(
        &self,
        path: &str,
        form: reqwest::multipart::Form,
    ) -> Result<Answer, ToolError> {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .multipart(form),
        )
        .await
    }

    /// GET an absolute URL (another service, e.g. n8n).
    pub async fn get_url(&self, url: &str) -> Result<u16, String> {
        self.http
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    }

    /// A JSON answer with the expected status, else an error with its message.
    pub fn expect(a: Answer, status: u16, what: &str) -> Result<Value, ToolError> {
        if a.status == status {
            Ok(a.json)
        } else {
            Err(ToolError::Other(format!("{what}: {}", a.message())))
        }
    }

    /// Polls `path` until its `status` field is terminal; `tick` sees each answer.
    pub async fn wait_job(
        &self,
        path: &str,
        timeout: Duration,
        mut tick: impl FnMut(&Value),
    ) -> Result<Value, ToolError> {
        let deadline = Instant::now() + timeout;
        loop {
            let a = self.get(path).await?;
            let job = Self::expect(a, 200, path)?;
            tick(&job);
            match job["status"].as_str() {
                Some("completed") => return Ok(job),
                Some(s @ ("failed" | "cancelled")) => {
                    return Err(ToolError::Other(format!(
                        "{path} {s}: {}",
                        job["error"].as_str().unwrap_or("no error recorded")
                    )));
                }
                _ => {}
            }
            if Instant::now() > deadline {
                return Err(ToolError::Other(format!(
                    "{path} did not finish within {} s",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// `s` as one URL path segment (percent-encoding all but `A-Za-z0-9-_.~`).
pub fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
