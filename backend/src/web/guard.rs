//! The guard in front of every route and the WebSocket. In order, it
//! - answers only to host names that cannot be rebound to this machine by another site: loopback names,
//!   IP literals (a DNS-rebinding page needs a name it controls) and the `--allowed-host` values;
//! - lets a state-changing request (POST, PUT, PATCH, DELETE), any `/api` request or a WebSocket upgrade
//!   through only from this server's own pages or from non-browser clients: its `Origin` must be absent
//!   or this server, and its `Sec-Fetch-Site` absent, `same-origin` or `none`, so that an `<img>` on
//!   another site cannot start an export, a health check or a thumbnail;
//! - lets a state-changing request through only with the content type its route documents (JSON, or
//!   the upload types), so a cross-site HTML form cannot post to it;
//! - with a token, refuses requests that do not carry it, and swaps the start-up link's `?token=` for
//!   a cookie by redirecting to the same address without it;
//! - sends headers that keep the page out of frames and its addresses out of `Referer`;
//! - closes the connection after any refusal, and vouches for a connection whose request passed (see
//!   [`super::listener::ConnectionLimits::max_unvouched_per_address`]).

use super::error::ApiError;
use super::listener::ConnectionTrust;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Shortest token accepted when the server listens beyond loopback.
pub const MIN_TOKEN_LENGTH: usize = 16;
/// Name of the cookie that carries the access token after the first visit.
const TOKEN_COOKIE: &str = "studio_token";
/// The page is Trunk's: its loader is an inline module script that instantiates WebAssembly; the page
/// sets inline styles and shows dropped images from `blob:` addresses.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Why the server refuses to start with the access settings it was given.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Beyond loopback without a token.
    #[error(
        "refusing to listen on {host} without --token: anyone who can reach this machine could train and read \
         models. Pass --token <secret> (or TRANSFER_STUDIO_TOKEN), e.g. --token $(openssl rand -hex 16), or keep \
         the default 127.0.0.1"
    )]
    MissingToken {
        /// The address asked for.
        host: IpAddr,
    },
    /// Beyond loopback with a guessable token.
    #[error("refusing to listen on {host} with a token of {length} characters: give at least {MIN_TOKEN_LENGTH}, e.g. --token $(openssl rand -hex 16)")]
    ShortToken {
        /// The address asked for.
        host: IpAddr,
        /// The token's length.
        length: usize,
    },
    /// A token that cannot travel in a link, a cookie and a header unchanged.
    #[error("the token may only contain letters, digits and - . _ ~ (and must not be empty)")]
    TokenCharacters,
}

/// Checks the access settings before the server starts: off loopback a token of at least
/// [`MIN_TOKEN_LENGTH`] characters is required; any token must be non-empty and made of URL-safe
/// characters.
pub fn check_access(host: IpAddr, token: Option<&str>) -> Result<(), AccessError> {
    if let Some(token) = token {
        let safe = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
        if token.is_empty() || !token.chars().all(safe) {
            return Err(AccessError::TokenCharacters);
        }
    }
    match token {
        _ if host.is_loopback() => Ok(()),
        None => Err(AccessError::MissingToken { host }),
        Some(token) if token.len() < MIN_TOKEN_LENGTH => Err(AccessError::ShortToken { host, length: token.len() }),
        Some(_) => Ok(()),
    }
}

/// What the guard checks requests against.
#[derive(Clone)]
pub(crate) struct Guard(Arc<GuardSettings>);

struct GuardSettings {
    /// `--allowed-host` values, lower case: a name (any port) or `name:port`.
    allowed_hosts: Vec<String>,
    /// The access token, when one is required.
    token: Option<String>,
}

impl Guard {
    /// A guard admitting `allowed_hosts` beyond the built-in ones, and requiring `token` when given.
    pub(crate) fn new(allowed_hosts: &[String], token: Option<String>) -> Self {
        let allowed_hosts = allowed_hosts.iter().map(|host| host.trim().to_ascii_lowercase()).collect();
        Guard(Arc::new(GuardSettings { allowed_hosts, token }))
    }

    /// True for loopback names, IP literals and the allowed hosts, with any port unless the allowed
    /// value names one.
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let name = split_port(&host);
        name == "localhost" || is_ip_literal(name) || self.explicitly_allowed(&host)
    }

    fn explicitly_allowed(&self, authority: &str) -> bool {
        let name = split_port(authority);
        self.0.allowed_hosts.iter().any(|allowed| allowed == authority || allowed == name)
    }

    /// True when `Origin` is absent (not a browser) or names this server: the host the request was
    /// sent to (already allowed) or an allowed host. Another port on loopback is another site.
    fn origin_allowed(&self, headers: &HeaderMap, host: &str) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else { return true };
        let Ok(origin) = origin.to_str() else { return false };
        let origin = origin.to_ascii_lowercase();
        let Some(authority) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
            return false;
        };
        authority == host.to_ascii_lowercase() || self.explicitly_allowed(authority)
    }
}

/// `host` without its `:port`; IPv6 literals keep their brackets.
fn split_port(host: &str) -> &str {
    if let Some(end) = host.strip_prefix('[').and_then(|rest| rest.find(']')) {
        return &host[..end + 2];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

fn is_ip_literal(name: &str) -> bool {
    match name.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => name.parse::<Ipv4Addr>().is_ok(),
    }
}

/// The host a request was sent to: `Host`, or the authority of an absolute URI.
fn request_host(request: &Request) -> Option<String> {
    match request.headers().get(header::HOST) {
        Some(host) => host.to_str().ok().map(str::to_string),
        None => request.uri().authority().map(|authority| authority.to_string()),
    }
}

/// Whether a browser says a page of another site (or another port of this host) sent the request:
/// `Sec-Fetch-Site` other than `same-origin` or `none` (typed in the address bar, a bookmark). An
/// `<img>` or `<link>` on another site sends `cross-site` (or `same-site` from another port), with no
/// `Origin`, so this is what keeps such a page from starting an export, a health check or a thumbnail.
fn sent_by_another_site(headers: &HeaderMap) -> bool {
    headers.get("sec-fetch-site").is_some_and(|site| {
        !matches!(site.to_str().map(str::to_ascii_lowercase).as_deref(), Ok("same-origin" | "none"))
    })
}

fn changes_state(method: &Method) -> bool {
    [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(method)
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The content types a state-changing request to `path` may carry (see docs/API.md).
fn accepted_types(path: &str) -> &'static [&'static str] {
    match path {
        "/api/datasets" => &["application/zip", "application/x-zip-compressed", "application/octet-stream"],
        "/api/classify" => &["image/*", "application/octet-stream"],
        "/api/classify/batch" => &["multipart/form-data"],
        "/api/weights" => &["application/octet-stream"],
        _ if is_dataset_images(path) => &["image/*", "application/octet-stream"],
        _ => &["application/json"],
    }
}

/// Whether `path` is `/api/datasets/{name}/images`.
fn is_dataset_images(path: &str) -> bool {
    path.strip_prefix("/api/datasets/")
        .and_then(|rest| rest.strip_suffix("/images"))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// Refuses a body whose media type the route does not take. A request without `Content-Type` is taken
/// as `application/octet-stream` (RFC 9110, 8.3) when it has a body, and passes when it has none.
fn check_content_type(request: &Request) -> Result<(), ApiError> {
    let headers = request.headers();
    let media = match headers.get(header::CONTENT_TYPE) {
        Some(value) => value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase(),
        None if !has_body(headers) => return Ok(()),
        None => "application/octet-stream".to_string(),
    };
    let path = request.uri().path();
    let accepted = accepted_types(path);
    let matches = |pattern: &&str| match pattern.strip_suffix('*') {
        Some(prefix) => media.starts_with(prefix) && media.len() > prefix.len(),
        None => media == *pattern,
    };
    if accepted.iter().any(matches) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("{} {path} takes Content-Type {}, not {media}", request.method(), accepted.join(" or ")),
    ))
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    length.is_some_and(|length| length > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// What the token check decided.
enum TokenCheck {
    /// No token needed, or a valid one came in a header or cookie.
    Pass,
    /// The link's `?token=` on a page load: answered by this redirect, which sets the cookie.
    Redirect(Response),
    /// Missing or wrong.
    Refuse(ApiError),
}

fn check_token(token: &str, request: &Request) -> TokenCheck {
    let headers = request.headers();
    let matches = |candidate: Option<&str>| candidate.is_some_and(|c| constant_time_eq(c.as_bytes(), token.as_bytes()));
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, credentials) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
    });
    let cookie = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookies| {
        cookies.split(';').find_map(|c| c.trim().strip_prefix(TOKEN_COOKIE).and_then(|v| v.strip_prefix('=')))
    });
    let query = request.uri().query().unwrap_or("");
    let linked = query.split('&').find_map(|pair| pair.strip_prefix("token="));
    if matches(linked) && [Method::GET, Method::HEAD].contains(request.method()) && !is_websocket_upgrade(headers) {
        return TokenCheck::Redirect(redirect_setting_cookie(request, token));
    }
    if matches(bearer) || matches(cookie) || matches(linked) {
        return TokenCheck::Pass;
    }
    TokenCheck::Refuse(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "this studio requires its access token: open the link printed when the server started, or send Authorization: Bearer <token>",
    ))
}

/// `303 See Other` to the request's own path and query less `token=`, setting the token cookie.
fn redirect_setting_cookie(request: &Request, token: &str) -> Response {
    let rest: Vec<&str> = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    let mut location = request.uri().path().to_string();
    if !rest.is_empty() {
        location = format!("{location}?{}", rest.join("&"));
    }
    let cookie = format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    for (name, value) in
        [(header::LOCATION, location), (header::SET_COOKIE, cookie), (header::CACHE_CONTROL, "no-store".into())]
    {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Everything but the token: host, origin and content type. `Err` is the refusal.
fn check_request(guard: &Guard, request: &Request) -> Result<(), ApiError> {
    let Some(host) = request_host(request).filter(|host| guard.host_allowed(host)) else {
        // The name is not repeated: a refusal never echoes what the request sent.
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this studio does not answer to the host name this request was sent to: open it by its address, or \
             start it with --allowed-host <that name>",
        ));
    };
    let state_changing = changes_state(request.method());
    let api = request.uri().path().starts_with("/api/") || request.uri().path() == "/api";
    let checks_origin = state_changing || api || is_websocket_upgrade(request.headers());
    if checks_origin && (!guard.origin_allowed(request.headers(), &host) || sent_by_another_site(request.headers())) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "requests from pages of other sites are refused"));
    }
    if state_changing {
        check_content_type(request)?;
    }
    Ok(())
}

/// The guard as axum middleware: refusals are answered here, everything else goes on; every answer
/// gets the security headers.
pub(crate) async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let host = request_host(&request).filter(|host| guard.host_allowed(host));
    let checked = check_request(&guard, &request).map(|()| match guard.0.token.as_deref() {
        Some(token) => check_token(token, &request),
        None => TokenCheck::Pass,
    });
    let trust = request.extensions().get::<ConnectionTrust>().cloned();
    let mut response = match checked {
        Ok(TokenCheck::Pass) => {
            trust.inspect(ConnectionTrust::vouch);
            next.run(request).await
        }
        Ok(TokenCheck::Redirect(response)) => response,
        Ok(TokenCheck::Refuse(refusal)) | Err(refusal) => {
            // A refused client keeps no connection: whatever it sent after this request (pipelined, and
            // perhaps never read) goes unanswered, and its slot is free once this answer is written.
            let mut response = refusal.into_response();
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    };
    add_security_headers(response.headers_mut(), host.as_deref());
    response
}

/// The frame, referrer and sniffing headers, and the page's policy. Its `connect-src` names the
/// WebSocket's address (`ws:` and `wss:` on the allowed host the request came to) as well as 'self',
/// which not every browser extends to WebSocket schemes.
fn add_security_headers(headers: &mut HeaderMap, host: Option<&str>) {
    let plain_host = |host: &&str| host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    let policy = match host.filter(plain_host) {
        Some(host) => CONTENT_SECURITY_POLICY.replacen(
            "connect-src 'self'",
            &format!("connect-src 'self' ws://{host} wss://{host}"),
            1,
        ),
        None => CONTENT_SECURITY_POLICY.to_string(),
    };
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_ip_literals_and_allowed_hosts_pass_other_names_do_not() {
        let guard = Guard::new(&["studio.example.com".into(), "box:8443".into()], None);
        for host in
            ["localhost", "localhost:8080", "127.0.0.1:9", "[::1]:8080", "10.0.0.5", "studio.example.com:1", "box:8443"]
        {
            assert!(guard.host_allowed(host), "{host}");
        }
        for host in
            ["evil.example", "evil.example:8080", "box:8444", "localhost.evil.example", "127.0.0.1.evil.example"]
        {
            assert!(!guard.host_allowed(host), "{host}");
        }
    }
}
