//! The model registry end to end: register over gRPC from uploaded objects,
//! then list, resolve, download, alias, compare and delete through the gateway.

use restoreflow_core::storage::{Bucket, get_bytes};
use restoreflow_proto::v1;
use restoreflow_tests::{Kind, TestApp, sha256};
use serde_json::{Value, json};

/// Deterministic pseudo-random bytes (distinct per seed).
fn weights(seed: u8, len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn to_struct(v: Value) -> Option<restoreflow_proto::prost_types::Struct> {
    Some(restoreflow_proto::json_to_struct(&v))
}

/// Uploads bytes as a checkpoint through the gateway and returns its key.
async fn upload_checkpoint(app: &TestApp, name: &str, bytes: &[u8]) -> String {
    let key = format!("checkpoints/run1/{name}");
    let (status, v) = app
        .put_bytes(&format!("/files/training-outputs/{key}"), bytes.to_vec())
        .await;
    assert_eq!(status, 201, "upload: {v}");
    key
}

/// A registration as a training job makes it, each from a job of its own
/// (a training job registers one version; see `registration_is_idempotent_per_training_job`).
fn register_request(layer: u32, key: &str, metrics: Value, hash: &str) -> v1::RegisterModelRequest {
    static JOBS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let job = JOBS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    v1::RegisterModelRequest {
        layer,
        source_bucket: "training-outputs".into(),
        source_key: key.into(),
        config: to_struct(json!({"preset": "tiny", "dim": 16})),
        metrics: to_struct(metrics),
        training_job_id: format!("job-{}-{job}", std::process::id()),
        dataset_id: "ds1".into(),
        dataset_hash: hash.into(),
        code_version: "abc1234".into(),
        parent_version: None,
        parameter_count: 12345,
    }
}

async fn register(app: &TestApp, req: v1::RegisterModelRequest) -> v1::ModelVersion {
    app.registry()
        .await
        .register_model(req)
        .await
        .expect("register")
        .into_inner()
}

fn assert_error(status: u16, body: &Value, want_status: u16, code: &str, needle: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
}

async fn registry_lifecycle(app: &TestApp) {
    let a = weights(1, 300_000);
    let b = weights(2, 1_500_000);
    let key_a = upload_checkpoint(app, "a.safetensors", &a).await;
    let key_b = upload_checkpoint(app, "b.safetensors", &b).await;

    // Register two versions.
    let mut req = register_request(
        2,
        &key_a,
        json!({"final": {"psnr": 28.5, "ssim": 0.91, "loss": 0.05},
               "epochs": [{"epoch": 1, "psnr": 25.0}, {"epoch": 2, "psnr": 28.5}]}),
        "hash-val-1",
    );
    req.training_job_id = "job-123".into();
    let v1 = register(app, req).await;
    assert_eq!((v1.layer, v1.version), (2, 1));
    assert_eq!(v1.sha256, sha256(&a));
    assert_eq!(v1.size_bytes, a.len() as u64);
    assert!(
        v1.object_key.starts_with("layer_2/restormer_layer2_"),
        "{}",
        v1.object_key
    );
    assert!(
        v1.object_key.ends_with("_v1.safetensors"),
        "{}",
        v1.object_key
    );
    assert!(v1.sidecar_key.ends_with("_v1.json"), "{}", v1.sidecar_key);
    let mut req = register_request(
        2,
        &key_b,
        json!({"final": {"psnr": 30.0, "ssim": 0.93, "cer": 0.01}}),
        "hash-val-1",
    );
    req.parent_version = Some(1);
    let v2 = register(app, req).await;
    assert_eq!(v2.version, 2);
    assert_eq!(v2.parent_version, Some(1));
    assert_eq!(v2.sha256, sha256(&b));

    // The objects and the sidecar are in the models bucket.
    let store = app.backends.store.as_ref();
    let stored = get_bytes(store, Bucket::Models, &v1.object_key, 10 << 20)
        .await
        .unwrap();
    assert_eq!(sha256(&stored), sha256(&a));
    let sidecar: Value = serde_json::from_slice(
        &get_bytes(store, Bucket::Models, &v1.sidecar_key, 1 << 20)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(sidecar["sha256"], v1.sha256);
    assert_eq!(sidecar["metrics"]["final"]["psnr"], 28.5);
    assert_eq!(sidecar["dataset_hash"], "hash-val-1");
    assert_eq!(sidecar["source"]["key"], key_a.as_str());

    // List, newest first, with pagination.
    let (status, list) = app.get_json("/models/layer/2").await;
    assert_eq!(status, 200, "{list}");
    let versions: Vec<u64> = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [2, 1]);
    assert!(list["next_page_token"].is_null());
    let (_, page1) = app.get_json("/models/layer/2?limit=1").await;
    assert_eq!(page1["versions"][0]["version"], 2);
    let token = page1["next_page_token"]
        .as_str()
        .expect("next page")
        .to_string();
    let (_, page2) = app
        .get_json(&format!("/models/layer/2?limit=1&page_token={token}"))
        .await;
    assert_eq!(page2["versions"][0]["version"], 1);
    assert!(page2["next_page_token"].is_null(), "{page2}");

    // Get by number; alias; get by alias.
    let (status, got) = app.get_json("/models/layer/2/1").await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["sha256"], sha256(&a));
    assert_eq!(got["metrics"]["final"]["ssim"], 0.91);
    assert_eq!(got["config"]["preset"], "tiny");
    assert_eq!(got["training_job_id"], "job-123");
    let (status, alias) = app
        .put_json("/models/layer/2/aliases/champion", &json!({"version": 1}))
        .await;
    assert_eq!(status, 200, "{alias}");
    assert_eq!(
        alias,
        json!({"layer": 2, "alias": "champion", "version": 1})
    );
    let (status, champ) = app.get_json("/models/layer/2/champion").await;
    assert_eq!(status, 200, "{champ}");
    assert_eq!(champ["version"], 1);
    assert_eq!(champ["aliases"], json!(["champion"]));

    // Download streams the exact bytes with the hash header.
    let r = app
        .http
        .get(app.url("/models/layer/2/champion/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["x-restoreflow-sha256"].to_str().unwrap(), sha256(&a));
    let cd = h["content-disposition"].to_str().unwrap();
    assert!(
        cd.starts_with("attachment;") && cd.contains("_v1.safetensors"),
        "{cd}"
    );
    let body = r.bytes().await.unwrap();
    assert_eq!(sha256(&body), sha256(&a));
    let (status, body) = app.get_bytes("/models/layer/2/2/download").await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&body), sha256(&b));

    // Compare: deltas for shared numeric final metrics, same validation data.
    let (status, cmp) = app.get_json("/models/compare?layer=2&a=champion&b=2").await;
    assert_eq!(status, 200, "{cmp}");
    assert_eq!(cmp["a"]["version"], 1);
    assert_eq!(cmp["b"]["version"], 2);
    assert_eq!(cmp["same_validation_data"], true);
    let deltas = cmp["deltas"].as_array().unwrap();
    let names: Vec<&str> = deltas.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["psnr", "ssim"]);
    assert!((deltas[0]["delta"].as_f64().unwrap() - 1.5).abs() < 1e-9);
    assert!((deltas[1]["delta"].as_f64().unwrap() - 0.02).abs() < 1e-9);

    // Delete is refused while aliased; move the alias, then it succeeds.
    let (status, err) = app.delete("/models/layer/2/1").await;
    assert_error(status, &err, 409, "failed_precondition", "champion");
    let (status, moved) = app
        .put_json("/models/layer/2/aliases/champion", &json!({"version": 2}))
        .await;
    assert_eq!(status, 200, "{moved}");
    let (status, del) = app.delete("/models/layer/2/1").await;
    assert_eq!(status, 200, "{del}");
    assert_eq!(del["version"], 1);
    assert_eq!(
        del["deleted_objects"],
        json!([v1.object_key.clone(), v1.sidecar_key.clone()])
    );
    for key in [&v1.object_key, &v1.sidecar_key] {
        assert!(
            store.head(Bucket::Models, key).await.unwrap().is_none(),
            "{key} left behind"
        );
    }
    let (status, err) = app.get_json("/models/layer/2/1").await;
    assert_error(status, &err, 404, "not_found", "version 1 of layer 2");
    let (status, err) = app.delete("/models/layer/2/1").await;
    assert_error(status, &err, 404, "not_found", "version 1");
    let (_, list) = app.get_json("/models/layer/2").await;
    assert_eq!(list["versions"].as_array().unwrap().len(), 1);
    assert_eq!(
        list["versions"][0]["aliases"],
        json!(["champion", "latest"])
    );

    // Numbers are never reused: after deleting 1 (and then the newest), the
    // next registrations get 3 and 4.
    let v3 = register(app, register_request(2, &key_a, json!({}), "")).await;
    assert_eq!(v3.version, 3);
    let (status, _) = app.delete("/models/layer/2/3").await;
    assert_eq!(status, 200);
    let v4 = register(app, register_request(2, &key_a, json!({}), "other")).await;
    assert_eq!(v4.version, 4);
    let (_, cmp) = app.get_json("/models/compare?layer=2&a=4&b=2").await;
    assert_eq!(cmp["same_validation_data"], false);
    assert_eq!(cmp["deltas"], json!([]));

    // Concurrent registrations get distinct, consecutive numbers.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut client = app.registry().await;
        let req = register_request(2, &key_a, json!({}), "");
        tasks.push(tokio::spawn(async move {
            client
                .register_model(req)
                .await
                .map(|r| r.into_inner().version)
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap().expect("concurrent register"));
    }
    got.sort();
    assert_eq!(got, [5, 6, 7, 8]);

    // One training job registers one version, however often (and however
    // concurrently) its registration is sent: every call answers with it.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut client = app.registry().await;
        let mut req = register_request(2, &key_b, json!({}), "");
        req.training_job_id = "job-twice".into();
        tasks.push(tokio::spawn(async move {
            client
                .register_model(req)
                .await
                .map(|r| r.into_inner().version)
        }));
    }
    let mut same = Vec::new();
    for t in tasks {
        same.push(t.await.unwrap().expect("repeated register"));
    }
    same.dedup();
    assert_eq!(same.len(), 1, "one version for the job: {same:?}");
    let (_, l) = app
        .get_json("/models/layer/2?training_job_id=job-twice")
        .await;
    assert_eq!(l["versions"].as_array().unwrap().len(), 1, "{l}");
    assert_eq!(l["versions"][0]["version"], same[0]);

    // Layer 1 has its own numbering and JSON parameters.
    let params = serde_json::to_vec(&json!({"denoise": 0.3, "deskew": true})).unwrap();
    let key_p = upload_checkpoint(app, "layer1.json", &params).await;
    let p1 = register(
        app,
        register_request(1, &key_p, json!({"final": {"cer": 0.1}}), ""),
    )
    .await;
    assert_eq!((p1.layer, p1.version), (1, 1));
    assert!(p1.object_key.starts_with("layer_1/") && p1.object_key.ends_with("_v1.params.json"));
    let (status, body) = app.get_bytes("/models/layer/1/1/download").await;
    assert_eq!(status, 200);
    assert_eq!(&body[..], &params[..]);

    // Presigned downloads: real S3 hands out a URL; the local store says why not.
    let (status, pre) = app
        .get_json("/models/layer/2/champion/download?presigned=true")
        .await;
    match app.kind {
        Kind::Real => {
            assert_eq!(status, 200, "{pre}");
            assert_eq!(pre["sha256"], sha256(&b));
            let url = pre["url"].as_str().unwrap();
            let r = reqwest::get(url).await.unwrap();
            assert_eq!(r.status(), 200, "presigned GET");
            assert_eq!(sha256(&r.bytes().await.unwrap()), sha256(&b));
        }
        Kind::Embedded => {
            // How the system is set up refuses it, not the request: 409.
            assert_error(
                status,
                &pre,
                409,
                "failed_precondition",
                "presigned URLs need the S3 backend",
            );
        }
    }

    // Corrupt stored weights: the transfer is cut short instead of completing.
    let corrupt = weights(9, b.len());
    store
        .put(
            Bucket::Models,
            &v2.object_key,
            corrupt.into(),
            "application/octet-stream",
        )
        .await
        .unwrap();
    let r = app
        .http
        .get(app.url("/models/layer/2/2/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "headers go out before the body is checked");
    assert!(r.bytes().await.is_err(), "a corrupt download must fail");
}

async fn bad_inputs(app: &TestApp) {
    let (status, err) = app.get_json("/models/layer/3").await;
    assert_error(status, &err, 400, "invalid_argument", "layer must be 1");
    let (status, err) = app.get_json("/models/layer/abc").await;
    assert_error(status, &err, 400, "invalid_argument", "");
    let (status, err) = app.get_json("/models/layer/2?limit=0").await;
    assert_error(status, &err, 400, "invalid_argument", "limit");
    let (status, err) = app.get_json("/models/layer/2?page_token=zz").await;
    assert_error(status, &err, 400, "invalid_argument", "page_token");
    let (status, err) = app.get_json("/models/layer/2/0").await;
    assert_error(status, &err, 400, "invalid_argument", "version number");
    let (status, err) = app.get_json("/models/layer/2/Champion").await;
    assert_error(status, &err, 400, "invalid_argument", "a-z, 0-9");
    let (status, err) = app.get_json("/models/layer/2/nope").await;
    assert_error(status, &err, 404, "not_found", "alias \"nope\"");
    let (status, err) = app.get_json("/models/compare?layer=2&a=1").await;
    assert_error(status, &err, 400, "invalid_argument", "b");
    let (status, err) = app
        .put_json("/models/layer/2/aliases/123", &json!({"version": 1}))
        .await;
    assert_error(status, &err, 400, "invalid_argument", "purely numeric");
    let (status, err) = app
        .put_json("/models/layer/2/aliases/BAD", &json!({"version": 1}))
        .await;
    assert_error(status, &err, 400, "invalid_argument", "a-z, 0-9");
    let (status, err) = app
        .put_json("/models/layer/2/aliases/champion", &json!({"version": 99}))
        .await;
    assert_error(status, &err, 404, "not_found", "version 99");
    let (status, err) = app
        .put_json("/models/layer/2/aliases/champion", &json!({"version": "x"}))
        .await;
    assert_error(status, &err, 400, "invalid_argument", "");
    let (status, err) = app.delete("/models/layer/2/champion").await;
    assert_error(status, &err, 400, "invalid_argument", "version number");
    // Mutations need the key.
    let r = restoreflow_tests::client()
        .put(app.url("/models/layer/2/aliases/champion"))
        .json(&json!({"version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = restoreflow_tests::client()
        .delete(app.url("/models/layer/2/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // gRPC: invalid arguments and missing sources.
    let mut c = app.registry().await;
    let e = c
        .register_model(register_request(5, "checkpoints/x", json!({}), ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("layer must be 1"), "{}", e.message());
    let e = c
        .register_model(register_request(
            2,
            "checkpoints/missing.safetensors",
            json!({}),
            "",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(
        e.message().contains("missing.safetensors"),
        "{}",
        e.message()
    );
    let mut req = register_request(2, "checkpoints/x", json!({}), "");
    req.source_bucket = "secrets".into();
    let e = c.register_model(req).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("unknown bucket"), "{}", e.message());
    let mut req = register_request(2, "../etc/passwd", json!({}), "");
    req.source_bucket = "training-outputs".into();
    let e = c.register_model(req).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = c
        .set_alias(v1::SetAliasRequest {
            layer: 2,
            alias: "42".into(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = c
        .get_version(v1::VersionRef {
            layer: 2,
            version: "champion".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("ResolveVersion"), "{}", e.message());
    let e = c
        .resolve_version(v1::VersionRef {
            layer: 2,
            version: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    // Nothing was registered by any of these.
    let (_, list) = app.get_json("/models/layer/2").await;
    assert_eq!(list["versions"], json!([]), "{list}");
}

/// `latest` follows registrations (and deletions), filters narrow listings,
/// `PreviousVersion` compares with the version before, and retention deletes
/// all but the newest K and the aliased versions, objects included.
async fn registry_extras(app: &TestApp) {
    let bytes = weights(3, 50_000);
    let key = upload_checkpoint(app, "extras.safetensors", &bytes).await;
    let mut c = app.registry().await;
    let mut registered = Vec::new();
    for (i, psnr) in [20.0, 22.0, 21.0, 25.0, 26.0, 27.0].into_iter().enumerate() {
        let mut req = register_request(2, &key, json!({"final": {"psnr": psnr}}), "hash-x");
        req.training_job_id = format!("job-{i}");
        req.dataset_id = if i < 3 { "ds-a" } else { "ds-b" }.into();
        let v = register(app, req).await;
        // Each new version carries `latest` at once; the previous one lost it.
        assert_eq!(v.aliases, ["latest"], "{v:?}");
        registered.push(v);
    }
    let (_, latest) = app.get_json("/models/layer/2/latest").await;
    assert_eq!(latest["version"], 6);
    let (_, v5) = app.get_json("/models/layer/2/5").await;
    assert_eq!(v5["aliases"], json!([]));
    // Users cannot set `latest`, nor names that are HTTP path segments.
    let (status, err) = app
        .put_json("/models/layer/2/aliases/latest", &json!({"version": 1}))
        .await;
    assert_error(
        status,
        &err,
        400,
        "invalid_argument",
        "managed by the registry",
    );
    let e = c
        .set_alias(v1::SetAliasRequest {
            layer: 2,
            alias: "retention".into(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);

    // Filters, over HTTP and gRPC, combined with pagination.
    let versions = |v: &Value| -> Vec<u64> {
        v["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect()
    };
    let (_, l) = app.get_json("/models/layer/2?training_job_id=job-1").await;
    assert_eq!(versions(&l), [2]);
    let (_, l) = app.get_json("/models/layer/2?dataset_id=ds-a").await;
    assert_eq!(versions(&l), [3, 2, 1]);
    let (_, l) = app
        .get_json("/models/layer/2?dataset_id=ds-b&training_job_id=job-4")
        .await;
    assert_eq!(versions(&l), [5]);
    let (_, l) = app.get_json("/models/layer/2?alias=latest").await;
    assert_eq!(versions(&l), [6]);
    let (_, l) = app.get_json("/models/layer/2?alias=nobody").await;
    assert_eq!(versions(&l), Vec::<u64>::new());
    let (_, p1) = app
        .get_json("/models/layer/2?dataset_id=ds-b&limit=2")
        .await;
    assert_eq!(versions(&p1), [6, 5]);
    let token = p1["next_page_token"].as_str().expect("next page");
    let (_, p2) = app
        .get_json(&format!(
            "/models/layer/2?dataset_id=ds-b&limit=2&page_token={token}"
        ))
        .await;
    assert_eq!(versions(&p2), [4]);
    assert!(p2["next_page_token"].is_null());
    // The stored time (the database may keep fewer digits than the clock).
    let t4 = c
        .get_version(v1::VersionRef {
            layer: 2,
            version: "4".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .created_at
        .unwrap();
    let after = chrono::DateTime::from_timestamp(t4.seconds, t4.nanos as u32).unwrap();
    let r = c
        .list_versions(v1::ListVersionsRequest {
            layer: 2,
            created_after: Some(t4),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let got: Vec<u32> = r.versions.iter().map(|v| v.version).collect();
    assert_eq!(got, [6, 5, 4]);
    let r = c
        .list_versions(v1::ListVersionsRequest {
            layer: 2,
            created_before: Some(t4),
            dataset_id: "ds-a".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.versions.len(), 3);
    let q = after.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (status, l) = app
        .get_json(&format!("/models/layer/2?created_after={q}"))
        .await;
    assert_eq!(status, 200, "{l}");
    assert_eq!(versions(&l), [6, 5, 4]);
    // An empty window holds nothing (it is not an error: the fuzzer's
    // schema-valid request must be accepted).
    let (status, l) = app
        .get_json(&format!(
            "/models/layer/2?created_after={q}&created_before={q}"
        ))
        .await;
    assert_eq!(status, 200, "{l}");
    assert!(versions(&l).is_empty(), "{l}");
    let (status, err) = app
        .get_json("/models/layer/2?created_after=yesterday")
        .await;
    assert_error(status, &err, 400, "invalid_argument", "");

    // The previous version: over gRPC and as GET /models/compare without `a`.
    let prev = c
        .previous_version(v1::VersionRef {
            layer: 2,
            version: "latest".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(prev.a.as_ref().unwrap().version, 5);
    assert_eq!(prev.b.as_ref().unwrap().version, 6);
    assert!((prev.deltas[0].delta - 1.0).abs() < 1e-9);
    assert!(prev.same_validation_data);
    let e = c
        .previous_version(v1::VersionRef {
            layer: 2,
            version: "1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(
        e.message().contains("no earlier version"),
        "{}",
        e.message()
    );
    let (status, cmp) = app.get_json("/models/compare?layer=2&b=4").await;
    assert_eq!(status, 200, "{cmp}");
    assert_eq!(
        (cmp["a"]["version"].as_u64(), cmp["b"]["version"].as_u64()),
        (Some(3), Some(4))
    );

    // Retention: keep the newest 2 plus the aliased (champion on 2).
    let (status, _) = app
        .put_json("/models/layer/2/aliases/champion", &json!({"version": 2}))
        .await;
    assert_eq!(status, 200);
    let r = restoreflow_tests::client()
        .post(app.url("/models/layer/2/retention"))
        .json(&json!({"keep_last": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "retention needs the key");
    let (status, err) = app
        .post_json("/models/layer/2/retention", &json!({"keep_last": 0}))
        .await;
    assert_error(status, &err, 400, "invalid_argument", "keep_last");
    let (status, ret) = app
        .post_json("/models/layer/2/retention", &json!({"keep_last": 2}))
        .await;
    assert_eq!(status, 200, "{ret}");
    assert_eq!(ret["deleted_versions"], json!([1, 3, 4]));
    assert_eq!(ret["kept_versions"], json!([6, 5, 2]));
    assert_eq!(ret["deleted_objects"].as_array().unwrap().len(), 6);
    let store = app.backends.store.as_ref();
    for v in [&registered[0], &registered[2], &registered[3]] {
        for key in [&v.object_key, &v.sidecar_key] {
            assert!(
                store.head(Bucket::Models, key).await.unwrap().is_none(),
                "{key} left behind"
            );
        }
    }
    for v in [&registered[1], &registered[4], &registered[5]] {
        assert!(
            store
                .head(Bucket::Models, &v.object_key)
                .await
                .unwrap()
                .is_some()
        );
    }
    let (_, l) = app.get_json("/models/layer/2").await;
    assert_eq!(versions(&l), [6, 5, 2]);
    // Nothing more to delete; over gRPC keep_last=1 keeps the aliased 6 and 2.
    let again = c
        .apply_retention(v1::ApplyRetentionRequest {
            layer: 2,
            keep_last: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.deleted_versions, [5]);
    assert_eq!(again.kept_versions, [6, 2]);

    // Deleting the latest version moves `latest` back; numbers stay spent.
    let (status, _) = app
        .put_json("/models/layer/2/aliases/champion", &json!({"version": 6}))
        .await;
    assert_eq!(status, 200);
    let (status, del) = app.delete("/models/layer/2/2").await;
    assert_eq!(status, 200, "{del}");
    let (status, err) = app.delete("/models/layer/2/6").await;
    assert_error(status, &err, 409, "failed_precondition", "champion");
    let v7 = register(app, register_request(2, &key, json!({}), "")).await;
    assert_eq!(
        (v7.version, v7.aliases.clone()),
        (7, vec!["latest".to_string()])
    );
    let (status, _) = app.delete("/models/layer/2/7").await;
    assert_eq!(status, 200);
    let (_, latest) = app.get_json("/models/layer/2/latest").await;
    assert_eq!(latest["version"], 6);
    assert_eq!(latest["aliases"], json!(["champion", "latest"]));
}

#[tokio::test]
async fn registry_extras_embedded() {
    let app = TestApp::spawn(Kind::Embedded).await;
    registry_extras(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn registry_extras_real_backends() {
    let app = TestApp::spawn(Kind::Real).await;
    registry_extras(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn registry_lifecycle_embedded() {
    let app = TestApp::spawn(Kind::Embedded).await;
    bad_inputs(&app).await;
    registry_lifecycle(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn registry_lifecycle_real_backends() {
    let app = TestApp::spawn(Kind::Real).await;
    bad_inputs(&app).await;
    registry_lifecycle(&app).await;
    app.stop().await;
}
