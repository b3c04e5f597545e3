//! What the page offers students' own mail programs (`--share ADDR`, see
//! [`crate::world::share`]): their settings, the world's CA certificate,
//! and a QR code that opens the students' page on a phone.
//!
//! | Method and path          | What                                                   |
//! |--------------------------|--------------------------------------------------------|
//! | `GET /api/share`         | the shared address, DNS port, each user's settings (no passwords), the students' page URL; 404 without `--share` |
//! | `GET /api/share/qr.svg`  | the students' page URL as a QR code (SVG); 404 without `--share` |
//! | `GET /ca.pem`            | the world's CA certificate (PEM), to import into a mail program |
//!
//! The students' page is the page on the shared address, without the
//! control token: read-only (see [`super::access`]). The web server on the
//! shared address listens on the same port as the teacher's, so the port a
//! request arrived on is the students' port too, whichever of the two
//! addresses it came through.
//!
//! The QR code is drawn here, as SVG, by the `qrcode` crate: the page
//! loads no script for it (its Content-Security-Policy allows scripts from
//! this server only), it works offline, and it stays sharp on a projector
//! at any size. Error correction level M (15 % of the code may be
//! unreadable), the usual choice for a code shown on a screen.

use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::ApiError;
use super::guard::Peer;
use super::state::AppState;

/// The students' page: `http://ADDR:PORT/`, or `None` without `--share`.
/// `PORT` is the port `request` arrived on (see the module docs).
pub fn student_url(state: &AppState, request: &Request) -> Option<String> {
    let address = state.session().world.share.as_ref()?.address;
    let port = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|ConnectInfo(peer)| peer.local.port())
        .or_else(|| request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).and_then(|h| h.rsplit_once(':')).and_then(|(_, p)| p.parse().ok()))
        .unwrap_or(80);
    Some(format!("http://{}/", std::net::SocketAddr::new(address, port)))
}

fn not_shared() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "nothing is shared: start mailflow with --share ADDR to let students' own mail programs in").into_response()
}

/// `GET /api/share`.
pub async fn settings(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let world = state.session().world.clone();
    let (Some(plan), Some(page)) = (&world.share, student_url(&state, &request)) else { return not_shared() };
    Json(json!({
        "address": plan.address,
        "dns": { "server": plan.address, "port": plan.dns_port, "domains": world.scenario.domains.keys().collect::<Vec<_>>() },
        "page": page,
        "qr": "/api/share/qr.svg",
        "ca": format!("{page}ca.pem"),
        "services": plan.services,
        "users": plan.settings(&world.scenario),
    }))
    .into_response()
}

/// `GET /api/share/qr.svg`.
pub async fn qr(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let Some(page) = student_url(&state, &request) else { return not_shared() };
    match qr_svg(&page) {
        Ok(svg) => ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-cache")], svg).into_response(),
        Err(err) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot draw the QR code: {err}")).into_response(),
    }
}

/// `GET /ca.pem`: a certificate is public, so anyone may fetch it.
pub async fn ca(State(state): State<Arc<AppState>>) -> Response {
    let pem = state.session().world.tls.ca.pem().to_string();
    ([(header::CONTENT_TYPE, "application/x-pem-file"), (header::CONTENT_DISPOSITION, "attachment; filename=\"mailflow-ca.pem\"")], pem).into_response()
}

/// `text` as a QR code in SVG, black on white with the quiet zone
/// (four modules) the standard asks for.
pub fn qr_svg(text: &str) -> Result<String, qrcode::types::QrError> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)?;
    Ok(code.render::<qrcode::render::svg::Color>().min_dimensions(240, 240).quiet_zone(true).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the modules back out of the SVG (the renderer draws one
    /// `M x y h w v h H x V y` rectangle per run of dark modules) and
    /// compares them with the code of `text`: the SVG draws exactly that.
    #[test]
    fn the_svg_draws_the_code_of_the_url() {
        let url = "http://127.0.0.2:8025/";
        let svg = qr_svg(url).unwrap();
        let code = qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::M).unwrap();
        let width = code.width();
        let size: usize = svg.split("width=\"").nth(1).and_then(|r| r.split('"').next()).and_then(|n| n.parse().ok()).unwrap();
        let module = size / (width + 8);
        let path = svg.split(" d=\"").nth(1).and_then(|r| r.split('"').next()).unwrap();
        let mut dark = vec![false; width * width];
        for rect in path.split('M').filter(|r| !r.is_empty()) {
            let numbers: Vec<usize> = rect.split(|c: char| !c.is_ascii_digit()).filter(|n| !n.is_empty()).map(|n| n.parse().unwrap()).collect();
            let (x, y, w, h) = (numbers[0], numbers[1], numbers[2], numbers[3]);
            for row in (y / module)..((y + h) / module) {
                for col in (x / module)..((x + w) / module) {
                    dark[(row - 4) * width + (col - 4)] = true;
                }
            }
        }
        let expected: Vec<bool> = code.to_colors().iter().map(|c| *c == qrcode::Color::Dark).collect();
        assert_eq!(dark, expected);
    }
}
