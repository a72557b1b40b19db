//! What the two web fronts share — the citizens' (`jiesu-web`) and the staff's (`jiesu-console`):
//! the headers every page carries, the client's address, random bytes for tokens.

use std::net::SocketAddr;

use axum::{
    http::{HeaderMap, HeaderValue, header},
    response::Response,
};

/// No script but the front's own files (never inline, so nothing a citizen typed can run), no
/// framing (clickjacking), no sniffing, no referrer, forms only to the front itself.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the headers of [`CONTENT_SECURITY_POLICY`] to a response: `axum::middleware::map_response(security_headers)`.
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The client's address: the connection's, or behind the district's own reverse proxy (which
/// overwrites the header) the last hop it added to `X-Forwarded-For`.
pub fn client_address(behind_proxy: bool, addr: SocketAddr, headers: &HeaderMap) -> String {
    if behind_proxy && let Some(hop) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next()) {
        return hop.trim().to_string();
    }
    addr.ip().to_string()
}

/// A listener whose connections send small answers at once: without TCP_NODELAY, Nagle's
/// algorithm and the browser's delayed ACK hold a page's last packet for 40 ms.
pub fn without_delay(listener: tokio::net::TcpListener) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    fn no_delay(tcp: &mut tokio::net::TcpStream) {
        let _ = tcp.set_nodelay(true);
    }
    axum::serve::ListenerExt::tap_io(listener, no_delay as fn(&mut tokio::net::TcpStream))
}

/// A web front serving until stopped: the citizens' (`jiesu-web`) or the staff's
/// (`jiesu-console`). Its router sees each client's address (`ConnectInfo<SocketAddr>`).
pub struct WebServer {
    pub addr: SocketAddr,
    cancel: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl WebServer {
    /// Binds `addr` (its port may be 0) and serves `router` until `cancel` is cancelled.
    pub async fn start(addr: SocketAddr, router: axum::Router, cancel: tokio_util::sync::CancellationToken) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let stop = cancel.clone();
        let task =
            tokio::spawn(async move { axum::serve(without_delay(listener), service).with_graceful_shutdown(stop.cancelled_owned()).await });
        Ok(Self { addr, cancel, task })
    }

    /// Waits for Ctrl-C, SIGTERM, or the server's own stop.
    pub async fn stopping(&self) {
        tokio::select! {
            _ = crate::host::shutdown_signal() => {}
            _ = self.cancel.cancelled() => {}
        }
    }

    /// Stops serving, letting requests in flight finish.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Random bytes from the system's source.
pub fn random<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("the system's random source");
    bytes
}

/// `N` random bytes as URL-safe base64 without padding: session ids, CSRF tokens, nonces.
pub fn random_token<const N: usize>() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<N>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxys_last_hop_is_the_client_only_behind_a_proxy() {
        let addr: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4, 203.0.113.7"));
        assert_eq!(client_address(false, addr, &headers), "10.0.0.9");
        assert_eq!(client_address(true, addr, &headers), "203.0.113.7");
        assert_eq!(client_address(true, addr, &HeaderMap::new()), "10.0.0.9");
    }

    #[test]
    fn tokens_are_long_and_differ() {
        let (a, b) = (random_token::<32>(), random_token::<32>());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
