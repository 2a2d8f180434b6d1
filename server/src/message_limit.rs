//! Oversized gRPC requests answered as `RESOURCE_EXHAUSTED`.
//!
//! tonic refuses a request larger than a service's
//! `max_decoding_message_size` with `OUT_OF_RANGE` and the text "Error,
//! decoded message length too large: found N bytes, the limit is: M bytes".
//! The gRPC status-code guide names `RESOURCE_EXHAUSTED` for a message over
//! a size limit, and clients retry or report on that code, so this layer
//! rewrites exactly that refusal (recognised by its text, not by the code
//! alone, which our services also use) into `RESOURCE_EXHAUSTED` with a
//! plain sentence. tonic sends a unary request's refusal in the response
//! headers, which is what the layer sees; a refusal in the middle of a
//! client stream travels in the trailers, where this layer cannot reach
//! it: `EnrollBatch` recognises it itself and ends its stream with
//! `RESOURCE_EXHAUSTED` (`api/src/enroll_batch.rs`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::Service;
use tonic::codegen::http::{self, HeaderValue};
use trustca_model::limits::TONIC_OVERSIZE_TEXT as TONIC_OVERSIZE;

/// A service whose oversized-request refusals become `RESOURCE_EXHAUSTED`.
#[derive(Debug, Clone)]
pub struct OversizeAsResourceExhausted<S> {
    inner: S,
    limit: usize,
}

impl<S> OversizeAsResourceExhausted<S> {
    /// Wraps `inner`, whose services accept at most `limit` bytes a message.
    pub fn new(inner: S, limit: usize) -> Self {
        Self { inner, limit }
    }
}

/// The layer for `Server::builder().layer(...)`: `limit` is the services'
/// `max_decoding_message_size`, quoted in the message.
#[derive(Debug, Clone, Copy)]
pub struct OversizeLayer(pub usize);

impl<S> tower::Layer<S> for OversizeLayer {
    type Service = OversizeAsResourceExhausted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OversizeAsResourceExhausted::new(inner, self.0)
    }
}

/// Rewrites the status headers of an oversize refusal in place.
fn rewrite(headers: &mut http::HeaderMap, limit: usize) {
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"11");
    let oversize = headers.get("grpc-message").is_some_and(|v| {
        let text = String::from_utf8_lossy(v.as_bytes()).replace("%20", " ");
        text.contains(TONIC_OVERSIZE)
    });
    if !(out_of_range && oversize) {
        return;
    }
    // grpc-message is percent-encoded; a sentence of letters, digits and
    // spaces needs only the spaces encoded.
    let message = format!("the request is larger than this server accepts (at most {limit} bytes)")
        .replace(' ', "%20");
    headers.insert("grpc-status", HeaderValue::from_static("8"));
    if let Ok(v) = HeaderValue::from_str(&message) {
        headers.insert("grpc-message", v);
    }
}

impl<S, B, ResBody> Service<http::Request<B>> for OversizeAsResourceExhausted<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let response = self.inner.call(request);
        let limit = self.limit;
        Box::pin(async move {
            let mut response = response.await?;
            rewrite(response.headers_mut(), limit);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_oversize_refusal_is_rewritten() {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static("11"));
        h.insert(
            "grpc-message",
            HeaderValue::from_static(
                "Error,%20decoded%20message%20length%20too%20large:%20found%20204810%20bytes",
            ),
        );
        rewrite(&mut h, 65536);
        assert_eq!(h["grpc-status"], "8");
        assert!(
            h["grpc-message"]
                .to_str()
                .unwrap()
                .contains("at%20most%2065536%20bytes")
        );

        let mut other = http::HeaderMap::new();
        other.insert("grpc-status", HeaderValue::from_static("11"));
        other.insert(
            "grpc-message",
            HeaderValue::from_static("epoch%20out%20of%20range"),
        );
        rewrite(&mut other, 65536);
        assert_eq!(other["grpc-status"], "11");
    }
}
