//! Gateway API keys: scopes, their hashed form in configuration, and the
//! rules every key must meet.
//!
//! A key is a random string handed to one client. The gateway stores only its
//! SHA-256: `gateway.api_keys` holds entries `scope:name:sha256hex`, so a
//! leaked configuration does not leak the keys. Several entries may be valid
//! at once, which is how keys are rotated: add the new entry, move clients
//! over, remove the old one. `gateway.api_key` (the key `restoreflow up`
//! generates) is one more admin key, given in plain text.

use sha2::{Digest, Sha256};

/// Shortest key accepted anywhere (a generated key has 51 characters).
pub const MIN_KEY_LEN: usize = 16;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyScope {
    /// GET and HEAD on every route: listings, files, downloads, reports.
    Read,
    /// Everything, including starting work and deleting.
    Admin,
}

impl KeyScope {
    /// The spelling in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    /// Parses `read` or `admin`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// One accepted key: its scope, a name for logs, and its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    /// What the key may do.
    pub scope: KeyScope,
    /// Who holds it (shown in logs, never the key).
    pub name: String,
    /// SHA-256 of the key.
    pub sha256: [u8; 32],
}

impl KeyEntry {
    /// Parses `scope:name:sha256hex`; the message says what is wrong.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let mut parts = entry.trim().splitn(3, ':');
        let (Some(scope), Some(name), Some(hash)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "{entry:?} is not scope:name:sha256 (e.g. read:grafana:<64 hex digits>)"
            ));
        };
        let scope = KeyScope::parse(scope)
            .ok_or_else(|| format!("scope {scope:?} is not read or admin"))?;
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "key name {name:?} must be 1-64 characters of a-z, A-Z, 0-9, '-', '_' or '.'"
            ));
        }
        let bytes = hex::decode(hash)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| format!("the hash of key {name:?} is not 64 hex digits"))?;
        if bytes == hash_key("") {
            return Err(format!("key {name:?} is the hash of an empty key"));
        }
        Ok(Self {
            scope,
            name: name.to_string(),
            sha256: bytes,
        })
    }

    /// The configuration spelling, `scope:name:sha256hex`.
    pub fn to_config(&self) -> String {
        format!(
            "{}:{}:{}",
            self.scope.as_str(),
            self.name,
            hex::encode(self.sha256)
        )
    }
}

/// SHA-256 of a key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Checks a key given in plain text; the message says what is wrong.
pub fn check_plain_key(key: &str) -> Result<(), String> {
    if key.trim() != key {
        return Err("it starts or ends with whitespace".into());
    }
    if key.chars().count() < MIN_KEY_LEN {
        return Err(format!(
            "it has {} characters; keys need at least {MIN_KEY_LEN} (`restoreflow keys new` makes one)",
            key.chars().count()
        ));
    }
    Ok(())
}

/// A new random key (`rf_` and 48 hex digits).
pub fn generate_key() -> String {
    format!("rf_{}", hex::encode(rand::random::<[u8; 24]>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_and_print_back() {
        let key = generate_key();
        let entry = KeyEntry {
            scope: KeyScope::Read,
            name: "grafana".into(),
            sha256: hash_key(&key),
        };
        let text = entry.to_config();
        assert!(text.starts_with("read:grafana:"), "{text}");
        assert_eq!(KeyEntry::parse(&text).unwrap(), entry);
        assert!(!text.contains(&key), "the key itself is never in the entry");
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        let h = hex::encode(hash_key("some-long-enough-key"));
        for (entry, needle) in [
            ("admin", "scope:name:sha256"),
            (&format!("owner:ci:{h}") as &str, "read or admin"),
            (&format!("read::{h}"), "key name"),
            (&format!("read:a b:{h}"), "key name"),
            ("read:ci:abc", "64 hex"),
            (
                &format!("read:ci:{}", hex::encode(hash_key(""))),
                "empty key",
            ),
        ] {
            let e = KeyEntry::parse(entry).unwrap_err();
            assert!(e.contains(needle), "{entry}: {e}");
        }
    }

    #[test]
    fn plain_keys_must_be_long_and_trimmed() {
        assert!(check_plain_key("").is_err());
        assert!(
            check_plain_key("short")
                .unwrap_err()
                .contains("at least 16")
        );
        assert!(check_plain_key(" padded-key-of-twenty ").is_err());
        assert!(check_plain_key(&generate_key()).is_ok());
        assert_eq!(generate_key().len(), 51);
        assert_ne!(generate_key(), generate_key());
    }
}
