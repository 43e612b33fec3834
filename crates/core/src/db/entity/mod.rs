//! sea-orm entities of the metadata database.

pub mod dataset;
pub mod job;
pub mod job_event;
