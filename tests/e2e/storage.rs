//! The object-store adapters against the real S3 server, and uploads and
//! downloads through the gateway.

use bytes::Bytes;
use futures::StreamExt;
use restoreflow_core::storage::{Bucket, ObjectStore, StorageError, get_bytes, list_all};
use restoreflow_tests::{Kind, TestApp, s3_settings, s3_store, sha256, unique};

/// Presigned URLs name `storage.s3_public_endpoint` (the address a client
/// outside the services' network uses), and they work there; without it they
/// name the services' own endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presigned_urls_name_the_public_endpoint() {
    let tag = unique();
    let internal = s3_settings(&tag);
    // The same server under another name, as a user's machine would reach it.
    let url = url_parts(&internal.s3_endpoint);
    let public = format!("http://localhost:{}", url.1);
    let store =
        restoreflow_core::storage::S3Store::new(&restoreflow_core::config::StorageSettings {
            s3_public_endpoint: public.clone(),
            ..internal.clone()
        });
    store.ensure_buckets().await.unwrap();
    let body = Bytes::from_static(b"weights for someone outside");
    store
        .put(
            Bucket::Models,
            "p/w.bin",
            body.clone(),
            "application/octet-stream",
        )
        .await
        .unwrap();
    let ttl = std::time::Duration::from_secs(300);
    let signed = store
        .presign_get(Bucket::Models, "p/w.bin", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(signed.starts_with(&format!("{public}/")), "{signed}");
    let r = reqwest::get(&signed).await.unwrap();
    assert_eq!(r.status(), 200, "{signed}");
    assert_eq!(r.bytes().await.unwrap(), body);
    // Unset: the services' endpoint.
    let plain = s3_store(&tag)
        .presign_get(Bucket::Models, "p/w.bin", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(
        plain.starts_with(&format!("{}/", internal.s3_endpoint)),
        "{plain}"
    );
}

/// `(host, port)` of an `http://host:port` URL.
fn url_parts(url: &str) -> (String, String) {
    let rest = url.trim_start_matches("http://").trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').expect("endpoint has a port");
    (host.to_string(), port.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_listing_paginates_past_1000_keys() {
    let store = s3_store(&unique());
    store.ensure_buckets().await.unwrap();
    store
        .ensure_buckets()
        .await
        .expect("bucket creation is idempotent");
    store.health().await.unwrap();
    let n = 1005;
    futures::stream::iter(0..n)
        .map(|i| {
            let store = store.clone();
            async move {
                store
                    .put(
                        Bucket::Evaluation,
                        &format!("many/{i:05}.txt"),
                        Bytes::from(i.to_string()),
                        "text/plain",
                    )
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let first = store
        .list(Bucket::Evaluation, "many/", None, 1000)
        .await
        .unwrap();
    assert_eq!(first.objects.len(), 1000);
    assert!(
        first.next_token.is_some(),
        "a full page must offer a continuation"
    );
    let all = list_all(&store, Bucket::Evaluation, "many/").await.unwrap();
    assert_eq!(all.len(), n);
    assert_eq!(all.last().unwrap().key, "many/01004.txt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_large_objects_stream_as_multipart_and_limits_store_nothing() {
    let store = s3_store(&unique());
    store.ensure_buckets().await.unwrap();
    // 17 MiB in 64 KiB chunks: four 5 MiB parts and a remainder.
    let chunk: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let chunks = 17 * 16;
    let mut expected = Vec::with_capacity(chunks * chunk.len());
    for _ in 0..chunks {
        expected.extend_from_slice(&chunk);
    }
    let c2 = Bytes::from(chunk.clone());
    let body = futures::stream::iter((0..chunks).map(move |_| Ok(c2.clone()))).boxed();
    let meta = store
        .put_stream(
            Bucket::Models,
            "layer_2/big.safetensors",
            body,
            "application/octet-stream",
            None,
        )
        .await
        .unwrap();
    assert_eq!(meta.size, expected.len() as u64);
    let head = store
        .head(Bucket::Models, "layer_2/big.safetensors")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.size, expected.len() as u64);
    let got = get_bytes(&store, Bucket::Models, "layer_2/big.safetensors", 1 << 30)
        .await
        .unwrap();
    assert_eq!(sha256(&got), sha256(&expected));

    // Over the limit after the first part: the multipart upload is aborted.
    let c3 = Bytes::from(chunk);
    let body = futures::stream::iter((0..chunks).map(move |_| Ok(c3.clone()))).boxed();
    let err = store
        .put_stream(
            Bucket::Models,
            "layer_2/too-big.bin",
            body,
            "application/octet-stream",
            Some(7 * 1024 * 1024),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::TooLarge { .. }), "{err}");
    assert!(
        store
            .head(Bucket::Models, "layer_2/too-big.bin")
            .await
            .unwrap()
            .is_none()
    );

    store
        .delete(Bucket::Models, "layer_2/big.safetensors")
        .await
        .unwrap();
    assert!(matches!(
        store.get(Bucket::Models, "layer_2/big.safetensors").await,
        Err(StorageError::NotFound { .. })
    ));
}

async fn upload_download_and_degrade(app: &TestApp) {
    let png = {
        let img = image::RgbImage::from_fn(96, 80, |x, y| {
            if (x / 8 + y / 8) % 2 == 0 {
                image::Rgb([20, 20, 20])
            } else {
                image::Rgb([240, 240, 235])
            }
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let r = app
        .http
        .put(app.url("/files/training-data/clean/uploaded_00001.png"))
        .header("x-api-key", &app.api_key)
        .header("content-type", "image/png")
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = app
        .http
        .get(app.url("/files/training-data/clean/uploaded_00001.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), png.as_slice());
    // Stored HTML is served as a download the browser neither renders nor
    // sniffs, so an upload cannot run script on the gateway's origin.
    let page = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    let (status, v) = app
        .put_bytes("/files/training-data/notes/page.html", page.clone())
        .await;
    assert_eq!(status, 201, "{v}");
    let r = app
        .http
        .get(app.url("/files/training-data/notes/page.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"page.html\""
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox"),
        "{h:?}"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), page.as_slice());
    let stored = get_bytes(
        app.backends.store.as_ref(),
        Bucket::TrainingData,
        "clean/uploaded_00001.png",
        1 << 20,
    )
    .await
    .unwrap();
    assert_eq!(stored.as_ref(), png.as_slice());

    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(png.clone()).file_name("page.png"),
        )
        .text("degradation_type", "salt_pepper")
        .text("seed", "9");
    let r = app
        .http
        .post(app.url("/synthetic/degrade"))
        .header("x-api-key", &app.api_key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["x-restoreflow-seed"], "9");
    let applied: serde_json::Value =
        serde_json::from_str(r.headers()["x-restoreflow-degradations"].to_str().unwrap()).unwrap();
    assert_eq!(applied[0]["family"], "salt_pepper");
    let out = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert_eq!((out.width(), out.height()), (96, 80));
    assert_ne!(
        out.to_rgb8().into_raw(),
        image::load_from_memory(&png).unwrap().to_rgb8().into_raw()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_download_and_degrade_on_embedded_backends() {
    let app = TestApp::spawn(Kind::Embedded).await;
    upload_download_and_degrade(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_download_and_degrade_on_real_backends() {
    let app = TestApp::spawn(Kind::Real).await;
    upload_download_and_degrade(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn s3_rejects_keys_that_escape_the_bucket() {
    let store = s3_store(&unique());
    let err = store
        .put(
            Bucket::TrainingData,
            "../x",
            Bytes::from_static(b"x"),
            "text/plain",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidKey { .. }));
}
