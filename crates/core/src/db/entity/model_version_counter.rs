//! `model_version_counters`: the last version number handed out per layer.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A counter row. Incremented in its own transaction, so a number is spent even
/// when the registration that took it fails or the version is later deleted.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "model_version_counters")]
pub struct Model {
    /// Layer.
    #[sea_orm(primary_key, auto_increment = false)]
    pub layer: i32,
    /// Highest number given out so far.
    pub last_version: i32,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
