//! SMTP (RFC 5321): how mail moves from a device to its server and from
//! server to server.
//!
//! - `command.rs`: one client line → a [`command::Command`] (pure);
//! - `reply.rs`: server replies, and parsing them on the client side (pure);
//! - `session.rs`: the server's state machine, input → replies (pure);
//! - `server.rs`: the accept loop and the I/O of one connection;
//! - `client.rs`: the client side, used by devices and relaying servers.

pub mod client;
pub mod command;
pub mod reply;
pub mod server;
pub mod session;
