//! Live DNS editing from the page: change, add or remove one record of a
//! zone while the world runs, and the next question the fake DNS answers
//! sees it (it keeps no cache; RFC 1034 §4.3.2 answers come from the zone
//! as it is now).
//!
//! | Method and path  | What                                                     |
//! |------------------|----------------------------------------------------------|
//! | `GET /api/dns`   | every zone's records, as zone-file lines and as scenario records |
//! | `POST /api/dns`  | `{"domain", "action": "add"/"change"/"remove", "line"?, "record"?}` |
//!
//! A change is the same as a scenario's `dns` step
//! ([`crate::world::change_zone`]): one `dns_change` event in the story,
//! so the class sees what the teacher did, when, and what the next lookup
//! answered. The `POST` passes [`super::guard`] like every change (JSON
//! from this page, and the control token when one is set: with a token,
//! only the teacher edits). Records are checked as a scenario's are
//! ([`crate::scenario::validate::check_live_record`]): an address must stay
//! on loopback, so no edit can send the world's mail off this machine.
//!
//! Records are named by their zone-file line, not a position, so a change
//! made from a page that has not yet seen someone else's edit is refused
//! (`409`) instead of changing the wrong record.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::ApiError;
use super::state::AppState;
use crate::dns::zone::to_record;
use crate::scenario::{RecordKind, RecordSpec, validate};
use crate::world::change_zone;

/// The most records one zone may have after an edit (a lesson's zone has
/// a handful; this keeps a runaway script from growing it without bound).
pub const MAX_RECORDS: usize = 100;

/// `GET /api/dns`: every zone, each record as `{"line", "record"}`.
pub async fn zones(State(state): State<Arc<AppState>>) -> Json<Value> {
    let session = state.session();
    let zones: Vec<Value> = session
        .world
        .zones
        .listing()
        .into_iter()
        .filter_map(|(domain, _)| {
            let records = session.world.zones.records_of(&domain)?;
            let records: Vec<Value> = records.into_iter().map(|(line, record)| json!({"line": line, "record": record})).collect();
            Some(json!({"domain": domain, "records": records}))
        })
        .collect();
    Json(json!({"generation": session.generation, "zones": zones}))
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Add,
    Change,
    Remove,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditRequest {
    domain: String,
    action: Action,
    /// The record to change or remove, as `GET /api/dns` lists it.
    #[serde(default)]
    line: Option<String>,
    /// The new record, for `add` and `change`.
    #[serde(default)]
    record: Option<RecordSpec>,
}

/// `POST /api/dns`: one edit; answers with the zone's records afterwards.
pub async fn edit(State(state): State<Arc<AppState>>, body: Bytes) -> Result<Response, ApiError> {
    let request: EditRequest = serde_json::from_slice(&body).map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, format!("bad request body: {err}")))?;
    let session = state.session();
    let world = &session.world;
    let domain = request.domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let current = world.zones.records_of(&domain).ok_or_else(|| {
        let known: Vec<String> = world.zones.listing().into_iter().map(|(d, _)| d).collect();
        ApiError::new(StatusCode::NOT_FOUND, format!("no zone {domain:?} in this world; its zones are: {}", known.join(", ")))
    })?;
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);

    // The new record, checked as a scenario's record is.
    let new = match (&request.action, request.record) {
        (Action::Remove, Some(_)) => return Err(bad("`remove` takes the record's `line` only, no `record`".into())),
        (Action::Remove, None) => None,
        (_, None) => {
            return Err(bad("`add` and `change` need the new `record`, e.g. {\"type\": \"MX\", \"preference\": 10, \"exchange\": \"mx1.example.org\"}".into()));
        }
        (_, Some(record)) => {
            let problems = validate::check_live_record(&domain, &record);
            if !problems.is_empty() {
                return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("the record has problems: {}", problems.join("; "))));
            }
            let line = to_record(&domain, &record).map_err(|err| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, err.to_string()))?.to_string();
            Some((line, record))
        }
    };
    // The record it replaces or removes, found by its line.
    let old = match (&request.action, request.line) {
        (Action::Add, Some(_)) => return Err(bad("`add` takes the new `record` only, no `line`".into())),
        (Action::Add, None) => None,
        (_, None) => return Err(bad("`change` and `remove` need the record's `line`, as GET /api/dns lists it".into())),
        (_, Some(line)) => {
            let at = current.iter().position(|(l, _)| l.eq_ignore_ascii_case(line.trim())).ok_or_else(|| {
                ApiError::new(StatusCode::CONFLICT, format!("{:?} is not in the zone {domain} (any more): reload the DNS panel", line.trim()))
            })?;
            Some((at, line.trim().to_string()))
        }
    };
    if let (Action::Remove, Some((at, _))) = (&request.action, &old)
        && is_host_address(world, &current[*at].1)
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a mail host's own address cannot be removed (the world publishes it for as long as the host exists); change it, or take the host down",
        ));
    }

    let mut records: Vec<RecordSpec> = current.iter().map(|(_, r)| r.clone()).collect();
    let summary = match (&old, &new) {
        (None, Some((line, record))) => {
            if current.iter().any(|(l, _)| l.eq_ignore_ascii_case(line)) {
                return Err(ApiError::new(StatusCode::CONFLICT, format!("the zone {domain} already has {line}")));
            }
            records.push(record.clone());
            format!("the DNS panel adds to {domain}: {}", short(line))
        }
        (Some((at, old_line)), Some((line, record))) => {
            records[*at] = record.clone();
            format!("the DNS panel changes {} to {}", short(old_line), short(line))
        }
        (Some((at, old_line)), None) => {
            records.remove(*at);
            format!("the DNS panel removes {} from {domain}", short(old_line))
        }
        (None, None) => unreachable!("every action has an old or a new record"),
    };
    if records.len() > MAX_RECORDS {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("a zone may have at most {MAX_RECORDS} records")));
    }
    let listing = change_zone(world, &domain, &records, summary).map_err(|err| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, err.to_string()))?;
    Ok(Json(json!({"generation": session.generation, "domain": domain, "records": listing})).into_response())
}

/// An A or AAAA record of one of the world's hosts.
fn is_host_address(world: &crate::world::World, record: &RecordSpec) -> bool {
    matches!(record.kind, RecordKind::A | RecordKind::AAAA)
        && record.name.as_deref().is_some_and(|name| world.host_addresses().iter().any(|(host, _)| host.eq_ignore_ascii_case(name)))
}

/// A zone-file line without the class, for the story: "example.org. 300 MX 10 mx1.example.org.".
fn short(line: &str) -> String {
    line.replacen(" IN ", " ", 1)
}
