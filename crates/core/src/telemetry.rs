//! Logging setup shared by every binary.

use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{LogFormat, TelemetrySettings};

/// Keeps the background log writer alive; drop it last.
pub struct TelemetryGuard {
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Installs the global subscriber. Calling it twice is harmless (the second
/// call keeps the first subscriber), so tests may call it freely.
pub fn init(settings: &TelemetrySettings) -> TelemetryGuard {
    let filter = || EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let stdout = match settings.format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_filter(filter())
            .boxed(),
    };
    let (file_layer, guard) = match &settings.log_dir {
        Some(dir) => {
            let appender = tracing_appender::rolling::daily(dir, "restoreflow.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_writer(writer)
                .with_filter(filter())
                .boxed();
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(stdout)
        .with(file_layer)
        .try_init();
    TelemetryGuard { _file: guard }
}
