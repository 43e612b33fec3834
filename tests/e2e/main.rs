//! End-to-end tests: the services over HTTP and gRPC on the embedded backends
//! and on real PostgreSQL, RabbitMQ and S3.

mod auth;
mod bad_input;
mod bounds;
mod bus;
mod devices;
mod eval_upload;
mod ledgers;
mod n8n;
mod observability;
mod ocr;
mod ownership;
mod paging;
mod registry;
mod reliability;
mod reports;
mod storage;
mod synthetic;
mod system;
mod training;
