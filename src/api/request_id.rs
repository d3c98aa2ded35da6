//! Request ids: a client's `x-request-id` is kept when it is a plain token, else replaced.
//!
//! The id is echoed in the response and written into every log line of the request, so a
//! value such as `<script>` or one with control or non-ASCII characters would be reflected
//! to browsers and forge log fields. A safe id (1 to 128 of `A-Z a-z 0-9 - _ . :`) is kept,
//! so callers can still correlate; anything else is dropped before
//! [`tower_http::request_id::SetRequestIdLayer`], which then draws a UUID.

use axum::http::{HeaderValue, Request};

/// The header lrlab reads, sets and echoes.
pub const HEADER: &str = "x-request-id";

/// The longest id kept (a UUID is 36; trace ids are 32 to 55).
const MAX_LEN: usize = 128;

/// Whether a client's id may be kept as it is.
fn is_safe(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=MAX_LEN).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Removes every `x-request-id` of the request unless there is exactly one and it is safe.
pub fn drop_unsafe<B>(mut request: Request<B>) -> Request<B> {
    let headers = request.headers_mut();
    let mut values = headers.get_all(HEADER).iter();
    let keep = matches!((values.next(), values.next()), (Some(v), None) if is_safe(v));
    if !keep {
        headers.remove(HEADER);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(value: &[u8]) -> bool {
        let request = Request::builder()
            .header(
                HEADER,
                HeaderValue::from_bytes(value).expect("a header value"),
            )
            .body(())
            .expect("a request");
        drop_unsafe(request).headers().contains_key(HEADER)
    }

    #[test]
    fn plain_tokens_are_kept_and_anything_else_is_dropped() {
        assert!(kept(b"0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(kept(b"trace:abc.DEF_123"));
        assert!(kept(&[b'a'; 128]));
        assert!(!kept(&[b'a'; 129]));
        assert!(!kept(b"<script>alert(1)</script>"));
        assert!(!kept(b"id with spaces"));
        assert!(!kept("caf\u{e9}".as_bytes()));
        assert!(!kept(b"a\tb"));
        assert!(!kept(b""));
    }

    #[test]
    fn two_ids_are_dropped_so_one_is_drawn() {
        let request = Request::builder()
            .header(HEADER, "first")
            .header(HEADER, "second")
            .body(())
            .expect("a request");
        assert!(!drop_unsafe(request).headers().contains_key(HEADER));
    }
}
