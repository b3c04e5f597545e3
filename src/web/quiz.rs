//! The quiz on the web: students vote from their own page, the teacher
//! watches the tally and reveals the answer (the desk itself, and how the
//! story pauses, is `world::quiz`).
//!
//! | Method and path          | Who        | What                                           |
//! |--------------------------|------------|------------------------------------------------|
//! | `GET /api/quiz?voter=ID` | everyone   | the open quiz; counts and answer for the teacher, or once revealed |
//! | `POST /api/quiz/vote`    | everyone   | `{"quiz": I, "choice": N, "voter": "ID"}`      |
//! | `POST /api/quiz/reveal`  | the teacher | `{"quiz": I}`: the answer for all, the story goes on |
//!
//! A vote is the one change a page without the control token may make:
//! [`super::guard`] still checks Host, Origin, JSON and size, but not the
//! token, for this one path. Everything a student could learn the answer
//! from before the reveal stays with the teacher: with a control token,
//! `GET /api/scenario` leaves out the quiz answers and explanations, the
//! teacher notes and the file's text for everyone else ([`redact`]), and
//! the events carry only question and choices until `quiz_revealed`.
//! Without a token, whoever runs the page is the teacher and sees all.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::ApiError;
use super::guard::{self, Peer, TokenQuery};
use super::state::AppState;
use crate::world::quiz::{RevealError, VoteError};

/// The one path a page without the control token may `POST` to.
pub const VOTE_PATH: &str = "/api/quiz/vote";

#[derive(Deserialize)]
pub struct QuizQuery {
    token: Option<String>,
    voter: Option<String>,
}

/// Whether this request is the teacher's: no token is configured, or it
/// carries the right one (wrong ones are counted, as everywhere).
fn is_teacher(state: &AppState, peer: Option<&Extension<ConnectInfo<Peer>>>, headers: &HeaderMap, token: Option<String>) -> bool {
    guard::may_control_counted(state, guard::client_of(peer.map(|p| &p.0)), headers, &TokenQuery { token })
}

/// `GET /api/quiz`: `{"generation", "quiz": null | {...}, "teacher"}`.
pub async fn current(
    State(state): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    headers: HeaderMap,
    Query(query): Query<QuizQuery>,
) -> Json<Value> {
    let teacher = is_teacher(&state, peer.as_ref(), &headers, query.token);
    let session = state.session();
    let view = session.world.quiz.view(teacher, query.voter.as_deref());
    Json(json!({"generation": session.generation, "teacher": teacher, "quiz": view}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteRequest {
    quiz: usize,
    choice: usize,
    voter: String,
}

/// `POST /api/quiz/vote`: one browser's vote (it may change it until the
/// reveal). The answer is `{"quiz": view}` as this voter sees it.
pub async fn vote(State(state): State<Arc<AppState>>, peer: Option<Extension<ConnectInfo<Peer>>>, body: Bytes) -> Result<Response, ApiError> {
    let request: VoteRequest = serde_json::from_slice(&body).map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, format!("bad request body: {err}")))?;
    let session = state.session();
    let client = guard::client_of(peer.as_ref().map(|p| &p.0));
    session.world.quiz.vote(request.quiz, &request.voter, request.choice, client).map_err(|err| {
        let status = match err {
            VoteError::NoQuiz | VoteError::Revealed | VoteError::WrongQuiz { .. } => StatusCode::CONFLICT,
            VoteError::NoSuchChoice { .. } | VoteError::BadVoter => StatusCode::BAD_REQUEST,
            VoteError::Full | VoteError::TooManyFromClient => StatusCode::TOO_MANY_REQUESTS,
        };
        ApiError::new(status, err.to_string())
    })?;
    let view = session.world.quiz.view(false, Some(&request.voter));
    Ok(Json(json!({"generation": session.generation, "quiz": view})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevealRequest {
    #[serde(default)]
    quiz: Option<usize>,
}

/// `POST /api/quiz/reveal` (the guard has checked the token): reveals the
/// open quiz, or the one named, if it is still the open one.
pub async fn reveal(State(state): State<Arc<AppState>>, body: Bytes) -> Result<Response, ApiError> {
    let request: RevealRequest = serde_json::from_slice(&body).map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, format!("bad request body: {err}")))?;
    let session = state.session();
    let desk = &session.world.quiz;
    if let (Some(wanted), Some(open)) = (request.quiz, desk.view(true, None))
        && wanted != open.quiz
    {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("quiz {wanted} is not the open one (quiz {} is)", open.quiz)));
    }
    desk.reveal().map_err(|err| match err {
        RevealError::NoQuiz | RevealError::Revealed => ApiError::new(StatusCode::CONFLICT, err.to_string()),
    })?;
    Ok(Json(json!({"generation": session.generation, "quiz": desk.view(true, None)})).into_response())
}

/// The scenario as `GET /api/scenario` gives it to a viewer who is not the
/// teacher, when there is a teacher (a control token): no teacher notes,
/// no quiz answers or explanations, and not the file's text (it has them).
pub fn redact(mut value: Value) -> Value {
    value["text"] = Value::Null;
    let scenario = &mut value["scenario"];
    if let Some(notes) = scenario.get_mut("teacher_notes") {
        *notes = json!("");
    }
    if let Some(steps) = scenario.get_mut("steps").and_then(Value::as_array_mut) {
        for step in steps {
            if let Some(quiz) = step.get_mut("quiz").and_then(Value::as_object_mut) {
                quiz.remove("answer");
                quiz.remove("explanation");
            }
        }
    }
    value
}

/// Whether `GET /api/scenario` must be redacted for this request.
pub fn must_redact(state: &AppState, peer: Option<&Extension<ConnectInfo<Peer>>>, headers: &HeaderMap, token: Option<String>) -> bool {
    state.config.control_token.is_some() && !is_teacher(state, peer, headers, token)
}
