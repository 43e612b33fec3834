//! Process settings every restoreflow binary runs with.
//!
//! Training and inference with Candle on CPU allocate and free hundreds of MB
//! per step. Two settings decide whether that is cheap (measured in
//! `BENCHMARKS.md`), and both are read once, at start-up, from the
//! environment:
//!
//! - `MIMALLOC_PURGE_DELAY=-1`: mimalloc (every binary's global allocator)
//!   otherwise hands freed pages back to the OS after 10 ms, so each step
//!   page-faults and zero-fills its activations again (up to 100% system CPU).
//!   Memory stays bounded: freed pages are reused, not returned.
//! - `CANDLE_BARRIER_POOL_SPIN_LIMIT=0`: Candle's element-wise pool otherwise
//!   spins ~25k iterations after every op before parking, stealing the core
//!   the next kernel needs on small machines.
//!
//! [`apply`] re-executes the binary with whichever of them is missing (values
//! the operator set are kept), so the service binaries, `restoreflow` and every
//! container image run exactly as the benchmarks do.

use std::ffi::OsString;

/// The settings and the values restoreflow runs with.
pub const SETTINGS: [(&str, &str); 2] = [
    ("MIMALLOC_PURGE_DELAY", "-1"),
    ("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0"),
];

/// Set once the binary has re-executed itself, so it never loops.
const MARKER: &str = "RESTOREFLOW_PROCESS_TUNED";

/// The variables to add to an environment in which `get` looks names up:
/// each setting the environment lacks. Empty after a re-execution.
pub fn missing(get: impl Fn(&str) -> Option<OsString>) -> Vec<(&'static str, &'static str)> {
    if get(MARKER).is_some() {
        return Vec::new();
    }
    SETTINGS
        .iter()
        .copied()
        .filter(|(k, _)| get(k).is_none())
        .collect()
}

/// The effective value of each setting in this process, for logs and checks.
pub fn effective() -> Vec<(&'static str, Option<String>)> {
    SETTINGS
        .iter()
        .map(|(k, _)| (*k, std::env::var(k).ok()))
        .collect()
}

/// Re-executes the current binary with the missing settings added. Returns
/// only when nothing is missing or the re-execution failed (then the process
/// goes on with the allocator defaults, which is slower but correct). Call it
/// first thing in `main`, before any thread is started.
pub fn apply() {
    let add = missing(|k| std::env::var_os(k));
    if add.is_empty() {
        return;
    }
    reexec(&add);
}

#[cfg(unix)]
fn reexec(add: &[(&str, &str)]) {
    use std::os::unix::process::CommandExt;
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("restoreflow: cannot find the current executable; running untuned");
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).env(MARKER, "1");
    for (k, v) in add {
        cmd.env(k, v);
    }
    // `exec` only returns on failure; the process id stays the same, so
    // supervisors and signal handling see one process.
    let err = cmd.exec();
    eprintln!("restoreflow: cannot re-execute with tuned settings ({err}); running untuned");
}

#[cfg(not(unix))]
fn reexec(_add: &[(&str, &str)]) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn a_bare_environment_gets_every_setting() {
        assert_eq!(missing(env(&[])), SETTINGS.to_vec());
    }

    #[test]
    fn operator_values_are_kept() {
        let got = missing(env(&[("MIMALLOC_PURGE_DELAY", "100")]));
        assert_eq!(got, vec![("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0")]);
        assert!(
            missing(env(&[
                ("MIMALLOC_PURGE_DELAY", "5"),
                ("CANDLE_BARRIER_POOL_SPIN_LIMIT", "9")
            ]))
            .is_empty()
        );
    }

    #[test]
    fn a_reexecuted_process_never_loops() {
        assert!(missing(env(&[(MARKER, "1")])).is_empty());
    }
}
