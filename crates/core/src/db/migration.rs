//! Schema migrations; the same code runs on PostgreSQL and SQLite.

use sea_orm_migration::prelude::*;

/// All migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(Initial)]
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
