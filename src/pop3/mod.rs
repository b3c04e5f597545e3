//! POP3 (RFC 1939, with RFC 2449's CAPA and response codes): how a device
//! downloads the mail waiting in its mailbox — and, usually, deletes it
//! from the server. The last hop of a message's journey when the reader
//! uses POP3 rather than IMAP.
//!
//! - `command.rs`: one client line → a [`command::Command`] (pure);
//! - `reply.rs`: `+OK` / `-ERR` answers, and reading them back (pure);
//! - `session.rs`: the server's state machine, AUTHORIZATION →
//!   TRANSACTION → UPDATE (pure);
//! - `server.rs`: the I/O of one connection over a traced `Wire`;
//! - `client.rs`: the device side, used by a scenario's `fetch` step.

pub mod client;
pub mod command;
pub mod reply;
pub mod server;
pub mod session;
