//! mailflow: an educational email-flow simulator.
//!
//! One process builds a small Internet of mail on loopback and shows every
//! hop. The data flows one way:
//!
//! scenario file → [`scenario::Scenario`] (checked) → [`world::World`]
//! (addresses, fake DNS, servers) → the script runs the steps → protocol
//! code moves lines over a [`wire::Wire`] → each line passes the
//! [`conductor::Conductor`] (fast, live or step) and becomes a
//! [`trace::Event`] → the [`trace::Trace`] keeps and broadcasts it →
//! terminal printer, `--record` file, the web page ([`web`]).

pub mod auth;
pub mod calendar;
pub mod cli;
pub mod conductor;
pub mod dns;
pub mod fuzzing;
pub mod imap;
pub mod login;
pub mod message;
pub mod mta;
pub mod mua;
pub mod net;
pub mod pop3;
pub mod scenario;
pub mod smtp;
pub mod store;
pub mod tls;
pub mod trace;
#[cfg(test)]
mod transcripts;
pub mod web;
pub mod wire;
pub mod world;
