//! sea-orm entities of the metadata database.

pub mod dataset;
pub mod evaluation;
pub mod job;
pub mod job_event;
pub mod model_alias;
pub mod model_version;
pub mod model_version_counter;
pub mod report;
pub mod worker;
