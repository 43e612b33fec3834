//! The registry's rows: version numbers, versions and aliases.
//!
//! Numbers come from a per-layer counter incremented in its own transaction, so
//! concurrent registrations never share one and a number is never given out
//! again, even after its version is deleted or its registration failed.
//! Alias changes and deletions first lock the version row with a conditional
//! update, so an alias can never end up pointing at a version being deleted.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use restoreflow_core::db::entity::{model_alias, model_version, model_version_counter};
use restoreflow_core::db::{Db, DbError};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

use crate::naming::{LATEST, VersionRef};

/// Row status of a usable version.
pub const READY: &str = "ready";
/// Row status while its objects are being removed (hidden from reads).
pub const DELETING: &str = "deleting";
/// Row status once its objects are gone (kept for lineage; number stays spent).
pub const DELETED: &str = "deleted";

/// Takes the next version number of `layer`.
#[tracing::instrument(skip(db), err)]
pub async fn allocate_version(db: &Db, layer: i32) -> Result<i32, DbError> {
    // The transaction as a whole has the statement deadline.
    db.bounded(async {
        let txn = db.begin().await?;
        // A write first, so SQLite takes its write lock at once instead of
        // upgrading a read lock later (which could fail instead of waiting).
        model_version_counter::Entity::insert(model_version_counter::ActiveModel {
            layer: Set(layer),
            last_version: Set(0),
        })
        .on_conflict(
            OnConflict::column(model_version_counter::Column::Layer)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        model_version_counter::Entity::update_many()
            .col_expr(
                model_version_counter::Column::LastVersion,
                Expr::col(model_version_counter::Column::LastVersion).add(1),
            )
            .filter(model_version_counter::Column::Layer.eq(layer))
            .exec(&txn)
            .await?;
        let row = model_version_counter::Entity::find_by_id(layer)
            .one(&txn)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("version counter of layer {layer}")))?;
        txn.commit().await?;
        Ok(row.last_version)
    })
    .await
}

/// Inserts a fully registered version (its objects already exist).
pub async fn insert_version(
    db: &Db,
    row: model_version::Model,
) -> Result<model_version::Model, DbError> {
    let am: model_version::ActiveModel = row.clone().into();
    model_version::Entity::insert(am)
        .exec_without_returning(db)
        .await?;
    Ok(row)
}

/// The version (in any status) registered for a training job, if any.
pub async fn by_training_job(
    db: &Db,
    layer: i32,
    job: &str,
) -> Result<Option<model_version::Model>, DbError> {
    Ok(model_version::Entity::find()
        .filter(model_version::Column::Layer.eq(layer))
        .filter(model_version::Column::TrainingJobId.eq(job))
        .one(db)
        .await?)
}

/// Whether any row (in any status) exists for `(layer, version)`.
pub async fn exists(db: &Db, layer: i32, version: i32) -> Result<bool, DbError> {
    Ok(model_version::Entity::find_by_id((layer, version))
        .one(db)
        .await?
        .is_some())
}

/// A ready version by number.
pub async fn get_ready(
    db: &Db,
    layer: i32,
    version: i32,
) -> Result<Option<model_version::Model>, DbError> {
    Ok(model_version::Entity::find_by_id((layer, version))
        .filter(model_version::Column::Status.eq(READY))
        .one(db)
        .await?)
}

/// Resolves a number or alias to a ready version, or `NotFound`.
pub async fn resolve(db: &Db, layer: i32, r: &VersionRef) -> Result<model_version::Model, DbError> {
    let number = match r {
        VersionRef::Number(n) => *n,
        VersionRef::Alias(a) => {
            model_alias::Entity::find_by_id((layer, a.clone()))
                .one(db)
                .await?
                .ok_or_else(|| DbError::NotFound(format!("alias {a:?} of layer {layer}")))?
                .version
        }
    };
    get_ready(db, layer, number)
        .await?
        .ok_or_else(|| DbError::NotFound(format!("version {number} of layer {layer}")))
}

/// Alias names per version, for the given versions of a layer.
pub async fn aliases_of(
    db: &Db,
    layer: i32,
    versions: &[i32],
) -> Result<HashMap<i32, Vec<String>>, DbError> {
    let rows = model_alias::Entity::find()
        .filter(model_alias::Column::Layer.eq(layer))
        .filter(model_alias::Column::Version.is_in(versions.iter().copied()))
        .order_by_asc(model_alias::Column::Alias)
        .all(db)
        .await?;
    let mut out: HashMap<i32, Vec<String>> = HashMap::new();
    for a in rows {
        out.entry(a.version).or_default().push(a.alias);
    }
    Ok(out)
}

/// Filters of a listing; `None` means no filter, and all given ones must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    /// Only the version this alias points at.
    pub alias: Option<String>,
    /// Only versions produced by this training job.
    pub training_job_id: Option<String>,
    /// Only versions trained on this dataset.
    pub dataset_id: Option<String>,
    /// Registered at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Registered strictly before this time.
    pub created_before: Option<DateTime<Utc>>,
}

/// Ready versions of a layer matching `filter`, newest first, below `before`
/// when given; at most `limit`.
pub async fn list_ready(
    db: &Db,
    layer: i32,
    before: Option<i32>,
    filter: &ListFilter,
    limit: u64,
) -> Result<Vec<model_version::Model>, DbError> {
    let mut q = model_version::Entity::find()
        .filter(model_version::Column::Layer.eq(layer))
        .filter(model_version::Column::Status.eq(READY));
    if let Some(b) = before {
        q = q.filter(model_version::Column::Version.lt(b));
    }
    if let Some(alias) = &filter.alias {
        let Some(a) = model_alias::Entity::find_by_id((layer, alias.clone()))
            .one(db)
            .await?
        else {
            return Ok(Vec::new());
        };
        q = q.filter(model_version::Column::Version.eq(a.version));
    }
    if let Some(job) = &filter.training_job_id {
        q = q.filter(model_version::Column::TrainingJobId.eq(job.as_str()));
    }
    if let Some(ds) = &filter.dataset_id {
        q = q.filter(model_version::Column::DatasetId.eq(ds.as_str()));
    }
    if let Some(t) = filter.created_after {
        q = q.filter(model_version::Column::CreatedAt.gte(t));
    }
    if let Some(t) = filter.created_before {
        q = q.filter(model_version::Column::CreatedAt.lt(t));
    }
    Ok(q.order_by_desc(model_version::Column::Version)
        .limit(limit)
        .all(db)
        .await?)
}

/// The newest ready version of a layer numbered below `version`.
pub async fn previous_ready(
    db: &Db,
    layer: i32,
    version: i32,
) -> Result<Option<model_version::Model>, DbError> {
    Ok(model_version::Entity::find()
        .filter(model_version::Column::Layer.eq(layer))
        .filter(model_version::Column::Status.eq(READY))
        .filter(model_version::Column::Version.lt(version))
        .order_by_desc(model_version::Column::Version)
        .one(db)
        .await?)
}

/// Every ready version number of a layer, newest first, with whether an alias
/// points at it.
pub async fn ready_with_aliases(db: &Db, layer: i32) -> Result<Vec<(i32, bool)>, DbError> {
    let numbers: Vec<i32> = model_version::Entity::find()
        .select_only()
        .column(model_version::Column::Version)
        .filter(model_version::Column::Layer.eq(layer))
        .filter(model_version::Column::Status.eq(READY))
        .order_by_desc(model_version::Column::Version)
        .into_tuple()
        .all(db)
        .await?;
    let aliased: std::collections::HashSet<i32> = model_alias::Entity::find()
        .filter(model_alias::Column::Layer.eq(layer))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.version)
        .collect();
    Ok(numbers
        .into_iter()
        .map(|n| (n, aliased.contains(&n)))
        .collect())
}

/// Moves [`LATEST`] to a newly registered `version`, unless it already points
/// at a newer one (registrations may finish out of order). One statement, so
/// concurrent registrations cannot move it backwards.
#[tracing::instrument(skip(db), err)]
pub async fn move_latest(db: &Db, layer: i32, version: i32) -> Result<(), DbError> {
    let row = model_alias::ActiveModel {
        layer: Set(layer),
        alias: Set(LATEST.to_string()),
        version: Set(version),
        updated_at: Set(Utc::now()),
    };
    model_alias::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([model_alias::Column::Layer, model_alias::Column::Alias])
                .update_columns([model_alias::Column::Version, model_alias::Column::UpdatedAt])
                .action_and_where(
                    Expr::col((model_alias::Entity, model_alias::Column::Version)).lt(version),
                )
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Points `alias` at a ready version (creating or moving it).
#[tracing::instrument(skip(db), err)]
pub async fn set_alias(
    db: &Db,
    layer: i32,
    alias: &str,
    version: i32,
) -> Result<model_alias::Model, DbError> {
    // The transaction as a whole has the statement deadline.
    db.bounded(async {
        let txn = db.begin().await?;
        // A no-op update that only matches a ready row: it takes the row lock, so a
        // concurrent delete either waits for this alias or has already hidden the row.
        let locked = model_version::Entity::update_many()
            .col_expr(
                model_version::Column::Status,
                Expr::col(model_version::Column::Status).into(),
            )
            .filter(model_version::Column::Layer.eq(layer))
            .filter(model_version::Column::Version.eq(version))
            .filter(model_version::Column::Status.eq(READY))
            .exec(&txn)
            .await?;
        if locked.rows_affected == 0 {
            return Err(DbError::NotFound(format!(
                "version {version} of layer {layer}"
            )));
        }
        let row = model_alias::Model {
            layer,
            alias: alias.to_string(),
            version,
            updated_at: Utc::now(),
        };
        model_alias::Entity::insert(model_alias::ActiveModel::from(row.clone()))
            .on_conflict(
                OnConflict::columns([model_alias::Column::Layer, model_alias::Column::Alias])
                    .update_columns([model_alias::Column::Version, model_alias::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(row)
    })
    .await
}

/// Hides a version for deletion (`ready` → `deleting`), refusing while an alias
/// other than [`LATEST`] points at it; `latest` moves back to the newest
/// remaining version (or goes away with the last one). A version already
/// `deleting` (an earlier delete failed half way) is returned as is so the
/// caller can finish removing its objects.
#[tracing::instrument(skip(db), err)]
pub async fn begin_delete(
    db: &Db,
    layer: i32,
    version: i32,
) -> Result<model_version::Model, DbError> {
    // The transaction as a whole has the statement deadline.
    db.bounded(async {
        let txn = db.begin().await?;
        let hidden = model_version::Entity::update_many()
            .col_expr(model_version::Column::Status, Expr::value(DELETING))
            .filter(model_version::Column::Layer.eq(layer))
            .filter(model_version::Column::Version.eq(version))
            .filter(model_version::Column::Status.is_in([READY, DELETING]))
            .exec(&txn)
            .await?;
        if hidden.rows_affected == 0 {
            return Err(DbError::NotFound(format!(
                "version {version} of layer {layer}"
            )));
        }
        // Read after taking the row lock: an alias committed before we got it is seen.
        let aliases: Vec<String> = model_alias::Entity::find()
            .filter(model_alias::Column::Layer.eq(layer))
            .filter(model_alias::Column::Version.eq(version))
            .order_by_asc(model_alias::Column::Alias)
            .all(&txn)
            .await?
            .into_iter()
            .map(|a| a.alias)
            .collect();
        let is_latest = aliases.iter().any(|a| a == LATEST);
        let aliases: Vec<String> = aliases.into_iter().filter(|a| a != LATEST).collect();
        if !aliases.is_empty() {
            txn.rollback().await?;
            return Err(DbError::Conflict(format!(
                "version {version} of layer {layer} is still aliased as {}; move the alias first",
                aliases.join(", ")
            )));
        }
        if is_latest {
            let newest_other: Option<i32> = model_version::Entity::find()
                .select_only()
                .column(model_version::Column::Version)
                .filter(model_version::Column::Layer.eq(layer))
                .filter(model_version::Column::Status.eq(READY))
                .order_by_desc(model_version::Column::Version)
                .into_tuple()
                .one(&txn)
                .await?;
            match newest_other {
                Some(n) => {
                    model_alias::Entity::update_many()
                        .filter(model_alias::Column::Layer.eq(layer))
                        .filter(model_alias::Column::Alias.eq(LATEST))
                        .filter(model_alias::Column::Version.eq(version))
                        .col_expr(model_alias::Column::Version, Expr::value(n))
                        .col_expr(model_alias::Column::UpdatedAt, Expr::value(Utc::now()))
                        .exec(&txn)
                        .await?;
                }
                None => {
                    model_alias::Entity::delete_many()
                        .filter(model_alias::Column::Layer.eq(layer))
                        .filter(model_alias::Column::Alias.eq(LATEST))
                        .filter(model_alias::Column::Version.eq(version))
                        .exec(&txn)
                        .await?;
                }
            }
        }
        let row = model_version::Entity::find_by_id((layer, version))
            .one(&txn)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("version {version} of layer {layer}")))?;
        txn.commit().await?;
        Ok(row)
    })
    .await
}

/// Marks a version whose objects are gone as deleted.
pub async fn finish_delete(db: &Db, layer: i32, version: i32) -> Result<(), DbError> {
    let row = model_version::ActiveModel {
        layer: Set(layer),
        version: Set(version),
        status: Set(DELETED.to_string()),
        deleted_at: Set(Some(Utc::now())),
        ..Default::default()
    };
    row.update(db).await?;
    Ok(())
}
