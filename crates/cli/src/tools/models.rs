//! `restoreflow models …`: list, show, alias, compare, download and delete
//! model versions through the model registry's gRPC API.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use futures::StreamExt;
use restoreflow_core::Settings;
use restoreflow_core::grpc::AuthChannel;
use restoreflow_core::storage::ByteStream;
use restoreflow_proto::v1::{self, model_registry_service_client::ModelRegistryServiceClient};
use serde_json::{Value, json};
use sha2::Digest;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{ToolError, connect, print_json, struct_json, table, time};

/// `restoreflow models`.
#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// Model-registry gRPC endpoint [default: a configured
    /// gateway.model_registry_url, else the one `restoreflow up` wrote to
    /// ./data/services.json].
    #[arg(long, global = true, value_name = "URL")]
    registry: Option<String>,
    /// Layer: 1 (classical preprocessing) or 2 (Restormer).
    #[arg(long, global = true, default_value_t = 2)]
    layer: u32,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ModelsCommand,
}

#[derive(Subcommand, Debug)]
enum ModelsCommand {
    /// A layer's versions, newest first.
    List {
        /// Only the version this alias points at.
        #[arg(long)]
        alias: Option<String>,
        /// Only versions produced by this training job.
        #[arg(long)]
        job: Option<String>,
        /// Only versions trained on this dataset.
        #[arg(long)]
        dataset: Option<String>,
        /// Only versions registered at or after this time (RFC 3339).
        #[arg(long)]
        after: Option<chrono::DateTime<chrono::Utc>>,
        /// Only versions registered before this time (RFC 3339).
        #[arg(long)]
        before: Option<chrono::DateTime<chrono::Utc>>,
        /// At most this many versions [default: all].
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One version, by number or alias.
    Show {
        /// A number such as 3 or an alias such as champion.
        version: String,
    },
    /// Points an alias (such as champion) at a version.
    Alias {
        /// Alias name, [a-z0-9_-]{1,64}.
        name: String,
        /// Version number.
        version: u32,
    },
    /// Two versions side by side with metric deltas (b - a).
    Compare {
        /// First version (number or alias).
        a: String,
        /// Second version (number or alias).
        b: String,
    },
    /// Downloads a version's weights through the REST gateway (no storage
    /// credentials needed), with a progress bar, checking the registered
    /// sha256 before the file takes its name.
    Download {
        /// Number or alias.
        version: String,
        /// Output file [default: the object's name, in the current directory].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Where the gateway is and the API key.
        #[command(flatten)]
        gateway: super::rest::GatewayArgs,
        /// No progress bar (it is also hidden when stderr is not a terminal).
        #[arg(long)]
        no_progress: bool,
    },
    /// Deletes a version and its objects (refused while an alias points at it).
    Delete {
        /// Version number.
        version: String,
    },
}

/// Runs a `models` subcommand.
pub async fn run_models(args: ModelsArgs, settings: &Settings) -> Result<(), ToolError> {
    if let ModelsCommand::Download {
        version,
        output,
        gateway,
        no_progress,
    } = &args.command
    {
        let gw = super::rest::Gateway::new(gateway, settings)?;
        let d = download(
            &gw,
            args.layer,
            version,
            output.clone(),
            !no_progress && !args.json,
        )
        .await?;
        if args.json {
            print_json(&json!({"layer": args.layer, "version": d.version,
                "path": d.path.display().to_string(), "sha256": d.sha256, "size_bytes": d.size_bytes}));
        } else {
            println!(
                "version {} ({}, sha256 {}) written to {}",
                d.version,
                table::bytes(d.size_bytes),
                d.sha256,
                d.path.display()
            );
        }
        return Ok(());
    }
    let url = super::endpoint(
        args.registry.as_deref(),
        &settings.gateway.model_registry_url,
        &restoreflow_core::config::GatewaySettings::default().model_registry_url,
        |u| u.model_registry.clone(),
        std::path::Path::new(super::UP_DATA_DIR),
    );
    let mut client =
        ModelRegistryServiceClient::new(connect("model registry", &url, settings).await?);
    let layer = args.layer;
    match args.command {
        ModelsCommand::List {
            alias,
            job,
            dataset,
            after,
            before,
            limit,
        } => {
            let filter = v1::ListVersionsRequest {
                layer,
                alias: alias.unwrap_or_default(),
                training_job_id: job.unwrap_or_default(),
                dataset_id: dataset.unwrap_or_default(),
                created_after: after.map(timestamp),
                created_before: before.map(timestamp),
                ..Default::default()
            };
            let versions = list_all(&mut client, filter, limit).await?;
            if args.json {
                print_json(&Value::Array(versions.iter().map(version_json).collect()));
            } else if versions.is_empty() {
                println!("no versions of layer {layer}");
            } else {
                println!("{}", versions_table(&versions));
            }
        }
        ModelsCommand::Show { version } => {
            let v = client
                .resolve_version(v1::VersionRef { layer, version })
                .await?
                .into_inner();
            if args.json {
                print_json(&version_json(&v));
            } else {
                println!("{}", version_details(&v));
            }
        }
        ModelsCommand::Alias { name, version } => {
            let a = client
                .set_alias(v1::SetAliasRequest {
                    layer,
                    alias: name,
                    version,
                })
                .await?
                .into_inner();
            if args.json {
                print_json(&json!({"layer": a.layer, "alias": a.alias, "version": a.version}));
            } else {
                println!("{} -> version {} (layer {})", a.alias, a.version, a.layer);
            }
        }
        ModelsCommand::Compare { a, b } => {
            let c = client
                .compare_versions(v1::CompareVersionsRequest { layer, a, b })
                .await?
                .into_inner();
            if args.json {
                print_json(&comparison_json(&c));
            } else {
                println!("{}", comparison_text(&c));
            }
        }
        ModelsCommand::Download { .. } => unreachable!("handled above"),
        ModelsCommand::Delete { version } => {
            let d = client
                .delete_version(v1::VersionRef { layer, version })
                .await?
                .into_inner();
            if args.json {
                print_json(&json!({"layer": d.layer, "version": d.version,
                    "deleted_objects": d.deleted_objects}));
            } else {
                println!(
                    "deleted version {} of layer {} ({} objects removed)",
                    d.version,
                    d.layer,
                    d.deleted_objects.len()
                );
            }
        }
    }
    Ok(())
}

/// Follows pages until the end or `limit` versions.
async fn list_all(
    client: &mut ModelRegistryServiceClient<AuthChannel>,
    mut req: v1::ListVersionsRequest,
    limit: Option<u32>,
) -> Result<Vec<v1::ModelVersion>, ToolError> {
    let mut out = Vec::new();
    loop {
        let remaining = limit.map(|l| l.saturating_sub(out.len() as u32));
        if remaining == Some(0) {
            break;
        }
        req.page_size = remaining.map_or(0, |r| r.min(1000));
        let page = client.list_versions(req.clone()).await?.into_inner();
        out.extend(page.versions);
        if page.next_page_token.is_empty() {
            break;
        }
        req.page_token = page.next_page_token;
    }
    Ok(out)
}

/// A finished download.
pub struct Downloaded {
    /// The version number the reference resolved to.
    pub version: u32,
    /// Where the weights are.
    pub path: PathBuf,
    /// Their sha256, as registered and as received.
    pub sha256: String,
    /// Their size.
    pub size_bytes: u64,
}

/// Streams a version's weights from the gateway into `output.part` with a
/// progress bar, then renames the file to `output` only when the bytes hash
/// to the registered sha256 (the registry's record, and the gateway's
/// `X-Restoreflow-Sha256`); on a mismatch or a cut transfer nothing is left
/// behind.
pub async fn download(
    gw: &super::rest::Gateway,
    layer: u32,
    version: &str,
    output: Option<PathBuf>,
    progress: bool,
) -> Result<Downloaded, ToolError> {
    let reference = super::rest::encode_segment(version);
    let meta = gw
        .get(&format!("/models/layer/{layer}/{reference}"))
        .await?;
    let meta = super::rest::Gateway::expect(meta, 200, "the model version")?;
    let registered = meta["sha256"].as_str().unwrap_or_default().to_string();
    let number = meta["version"].as_u64().unwrap_or_default() as u32;
    let key = meta["object_key"].as_str().unwrap_or_default();
    let path = output.unwrap_or_else(|| PathBuf::from(file_name(key)));
    // The number, not the alias: an alias moved meanwhile cannot mix versions.
    let resp = gw
        .get_stream(&format!("/models/layer/{layer}/{number}/download"))
        .await?;
    if let Some(h) = resp
        .headers()
        .get(SHA256_HEADER)
        .and_then(|v| v.to_str().ok())
        && h != registered
    {
        return Err(ToolError::Other(format!(
            "the gateway announces sha256 {h} for version {number}, the registry {registered}"
        )));
    }
    let total = resp
        .content_length()
        .unwrap_or(meta["size_bytes"].as_u64().unwrap_or(0));
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(format!("version {number}"));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let stream: ByteStream = Box::pin(
        resp.bytes_stream()
            .map(|c| c.map_err(std::io::Error::other)),
    );
    let written = write_file_checked(stream, &path, &bar).await;
    bar.finish_and_clear();
    let (sha256, size) = written?;
    if sha256 != registered {
        let _ = tokio::fs::remove_file(part_of(&path)).await;
        return Err(ToolError::Other(format!(
            "sha256 mismatch for version {number} of layer {layer}: registered {registered}, downloaded {sha256} ({size} bytes); nothing was written to {}",
            path.display()
        )));
    }
    let io = |e: std::io::Error| ToolError::Other(format!("cannot write {}: {e}", path.display()));
    tokio::fs::rename(part_of(&path), &path).await.map_err(io)?;
    Ok(Downloaded {
        version: number,
        path,
        sha256,
        size_bytes: size,
    })
}

/// The header the gateway names the registered sha256 in.
const SHA256_HEADER: &str = "x-restoreflow-sha256";

fn part_of(path: &Path) -> PathBuf {
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    PathBuf::from(part)
}

/// Streams into `path.part`, advancing `bar`; returns the sha256 and size.
/// A failed transfer removes the part file; a complete one keeps it for the
/// caller to rename (or remove, when the hash is wrong).
async fn write_file_checked(
    stream: ByteStream,
    path: &Path,
    bar: &indicatif::ProgressBar,
) -> Result<(String, u64), ToolError> {
    let part = part_of(path);
    let io = |e: std::io::Error| ToolError::Other(format!("cannot write {}: {e}", path.display()));
    let file = tokio::fs::File::create(&part).await.map_err(io)?;
    let mut out = ProgressWriter { inner: file, bar };
    let written = write_hashed(stream, &mut out).await;
    drop(out);
    match written {
        Ok(w) => Ok(w),
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(ToolError::Other(format!(
                "the download of {} failed: {e}; nothing was written",
                path.display()
            )))
        }
    }
}

/// An `AsyncWrite` that advances a progress bar by what it writes.
struct ProgressWriter<'a, W> {
    inner: W,
    bar: &'a indicatif::ProgressBar,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for ProgressWriter<'_, W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &r {
            this.bar.inc(*n as u64);
        }
        r
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Copies a byte stream into `out`, returning the sha256 (hex) and length.
async fn write_hashed<W: AsyncWrite + Unpin>(
    mut stream: ByteStream,
    out: &mut W,
) -> std::io::Result<(String, u64)> {
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    Ok((hex::encode(hasher.finalize()), size))
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> restoreflow_proto::prost_types::Timestamp {
    restoreflow_proto::prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn opt(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { json!(s) }
}

/// A version as JSON (the shape of the gateway's model view).
fn version_json(v: &v1::ModelVersion) -> Value {
    json!({
        "layer": v.layer,
        "version": v.version,
        "object_key": v.object_key,
        "sidecar_key": v.sidecar_key,
        "sha256": v.sha256,
        "size_bytes": v.size_bytes,
        "parameter_count": v.parameter_count,
        "config": struct_json(v.config.as_ref()),
        "metrics": struct_json(v.metrics.as_ref()),
        "training_job_id": opt(&v.training_job_id),
        "dataset_id": opt(&v.dataset_id),
        "dataset_hash": opt(&v.dataset_hash),
        "code_version": opt(&v.code_version),
        "parent_version": v.parent_version,
        "aliases": v.aliases,
        "created_at": time(v.created_at.as_ref()),
    })
}

/// A final metric of a version, if it has it (under `final`, or top level).
fn final_metric(v: &v1::ModelVersion, name: &str) -> Option<f64> {
    let m = struct_json(v.metrics.as_ref());
    m.get("final")
        .and_then(|f| f.get(name))
        .or_else(|| m.get(name))
        .and_then(Value::as_f64)
}

fn fmt_metric(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

fn created(v: &v1::ModelVersion) -> String {
    time(v.created_at.as_ref())
        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn versions_table(versions: &[v1::ModelVersion]) -> String {
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                v.version.to_string(),
                created(v),
                table::bytes(v.size_bytes),
                fmt_metric(final_metric(v, "psnr"), 2),
                fmt_metric(final_metric(v, "ssim"), 4),
                v.aliases.join(", "),
                v.training_job_id.clone(),
                v.dataset_id.clone(),
            ]
        })
        .collect();
    table::render(
        &[
            "VERSION", "CREATED", "SIZE", "PSNR", "SSIM", "ALIASES", "JOB", "DATASET",
        ],
        &rows,
    )
}

fn version_details(v: &v1::ModelVersion) -> String {
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let metrics = struct_json(v.metrics.as_ref());
    let finals = metrics.get("final").unwrap_or(&metrics);
    let rows = vec![
        vec!["layer".into(), v.layer.to_string()],
        vec!["version".into(), v.version.to_string()],
        vec!["aliases".into(), or_dash(&v.aliases.join(", "))],
        vec!["created".into(), created(v)],
        vec!["object".into(), format!("models/{}", v.object_key)],
        vec!["sha256".into(), v.sha256.clone()],
        vec![
            "size".into(),
            format!("{} ({} bytes)", table::bytes(v.size_bytes), v.size_bytes),
        ],
        vec!["parameters".into(), v.parameter_count.to_string()],
        vec!["training job".into(), or_dash(&v.training_job_id)],
        vec!["dataset".into(), or_dash(&v.dataset_id)],
        vec!["dataset hash".into(), or_dash(&v.dataset_hash)],
        vec!["code version".into(), or_dash(&v.code_version)],
        vec![
            "parent".into(),
            v.parent_version
                .map_or_else(|| "-".into(), |p| p.to_string()),
        ],
        vec!["config".into(), struct_json(v.config.as_ref()).to_string()],
        vec!["metrics".into(), finals.to_string()],
    ];
    table::render(&["FIELD", "VALUE"], &rows)
}

fn comparison_json(c: &v1::CompareVersionsResponse) -> Value {
    json!({
        "a": c.a.as_ref().map(version_json),
        "b": c.b.as_ref().map(version_json),
        "deltas": c.deltas.iter().map(|d| json!({"name": d.name, "a": d.a, "b": d.b, "delta": d.delta})).collect::<Vec<_>>(),
        "same_validation_data": c.same_validation_data,
    })
}

fn comparison_text(c: &v1::CompareVersionsResponse) -> String {
    let number = |v: &Option<v1::ModelVersion>| v.as_ref().map_or(0, |v| v.version);
    let (a, b) = (number(&c.a), number(&c.b));
    let rows: Vec<Vec<String>> = c
        .deltas
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                format!("{:.4}", d.a),
                format!("{:.4}", d.b),
                format!("{:+.4}", d.delta),
            ]
        })
        .collect();
    let mut out = format!("version {a} vs version {b}\n");
    if rows.is_empty() {
        out.push_str("no numeric metric in common");
    } else {
        out.push_str(&table::render(
            &[
                "METRIC",
                &format!("V{a}"),
                &format!("V{b}"),
                "DELTA (B - A)",
            ],
            &rows,
        ));
    }
    out.push_str(if c.same_validation_data {
        "\nvalidated on the same data"
    } else {
        "\nNOT validated on the same data: deltas are not directly comparable"
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(parts: &[&'static [u8]]) -> ByteStream {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(bytes::Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
        .boxed()
    }

    #[tokio::test]
    async fn writes_and_hashes_every_chunk() {
        let mut out = Vec::new();
        let (sha, size) = write_hashed(stream(&[b"hello ", b"world"]), &mut out)
            .await
            .unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(size, 11);
        assert_eq!(sha, hex::encode(sha2::Sha256::digest(b"hello world")));
    }

    #[test]
    fn versions_render_as_rows() {
        let v = v1::ModelVersion {
            layer: 2,
            version: 7,
            size_bytes: 2048,
            aliases: vec!["champion".into(), "latest".into()],
            metrics: Some(restoreflow_proto::json_to_struct(
                &json!({"final": {"psnr": 31.256, "ssim": 0.9}}),
            )),
            training_job_id: "job-1".into(),
            ..Default::default()
        };
        let t = versions_table(std::slice::from_ref(&v));
        let row = t.lines().nth(1).unwrap();
        assert!(row.starts_with("7 "), "{row}");
        assert!(row.contains("2.0 KiB") && row.contains("31.26") && row.contains("0.9000"));
        assert!(row.contains("champion, latest") && row.contains("job-1"));
        let j = version_json(&v);
        assert_eq!(j["dataset_id"], Value::Null);
        assert_eq!(j["metrics"]["final"]["psnr"], 31.256);
        assert_eq!(file_name("layer_2/x_v7.safetensors"), "x_v7.safetensors");
    }
}
