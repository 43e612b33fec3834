//! Route table.

pub mod evaluation;
pub mod files;
pub mod health;
pub mod jobs;
pub mod models;
pub mod paging;
pub mod reports;
pub mod restore;
pub mod synthetic;
pub mod training;
