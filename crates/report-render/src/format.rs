//! Number and value formatting shared by every format.
//!
//! Decimal places are fixed per quantity (loss 6, PSNR 2, SSIM 4, accuracy 2
//! as a percentage) so the same value reads the same in every report; missing
//! values print [`NA`].

use chrono::{DateTime, Utc};

/// What a missing value prints as.
pub(crate) const NA: &str = "n/a";

/// Formats `value` with `f`, or [`NA`].
pub(crate) fn opt<T>(value: Option<T>, f: impl Fn(T) -> String) -> String {
    value.map_or_else(|| NA.to_string(), f)
}

/// A loss, 6 decimals.
pub(crate) fn loss(v: f64) -> String {
    format!("{v:.6}")
}

/// A PSNR without unit, 2 decimals.
pub(crate) fn psnr(v: f64) -> String {
    format!("{v:.2}")
}

/// A PSNR with its unit, e.g. "28.79 dB".
pub(crate) fn psnr_db(v: f64) -> String {
    format!("{v:.2} dB")
}

/// An SSIM, 4 decimals.
pub(crate) fn ssim(v: f64) -> String {
    format!("{v:.4}")
}

/// An accuracy fraction in `[0, 1]` as a percentage number (`v * 100`), 2 decimals.
pub(crate) fn accuracy_pct(v: f64) -> String {
    format!("{:.2}", v * 100.0)
}

/// A learning rate in the shortest exact scientific form, e.g. "1.9e-4".
pub(crate) fn lr(v: f64) -> String {
    format!("{v:e}")
}

/// Throughput in pairs per second, 2 decimals.
pub(crate) fn rate(v: f64) -> String {
    format!("{v:.2}")
}

/// Seconds, 2 decimals.
pub(crate) fn seconds(v: f64) -> String {
    format!("{v:.2}")
}

/// A signed value with `dp` decimals, e.g. "+0.33".
pub(crate) fn signed(v: f64, dp: usize) -> String {
    format!("{v:+.dp$}")
}

/// A signed percentage, e.g. "-57.45%".
pub(crate) fn signed_pct(v: f64) -> String {
    format!("{v:+.2}%")
}

/// A duration rounded to whole seconds, e.g. "1h 2m 3s", "2m 30s", "45s".
pub(crate) fn secs(v: f64) -> String {
    if !v.is_finite() || v < 0.0 {
        return format!("{v} s");
    }
    // Rounded to the nearest second; durations are far below u64::MAX seconds.
    let total = v.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// A duration as h/m/s plus the exact seconds, e.g. "1h 2m 3s (3723.00 s)".
pub(crate) fn duration(v: f64) -> String {
    format!("{} ({} s)", secs(v), seconds(v))
}

/// An integer with thousands separators, e.g. "1,234,567".
pub(crate) fn count(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte size in binary units plus the exact count, e.g. "1.18 MiB (1,234,567 bytes)".
pub(crate) fn bytes(v: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if v < 1024 {
        return format!("{v} bytes");
    }
    let mut value = v as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {} ({} bytes)", UNITS[unit], count(v))
}

/// A timestamp, e.g. "2025-03-14 09:00:00 UTC".
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A percentage, 2 decimals, e.g. "99.60%".
pub(crate) fn pct(v: f64) -> String {
    format!("{v:.2}%")
}

/// A number as the report prints one ("+1.29", "-57.45%", "1.9e-4") or [`NA`];
/// tables right-align columns of these.
pub(crate) fn is_numeric(s: &str) -> bool {
    s == NA || s.trim_end_matches('%').parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_decimals() {
        assert_eq!(loss(0.0345671), "0.034567");
        assert_eq!(psnr_db(28.78912), "28.79 dB");
        assert_eq!(ssim(0.887891), "0.8879");
        assert_eq!(accuracy_pct(0.776543), "77.65");
        assert_eq!(signed(0.3324, 2), "+0.33");
        assert_eq!(opt(None::<f64>, loss), NA);
    }

    #[test]
    fn learning_rate_round_trips() {
        for v in [0.0002, 0.00019, 1e-6, 0.1] {
            assert_eq!(lr(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(secs(3723.0), "1h 2m 3s");
        assert_eq!(secs(150.0), "2m 30s");
        assert_eq!(secs(0.4), "0s");
        assert_eq!(duration(3723.0), "1h 2m 3s (3723.00 s)");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1_234_567), "1.18 MiB (1,234,567 bytes)");
        assert_eq!(bytes(2_147_483_648), "2.00 GiB (2,147,483,648 bytes)");
    }
}
