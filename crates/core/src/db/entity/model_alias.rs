//! `model_aliases`: named pointers such as `champion` to a version of a layer.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An alias row; `(layer, alias)` is unique.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "model_aliases")]
pub struct Model {
    /// Layer.
    #[sea_orm(primary_key, auto_increment = false)]
    pub layer: i32,
    /// Name, `[a-z0-9_-]{1,64}`, not purely numeric.
    #[sea_orm(primary_key, auto_increment = false)]
    pub alias: String,
    /// The version it points at.
    pub version: i32,
    /// Last time it was moved.
    pub updated_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
