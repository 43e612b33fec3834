//! `restoreflow verify`: checks a running deployment end to end and prints a
//! pass/fail table (exit 0 only when every check passes).

use std::time::Instant;

use clap::Args;
use restoreflow_core::Settings;
use serde_json::{Value, json};

use super::rest::{Gateway, GatewayArgs};
use super::{ToolError, print_json, table};

/// The product's buckets.
const BUCKETS: [&str; 5] = [
    "training-data",
    "models",
    "training-outputs",
    "synthetic-data",
    "evaluation",
];

/// `restoreflow verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// n8n base URL to check too [env RESTOREFLOW_N8N_URL; skipped when unset].
    #[arg(long, value_name = "URL", env = "RESTOREFLOW_N8N_URL")]
    n8n: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One row of the table.
struct Check {
    name: String,
    ok: Option<bool>,
    millis: u128,
    detail: String,
}

/// Runs every check; `Ok(true)` when all passed.
pub async fn run_verify(args: VerifyArgs, settings: &Settings) -> Result<bool, ToolError> {
    let gw = Gateway::new(&args.gateway, settings)?;
    let mut checks = Vec::new();
    // Gateway health covers the database, bus, storage and each service's gRPC health.
    let started = Instant::now();
    match gw.get("/health").await {
        Ok(a) => {
            checks.push(Check {
                name: "gateway".into(),
                ok: Some(a.status == 200 || a.status == 503),
                millis: started.elapsed().as_millis(),
                detail: format!("{} /health answered {}", gw.base, a.status),
            });
            if let Some(map) = a.json["checks"].as_object() {
                for (name, c) in map {
                    let ok = c["ok"].as_bool().unwrap_or(false);
                    checks.push(Check {
                        name: name.clone(),
                        ok: Some(ok),
                        millis: c["latency_ms"].as_f64().unwrap_or(0.0).round() as u128,
                        detail: match (c["backend"].as_str(), c["error"].as_str()) {
                            (Some(b), Some(e)) => format!("{b}: {e}"),
                            (Some(b), None) => b.to_string(),
                            (None, Some(e)) => e.to_string(),
                            (None, None) => String::new(),
                        },
                    });
                }
            } else {
                checks.push(Check {
                    name: "health checks".into(),
                    ok: Some(false),
                    millis: 0,
                    detail: "the /health answer lists no checks".into(),
                });
            }
        }
        Err(e) => checks.push(Check {
            name: "gateway".into(),
            ok: Some(false),
            millis: started.elapsed().as_millis(),
            detail: e.to_string(),
        }),
    }
    let reachable = checks.first().is_some_and(|c| c.ok == Some(true));
    if reachable {
        for bucket in BUCKETS {
            let t = Instant::now();
            let a = gw.get(&format!("/files/{bucket}?page_size=1")).await?;
            checks.push(Check {
                name: format!("bucket {bucket}"),
                ok: Some(a.status == 200),
                millis: t.elapsed().as_millis(),
                detail: if a.status == 200 {
                    "readable".into()
                } else {
                    a.message()
                },
            });
        }
        // A cancel of a job that cannot exist: 404 means the key was accepted.
        let t = Instant::now();
        let (ok, detail) = match &gw.key {
            None => (false, "no API key (give --api-key)".to_string()),
            Some(_) => {
                let a = gw
                    .post(
                        "/jobs/00000000-0000-0000-0000-000000000000/cancel",
                        &json!({}),
                    )
                    .await?;
                match a.status {
                    404 => (true, "accepted for mutating routes".into()),
                    401 => (false, "refused by the gateway".into()),
                    403 => (
                        false,
                        "a read-only key: mutating routes need an admin key".into(),
                    ),
                    s => (false, format!("unexpected HTTP {s}: {}", a.message())),
                }
            }
        };
        checks.push(Check {
            name: "api key".into(),
            ok: Some(ok),
            millis: t.elapsed().as_millis(),
            detail,
        });
        let t = Instant::now();
        let a = gw.get("/openapi.json").await?;
        let paths = a.json["paths"].as_object().map_or(0, |p| p.len());
        checks.push(Check {
            name: "openapi".into(),
            ok: Some(a.status == 200 && paths > 0),
            millis: t.elapsed().as_millis(),
            detail: format!("{paths} paths"),
        });
    }
    match &args.n8n {
        Some(url) => {
            let t = Instant::now();
            let url = format!("{}/healthz", url.trim_end_matches('/'));
            let (ok, detail) = match gw.get_url(&url).await {
                Ok(200) => (true, url),
                Ok(s) => (false, format!("{url} answered {s}")),
                Err(e) => (false, format!("{url}: {e}")),
            };
            checks.push(Check {
                name: "n8n".into(),
                ok: Some(ok),
                millis: t.elapsed().as_millis(),
                detail,
            });
        }
        None => checks.push(Check {
            name: "n8n".into(),
            ok: None,
            millis: 0,
            detail: "not configured (--n8n URL)".into(),
        }),
    }
    let all_ok = checks.iter().all(|c| c.ok != Some(false));
    if args.json {
        let rows: Vec<Value> = checks
            .iter()
            .map(
                |c| json!({"check": c.name, "ok": c.ok, "ms": c.millis as u64, "detail": c.detail}),
            )
            .collect();
        print_json(&json!({"ok": all_ok, "gateway": gw.base, "checks": rows}));
    } else {
        let rows: Vec<Vec<String>> = checks
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    match c.ok {
                        Some(true) => "PASS",
                        Some(false) => "FAIL",
                        None => "SKIP",
                    }
                    .to_string(),
                    c.millis.to_string(),
                    c.detail.clone(),
                ]
            })
            .collect();
        println!(
            "{}",
            table::render(&["CHECK", "RESULT", "MS", "DETAIL"], &rows)
        );
        let failed = checks.iter().filter(|c| c.ok == Some(false)).count();
        if failed == 0 {
            println!("verify: all checks passed");
        } else {
            println!("verify: {failed} check(s) failed");
        }
    }
    Ok(all_ok)
}
