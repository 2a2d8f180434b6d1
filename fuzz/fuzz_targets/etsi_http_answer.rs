//! What a TS 102 941 server sends back to the AA's link to its EA and to
//! the vehicle's station (`trustca_api::etsi_http::plain::read_answer`):
//! any bytes are read without panic, and a body is only ever taken from a
//! `200` answer whose declared length matches and fits the cap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trustca_api::etsi_http::plain::read_answer;

/// Small, so the size refusal is reached too.
const MAX_ANSWER: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = read_answer(data, MAX_ANSWER) {
        assert!(data.starts_with(b"HTTP/1.1 200") || data.starts_with(b"HTTP/1.0 200"));
        assert!(body.len() <= MAX_ANSWER);
        assert!(data.ends_with(&body));
    }
});
