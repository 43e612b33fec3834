//! The shipped binary runs with the allocator and thread-pool settings the
//! benchmarks measured, whatever environment it is started from.

use std::process::Command;

fn info(envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_restoreflow"));
    cmd.arg("process-info")
        .env_remove("MIMALLOC_PURGE_DELAY")
        .env_remove("CANDLE_BARRIER_POOL_SPIN_LIMIT")
        .env_remove("RESTOREFLOW_PROCESS_TUNED");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("restoreflow runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn a_bare_start_runs_with_the_benchmarked_settings() {
    let out = info(&[]);
    assert!(out.contains("MIMALLOC_PURGE_DELAY=-1"), "{out}");
    assert!(out.contains("CANDLE_BARRIER_POOL_SPIN_LIMIT=0"), "{out}");
}

#[test]
fn settings_the_operator_gives_are_kept() {
    let out = info(&[("MIMALLOC_PURGE_DELAY", "250")]);
    assert!(out.contains("MIMALLOC_PURGE_DELAY=250"), "{out}");
    assert!(out.contains("CANDLE_BARRIER_POOL_SPIN_LIMIT=0"), "{out}");
}
