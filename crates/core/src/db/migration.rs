//! Schema migrations; the same code runs on PostgreSQL and SQLite.

use sea_orm_migration::prelude::*;

/// All migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(ModelRegistry),
            Box::new(WorkerRegistry),
            Box::new(ReportsAndEvaluations),
            Box::new(OneVersionPerTrainingJob),
            Box::new(JobProgressTime),
            Box::new(DeviceRouting),
        ]
    }
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    Status,
    Params,
    Progress,
    Attempts,
    Error,
    Result,
    LeaseOwner,
    LeaseExpiresAt,
    CancelRequested,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
    ProgressAt,
    Device,
}

#[derive(DeriveIden)]
enum JobEvents {
    Table,
    Id,
    JobId,
    Kind,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Datasets {
    Table,
    Id,
    JobId,
    Source,
    Degradation,
    Split,
    Seed,
    NumPairs,
    Width,
    Height,
    ManifestKey,
    Manifest,
    ContentHash,
    CreatedAt,
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261126_000001_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Jobs::Id)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Jobs::Kind).string_len(32).not_null())
                .col(ColumnDef::new(Jobs::Status).string_len(16).not_null())
                .col(ColumnDef::new(Jobs::Params).json_binary().not_null())
                .col(
                    ColumnDef::new(Jobs::Progress)
                        .double()
                        .not_null()
                        .default(0.0),
                )
                .col(
                    ColumnDef::new(Jobs::Attempts)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(ColumnDef::new(Jobs::Error).text().null())
                .col(ColumnDef::new(Jobs::Result).json_binary().null())
                .col(ColumnDef::new(Jobs::LeaseOwner).string_len(128).null())
                .col(
                    ColumnDef::new(Jobs::LeaseExpiresAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(
                    ColumnDef::new(Jobs::CancelRequested)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(
                    ColumnDef::new(Jobs::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Jobs::UpdatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Jobs::StartedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(
                    ColumnDef::new(Jobs::FinishedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_jobs_kind_status")
                .table(Jobs::Table)
                .col(Jobs::Kind)
                .col(Jobs::Status)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(JobEvents::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(JobEvents::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(JobEvents::JobId).string_len(64).not_null())
                .col(ColumnDef::new(JobEvents::Kind).string_len(32).not_null())
                .col(ColumnDef::new(JobEvents::Payload).json_binary().not_null())
                .col(
                    ColumnDef::new(JobEvents::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(JobEvents::Table, JobEvents::JobId)
                        .to(Jobs::Table, Jobs::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_job_events_job")
                .table(JobEvents::Table)
                .col(JobEvents::JobId)
                .col(JobEvents::Id)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Datasets::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Datasets::Id)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Datasets::JobId).string_len(64).null())
                .col(ColumnDef::new(Datasets::Source).string_len(16).not_null())
                .col(
                    ColumnDef::new(Datasets::Degradation)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(Datasets::Split).string_len(16).not_null())
                .col(ColumnDef::new(Datasets::Seed).big_integer().not_null())
                .col(ColumnDef::new(Datasets::NumPairs).integer().not_null())
                .col(ColumnDef::new(Datasets::Width).integer().not_null())
                .col(ColumnDef::new(Datasets::Height).integer().not_null())
                .col(
                    ColumnDef::new(Datasets::ManifestKey)
                        .string_len(1024)
                        .not_null(),
                )
                .col(ColumnDef::new(Datasets::Manifest).json_binary().not_null())
                .col(
                    ColumnDef::new(Datasets::ContentHash)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Datasets::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Datasets::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(JobEvents::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Jobs::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ModelVersions {
    Table,
    Layer,
    Version,
    Status,
    ObjectKey,
    SidecarKey,
    Sha256,
    SizeBytes,
    ParameterCount,
    Config,
    Metrics,
    TrainingJobId,
    DatasetId,
    DatasetHash,
    CodeVersion,
    ParentVersion,
    CreatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum ModelAliases {
    Table,
    Layer,
    Alias,
    Version,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ModelVersionCounters {
    Table,
    Layer,
    LastVersion,
}

/// Model versions, their aliases and the per-layer version counters.
struct ModelRegistry;

impl MigrationName for ModelRegistry {
    fn name(&self) -> &str {
        "m20261201_000002_model_registry"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ModelRegistry {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ModelVersionCounters::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(ModelVersionCounters::Layer)
                        .integer()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(ModelVersionCounters::LastVersion)
                        .integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ModelVersions::Table)
                .if_not_exists()
                .col(ColumnDef::new(ModelVersions::Layer).integer().not_null())
                .col(ColumnDef::new(ModelVersions::Version).integer().not_null())
                .col(
                    ColumnDef::new(ModelVersions::Status)
                        .string_len(16)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::ObjectKey)
                        .string_len(1024)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::SidecarKey)
                        .string_len(1024)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::Sha256)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::SizeBytes)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::ParameterCount)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::Config)
                        .json_binary()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::Metrics)
                        .json_binary()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::TrainingJobId)
                        .string_len(64)
                        .null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::DatasetId)
                        .string_len(64)
                        .null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::DatasetHash)
                        .string_len(128)
                        .null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::CodeVersion)
                        .string_len(128)
                        .null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::ParentVersion)
                        .integer()
                        .null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ModelVersions::DeletedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .primary_key(
                    Index::create()
                        .col(ModelVersions::Layer)
                        .col(ModelVersions::Version),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ModelAliases::Table)
                .if_not_exists()
                .col(ColumnDef::new(ModelAliases::Layer).integer().not_null())
                .col(
                    ColumnDef::new(ModelAliases::Alias)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(ModelAliases::Version).integer().not_null())
                .col(
                    ColumnDef::new(ModelAliases::UpdatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(ModelAliases::Layer)
                        .col(ModelAliases::Alias),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            ModelAliases::Table,
                            (ModelAliases::Layer, ModelAliases::Version),
                        )
                        .to(
                            ModelVersions::Table,
                            (ModelVersions::Layer, ModelVersions::Version),
                        )
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_model_aliases_version")
                .table(ModelAliases::Table)
                .col(ModelAliases::Layer)
                .col(ModelAliases::Version)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ModelAliases::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(ModelVersions::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(ModelVersionCounters::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    Id,
    Service,
    Device,
    CurrentJob,
    StartedAt,
    HeartbeatAt,
    Capabilities,
}

/// Live workers (trainer workers today): who they are, their device and job.
struct WorkerRegistry;

impl MigrationName for WorkerRegistry {
    fn name(&self) -> &str {
        "m20261210_000003_workers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for WorkerRegistry {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Workers::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Workers::Id)
                        .string_len(128)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Workers::Service).string_len(32).not_null())
                .col(ColumnDef::new(Workers::Device).string_len(16).not_null())
                .col(ColumnDef::new(Workers::CurrentJob).string_len(64).null())
                .col(
                    ColumnDef::new(Workers::StartedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Workers::HeartbeatAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Workers::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Reports {
    Table,
    Id,
    JobId,
    Layer,
    Status,
    ModelVersion,
    Prefix,
    Formats,
    Charts,
    Summary,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Evaluations {
    Table,
    Id,
    Layer,
    Version,
    DatasetId,
    Status,
    Pairs,
    Skipped,
    Mean,
    Baselines,
    PerImage,
    ObjectPrefix,
    CreatedAt,
    FinishedAt,
}

/// Training reports (one per finished training job) and evaluation runs.
struct ReportsAndEvaluations;

impl MigrationName for ReportsAndEvaluations {
    fn name(&self) -> &str {
        "m20261226_000004_reports_evaluations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ReportsAndEvaluations {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Reports::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Reports::Id)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(Reports::JobId)
                        .string_len(64)
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(Reports::Layer).integer().not_null())
                .col(ColumnDef::new(Reports::Status).string_len(16).not_null())
                .col(ColumnDef::new(Reports::ModelVersion).integer().null())
                .col(ColumnDef::new(Reports::Prefix).string_len(256).not_null())
                .col(ColumnDef::new(Reports::Formats).json().not_null())
                .col(ColumnDef::new(Reports::Charts).json().not_null())
                .col(ColumnDef::new(Reports::Summary).json().not_null())
                .col(
                    ColumnDef::new(Reports::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_reports_layer_created")
                .table(Reports::Table)
                .col(Reports::Layer)
                .col(Reports::CreatedAt)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Evaluations::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Evaluations::Id)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Evaluations::Layer).integer().not_null())
                .col(ColumnDef::new(Evaluations::Version).integer().not_null())
                .col(
                    ColumnDef::new(Evaluations::DatasetId)
                        .string_len(128)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Evaluations::Status)
                        .string_len(16)
                        .not_null(),
                )
                .col(ColumnDef::new(Evaluations::Pairs).integer().not_null())
                .col(ColumnDef::new(Evaluations::Skipped).json().not_null())
                .col(ColumnDef::new(Evaluations::Mean).json().not_null())
                .col(ColumnDef::new(Evaluations::Baselines).json().not_null())
                .col(ColumnDef::new(Evaluations::PerImage).json().not_null())
                .col(
                    ColumnDef::new(Evaluations::ObjectPrefix)
                        .string_len(256)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Evaluations::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Evaluations::FinishedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_evaluations_layer_version")
                .table(Evaluations::Table)
                .col(Evaluations::Layer)
                .col(Evaluations::Version)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Evaluations::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Reports::Table).to_owned())
            .await
    }
}

/// At most one model version per training job and layer: registration after
/// training is idempotent even when two workers both believe they own the job
/// (one paused past its lease, one that took over). Rows without a training
/// job (uploads) are not constrained: NULLs are distinct in a unique index on
/// both PostgreSQL and SQLite.
struct OneVersionPerTrainingJob;

impl MigrationName for OneVersionPerTrainingJob {
    fn name(&self) -> &str {
        "m20261206_000005_one_version_per_training_job"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OneVersionPerTrainingJob {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name(UNIQUE_VERSION_PER_JOB)
                .table(ModelVersions::Table)
                .col(ModelVersions::Layer)
                .col(ModelVersions::TrainingJobId)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name(UNIQUE_VERSION_PER_JOB)
                .table(ModelVersions::Table)
                .to_owned(),
        )
        .await
    }
}

/// Name of the unique index on `model_versions (layer, training_job_id)`.
pub const UNIQUE_VERSION_PER_JOB: &str = "uq_model_versions_layer_training_job";

/// `jobs.progress_at`: when a job last moved, for the progress watchdog.
struct JobProgressTime;

impl MigrationName for JobProgressTime {
    fn name(&self) -> &str {
        "m20261206_000006_job_progress_time"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for JobProgressTime {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Jobs::Table)
                .add_column(
                    ColumnDef::new(Jobs::ProgressAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Jobs::Table)
                .drop_column(Jobs::ProgressAt)
                .to_owned(),
        )
        .await
    }
}

/// Device routing: `jobs.device` (the device class a job needs; NULL for
/// kinds that need none) and `workers.capabilities` (what a worker can run).
struct DeviceRouting;

impl MigrationName for DeviceRouting {
    fn name(&self) -> &str {
        "m20261206_000007_device_routing"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DeviceRouting {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Jobs::Table)
                .add_column(ColumnDef::new(Jobs::Device).string().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Workers::Table)
                .add_column(ColumnDef::new(Workers::Capabilities).json().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Workers::Table)
                .drop_column(Workers::Capabilities)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Jobs::Table)
                .drop_column(Jobs::Device)
                .to_owned(),
        )
        .await
    }
}
