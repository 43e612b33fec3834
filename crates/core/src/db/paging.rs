//! Bounds of offset pagination. The database binds offsets as signed 64-bit
//! integers, so an offset past `i64::MAX` makes the SQL binder panic; every
//! listing checks its offset (or its `page_token`, which carries one) here
//! first and answers a clear invalid-argument error instead.

/// Largest row offset a listing accepts.
pub const MAX_OFFSET: u64 = 1_000_000_000;

/// `offset` when it is at most [`MAX_OFFSET`], else the error message.
pub fn check_offset(offset: u64) -> Result<u64, String> {
    if offset <= MAX_OFFSET {
        Ok(offset)
    } else {
        Err(format!("offset must be at most {MAX_OFFSET}, got {offset}"))
    }
}

/// The offset a `page_token` carries: 0 for an empty token, else a decimal
/// offset of at most [`MAX_OFFSET`].
pub fn parse_page_token(token: &str) -> Result<u64, String> {
    if token.is_empty() {
        return Ok(0);
    }
    let offset = token
        .parse::<u64>()
        .map_err(|_| "page_token is not a token from a previous page".to_string())?;
    check_offset(offset).map_err(|_| {
        format!("page_token is not a token from a previous page (offset past {MAX_OFFSET})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_past_the_bound_are_refused() {
        assert_eq!(check_offset(0), Ok(0));
        assert_eq!(check_offset(MAX_OFFSET), Ok(MAX_OFFSET));
        assert!(check_offset(MAX_OFFSET + 1).is_err());
        assert!(check_offset(9_223_372_036_854_775_808).is_err());
        assert_eq!(parse_page_token(""), Ok(0));
        assert_eq!(parse_page_token("150"), Ok(150));
        for bad in ["x", "-1", "9223372036854775808", "18446744073709551616"] {
            let e = parse_page_token(bad).unwrap_err();
            assert!(e.contains("page_token"), "{bad}: {e}");
        }
    }
}
