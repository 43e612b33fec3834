//! `restoreflow keys new` makes a key and the configuration entry that
//! accepts it, holding only the key's SHA-256.

use std::process::Command;

use restoreflow_core::Settings;
use restoreflow_core::config::keys::{KeyEntry, KeyScope, hash_key};

fn keys_new(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_restoreflow"))
        .args(["keys", "new"])
        .args(args)
        .output()
        .expect("restoreflow runs")
}

#[test]
fn a_new_key_comes_with_the_entry_that_accepts_it() {
    let out = keys_new(&["--scope", "read", "--name", "grafana"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} line in {text}"))
            .trim()
            .to_string()
    };
    let key = field("key:");
    let entry = field("entry:");
    assert!(key.len() >= 32, "{key}");
    assert!(!entry.contains(&key), "the entry holds no key: {entry}");
    let parsed = KeyEntry::parse(&entry).unwrap();
    assert_eq!(parsed.scope, KeyScope::Read);
    assert_eq!(parsed.name, "grafana");
    assert_eq!(parsed.sha256, hash_key(&key));
    // It loads as configuration.
    let s = Settings::load(
        None,
        [("RESTOREFLOW__GATEWAY__API_KEYS".to_string(), entry.clone())],
    )
    .unwrap();
    assert_eq!(s.gateway.api_keys, [entry]);
    // Two calls, two keys.
    let again = String::from_utf8(keys_new(&["--name", "grafana"]).stdout).unwrap();
    assert!(!again.contains(&key));
}

#[test]
fn a_bad_name_is_refused_with_the_reason() {
    let out = keys_new(&["--scope", "admin", "--name", "has space"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key name"), "{err}");
}
