//! Route table.

pub mod files;
pub mod health;
pub mod jobs;
pub mod models;
pub mod synthetic;
pub mod training;
