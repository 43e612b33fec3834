//! `restoreflow-gateway`: the REST gateway on its own.

use restoreflow_core::{Settings, shutdown, telemetry};

/// Every binary allocates with mimalloc (see `restoreflow_core::process` for
/// the settings it runs with).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // Before any thread exists: re-executes with the allocator and thread-pool
    // settings the benchmarks run with, when they are missing.
    restoreflow_core::process::apply();
    run()
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let config = std::env::var_os("RESTOREFLOW_CONFIG").map(std::path::PathBuf::from);
    let settings = Settings::load(config.as_deref(), std::env::vars())?;
    // `healthcheck`: exit 0 when the running gateway's /health answers 200.
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return healthcheck(&settings.gateway.http_addr).await;
    }
    let _guard = telemetry::init(&settings.telemetry, "gateway");
    let app = restoreflow_gateway::Application::build(settings).await?;
    app.run_until_stopped(shutdown::signal_token()).await?;
    Ok(())
}

/// GET /health over plain HTTP/1.0 (no client library needed in the image).
async fn healthcheck(addr: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = addr.rsplit_once(':').map_or("8000", |(_, p)| p);
    let target = format!("127.0.0.1:{port}");
    let check = async {
        let mut s = tokio::net::TcpStream::connect(&target).await?;
        s.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut head = [0u8; 16];
        let n = s.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).into_owned())
    };
    let line = tokio::time::timeout(std::time::Duration::from_secs(5), check)
        .await
        .map_err(|_| anyhow::anyhow!("{target}: no answer within 5 s"))??;
    anyhow::ensure!(line.contains(" 200"), "{target}/health answered {line:?}");
    Ok(())
}
