//! IMAP: how a device reads the mail waiting in its mailbox.
//! (Being written: see the open issue for IMAP.)

pub mod client;
