//! Health, metrics, the OpenAPI document, Swagger UI and the gRPC contracts.

use restoreflow_proto::v1;
use restoreflow_proto::v1::synthetic_data_service_client::SyntheticDataServiceClient;
use restoreflow_tests::{Kind, TestApp};

async fn check_system_routes(app: &TestApp, db: &str, storage: &str, bus: &str) {
    let (status, health) = app.get_json("/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["checks"]["database"]["backend"], db);
    assert_eq!(health["checks"]["storage"]["backend"], storage);
    assert_eq!(health["checks"]["bus"]["backend"], bus);
    assert_eq!(health["checks"]["synthetic_data"]["ok"], true);
    assert_eq!(health["checks"]["model_registry"]["ok"], true);
    assert_eq!(health["checks"]["trainer"]["ok"], true);

    let (status, spec) = app.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/synthetic/generate",
        "/synthetic/presets",
        "/synthetic/degrade",
        "/synthetic/stats",
        "/jobs/{id}",
        "/files/{bucket}",
        "/files/{bucket}/{key}",
        "/health",
        "/models/layer/{layer}",
        "/models/layer/{layer}/{version}",
        "/models/layer/{layer}/{version}/download",
        "/models/layer/{layer}/aliases/{alias}",
        "/models/layer/{layer}/retention",
        "/models/compare",
        "/training/layer2/start",
        "/training/status",
        "/training/jobs",
        "/training/jobs/{id}",
        "/training/jobs/{id}/events",
        "/training/jobs/{id}/cancel",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    // The router and the document are one table: every documented operation
    // is served (never the fallback's 404 or a 405). Placeholders get values
    // that fail validation before any effect (an unknown bucket or layer, a
    // fresh job id, a body that is not JSON).
    let mut operations = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let url = path
            .replace("{id}", &uuid::Uuid::new_v4().to_string())
            .replace("{job_id}", &uuid::Uuid::new_v4().to_string())
            .replace("{bucket}", "no-such-bucket")
            .replace("{key}", "deep/er/page.png")
            .replace("{layer}", "9")
            .replace("{version}", "1")
            .replace("{alias}", "x")
            .replace("{name}", "loss");
        for method in item.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .http
                .request(m, app.url(&url))
                .header("content-type", "application/json")
                .body("not json")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert_ne!(status, 405, "{method} {url}: {body}");
            assert!(
                !body.contains("no such route"),
                "{method} {path} is documented but not routed: {status} {body}"
            );
            operations += 1;
        }
    }
    assert!(operations >= 38, "{operations} operations documented");
    let docs = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(
        docs.text().await.unwrap().contains("swagger"),
        "Swagger UI is served"
    );
    let js = app
        .http
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200, "Swagger UI assets are vendored");

    let (status, presets) = app.get_json("/synthetic/presets").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = presets["presets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in ["light", "scan", "photo", "heavy", "mixed"] {
        assert!(names.contains(&p), "preset {p} missing");
    }
    // The OpenAPI enum of presets is exactly what the service lists, aliases
    // included (a preset added to synth without the gateway fails here).
    let mut listed: Vec<String> = presets["presets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            std::iter::once(p["name"].as_str().unwrap().to_string()).chain(
                p["aliases"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string()),
            )
        })
        .collect();
    let mut documented: Vec<String> =
        spec["components"]["schemas"]["GenerateBody"]["properties"]["preset"]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", spec["components"]["schemas"]["GenerateBody"]))
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
    listed.sort();
    documented.sort();
    assert_eq!(listed, documented);
    // The replaced system's name works and is stored as the preset it means.
    let (status, v) = app
        .post_json(
            "/synthetic/generate",
            &serde_json::json!({"num_images": 1, "degradation_type": "document-clean", "width": 96, "height": 96}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let job = app
        .wait_job(
            v["job_id"].as_str().unwrap(),
            std::time::Duration::from_secs(60),
        )
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        job["params"]["degradation"],
        serde_json::json!({"type": "preset", "name": "light"}),
        "{job}"
    );
    assert!(presets["families"].as_array().unwrap().len() >= 20);

    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
}

async fn check_grpc(app: &TestApp) {
    let channel = tonic::transport::Endpoint::from_shared(app.synthetic_grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health_client(channel.clone());
    let resp = health
        .check(tonic_health_check("restoreflow.v1.SyntheticDataService"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.status, 1, "SERVING");
    // The services are an internal API: a call without the shared token, or
    // with a wrong one, is refused (health above needs none).
    let request = || v1::ListPresetsRequest {};
    let err = SyntheticDataServiceClient::new(channel.clone())
        .list_presets(request())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("internal token"), "{err:?}");
    let wrong = restoreflow_core::grpc::authed(
        channel.clone(),
        Some(&restoreflow_core::config::Secret::new(
            "a-wrong-internal-token",
        )),
    );
    let err = SyntheticDataServiceClient::new(wrong)
        .list_presets(request())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    for url in [&app.registry_grpc, &app.trainer_grpc] {
        let bare = tonic::transport::Endpoint::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let err =
            restoreflow_proto::v1::model_registry_service_client::ModelRegistryServiceClient::new(
                bare,
            )
            .list_versions(v1::ListVersionsRequest {
                layer: 2,
                ..Default::default()
            })
            .await
            .unwrap_err();
        // The trainer does not serve the registry API, but it refuses the
        // call for the token before it would answer Unimplemented.
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{url}: {err:?}");
    }
    let mut client = SyntheticDataServiceClient::new(app.grpc_channel(&app.synthetic_grpc).await);
    let err = client
        .generate(v1::GenerateRequest {
            num_images: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("num_images"));
    let err = client
        .degrade(v1::DegradeRequest {
            image: b"nope".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let presets = client
        .list_presets(v1::ListPresetsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(presets.families.len() >= 20);

    let channel = tonic::transport::Endpoint::from_shared(app.registry_grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let resp = tonic_health_client(channel)
        .check(tonic_health_check("restoreflow.v1.ModelRegistryService"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.status, 1, "registry SERVING");
}

fn tonic_health_client(
    ch: tonic::transport::Channel,
) -> restoreflow_tests::grpc_health::HealthClient<tonic::transport::Channel> {
    restoreflow_tests::grpc_health::HealthClient::new(ch)
}

fn tonic_health_check(service: &str) -> restoreflow_tests::grpc_health::HealthCheckRequest {
    restoreflow_tests::grpc_health::HealthCheckRequest {
        service: service.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn system_routes_and_grpc_on_embedded_backends() {
    let app = TestApp::spawn(Kind::Embedded).await;
    check_system_routes(&app, "sqlite", "local", "memory").await;
    check_grpc(&app).await;
    // `up` wrote where it listens, for the CLI tools (its gRPC ports are random).
    let dir = app.dir.as_ref().unwrap().path().canonicalize().unwrap();
    let up = restoreflow::UpServices::read(&dir).expect("services.json");
    assert_eq!(up.gateway, app.base);
    assert_eq!(up.trainer, app.trainer_grpc);
    assert_eq!(up.model_registry, app.registry_grpc);
    assert_eq!(up.synthetic_data, app.synthetic_grpc);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn system_routes_and_grpc_on_real_backends() {
    let app = TestApp::spawn(Kind::Real).await;
    check_system_routes(&app, "postgres", "s3", "amqp").await;
    check_grpc(&app).await;
    app.stop().await;
}
