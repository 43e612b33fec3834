//! Reliability of training jobs on PostgreSQL + RabbitMQ + S3: broker
//! connections that drop, an object store that goes away, a trainer process
//! killed with SIGKILL, and two trainers sharing one queue. Outages are
//! simulated with a per-test TCP proxy, never by touching the shared servers.

use std::path::Path;
use std::time::{Duration, Instant};

use restoreflow_core::bus::{AmqpBus, Bus};
use restoreflow_core::db;
use restoreflow_core::storage::{Bucket, list_all};
use restoreflow_tests::{Proxy, RealOptions, TestApp, TrainerProcess, trainer_env, unique};
use serde_json::json;

use crate::training::{start, tiny_dataset, tiny_run, wait_training};

fn amqp_url() -> String {
    std::env::var("RESTOREFLOW_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// `host:port` of a URL such as `amqp://u:p@host:5672/%2f` or `http://host:3900`.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// `url` with its `host:port` replaced by `addr`.
fn via(url: &str, addr: std::net::SocketAddr) -> String {
    url.replacen(&host_port(url), &addr.to_string(), 1)
}

/// Polls until `f` returns `Some`, failing after `timeout`.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the job's first epoch checkpoint is complete in storage.
async fn wait_first_checkpoint(app: &TestApp, id: &str) {
    let key = format!("checkpoints/{id}/epoch-0001/checkpoint.json");
    wait_for(
        "the first epoch checkpoint",
        Duration::from_secs(180),
        || async {
            let head = app.backends.store.head(Bucket::TrainingOutputs, &key).await;
            head.ok().flatten().map(|_| ())
        },
    )
    .await;
}

/// A system on the real backends whose trainers are separate processes
/// (`trainers: 0`), with `configure` applied, and the trainer binary and
/// environment to start them.
async fn process_system(
    configure: fn(&mut restoreflow_core::Settings),
) -> (TestApp, &'static Path, Vec<(String, String)>) {
    let app = TestApp::spawn_real_with(
        &unique(),
        RealOptions {
            trainers: 0,
            configure: Some(configure),
            ..RealOptions::default()
        },
    )
    .await;
    let env = trainer_env(&app.settings);
    (
        app,
        Path::new(env!("CARGO_BIN_EXE_restoreflow-test-trainer")),
        env,
    )
}

async fn step_of(app: &TestApp, id: &str) -> u64 {
    let (_, j) = app.get_json(&format!("/training/jobs/{id}")).await;
    j["step"].as_u64().unwrap_or(0)
}

async fn wait_training_steps(app: &TestApp, id: &str) {
    wait_for(
        "training to take a step",
        Duration::from_secs(120),
        || async { (step_of(app, id).await > 0).then_some(()) },
    )
    .await;
}

/// One registered version for the job, and its per-epoch history.
async fn single_version(app: &TestApp, id: &str) -> Vec<u64> {
    let versions = db::versions_of_job(&app.backends.db, 2, id).await.unwrap();
    assert_eq!(versions.len(), 1, "exactly one version for {id}");
    versions[0].metrics["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_consumer_and_publisher_survive_a_killed_connection() {
    let prefix = format!("t{}.", unique());
    let bus = AmqpBus::connect(&amqp_url(), &prefix, 1).await.unwrap();
    let mut c = bus.consume("jobs.test", "survivor").await.unwrap();
    bus.publish("jobs.test", b"before").await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), c.next())
        .await
        .expect("a delivery arrives")
        .unwrap()
        .unwrap();
    assert_eq!(d.payload, b"before");
    // Taken but not acked when the connection dies: the broker requeues it.
    bus.kill_connection_for_tests().await;
    drop(d);
    bus.publish("jobs.test", b"after")
        .await
        .expect("publishing reconnects");
    let mut got = Vec::new();
    while got.len() < 2 {
        let d = tokio::time::timeout(Duration::from_secs(20), c.next())
            .await
            .expect("the consumer re-subscribes")
            .expect("the consumer stays open")
            .expect("delivery");
        if d.payload == b"before" {
            assert!(d.redelivered, "the unacked message is redelivered");
        }
        got.push(String::from_utf8(d.payload.clone()).unwrap());
        d.ack().await.unwrap();
    }
    got.sort();
    assert_eq!(got, ["after", "before"]);
    bus.health().await.unwrap();
    bus.close().await;
}

/// A system whose services all reach RabbitMQ through a [`Proxy`].
async fn broker_behind_proxy(configure: fn(&mut restoreflow_core::Settings)) -> (Proxy, TestApp) {
    let proxy = Proxy::start(&host_port(&amqp_url())).await;
    let app = TestApp::spawn_real_with(
        &unique(),
        RealOptions {
            amqp_url: Some(via(&amqp_url(), proxy.addr())),
            configure: Some(configure),
            ..RealOptions::default()
        },
    )
    .await;
    (proxy, app)
}

/// A system whose trainers reach the object store through a [`Proxy`].
async fn store_behind_proxy(configure: fn(&mut restoreflow_core::Settings)) -> (Proxy, TestApp) {
    let endpoint = restoreflow_tests::s3_settings("x").s3_endpoint;
    let proxy = Proxy::start(&host_port(&endpoint)).await;
    let app = TestApp::spawn_real_with(
        &unique(),
        RealOptions {
            trainer_s3_endpoint: Some(via(&endpoint, proxy.addr())),
            configure: Some(configure),
            ..RealOptions::default()
        },
    )
    .await;
    (proxy, app)
}

/// Every service reaches RabbitMQ through a proxy; the test cuts all those
/// connections mid-run. Recovery sweeps are off (one per hour), so later jobs
/// can only start through re-subscribed consumers and reconnected publishers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_keep_running_when_the_broker_connection_drops() {
    let (proxy, app) = broker_behind_proxy(|s| s.jobs.sweep_interval_secs = 3600).await;
    let dataset = tiny_dataset(&app).await;

    // Cut every connection while a job trains, then let them back.
    let running = start(&app, &tiny_run(&dataset, 3)).await;
    wait_training_steps(&app, &running).await;
    let reconnects = || {
        restoreflow_core::metrics::sample(
            &restoreflow_core::metrics::render(),
            restoreflow_core::metrics::names::BUS_RECONNECTS,
            &[],
        )
        .unwrap_or(0.0)
    };
    let reconnects_before = reconnects();
    proxy.switch_off();
    wait_for("the bus to notice", Duration::from_secs(10), || async {
        app.bus.health().await.is_err().then_some(())
    })
    .await;
    proxy.switch_on();

    // New work reaches both workers over the new connections.
    let dataset2 = tiny_dataset(&app).await;
    let queued = start(&app, &tiny_run(&dataset2, 1)).await;
    for id in [&running, &queued] {
        let job = wait_training(&app, id, Duration::from_secs(300)).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["attempts"], 1, "run once: {job}");
        single_version(&app, id).await;
    }
    assert!(
        reconnects() > reconnects_before,
        "the reconnections are counted"
    );
    app.stop().await;
}

async fn s3_outage(budget_secs: u64, outage_longer_than_budget: bool) {
    let configure: fn(&mut restoreflow_core::Settings) = if outage_longer_than_budget {
        |s| s.jobs.storage_retry_secs = 2
    } else {
        |s| s.jobs.storage_retry_secs = 60
    };
    let (proxy, app) = store_behind_proxy(configure).await;
    assert_eq!(app.settings.jobs.storage_retry_secs, budget_secs);
    let dataset = tiny_dataset(&app).await;
    let id = start(&app, &tiny_run(&dataset, 3)).await;
    // Pages are cached after the first epoch, so the outage hits the uploads.
    wait_first_checkpoint(&app, &id).await;
    proxy.switch_off();
    let job = if outage_longer_than_budget {
        let job = wait_training(&app, &id, Duration::from_secs(120)).await;
        proxy.switch_on();
        job
    } else {
        // Shorter than the budget: a few seconds of failed uploads.
        tokio::time::sleep(Duration::from_secs(3)).await;
        proxy.switch_on();
        wait_training(&app, &id, Duration::from_secs(300)).await
    };
    if outage_longer_than_budget {
        assert_eq!(job["status"], "failed", "{job}");
        // The failure's code travels with the job.
        assert!(job["result"]["error_code"].is_string(), "{job}");
        let error = job["error"].as_str().unwrap_or_default();
        assert!(
            // One slow attempt can outlast a short budget: "1 attempt" or "N attempts".
            error.contains("checkpoint upload failed after") && error.contains(" over "),
            "{error}"
        );
        let versions = db::versions_of_job(&app.backends.db, 2, &id).await.unwrap();
        assert!(versions.is_empty(), "nothing registered: {versions:?}");
    } else {
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(single_version(&app, &id).await, [1, 2, 3]);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoint_upload_rides_out_a_short_storage_outage() {
    s3_outage(60, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoint_upload_fails_the_job_after_its_retry_budget() {
    s3_outage(2, true).await;
}

/// A trainer process killed with SIGKILL after its first checkpoint: the next
/// trainer re-claims the job when the short lease expires, resumes from that
/// checkpoint and registers exactly one version with every epoch once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn training_resumes_after_the_trainer_process_is_killed() {
    let app = TestApp::spawn_real_with(
        &unique(),
        RealOptions {
            trainers: 0,
            configure: Some(|s| {
                s.jobs.lease_secs = 4;
                s.jobs.heartbeat_secs = 1;
            }),
            ..RealOptions::default()
        },
    )
    .await;
    let bin = Path::new(env!("CARGO_BIN_EXE_restoreflow-test-trainer"));
    let env = trainer_env(&app.settings);
    let dataset = tiny_dataset(&app).await;
    let epochs = 4;
    let mut body = tiny_run(&dataset, epochs);
    body["patch_size"] = json!(64);
    let id = start(&app, &body).await;

    let mut first = TrainerProcess::spawn(bin, &env);
    wait_first_checkpoint(&app, &id).await;
    first.kill9();
    let (_, mid) = app.get_json(&format!("/training/jobs/{id}")).await;
    assert_eq!(mid["status"], "running", "killed before finishing: {mid}");

    let _second = TrainerProcess::spawn(bin, &env);
    let job = wait_training(&app, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert!(
        job["result"]["resumed_from"]["epoch"].as_u64().unwrap_or(0) >= 1,
        "resumed from a checkpoint: {job}"
    );
    let all: Vec<u64> = (1..=u64::from(epochs)).collect();
    assert_eq!(single_version(&app, &id).await, all, "every epoch once");
    let seen: Vec<u64> = job["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, all, "{job}");
    app.stop().await;
}

/// Two trainers on one queue share three jobs: each runs once, each
/// registers once, and both workers report their device.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_trainers_share_a_queue_without_running_a_job_twice() {
    let app = TestApp::spawn_real_with(
        &unique(),
        RealOptions {
            trainers: 2,
            ..RealOptions::default()
        },
    )
    .await;
    let dataset = tiny_dataset(&app).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(start(&app, &tiny_run(&dataset, 2)).await);
    }
    let (status, st) = app.get_json("/training/status").await;
    assert_eq!(status, 200, "{st}");
    let workers = st["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{st}");
    for w in workers {
        assert_eq!(w["device"], "cpu", "{w}");
    }
    let mut owners = Vec::new();
    for id in &ids {
        let job = wait_training(&app, id, Duration::from_secs(300)).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(single_version(&app, id).await, [1, 2]);
        owners.push(job.clone());
    }
    let mut versions: Vec<u64> = owners
        .iter()
        .map(|j| j["result"]["version"].as_u64().unwrap())
        .collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), 3, "one version per job: {versions:?}");
    app.stop().await;
}

/// Short leases and sweeps, so that a dead or paused worker's job moves on in
/// seconds; two attempts per job.
fn quick_leases(s: &mut restoreflow_core::Settings) {
    s.jobs.lease_secs = 4;
    s.jobs.heartbeat_secs = 1;
    s.jobs.sweep_interval_secs = 1;
    s.jobs.max_attempts = 2;
}

/// Every event of a job, oldest first.
async fn events_of(app: &TestApp, id: &str) -> Vec<(String, serde_json::Value)> {
    db::list_events(&app.backends.db, id, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.payload))
        .collect()
}

/// The job's stored training outputs (checkpoints, samples) with their sizes
/// and modification times.
async fn outputs_of(app: &TestApp, id: &str) -> Vec<(String, u64, Option<String>)> {
    let store = app.backends.store.as_ref();
    let mut all = Vec::new();
    for prefix in [format!("checkpoints/{id}/"), format!("analysis/{id}/")] {
        for o in list_all(store, Bucket::TrainingOutputs, &prefix)
            .await
            .unwrap()
        {
            all.push((o.key, o.size, o.last_modified.map(|t| t.to_rfc3339())));
        }
    }
    all.sort();
    all
}

/// Polls the job's report until the report service has built it.
async fn report_of(app: &TestApp, id: &str) -> serde_json::Value {
    wait_for("the job's report", Duration::from_secs(90), || async {
        let (status, v) = app
            .get_json(&format!("/training/reports/job/{id}?format=json"))
            .await;
        (status == 200).then_some(v)
    })
    .await
}

/// Cancel of a job whose worker was killed: claims skip cancelled jobs, so
/// no worker would ever finish it. The next sweep does, within one lease
/// plus one sweep, and the run gets its report like any cancelled run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_dead_workers_job_ends_it() {
    let (app, bin, env) = process_system(quick_leases).await;
    let dataset = tiny_dataset(&app).await;
    let id = start(&app, &tiny_run(&dataset, 500)).await;
    // A second trainer already runs (and sweeps) while the first one dies.
    let mut doomed = TrainerProcess::spawn(bin, &env);
    wait_training_steps(&app, &id).await;
    let _sweeper = TrainerProcess::spawn(bin, &env);
    doomed.kill9();
    let (status, v) = app
        .post_json(&format!("/training/jobs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    let asked = Instant::now();
    let job = wait_training(&app, &id, Duration::from_secs(60)).await;
    let took = asked.elapsed();
    assert_eq!(job["status"], "cancelled", "{job}");
    let s = &app.settings.jobs;
    // One lease plus one sweep, and a few seconds for a busy machine.
    let bound = Duration::from_secs(s.lease_secs + s.sweep_interval_secs + 5);
    assert!(took <= bound, "cancelled after {took:?}, bound {bound:?}");
    assert!(
        db::versions_of_job(&app.backends.db, 2, &id)
            .await
            .unwrap()
            .is_empty()
    );
    let events = events_of(&app, &id).await;
    let last = &events.last().unwrap().1;
    assert_eq!(last["status"], "cancelled", "{events:?}");
    assert!(last["abandoned_by"].is_string(), "{last}");
    let report = report_of(&app, &id).await;
    assert_eq!(report["report"]["job"]["status"], "cancelled", "{report}");
    app.stop().await;
}

/// A poison job kills its worker on every attempt (here, the test kills each
/// trainer that claims it). After `jobs.max_attempts` claims it is never
/// claimed again: it ends `failed` with the reason, is dead-lettered and
/// reported, and the trainer that settled it lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_that_kills_every_worker_fails_after_its_attempts() {
    let (app, bin, env) = process_system(quick_leases).await;
    let dataset = tiny_dataset(&app).await;
    let id = start(&app, &tiny_run(&dataset, 500)).await;
    let max = app.settings.jobs.max_attempts;
    for attempt in 1..=u64::from(max) {
        let mut victim = TrainerProcess::spawn(bin, &env);
        wait_for(
            &format!("attempt {attempt} to train"),
            Duration::from_secs(120),
            || async {
                let (_, j) = app.get_json(&format!("/training/jobs/{id}")).await;
                (j["attempts"] == attempt
                    && j["status"] == "running"
                    && j["step"].as_u64() > Some(0))
                .then_some(())
            },
        )
        .await;
        victim.kill9();
    }
    let dead_queue = format!(
        "{}{}",
        restoreflow_core::bus::queues::TRAINING,
        restoreflow_core::bus::DEAD_LETTER_SUFFIX
    );
    let letters_before = app.bus.depth(&dead_queue).await.unwrap();
    let mut survivor = TrainerProcess::spawn(bin, &env);
    let job = wait_training(&app, &id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(
        job["attempts"],
        u64::from(max),
        "never claimed again: {job}"
    );
    let error = job["error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!("after {max} attempt")), "{error}");
    wait_for("the dead letter", Duration::from_secs(10), || async {
        (app.bus.depth(&dead_queue).await.unwrap() > letters_before).then_some(())
    })
    .await;
    let report = report_of(&app, &id).await;
    assert_eq!(report["report"]["job"]["status"], "failed", "{report}");
    assert!(survivor.running(), "the settling trainer is alive");
    app.stop().await;
}

/// A trainer frozen (SIGSTOP) past its lease while another one takes the job
/// over and finishes it, then thawed: it writes nothing (no event, no
/// checkpoint, no sample, no version), and exactly one version exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_worker_writes_nothing_once_its_lease_is_gone() {
    let (app, bin, env) = process_system(quick_leases).await;
    let dataset = tiny_dataset(&app).await;
    let epochs = 4;
    let mut body = tiny_run(&dataset, epochs);
    body["patch_size"] = json!(64);
    let id = start(&app, &body).await;
    let mut paused = TrainerProcess::spawn(bin, &env);
    wait_first_checkpoint(&app, &id).await;
    paused.pause();
    let _other = TrainerProcess::spawn(bin, &env);
    let job = wait_training(&app, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    // Let the report and the last writes settle, then take stock. (The report
    // service may build the report twice: from the completion event and from
    // its own sweep for completed jobs without a report; both write the same
    // charts. Wait until two looks 2 s apart agree.)
    report_of(&app, &id).await;
    let events = events_of(&app, &id).await;
    let outputs = wait_for(
        "the stored outputs to settle",
        Duration::from_secs(60),
        || async {
            let first = outputs_of(&app, &id).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            (outputs_of(&app, &id).await == first).then_some(first)
        },
    )
    .await;

    paused.resume();
    // Several of its heartbeats and training steps go by.
    tokio::time::sleep(Duration::from_secs(
        4 * app.settings.jobs.heartbeat_secs + 4,
    ))
    .await;
    assert!(paused.running(), "the thawed trainer lives on");
    let after = events_of(&app, &id).await;
    assert_eq!(
        after.len(),
        events.len(),
        "the thawed worker wrote events: {:?}",
        &after[events.len().min(after.len())..]
    );
    assert_eq!(
        outputs_of(&app, &id).await,
        outputs,
        "stored outputs changed"
    );
    let all: Vec<u64> = (1..=u64::from(epochs)).collect();
    assert_eq!(
        single_version(&app, &id).await,
        all,
        "one version, every epoch once"
    );
    let (_, now) = app.get_json(&format!("/training/jobs/{id}")).await;
    assert_eq!(now["status"], "completed", "{now}");
    assert_eq!(now["result"], job["result"], "the outcome is untouched");
    app.stop().await;
}

/// An object store that accepts connections and never answers (a stalled
/// server): each upload attempt ends at `storage.timeout_secs`, the retry
/// budget runs out, and the job fails with the reason instead of staying
/// `running` with a fresh lease forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_object_store_fails_the_job_within_its_deadlines() {
    let (proxy, app) = store_behind_proxy(|s| {
        s.storage.timeout_secs = 2;
        s.storage.connect_timeout_secs = 2;
        s.jobs.storage_retry_secs = 4;
    })
    .await;
    let dataset = tiny_dataset(&app).await;
    let id = start(&app, &tiny_run(&dataset, 3)).await;
    wait_first_checkpoint(&app, &id).await;
    proxy.hang();
    let hung = Instant::now();
    let job = wait_training(&app, &id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap_or_default();
    assert!(error.contains("checkpoint upload failed after"), "{error}");
    // The budget plus one attempt's deadline, and a few seconds of training.
    assert!(
        hung.elapsed() < Duration::from_secs(60),
        "{:?}",
        hung.elapsed()
    );
    assert!(
        db::versions_of_job(&app.backends.db, 2, &id)
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

/// A broker that accepts connections and never answers: starting work still
/// answers at once (the publish gives up at `bus.timeout_secs`; the job row
/// is the truth), and the job runs anyway, found by the workers' sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_broker_neither_hangs_requests_nor_strands_jobs() {
    let (proxy, app) = broker_behind_proxy(|s| s.bus.timeout_secs = 2).await;
    proxy.hang();
    let asked = Instant::now();
    let (status, v) = app
        .post_json(
            "/synthetic/generate",
            &json!({"num_images": 2, "preset": "light", "seed": 3, "width": 96, "height": 128}),
        )
        .await;
    let took = asked.elapsed();
    assert_eq!(status, 202, "{v}");
    assert!(took < Duration::from_secs(10), "the request took {took:?}");
    let id = v["job_id"].as_str().unwrap().to_string();
    let job = app.wait_job(&id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "completed", "{job}");
    // Health says where the problem is, within its own deadline.
    let asked = Instant::now();
    let (status, health) = app.get_json("/health").await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["checks"]["bus"]["ok"], false, "{health}");
    assert!(asked.elapsed() < Duration::from_secs(10));
    drop(proxy);
    app.stop().await;
}

/// The progress watchdog: a job stuck in a call that never returns (here an
/// upload to a stalled object store, with no deadline short enough to save
/// it) records no progress; after `jobs.watchdog_secs` its lease is taken
/// away, and with no attempts left it ends `failed` with the reason instead
/// of staying `running` forever. The other trainer's sweep does it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_watchdog_ends_a_job_that_makes_no_progress() {
    let endpoint = restoreflow_tests::s3_settings("x").s3_endpoint;
    let proxy = Proxy::start(&host_port(&endpoint)).await;
    let app = TestApp::spawn_real_with(
        &unique(),
        RealOptions {
            trainers: 2,
            trainer_s3_endpoint: Some(via(&endpoint, proxy.addr())),
            configure: Some(|s| {
                // Deadlines far past the watchdog's (and short enough that the
                // stuck worker lets go soon after the test ends).
                s.storage.timeout_secs = 15;
                s.jobs.storage_retry_secs = 20;
                s.jobs.watchdog_secs = 3;
                s.jobs.max_attempts = 1;
            }),
            ..RealOptions::default()
        },
    )
    .await;
    let dataset = tiny_dataset(&app).await;
    let id = start(&app, &tiny_run(&dataset, 3)).await;
    wait_first_checkpoint(&app, &id).await;
    proxy.hang();
    let hung = Instant::now();
    let job = wait_training(&app, &id, Duration::from_secs(90)).await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("after 1 attempt") && error.contains("no progress"),
        "{error}"
    );
    // Well before the stuck upload's own deadline could end the job.
    assert!(
        hung.elapsed() < Duration::from_secs(15),
        "{:?}",
        hung.elapsed()
    );
    let events = events_of(&app, &id).await;
    assert!(
        events.iter().any(|(_, p)| p["message"]
            .as_str()
            .is_some_and(|m| m.contains("no progress"))),
        "{events:?}"
    );
    drop(proxy);
    app.stop().await;
}

/// A database that stops answering. First a query that never returns (the
/// `jobs` table locked by another session: the server accepts the statement
/// and sits on it), then PostgreSQL behind a proxy that accepts connections
/// and forwards nothing. Each call fails within `database.statement_timeout_secs`
/// (or the connect deadline) with 503 instead of hanging the request, health
/// names the database, and once the database answers again the same
/// processes work on: nothing was lost, nothing restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_database_fails_calls_within_their_deadlines() {
    use sea_orm::{ConnectionTrait, Database, Statement, TransactionTrait};
    let pg = std::env::var("RESTOREFLOW_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let proxy = Proxy::start(&host_port(&pg)).await;
    let app = TestApp::spawn_real_with(
        &unique(),
        RealOptions {
            database_via: Some(proxy.addr()),
            configure: Some(|s| {
                s.database.timeout_secs = 2;
                s.database.statement_timeout_secs = 3;
            }),
            ..RealOptions::default()
        },
    )
    .await;
    let generate =
        json!({"num_images": 2, "preset": "light", "seed": 3, "width": 96, "height": 128});
    let (status, v) = app.post_json("/synthetic/generate", &generate).await;
    assert_eq!(status, 202, "{v}");
    let first = v["job_id"].as_str().unwrap().to_string();
    let job = app.wait_job(&first, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "completed", "{job}");

    // 1. A statement the server never answers: the table is locked by a
    // session of the test's own, straight to PostgreSQL.
    let direct =
        app.settings
            .database
            .url
            .expose()
            .replacen(&proxy.addr().to_string(), &host_port(&pg), 1);
    let locker = Database::connect(&direct).await.unwrap();
    let txn = locker.begin().await.unwrap();
    txn.execute(Statement::from_string(
        txn.get_database_backend(),
        "LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE",
    ))
    .await
    .unwrap();
    let asked = Instant::now();
    let (status, v) = app.get_json(&format!("/jobs/{first}")).await;
    let took = asked.elapsed();
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "unavailable", "{v}");
    assert!(took < Duration::from_secs(10), "the request took {took:?}");
    txn.rollback().await.unwrap();
    let (status, v) = app.get_json(&format!("/jobs/{first}")).await;
    assert_eq!(status, 200, "{v}");

    // 2. A database that accepts connections and never answers.
    proxy.hang();
    for path in ["/jobs".to_string(), format!("/jobs/{first}")] {
        let asked = Instant::now();
        let (status, v) = app.get_json(&path).await;
        let took = asked.elapsed();
        assert_eq!(status, 503, "{path}: {v}");
        assert!(took < Duration::from_secs(10), "{path} took {took:?}");
    }
    let asked = Instant::now();
    let (status, v) = app.post_json("/synthetic/generate", &generate).await;
    assert_eq!(status, 503, "{v}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    let asked = Instant::now();
    let (status, health) = app.get_json("/health").await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["checks"]["database"]["ok"], false, "{health}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );

    // 3. The database answers again (the stalled connections are cut, as a
    // firewall's state expiry or a server restart would): the same
    // processes serve and run work again.
    proxy.switch_off();
    proxy.switch_on();
    wait_for(
        "the API to answer again",
        Duration::from_secs(60),
        || async { (app.get_json("/jobs").await.0 == 200).then_some(()) },
    )
    .await;
    let (status, v) = app.post_json("/synthetic/generate", &generate).await;
    assert_eq!(status, 202, "{v}");
    let second = v["job_id"].as_str().unwrap().to_string();
    let job = app.wait_job(&second, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let (status, v) = app.get_json(&format!("/jobs/{first}")).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("completed")),
        "{v}"
    );
    drop(proxy);
    app.stop().await;
}

/// A gRPC service that accepts connections and never answers: the gateway's
/// call gives up at `grpc.timeout_secs` and the request answers 504 (not a
/// hung request, not a 500), and the gateway serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_grpc_service_times_out_the_call_not_the_gateway() {
    let hung = Proxy::start("127.0.0.1:1").await;
    hung.hang();
    let dir = tempfile::tempdir().unwrap();
    let mut s = restoreflow_core::Settings::default();
    s.database.url = restoreflow_core::config::Secret::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("db.sqlite").display()
    ));
    s.storage.local_root = dir.path().join("objects");
    s.gateway.http_addr = "127.0.0.1:0".into();
    s.gateway.api_key = Some(restoreflow_core::config::Secret::new(
        "a-test-key-of-enough-length",
    ));
    s.grpc.token = Some(restoreflow_core::config::Secret::new(
        restoreflow_tests::TEST_GRPC_TOKEN,
    ));
    s.grpc.timeout_secs = 2;
    s.gateway.trainer_url = format!("http://{}", hung.addr());
    let gateway = restoreflow_gateway::Application::build(s).await.unwrap();
    let base = format!("http://{}", gateway.http_addr());
    let stop = restoreflow_core::shutdown::CancellationToken::new();
    let task = tokio::spawn(gateway.run_until_stopped(stop.clone()));
    let http = restoreflow_tests::client_with_key("a-test-key-of-enough-length");
    for _ in 0..2 {
        let asked = Instant::now();
        let r = http
            .get(format!("{base}/training/status"))
            .send()
            .await
            .unwrap();
        let took = asked.elapsed();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(status, 504, "{body}");
        assert_eq!(body["error"]["code"], "timeout", "{body}");
        assert!(took < Duration::from_secs(15), "the request took {took:?}");
    }
    // The gateway itself stays responsive; `/jobs` asks the trainer's job
    // ledger too, so it answers the same timeout within the deadline.
    let r = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let asked = Instant::now();
    let r = http.get(format!("{base}/jobs")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 504);
    assert!(asked.elapsed() < Duration::from_secs(15));
    stop.cancel();
    let _ = task.await;
}
