//! gRPC plumbing every service shares: health and reflection.

use tonic_health::server::HealthReporter;

/// The standard `grpc.health.v1` service and its reporter.
pub fn health() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    tonic_health::server::health_reporter()
}

/// A `grpc.reflection.v1` service describing every restoreflow proto and health.
pub fn reflection() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(restoreflow_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
}

/// Maps a tonic status into the shared error code and message.
pub fn status_code(status: &tonic::Status) -> restoreflow_proto::ErrorCode {
    restoreflow_proto::ErrorCode::from_grpc(status.code())
}
