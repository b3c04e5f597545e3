//! IMAP (RFC 3501): how a device reads the mail that stays on its server.
//!
//! Where SMTP *moves* a message to the recipient's server, IMAP lets the
//! recipient's devices *look at* it there: list folders, search, download
//! a copy, set flags such as \Seen — and hear about what the other devices
//! did. Split like the other protocols:
//!
//! - `parser.rs`: client bytes → a [`parser::Command`] (pure; literals and
//!   framing included);
//! - `response.rs`: formatting what the server sends (pure);
//! - `mime.rs`: the parts of a stored message, for BODY[n] and
//!   BODYSTRUCTURE (pure);
//! - `session.rs`: the server's state machine, commands → responses (pure);
//! - `describe.rs`: each line in words, for the trace;
//! - `server.rs`: one connection's I/O over a [`Wire`](crate::wire::Wire);
//! - `client.rs`: the device side a scenario's `fetch` step uses.

pub mod client;
pub mod describe;
pub mod mime;
pub mod parser;
pub mod response;
pub mod server;
pub mod session;
