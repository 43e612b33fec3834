//! The gateway's job views come from the services that run the jobs (their
//! `JobService` ledgers over gRPC), not from their tables: a second gateway
//! whose own database is an empty SQLite file lists, reads, pages and cancels
//! the jobs of a real-backend system.

use std::sync::Arc;

use restoreflow_core::Backends;
use restoreflow_core::config::Secret;
use restoreflow_core::db::{self, JobKind, JobStatus};
use restoreflow_core::shutdown::CancellationToken;
use restoreflow_tests::{Kind, TestApp, client_with_key, urlencode};
use serde_json::Value;

fn ids(page: &Value) -> Vec<String> {
    page["jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_without_the_job_tables_sees_every_service_ledger() {
    let app = TestApp::spawn(Kind::Real).await;
    let db = &app.backends.db;
    // Jobs of both services, interleaved in time. Nothing runs layer-1
    // evaluations, so that one stays queued.
    let kinds = [
        JobKind::Synthetic,
        JobKind::TrainingLayer2,
        JobKind::Evaluation,
        JobKind::Synthetic,
        JobKind::RestoreBatch,
        JobKind::Synthetic,
        JobKind::Layer1Evaluation,
    ];
    let mut made = Vec::new();
    for kind in kinds {
        made.push(db::create_job(db, kind, Value::Null).await.unwrap());
    }
    let mut newest_first = made.clone();
    newest_first.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let expected: Vec<String> = newest_first.iter().map(|j| j.id.clone()).collect();

    // A second gateway: the same services, its own empty database.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = app.settings.clone();
    settings.database.url = Secret::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("gateway.db").display()
    ));
    settings.gateway.http_addr = "127.0.0.1:0".into();
    let backends = Backends::connect(&settings).await.expect("backends");
    let gateway = restoreflow_gateway::Application::build_with(settings, backends)
        .await
        .expect("second gateway builds");
    let base = format!("http://{}", gateway.http_addr());
    let stop = CancellationToken::new();
    let t = stop.clone();
    let task = tokio::spawn(async move { gateway.run_until_stopped(t).await });
    let http = Arc::new(client_with_key(&app.api_key));
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let r = http.get(&url).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Pages of 2 merge both ledgers in one newest-first order.
    let mut seen = Vec::new();
    let mut path = "/jobs?page_size=2".to_string();
    loop {
        let (status, page) = get(path.clone()).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        match page["next_page_token"].as_str() {
            Some(t) => path = format!("/jobs?page_size=2&page_token={}", urlencode(t)),
            None => break,
        }
        assert!(seen.len() <= expected.len(), "{seen:?}");
    }
    assert_eq!(seen, expected);
    // The deprecated offset walks the same order.
    let (_, old) = get("/jobs?limit=2&offset=3".into()).await;
    assert_eq!(ids(&old), expected[3..5].to_vec(), "{old}");
    assert_eq!(old["next_offset"], 5);
    let (_, past) = get("/jobs?offset=50".into()).await;
    assert_eq!(ids(&past), Vec::<String>::new());
    // One kind asks only its owner.
    let (_, synth) = get("/jobs?kind=synthetic".into()).await;
    let want: Vec<String> = newest_first
        .iter()
        .filter(|j| j.kind == JobKind::Synthetic)
        .map(|j| j.id.clone())
        .collect();
    assert_eq!(ids(&synth), want);

    // Single jobs and their events, of either service.
    for job in &made {
        let (status, view) = get(format!("/jobs/{}", job.id)).await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["kind"], job.kind.as_str());
        let (status, events) = get(format!("/jobs/{}/events", job.id)).await;
        assert_eq!(status, 200, "{events}");
        assert!(!events.as_array().unwrap().is_empty(), "{events}");
    }
    let (status, _) = get(format!("/jobs/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(status, 404);

    // Cancel goes to the owner, which writes its own row.
    let queued = made.last().unwrap();
    let r = http
        .post(format!("{base}/jobs/{}/cancel", queued.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "cancelled", "{body}");
    assert_eq!(
        db::require_job(db, &queued.id).await.unwrap().status,
        JobStatus::Cancelled
    );
    stop.cancel();
    let _ = task.await;
}
