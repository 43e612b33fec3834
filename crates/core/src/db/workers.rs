//! Worker registry: workers announce themselves and refresh a heartbeat, so
//! status pages can show who is alive, on which device and doing what.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::entity::{model_version, worker};
use super::{Db, DbError};
use crate::devices::{Capability, Pool};

/// Inserts or refreshes a worker row: the device class it serves, what it can
/// run and its current job.
pub async fn touch_worker(
    db: &Db,
    id: &str,
    service: &str,
    device: &str,
    capabilities: &[Capability],
    current_job: Option<&str>,
) -> Result<(), DbError> {
    let now = Utc::now();
    let caps = serde_json::to_value(capabilities).unwrap_or_default();
    let row = worker::ActiveModel {
        id: Set(id.to_string()),
        service: Set(service.to_string()),
        device: Set(device.to_string()),
        current_job: Set(current_job.map(str::to_string)),
        started_at: Set(now),
        heartbeat_at: Set(now),
        capabilities: Set(Some(caps)),
    };
    worker::Entity::insert(row)
        .on_conflict(
            OnConflict::column(worker::Column::Id)
                .update_columns([
                    worker::Column::Device,
                    worker::Column::Capabilities,
                    worker::Column::CurrentJob,
                    worker::Column::HeartbeatAt,
                ])
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// Removes a worker row (clean shutdown).
pub async fn remove_worker(db: &Db, id: &str) -> Result<(), DbError> {
    worker::Entity::delete_by_id(id.to_string())
        .exec(db)
        .await?;
    Ok(())
}

/// Workers of `service` whose last heartbeat is after `since`, oldest first.
pub async fn live_workers(
    db: &Db,
    service: &str,
    since: DateTime<Utc>,
) -> Result<Vec<worker::Model>, DbError> {
    Ok(worker::Entity::find()
        .filter(worker::Column::Service.eq(service))
        .filter(worker::Column::HeartbeatAt.gt(since))
        .order_by_asc(worker::Column::StartedAt)
        .all(db)
        .await?)
}

/// The capabilities a worker row advertises (none for rows written before
/// workers advertised them).
pub fn capabilities_of(w: &worker::Model) -> Vec<Capability> {
    w.capabilities
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// The device pool of `service`: live workers per class (heartbeat after
/// `since`) plus the classes the deployment starts on demand.
pub async fn device_pool(
    db: &Db,
    service: &str,
    since: DateTime<Utc>,
    on_demand: &[String],
) -> Result<Pool, DbError> {
    let live = live_workers(db, service, since).await?;
    Ok(pool_of(&live, on_demand))
}

/// The device pool of already read live workers (see [`device_pool`]).
pub fn pool_of(live: &[worker::Model], on_demand: &[String]) -> Pool {
    Pool {
        live: crate::devices::CLASSES
            .iter()
            .map(|c| {
                (
                    c.to_string(),
                    live.iter().filter(|w| w.device == *c).count(),
                )
            })
            .collect(),
        on_demand: on_demand.to_vec(),
    }
}

/// Ready model versions of `layer` registered by training job `job_id`
/// (a trainer checks this before registering, so a resumed job never
/// registers its model twice).
pub async fn versions_of_job(
    db: &Db,
    layer: i32,
    job_id: &str,
) -> Result<Vec<model_version::Model>, DbError> {
    Ok(model_version::Entity::find()
        .filter(model_version::Column::Layer.eq(layer))
        .filter(model_version::Column::TrainingJobId.eq(job_id))
        .filter(model_version::Column::Status.eq("ready"))
        .order_by_asc(model_version::Column::Version)
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn workers_upsert_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::db::connect(&url, 2).await.unwrap();
        let caps = crate::devices::probe("cpu");
        touch_worker(&db, "w1", "trainer", "cpu", &caps, None)
            .await
            .unwrap();
        touch_worker(&db, "w1", "trainer", "cpu", &caps, Some("job-1"))
            .await
            .unwrap();
        touch_worker(&db, "s1", "synthetic", "cpu", &[], None)
            .await
            .unwrap();
        touch_worker(
            &db,
            "g1",
            "trainer",
            "cuda",
            &crate::devices::probe("cuda"),
            None,
        )
        .await
        .unwrap();
        let live = live_workers(&db, "trainer", Utc::now() - chrono::Duration::seconds(5))
            .await
            .unwrap();
        assert_eq!(live.len(), 2);
        assert_eq!(live[0].current_job.as_deref(), Some("job-1"));
        assert_eq!(capabilities_of(&live[0]), caps);
        assert_eq!(capabilities_of(&live[1])[0].device, "cuda:0");
        let since = Utc::now() - chrono::Duration::seconds(5);
        let pool = device_pool(&db, "trainer", since, &["cpu".to_string()])
            .await
            .unwrap();
        assert_eq!((pool.live_count("cpu"), pool.live_count("cuda")), (1, 1));
        remove_worker(&db, "g1").await.unwrap();
        let later = live_workers(&db, "trainer", Utc::now() + chrono::Duration::seconds(5))
            .await
            .unwrap();
        assert!(later.is_empty());
        remove_worker(&db, "w1").await.unwrap();
        assert!(
            live_workers(&db, "trainer", Utc::now() - chrono::Duration::seconds(5))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(versions_of_job(&db, 2, "job-1").await.unwrap().is_empty());
    }
}
