//! What the training ran on, recorded as an `environment` job event so the
//! report can say it from stored records: OS, CPU, GPU, compiler, crate
//! versions and the process's peak memory.

use serde_json::{Value, json};

/// Facts about this process and machine, read now.
pub fn environment(device: &str) -> Value {
    let mut crates: serde_json::Map<String, Value> = env!("RESTOREFLOW_CRATE_VERSIONS")
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    crates.insert("restoreflow".into(), json!(env!("CARGO_PKG_VERSION")));
    json!({
        "os": os_name(),
        "cpu_model": cpu_model(),
        "cpu_threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "gpu": if device == "cuda" { gpu_name() } else { None },
        "rustc_version": env!("RESTOREFLOW_RUSTC_VERSION"),
        "crate_versions": crates,
        "peak_memory_bytes": peak_memory_bytes(),
        "hostname": std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string()),
    })
}

/// `PRETTY_NAME` of /etc/os-release plus the kernel release, else the target OS.
fn os_name() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string());
    match (pretty, kernel) {
        (Some(p), Some(k)) => format!("{p} (kernel {k})"),
        (Some(p), None) => p,
        (None, Some(k)) => format!("{} (kernel {k})", std::env::consts::OS),
        (None, None) => std::env::consts::OS.to_string(),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The NVIDIA driver's name for GPU 0.
fn gpu_name() -> Option<String> {
    restoreflow_core::devices::probe(restoreflow_core::devices::CUDA)
        .into_iter()
        .find_map(|c| c.name)
}

/// Peak resident set size of this process (`VmHWM`), in bytes.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        let kb = l.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim();
        kb.parse::<u64>().ok().map(|k| k * 1024)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_the_machine_and_crates() {
        let e = environment("cpu");
        assert!(e["cpu_threads"].as_u64().unwrap() >= 1);
        assert!(e["rustc_version"].as_str().unwrap().starts_with("rustc "));
        assert!(e["crate_versions"]["candle-core"].is_string());
        assert!(e["gpu"].is_null());
        assert!(!e["os"].as_str().unwrap().is_empty());
        if cfg!(target_os = "linux") {
            assert!(e["peak_memory_bytes"].as_u64().unwrap() > 0);
        }
    }
}
