//! POP3: how a device reads the mail waiting in its mailbox.
//! (Being written: see the open issue for POP3.)

pub mod client;
