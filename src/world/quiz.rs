//! Quiz pauses: the story stops, the class answers, the teacher reveals.
//!
//! A scenario step `quiz` (question, 2–5 choices, the right one, an
//! explanation) is where a teacher would stop and ask the room. When the
//! script reaches it, [`run`] announces the question to every viewer (the
//! event `quiz_asked`: question and choices, never the answer, since every
//! page and the public API see events), *holds* the conductor so no hop
//! moves, and waits. Students answer from their own page; this desk counts
//! the votes. The teacher's page watches the tally grow and reveals the
//! answer; then `quiz_revealed` carries the right choice, the explanation
//! and the counts into the trace, and the story goes on.
//!
//! Votes are anonymous: a page sends a random id it keeps in its browser
//! (`localStorage`), so each browser has one vote, which it may change
//! until the reveal. Nothing ties an id to a person, so a determined
//! student with several browsers could vote several times; the desk keeps
//! that bounded ([`MAX_VOTERS`] in all, [`MAX_VOTERS_PER_CLIENT`] per
//! network address) so a script cannot fill the server's memory.
//!
//! The quiz waits only when someone can reveal it: a world served with
//! its web page ([`QuizDesk::attend`]) in live or step pace. At `--fast`,
//! or in `mailflow run` with no page, the answer is revealed at once and
//! the story never stops.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tokio::sync::watch;

use super::World;
use crate::conductor::Pace;
use crate::scenario::QuizStep;
use crate::trace::{Draft, Kind, Protocol};

/// Browsers that may vote on one quiz, all together.
pub const MAX_VOTERS: usize = 500;
/// Browsers one network address may vote from (a classroom's laptops each
/// have their own address; a few browsers on one is fine, a script is not).
pub const MAX_VOTERS_PER_CLIENT: usize = 20;

/// Why a vote was not counted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoteError {
    #[error("no quiz is open right now")]
    NoQuiz,
    #[error("this quiz is over: the answer was revealed")]
    Revealed,
    #[error("that vote is for quiz {given}, but quiz {open} is open")]
    WrongQuiz { given: usize, open: usize },
    #[error("choice {given} does not exist: expected 0 to {last}")]
    NoSuchChoice { given: usize, last: usize },
    #[error("the voter id must be 8 to 64 letters, digits, - or _")]
    BadVoter,
    #[error("{MAX_VOTERS} browsers have voted already; no more are counted")]
    Full,
    #[error("{MAX_VOTERS_PER_CLIENT} browsers at this address have voted already")]
    TooManyFromClient,
}

/// Why the answer could not be revealed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevealError {
    #[error("no quiz is open right now")]
    NoQuiz,
    #[error("the answer was revealed already")]
    Revealed,
}

/// What a page is shown of the current quiz. The answer, the explanation
/// and the counts are in it only for the teacher, or once revealed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuizView {
    /// The quiz step's index in the scenario's steps.
    pub quiz: usize,
    /// 1 for the scenario's first quiz, 2 for the next, ...
    pub number: usize,
    pub question: String,
    pub choices: Vec<String>,
    pub revealed: bool,
    /// How many browsers have voted.
    pub votes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// This browser's vote, if it asked with its voter id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mine: Option<usize>,
}

struct Current {
    index: usize,
    number: usize,
    quiz: QuizStep,
    answer: usize,
    votes: HashMap<String, usize>,
    per_client: HashMap<IpAddr, usize>,
    revealed: bool,
}

impl Current {
    fn counts(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.quiz.choices.len()];
        for &choice in self.votes.values() {
            counts[choice] += 1;
        }
        counts
    }
}

/// The world's quiz desk: the open quiz and its votes.
pub struct QuizDesk {
    current: Mutex<Option<Current>>,
    asked: Mutex<usize>,
    changed: watch::Sender<u64>,
    attended: AtomicBool,
}

impl Default for QuizDesk {
    fn default() -> Self {
        QuizDesk { current: Mutex::new(None), asked: Mutex::new(0), changed: watch::channel(0).0, attended: AtomicBool::new(false) }
    }
}

fn valid_voter(voter: &str) -> bool {
    (8..=64).contains(&voter.len()) && voter.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl QuizDesk {
    /// A web page serves this world: quizzes wait for its reveal.
    pub fn attend(&self) {
        self.attended.store(true, Ordering::SeqCst);
    }

    pub fn attended(&self) -> bool {
        self.attended.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Opens `quiz` (step `index`); the previous one, if any, is closed.
    /// Returns its number among the scenario's quizzes.
    pub fn ask(&self, index: usize, quiz: &QuizStep) -> usize {
        let number = {
            let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
            *asked += 1;
            *asked
        };
        let answer = quiz.answer_index().unwrap_or(0);
        *self.lock() = Some(Current { index, number, quiz: quiz.clone(), answer, votes: HashMap::new(), per_client: HashMap::new(), revealed: false });
        self.touch();
        number
    }

    /// Counts (or changes) one browser's vote on the open quiz.
    pub fn vote(&self, quiz: usize, voter: &str, choice: usize, client: Option<IpAddr>) -> Result<(), VoteError> {
        if !valid_voter(voter) {
            return Err(VoteError::BadVoter);
        }
        let mut guard = self.lock();
        let current = guard.as_mut().ok_or(VoteError::NoQuiz)?;
        if current.index != quiz {
            return Err(VoteError::WrongQuiz { given: quiz, open: current.index });
        }
        if current.revealed {
            return Err(VoteError::Revealed);
        }
        if choice >= current.quiz.choices.len() {
            return Err(VoteError::NoSuchChoice { given: choice, last: current.quiz.choices.len().saturating_sub(1) });
        }
        if let Some(previous) = current.votes.get_mut(voter) {
            *previous = choice;
        } else {
            if current.votes.len() >= MAX_VOTERS {
                return Err(VoteError::Full);
            }
            if let Some(client) = client {
                let from_client = current.per_client.entry(client).or_insert(0);
                if *from_client >= MAX_VOTERS_PER_CLIENT {
                    return Err(VoteError::TooManyFromClient);
                }
                *from_client += 1;
            }
            current.votes.insert(voter.to_string(), choice);
        }
        drop(guard);
        self.touch();
        Ok(())
    }

    /// Reveals the open quiz's answer; the story goes on.
    pub fn reveal(&self) -> Result<(), RevealError> {
        let mut guard = self.lock();
        let current = guard.as_mut().ok_or(RevealError::NoQuiz)?;
        if current.revealed {
            return Err(RevealError::Revealed);
        }
        current.revealed = true;
        drop(guard);
        self.touch();
        Ok(())
    }

    /// The current quiz as `teacher` (everything) or a student sees it.
    pub fn view(&self, teacher: bool, voter: Option<&str>) -> Option<QuizView> {
        let guard = self.lock();
        let current = guard.as_ref()?;
        let open_book = teacher || current.revealed;
        Some(QuizView {
            quiz: current.index,
            number: current.number,
            question: current.quiz.question.clone(),
            choices: current.quiz.choices.clone(),
            revealed: current.revealed,
            votes: current.votes.len() as u64,
            counts: open_book.then(|| current.counts()),
            answer: open_book.then_some(current.answer),
            explanation: open_book.then(|| current.quiz.explanation.clone()),
            mine: voter.and_then(|v| current.votes.get(v).copied()),
        })
    }

    /// Whether the quiz of step `index` has been revealed.
    fn is_revealed(&self, index: usize) -> bool {
        self.lock().as_ref().is_none_or(|c| c.index != index || c.revealed)
    }

    /// The counts of the quiz of step `index`: per choice, and in all.
    fn tally(&self, index: usize) -> (Vec<u64>, u64) {
        match self.lock().as_ref().filter(|c| c.index == index) {
            Some(current) => (current.counts(), current.votes.len() as u64),
            None => (Vec::new(), 0),
        }
    }
}

/// The quiz step `index`: ask, hold the story, wait for the reveal, and
/// tell everyone the answer.
pub async fn run(world: &World, index: usize, quiz: &QuizStep) {
    let desk = &world.quiz;
    let number = desk.ask(index, quiz);
    world.trace.emit(Draft::new(
        "script",
        "script",
        Protocol::Sim,
        Kind::QuizAsked { quiz: index, question: quiz.question.clone(), choices: quiz.choices.clone() },
        format!("quiz {number}: {}", quiz.question),
    ));
    let conductor = &world.conductor;
    // Held until the answer is in the trace, so no hop slips in before it.
    let mut hold = None;
    if desk.attended() && conductor.pace() != Pace::Fast {
        hold = Some(conductor.hold());
        let mut changes = desk.changed.subscribe();
        let mut pace = conductor.watch_pace();
        loop {
            if desk.is_revealed(index) || *pace.borrow_and_update() == Pace::Fast {
                break;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { break },
                changed = pace.changed() => if changed.is_err() { break },
            }
        }
    }
    // Revealed by nobody at --fast or without a page: the answer is told.
    let _ = desk.reveal();
    let (counts, votes) = desk.tally(index);
    let answer = quiz.answer_index().unwrap_or(0);
    let right = counts.get(answer).copied().unwrap_or(0);
    let summary = format!("quiz {number}: the answer is \"{}\" ({right} of {votes} votes)", quiz.answer);
    world.trace.emit(
        Draft::new(
            "script",
            "script",
            Protocol::Sim,
            Kind::QuizRevealed { quiz: index, answer, explanation: quiz.explanation.clone(), counts, votes },
            summary,
        )
        .explain_opt((!quiz.explanation.is_empty()).then(|| quiz.explanation.clone())),
    );
    drop(hold);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiz() -> QuizStep {
        QuizStep { question: "Which?".into(), choices: vec!["a".into(), "b".into(), "c".into()], answer: "b".into(), explanation: "because".into() }
    }

    #[test]
    fn votes_are_counted_once_per_browser_and_hidden_from_students() {
        let desk = QuizDesk::default();
        assert_eq!(desk.vote(3, "voter-0001", 0, None), Err(VoteError::NoQuiz));
        assert_eq!(desk.ask(3, &quiz()), 1);
        desk.vote(3, "voter-0001", 0, None).unwrap();
        desk.vote(3, "voter-0001", 1, None).unwrap(); // changed its mind: still one vote
        desk.vote(3, "voter-0002", 1, None).unwrap();
        assert_eq!(desk.vote(3, "short", 1, None), Err(VoteError::BadVoter));
        assert_eq!(desk.vote(3, "voter-0003", 3, None), Err(VoteError::NoSuchChoice { given: 3, last: 2 }));
        assert_eq!(desk.vote(4, "voter-0003", 0, None), Err(VoteError::WrongQuiz { given: 4, open: 3 }));
        let student = desk.view(false, Some("voter-0001")).unwrap();
        assert_eq!((student.votes, student.counts, student.answer, student.explanation, student.mine), (2, None, None, None, Some(1)));
        let teacher = desk.view(true, None).unwrap();
        assert_eq!((teacher.counts, teacher.answer), (Some(vec![0, 2, 0]), Some(1)));
        desk.reveal().unwrap();
        assert_eq!(desk.reveal(), Err(RevealError::Revealed));
        assert_eq!(desk.vote(3, "voter-0004", 0, None), Err(VoteError::Revealed));
        let student = desk.view(false, None).unwrap();
        assert_eq!((student.counts, student.answer, student.explanation.as_deref()), (Some(vec![0, 2, 0]), Some(1), Some("because")));
    }

    #[test]
    fn voters_are_bounded_in_all_and_per_address() {
        let desk = QuizDesk::default();
        desk.ask(0, &quiz());
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..MAX_VOTERS_PER_CLIENT {
            desk.vote(0, &format!("voter-{i:04}"), 0, Some(one)).unwrap();
        }
        assert_eq!(desk.vote(0, "voter-extra", 0, Some(one)), Err(VoteError::TooManyFromClient));
        desk.vote(0, "voter-0000", 2, Some(one)).unwrap(); // a known browser may still change its vote
        for i in MAX_VOTERS_PER_CLIENT..MAX_VOTERS {
            desk.vote(0, &format!("voter-{i:04}"), 0, None).unwrap();
        }
        assert_eq!(desk.vote(0, "voter-one-more", 0, None), Err(VoteError::Full));
        assert_eq!(desk.view(true, None).unwrap().votes, MAX_VOTERS as u64);
    }
}
