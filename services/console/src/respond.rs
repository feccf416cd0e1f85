//! Every response the console sends goes through here, so every one carries
//! the same security headers: a strict Content-Security-Policy (no script,
//! no inline style, no framing, forms only to this origin), HSTS, no
//! caching (pages hold personal data), no referrer to other sites, no MIME
//! sniffing.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

fn secured(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // same-origin, not no-referrer: under no-referrer a browser sends
    // `Origin: null` with the console's own forms, which the Origin check refuses.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// An HTML page.
pub fn html(status: StatusCode, page: String) -> Response {
    secured(status, "text/html; charset=utf-8", Body::from(page))
}

/// The stylesheet.
pub fn css(text: &'static str) -> Response {
    secured(StatusCode::OK, "text/css; charset=utf-8", Body::from(text))
}

/// A CSV download named `file` (ASCII).
pub fn csv(file: &str, text: String) -> Response {
    let mut response = secured(StatusCode::OK, "text/csv; charset=utf-8", Body::from(text));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// 303 See Other to `to` (a path of this console).
pub fn redirect(to: &'static str) -> Response {
    let mut response = secured(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", Body::empty());
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_static(to));
    response
}

/// 303 to `to`, setting the session cookie (or clearing it: `None`).
pub fn redirect_with_cookie(to: &'static str, session: Option<&str>) -> Response {
    let mut response = redirect(to);
    let cookie = match session {
        Some(id) => format!(
            "{}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
            crate::session::COOKIE,
            crate::session::IDLE.as_secs()
        ),
        None => format!("{}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0", crate::session::COOKIE),
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
