//! `restoreflow eval register DIR --name NAME`: registers a local folder of
//! clean/degraded pairs (and their ground-truth texts) as an evaluation
//! dataset, through the REST gateway's existing routes.
//!
//! The folder is checked first ([`scan_folder`]); nothing is uploaded when it
//! is not a clean set of pairs. Pair `STEM` is uploaded with
//! `PUT /files/training-data/clean/{NAME}.{STEM}.{ext}` and
//! `…/degraded/{NAME}.{STEM}.{ext}`, its text with
//! `PUT /files/training-data/text/{NAME}.{STEM}.txt`, then
//! `POST /evaluation/datasets {name: NAME, prefix: "NAME."}` registers the
//! dataset. Dataset names never hold a `.`, so the prefix `NAME.` is the
//! dataset's alone: no other name's objects start with it.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use restoreflow_core::Settings;
use serde_json::{Value, json};

use super::folder::{LocalPair, PairFolder, scan_folder};
use super::rest::{Gateway, GatewayArgs};
use super::{ToolError, print_json};

/// `restoreflow eval …`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(subcommand)]
    command: EvalCommand,
}

#[derive(Subcommand, Debug)]
enum EvalCommand {
    /// Upload a folder of pairs (NNN_clean.png + NNN_degraded.png + NNN.txt,
    /// or clean/ + degraded/ + text/) and register it as an evaluation dataset.
    Register(RegisterArgs),
}

/// `restoreflow eval register`.
#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// The folder of pairs.
    dir: PathBuf,
    /// Dataset id to create: 1-64 of a-z, 0-9, `_` and `-`.
    #[arg(long)]
    name: String,
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Print the registered dataset as JSON.
    #[arg(long)]
    json: bool,
}

/// What `POST /evaluation/datasets` answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredDataset {
    /// Dataset id, for `POST /evaluation/run {dataset}`.
    pub id: String,
    /// Pairs registered.
    pub pairs: u32,
    /// Pairs with a ground-truth text.
    pub pairs_with_text: u32,
    /// Files the gateway left out, and why.
    pub skipped: Vec<String>,
    /// The dataset's content hash.
    pub content_hash: String,
}

impl RegisteredDataset {
    /// From the gateway's `DatasetView` JSON.
    fn from_json(v: &Value) -> Option<Self> {
        let count = |k: &str| v[k].as_u64().and_then(|n| u32::try_from(n).ok());
        Some(Self {
            id: v["id"].as_str()?.to_string(),
            pairs: count("pairs")?,
            pairs_with_text: count("pairs_with_text")?,
            skipped: v["skipped"]
                .as_array()?
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            content_hash: v["content_hash"].as_str()?.to_string(),
        })
    }

    /// As JSON, in the gateway's shape.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "pairs": self.pairs,
            "pairs_with_text": self.pairs_with_text,
            "skipped": self.skipped,
            "content_hash": self.content_hash,
        })
    }
}

/// Runs `restoreflow eval …`.
pub async fn run_eval(args: EvalArgs, settings: &Settings) -> Result<(), ToolError> {
    match args.command {
        EvalCommand::Register(a) => {
            let gw = Gateway::new(&a.gateway, settings)?;
            let quiet = a.json;
            let d = register_folder(&gw, &a.dir, &a.name, |msg| {
                if !quiet {
                    println!("{msg}");
                }
            })
            .await?;
            if a.json {
                print_json(&d.to_json());
            } else {
                println!(
                    "registered evaluation dataset {}: {} pairs, {} with ground-truth text",
                    d.id, d.pairs, d.pairs_with_text
                );
                for s in &d.skipped {
                    println!("  note: {s}");
                }
                println!(
                    "evaluate with: POST /evaluation/run {}",
                    json!({"layer": 2, "alias": "latest", "dataset": d.id})
                );
                println!("{}", d.id);
            }
            Ok(())
        }
    }
}

/// The key prefix of dataset `name`'s objects.
pub fn dataset_prefix(name: &str) -> String {
    format!("{name}.")
}

/// Object names of a pair: the image name (both sides) and its text's name.
fn object_names(prefix: &str, p: &LocalPair) -> (String, String) {
    (
        format!("{prefix}{}.{}", p.stem, p.extension),
        format!("{prefix}{}.txt", p.stem),
    )
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// Checks `dir`, uploads its pairs and texts through `gw` and registers them
/// as evaluation dataset `name`; `progress` receives one line per step.
/// Refuses before uploading anything when the folder is not a set of pairs,
/// the name is not a valid id, the dataset exists, or objects of an earlier
/// attempt under the name are not part of this folder.
pub async fn register_folder(
    gw: &Gateway,
    dir: &Path,
    name: &str,
    mut progress: impl FnMut(&str),
) -> Result<RegisteredDataset, ToolError> {
    if !valid_name(name) {
        return Err(ToolError::Invalid(format!(
            "--name must be 1-64 characters of a-z, 0-9, _ and -, got {name:?}"
        )));
    }
    let owned = dir.to_path_buf();
    let folder: PairFolder = tokio::task::spawn_blocking(move || scan_folder(&owned))
        .await
        .map_err(|e| ToolError::Other(format!("folder scan failed: {e}")))??;
    progress(&format!(
        "{}: {} pairs, {} with text{}",
        dir.display(),
        folder.pairs.len(),
        folder.with_text(),
        if folder.ignored.is_empty() {
            String::new()
        } else {
            format!(
                "; ignored {}",
                folder
                    .ignored
                    .iter()
                    .map(|p| p.rsplit('/').next().unwrap_or(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
    if dataset_exists(gw, name).await? {
        return Err(ToolError::Invalid(format!(
            "dataset {name:?} already exists; choose another --name"
        )));
    }
    let prefix = dataset_prefix(name);
    let planned: std::collections::BTreeSet<String> = folder
        .pairs
        .iter()
        .flat_map(|p| {
            let (image, text) = object_names(&prefix, p);
            let mut keys = vec![format!("clean/{image}"), format!("degraded/{image}")];
            if p.text.is_some() {
                keys.push(format!("text/{text}"));
            }
            keys
        })
        .collect();
    // Leftovers of an interrupted attempt are overwritten; anything else
    // under the prefix would join the dataset, so it is refused.
    for side in ["clean", "degraded", "text"] {
        let stale: Vec<String> = list_keys(gw, &format!("{side}/{prefix}"))
            .await?
            .into_iter()
            .filter(|k| !planned.contains(k))
            .collect();
        if let Some(first) = stale.first() {
            return Err(ToolError::Invalid(format!(
                "training-data/{first} (and {} more) already exists under the name {name:?} \
                 but is not in {}; choose another --name",
                stale.len() - 1,
                dir.display()
            )));
        }
    }
    let total = folder.pairs.len();
    for (i, p) in folder.pairs.iter().enumerate() {
        let (image, text) = object_names(&prefix, p);
        upload(gw, &["clean", &image], &p.clean, content_type(&p.clean)).await?;
        upload(
            gw,
            &["degraded", &image],
            &p.degraded,
            content_type(&p.degraded),
        )
        .await?;
        if let Some(t) = &p.text {
            upload(gw, &["text", &text], t, "text/plain; charset=utf-8").await?;
        }
        progress(&format!("uploaded {}/{total}: {}", i + 1, p.stem));
    }
    let a = gw
        .post(
            "/evaluation/datasets",
            &json!({"name": name, "prefix": prefix}),
        )
        .await?;
    if a.status == 400 {
        return Err(ToolError::Invalid(format!(
            "registering {name}: {}",
            a.message()
        )));
    }
    let v = Gateway::expect(a, 201, &format!("registering {name}"))?;
    let d = RegisteredDataset::from_json(&v)
        .ok_or_else(|| ToolError::Other(format!("unexpected answer registering {name}: {v}")))?;
    if d.pairs as usize != total || d.pairs_with_text as usize != folder.with_text() {
        return Err(ToolError::Other(format!(
            "dataset {} registered {} pairs ({} with text) but {} holds {total} ({} with text)",
            d.id,
            d.pairs,
            d.pairs_with_text,
            dir.display(),
            folder.with_text()
        )));
    }
    Ok(d)
}

/// Dataset ids: 1-64 of `[a-z0-9_-]` (what the gateway accepts).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

async fn upload(
    gw: &Gateway,
    key: &[&str],
    path: &Path,
    content_type: &str,
) -> Result<(), ToolError> {
    let body = tokio::fs::read(path)
        .await
        .map_err(|e| ToolError::Other(format!("cannot read {}: {e}", path.display())))?;
    let mut segments = vec!["files", "training-data"];
    segments.extend_from_slice(key);
    let a = gw.put_bytes(&segments, body, content_type).await?;
    Gateway::expect(a, 201, &format!("uploading {}", path.display())).map(|_| ())
}

/// Every key in `training-data` under `prefix`.
async fn list_keys(gw: &Gateway, prefix: &str) -> Result<Vec<String>, ToolError> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut query = vec![("prefix", prefix.to_string()), ("page_size", "1000".into())];
        if let Some(t) = &token {
            query.push(("page_token", t.clone()));
        }
        let a = gw.get_query("/files/training-data", &query).await?;
        let page = Gateway::expect(a, 200, "listing training-data")?;
        keys.extend(
            page["objects"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["key"].as_str().map(str::to_string)),
        );
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(keys),
        }
    }
}

/// Whether a dataset row named `name` exists (generated or uploaded).
async fn dataset_exists(gw: &Gateway, name: &str) -> Result<bool, ToolError> {
    let mut token: Option<String> = None;
    loop {
        let mut query = vec![("page_size", "200".to_string())];
        if let Some(t) = &token {
            query.push(("page_token", t.clone()));
        }
        let a = gw.get_query("/synthetic/datasets", &query).await?;
        let next = a
            .headers
            .get("x-next-page-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let rows = Gateway::expect(a, 200, "listing datasets")?;
        let rows = rows.as_array().cloned().unwrap_or_default();
        if rows.iter().any(|r| r["id"] == name) {
            return Ok(true);
        }
        match next {
            Some(t) => token = Some(t),
            None => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_slugs_and_own_their_prefix() {
        assert!(valid_name("augraphy-dev_1"));
        for bad in ["", "Dev", "a.b", "a/b", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
        // No valid name extends another's prefix: `.` is not in a name.
        assert!(!dataset_prefix("ab").starts_with(&dataset_prefix("a")));
        let p = LocalPair {
            stem: "007".into(),
            clean: "x/007_clean.png".into(),
            degraded: "x/007_degraded.jpg".into(),
            text: None,
            extension: "jpg".into(),
            size: (1, 1),
        };
        assert_eq!(
            object_names("dev.", &p),
            ("dev.007.jpg".to_string(), "dev.007.txt".to_string())
        );
        assert_eq!(content_type(Path::new("a/B.JPEG")), "image/jpeg");
    }

    #[test]
    fn answers_round_trip_through_json() {
        let d = RegisteredDataset {
            id: "dev".into(),
            pairs: 12,
            pairs_with_text: 11,
            skipped: vec!["1 files without a partner of the same name".into()],
            content_hash: "ab".repeat(32),
        };
        assert_eq!(RegisteredDataset::from_json(&d.to_json()), Some(d));
        assert_eq!(RegisteredDataset::from_json(&json!({"id": "x"})), None);
    }
}
