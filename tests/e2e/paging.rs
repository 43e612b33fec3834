//! One pagination convention over every REST list: `page_size` and
//! `page_token` in, `next_page_token` out; the old `limit`, `offset` and
//! `continuation_token` still accepted for one release (the new names win
//! when a request gives both).

use std::collections::BTreeSet;
use std::time::Duration;

use restoreflow_tests::{Kind, TestApp, urlencode};
use serde_json::{Value, json};

fn ids(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_list_pages_with_page_size_and_page_token_and_old_names_still_work() {
    let app = TestApp::spawn(Kind::Embedded).await;
    for seed in 1..=3 {
        let id = app
            .generate(json!({"num_images": 1, "preset": "light", "seed": seed, "width": 96, "height": 96}))
            .await;
        let job = app.wait_job(&id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "completed", "{job}");
    }

    // /jobs: two pages of the three jobs, no overlap.
    let (status, p1) = app.get_json("/jobs?page_size=2").await;
    assert_eq!(status, 200, "{p1}");
    assert_eq!(ids(&p1, "jobs").len(), 2);
    let token = p1["next_page_token"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, p2) = app
        .get_json(&format!(
            "/jobs?page_size=2&page_token={}",
            urlencode(&token)
        ))
        .await;
    let mut all: BTreeSet<String> = ids(&p1, "jobs").into_iter().collect();
    all.extend(ids(&p2, "jobs"));
    assert_eq!(all.len(), 3, "{p1} {p2}");
    assert!(p2["next_page_token"].is_null(), "last page: {p2}");
    // The old names give the same pages.
    let (_, old) = app.get_json("/jobs?limit=2&offset=2").await;
    assert_eq!(ids(&old, "jobs"), ids(&p2, "jobs"));
    assert_eq!(p1["next_offset"], 2);
    // Old and new together: the new names win.
    let (_, mixed) = app
        .get_json(&format!(
            "/jobs?page_size=2&limit=1&page_token={}&offset=0",
            urlencode(&token)
        ))
        .await;
    assert_eq!(ids(&mixed, "jobs"), ids(&p2, "jobs"));
    for bad in [
        "/jobs?page_token=not-ours",
        "/jobs?page_size=0",
        "/jobs?page_size=201",
    ] {
        let (status, e) = app.get_json(bad).await;
        assert_eq!(status, 400, "{bad}: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains("page"),
            "{bad}: {e}"
        );
    }

    // /synthetic/datasets: the body stays an array, the token is a header.
    let r = app
        .http
        .get(app.url("/synthetic/datasets?page_size=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["x-next-page-token"]
        .to_str()
        .unwrap()
        .to_string();
    let first: Vec<Value> = r.json().await.unwrap();
    let (_, second) = app
        .get_json(&format!(
            "/synthetic/datasets?page_size=2&page_token={}",
            urlencode(&token)
        ))
        .await;
    assert_eq!(first.len() + second.as_array().unwrap().len(), 3);
    let (_, old) = app.get_json("/synthetic/datasets?limit=2&offset=2").await;
    assert_eq!(old, second);

    // /files: the object-store token, under both names.
    let (status, f1) = app.get_json("/files/synthetic-data?page_size=1").await;
    assert_eq!(status, 200, "{f1}");
    assert_eq!(f1["objects"].as_array().unwrap().len(), 1);
    let token = f1["next_page_token"]
        .as_str()
        .expect("more objects")
        .to_string();
    assert_eq!(f1["next_token"], f1["next_page_token"]);
    let (_, f2) = app
        .get_json(&format!(
            "/files/synthetic-data?page_size=1&page_token={}",
            urlencode(&token)
        ))
        .await;
    let (_, f2_old) = app
        .get_json(&format!(
            "/files/synthetic-data?limit=1&continuation_token={}",
            urlencode(&token)
        ))
        .await;
    assert_eq!(f2["objects"], f2_old["objects"]);
    assert_ne!(f2["objects"], f1["objects"]);
    let (_, mixed) = app
        .get_json(&format!(
            "/files/synthetic-data?page_size=1&limit=5&page_token={}&continuation_token=junk",
            urlencode(&token)
        ))
        .await;
    assert_eq!(mixed["objects"], f2["objects"]);

    // gRPC-backed lists take the same names.
    for (ok, bad) in [
        (
            "/training/jobs?page_size=1&limit=500",
            "/training/jobs?page_size=0",
        ),
        ("/models/layer/2?page_size=1", "/models/layer/2?page_size=0"),
        ("/models/layer/2?limit=1", "/models/layer/2?limit=1001"),
        (
            "/training/reports?page_size=1",
            "/training/reports?page_size=1&limit=1",
        ),
    ] {
        let (status, v) = app.get_json(ok).await;
        assert_eq!(status, 200, "{ok}: {v}");
        let (status, v) = app.get_json(bad).await;
        assert_eq!(status, 400, "{bad}: {v}");
    }
    app.stop().await;
}
