//! The one pagination convention of the REST API.
//!
//! Every list takes `page_size` (how many items) and `page_token` (the
//! `next_page_token` of the previous page, opaque) and answers with
//! `next_page_token`, absent on the last page. The parameters of earlier
//! releases (`limit`, `offset`, `continuation_token`) are still accepted for
//! one release, as aliases; when a request gives an old and a new one, the
//! new one wins.

use crate::error::ApiError;

/// The page a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Items wanted (the route's default when absent).
    pub size: Option<u64>,
    /// The parameter that gave it (`page_size` or `limit`), for messages.
    pub size_name: &'static str,
    /// Where to go on from, opaque to the client.
    pub token: Option<String>,
}

/// Merges the new parameters with their deprecated aliases (`limit`, and
/// `continuation_token` where a list had it).
pub fn request<N: Into<u64>>(
    page_size: Option<N>,
    limit: Option<N>,
    page_token: Option<String>,
    legacy_token: Option<String>,
) -> Result<PageRequest, ApiError> {
    let (size, size_name) = match (page_size.map(Into::into), limit.map(Into::into)) {
        (None, Some(l)) => (Some(l), "limit"),
        (new, _) => (new, "page_size"),
    };
    let token = page_token
        .filter(|t| !t.is_empty())
        .or(legacy_token.filter(|t| !t.is_empty()));
    Ok(PageRequest {
        size,
        size_name,
        token,
    })
}

/// Checks `size` against `1..=max` (`default` when absent).
pub fn size(req: &PageRequest, default: u64, max: u64) -> Result<u64, ApiError> {
    let n = req.size.unwrap_or(default);
    if !(1..=max).contains(&n) {
        return Err(ApiError::invalid(format!(
            "{} must be between 1 and {max}",
            req.size_name
        )));
    }
    Ok(n)
}

/// The token of an offset-paged list (jobs, datasets): the offset in
/// decimal, the form the gRPC-backed lists use too.
pub fn offset_token(offset: u64) -> String {
    offset.to_string()
}

/// Size and offset of a page of an offset-paged list: the size within
/// `1..=max`, the offset from the token (or a deprecated `offset`) within
/// the database's bound.
pub fn offset_page(
    req: &PageRequest,
    legacy_offset: Option<u64>,
    default: u64,
    max: u64,
) -> Result<(u64, u64), ApiError> {
    let limit = size(req, default, max)?;
    let offset = offset_of(req.token.as_deref(), legacy_offset)?;
    let offset = restoreflow_core::db::paging::check_offset(offset).map_err(ApiError::invalid)?;
    Ok((limit, offset))
}

/// The offset a token of [`offset_token`] (or, without one, a deprecated
/// `offset`) names.
pub fn offset_of(token: Option<&str>, legacy_offset: Option<u64>) -> Result<u64, ApiError> {
    match token {
        None => Ok(legacy_offset.unwrap_or(0)),
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|_| t.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "page_token {t:?} is not a token this list gave (pass next_page_token back as it is)"
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_names_are_aliases_and_the_new_ones_win() {
        let r = request(Some(5u64), None, Some("t".into()), None).unwrap();
        assert_eq!((r.size, r.token.as_deref()), (Some(5), Some("t")));
        let r = request(None, Some(7u64), None, Some("c".into())).unwrap();
        assert_eq!((r.size, r.token.as_deref()), (Some(7), Some("c")));
        assert_eq!(r.size_name, "limit");
        let r = request(Some(1u64), Some(2), None, None).unwrap();
        assert_eq!((r.size, r.size_name), (Some(1), "page_size"));
        let r = request::<u64>(None, None, Some("a".into()), Some("b".into())).unwrap();
        assert_eq!(r.token.as_deref(), Some("a"));
        assert_eq!(
            size(&request::<u64>(None, None, None, None).unwrap(), 50, 200).unwrap(),
            50
        );
        assert!(size(&request(Some(0u64), None, None, None).unwrap(), 50, 200).is_err());
        assert!(size(&request(Some(201u64), None, None, None).unwrap(), 50, 200).is_err());
        let e = size(&request(None, Some(0u64), None, None).unwrap(), 50, 200).unwrap_err();
        assert!(e.message.contains("limit must be"), "{}", e.message);
    }

    #[test]
    fn offset_tokens_round_trip_and_strangers_are_refused() {
        assert_eq!(offset_of(Some(&offset_token(150)), None).unwrap(), 150);
        assert_eq!(offset_of(None, Some(20)).unwrap(), 20);
        assert_eq!(offset_of(None, None).unwrap(), 0);
        assert!(offset_of(Some("o150"), None).is_err());
        assert!(offset_of(Some("+1"), None).is_err());
        assert!(offset_of(Some("x"), None).is_err());
        assert_eq!(offset_of(Some("1"), Some(9)).unwrap(), 1);
    }
}
