//! Observability of a running system: one trace from an HTTP request
//! through gRPC and RabbitMQ into a worker in another process, exported over
//! OTLP; Prometheus metrics of every kind that appear and move.

use std::path::Path;
use std::time::{Duration, Instant};

use restoreflow_core::metrics::{names, sample};
use restoreflow_tests::{
    Collector, Kind, RealOptions, TestApp, TrainerProcess, trainer_env, unique,
};
use serde_json::json;

use crate::training::{tiny_dataset, tiny_run, wait_training};

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The metrics at `url` (the gateway's need the API key; a service's
/// metrics port needs none).
async fn scrape(http: &reqwest::Client, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return r.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "no metrics at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or(0.0)
}

/// The test sends its own `traceparent` and request id with a training
/// request; the trainer worker, a separate process reached only through
/// RabbitMQ, exports its `job` span over OTLP in that same trace with that
/// request id. The worker process's metrics endpoint shows the job's steps,
/// throughput, validation PSNR, duration and outcome; the gateway's shows
/// the HTTP and gRPC calls, the queue and the restore path.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_trace_reaches_a_worker_process_over_the_bus_and_its_metrics_move() {
    let collector = Collector::start().await;
    let app = TestApp::spawn_real_with(
        &unique(),
        RealOptions {
            trainers: 0,
            ..RealOptions::default()
        },
    )
    .await;
    let dataset = tiny_dataset(&app).await;
    let metrics_port = free_port();
    let mut env = trainer_env(&app.settings);
    env.push((
        "RESTOREFLOW__TELEMETRY__OTLP_ENDPOINT".into(),
        collector.endpoint(),
    ));
    env.push((
        "RESTOREFLOW__TELEMETRY__METRICS_ADDR".into(),
        format!("127.0.0.1:{metrics_port}"),
    ));
    env.push((
        "RESTOREFLOW__TELEMETRY__SERVICE_NAME".into(),
        "trainer-under-test".into(),
    ));
    let mut worker = TrainerProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_restoreflow-test-trainer")),
        &env,
    );
    let worker_metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let before = scrape(&reqwest::Client::new(), &worker_metrics).await;
    let gateway_before = scrape(&app.http, &app.url("/metrics")).await;

    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let request_id = format!("obs-{}", unique());
    let r = app
        .http
        .post(app.url("/training/layer2/start"))
        .header("x-api-key", &app.api_key)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .header("x-request-id", &request_id)
        .json(&tiny_run(&dataset, 2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let answered = r.headers()["traceparent"].to_str().unwrap().to_string();
    assert!(answered.contains(&trace_id), "{answered}");
    assert_eq!(r.headers()["x-request-id"], request_id.as_str());
    let v: serde_json::Value = r.json().await.unwrap();
    let job_id = v["job_id"].as_str().unwrap().to_string();
    let job = wait_training(&app, &job_id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "completed", "{job}");

    // The worker's span, exported by the other process, continues the trace.
    let deadline = Instant::now() + Duration::from_secs(30);
    let job_span = loop {
        let spans = collector.spans();
        if let Some(s) = spans
            .iter()
            .find(|s| s.name == "job training_layer2" && s.attribute("job_id") == Some(&job_id))
        {
            break s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no job span exported; got {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(job_span.service, "trainer-under-test");
    assert_eq!(job_span.trace_id, trace_id, "{job_span:?}");
    assert_eq!(job_span.attribute("request_id"), Some(request_id.as_str()));
    // Its parent is the trainer's gRPC span in the test process, not the
    // test's own span id: the context went HTTP → gRPC → bus.
    assert_ne!(job_span.parent_span_id, "00f067aa0ba902b7");
    assert_eq!(job_span.parent_span_id.len(), 16);

    // The worker process's metrics moved with the job.
    let after = scrape(&reqwest::Client::new(), &worker_metrics).await;
    let device = [("device", "cpu")];
    assert!(
        value(&after, "restoreflow_training_step_seconds_count", &device)
            > value(&before, "restoreflow_training_step_seconds_count", &device),
        "{after}"
    );
    assert!(after.contains("restoreflow_training_step_seconds_bucket{device=\"cpu\",le=\"0.01\"}"));
    let this_job = [("job_id", job_id.as_str())];
    assert!(
        value(&after, names::TRAINING_THROUGHPUT, &this_job) > 0.0,
        "{after}"
    );
    let psnr = value(&after, names::VALIDATION_PSNR, &this_job);
    assert!(psnr > 5.0 && psnr < 80.0, "validation PSNR {psnr}");
    let done = [("kind", "training_layer2"), ("status", "completed")];
    assert!(
        value(&after, names::JOBS_FINISHED, &done) > value(&before, names::JOBS_FINISHED, &done)
    );
    assert!(
        value(&after, "restoreflow_job_duration_seconds_count", &done)
            > value(&before, "restoreflow_job_duration_seconds_count", &done)
    );
    assert!(
        sample(&after, names::QUEUE_DEPTH, &[]).is_some(),
        "queue depth is published: {after}"
    );
    assert!(
        value(
            &after,
            names::JOBS,
            &[("kind", "training_layer2"), ("status", "completed")]
        ) >= 1.0
    );

    // The restore path in the serving trainer: a miss loads the model, a hit
    // reuses it; both are timed.
    let png = {
        let img = image::RgbImage::from_fn(96, 64, |x, y| {
            image::Rgb([((x * 3 + y) % 255) as u8, 200, 180])
        });
        let mut buf = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut buf, image::ImageFormat::Png)
            .unwrap();
        buf.into_inner()
    };
    for _ in 0..2 {
        let form = reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(png.clone()).file_name("page.png"),
            )
            .text("pipeline", "layer2")
            .text("alias", "latest");
        let r = app
            .http
            .post(app.url("/restore/document"))
            .header("x-api-key", &app.api_key)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let gateway = scrape(&app.http, &app.url("/metrics")).await;
    for result in ["hit", "miss"] {
        let l = [("result", result)];
        assert!(
            value(&gateway, names::MODEL_CACHE, &l)
                > value(&gateway_before, names::MODEL_CACHE, &l),
            "model cache {result}s move: {gateway}"
        );
    }
    let sync = [("mode", "sync")];
    assert!(
        value(
            &gateway,
            "restoreflow_restore_duration_seconds_count",
            &sync
        ) >= value(
            &gateway_before,
            "restoreflow_restore_duration_seconds_count",
            &sync
        ) + 2.0
    );
    let start_route = [("path", "/training/layer2/start"), ("status", "202")];
    assert!(
        value(
            &gateway,
            "http_request_duration_seconds_count",
            &start_route
        ) > value(
            &gateway_before,
            "http_request_duration_seconds_count",
            &start_route
        )
    );
    let rpc = [("method", "StartTraining"), ("code", "Ok")];
    assert!(
        value(&gateway, names::GRPC_REQUESTS, &rpc)
            > value(&gateway_before, names::GRPC_REQUESTS, &rpc),
        "{gateway}"
    );
    assert!(gateway.contains("grpc_server_request_duration_seconds_bucket"));
    // Histograms, never summaries: quantiles that read 0 are gone.
    assert!(!gateway.contains("quantile="));
    worker.kill9();
    app.stop().await;
}

/// The embedded system: the gateway's `/metrics` shows every service of the
/// one process, and a synthetic job moves the job, queue and gRPC series;
/// a refused gRPC call is counted with its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_metrics_cover_every_service_and_count_failures_by_code() {
    let app = TestApp::spawn(Kind::Embedded).await;
    let before = scrape(&app.http, &app.url("/metrics")).await;
    let id = app
        .generate(json!({"num_images": 2, "preset": "light", "seed": 3, "width": 96, "height": 96}))
        .await;
    let job = app.wait_job(&id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "completed", "{job}");
    // Invalid input: the synthetic-data service answers InvalidArgument.
    let (status, _) = app
        .post_json("/synthetic/generate", &json!({"num_images": 0}))
        .await;
    assert_eq!(status, 400);
    let after = scrape(&app.http, &app.url("/metrics")).await;
    let done = [("kind", "synthetic"), ("status", "completed")];
    assert!(
        value(&after, names::JOBS_FINISHED, &done) > value(&before, names::JOBS_FINISHED, &done)
    );
    assert!(
        value(
            &after,
            "restoreflow_job_duration_seconds_count",
            &[("kind", "synthetic")]
        ) > value(
            &before,
            "restoreflow_job_duration_seconds_count",
            &[("kind", "synthetic")]
        )
    );
    assert!(
        sample(
            &after,
            names::JOBS,
            &[("kind", "synthetic"), ("status", "completed")]
        )
        .is_some()
    );
    assert!(
        sample(&after, names::QUEUE_DEPTH, &[("queue", "jobs.synthetic")]).is_some(),
        "{after}"
    );
    let ok = [
        ("service", "restoreflow.v1.SyntheticDataService"),
        ("code", "Ok"),
    ];
    assert!(
        value(&after, names::GRPC_REQUESTS, &ok) > value(&before, names::GRPC_REQUESTS, &ok),
        "{after}"
    );
    let refused = [("code", "InvalidArgument")];
    let (b, a) = (
        value(&before, names::GRPC_REQUESTS, &refused),
        value(&after, names::GRPC_REQUESTS, &refused),
    );
    // The gateway may refuse it first (400 before any call); either way the
    // HTTP series counts it.
    let http400 = [("path", "/synthetic/generate"), ("status", "400")];
    assert!(
        a > b
            || value(&after, names::HTTP_REQUESTS, &http400)
                > value(&before, names::HTTP_REQUESTS, &http400),
        "{after}"
    );
    app.stop().await;
}
