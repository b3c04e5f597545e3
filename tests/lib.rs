//! mailflow's integration tests: one test binary, one module per topic.
//! They bind real loopback sockets (each test in a `127.X.Y.0/24` block of
//! its own, see `common`) and run the real binary, so they run in parallel.

mod common;
mod imap_common;
mod pop3_common;
mod smtp_common;
mod web_support;

mod account_lessons;
mod accounts;
mod auth_intake;
mod auth_lessons;
mod cli;
mod clock;
mod diagram;
mod dns;
mod dns_edit;
mod dns_lessons;
mod dns_malformed;
mod durability;
mod fuzz_corpus;
mod hostile;
mod imap_clients;
mod imap_scenario;
mod imap_server;
mod password_strength;
mod pop3_backup;
mod pop3_fetch;
mod pop3_python;
mod pop3_wire;
mod quiz;
mod retrieval_lessons;
mod scenario_errors;
mod seed_lessons;
mod share;
mod smtp_clients;
mod smtp_data;
mod smtp_limits;
mod smtp_scenarios;
mod smtp_transcripts;
mod step;
mod style;
mod tls_lessons;
mod tls_retrieval;
mod tls_smtp;
mod trace;
mod web_account;
mod web_api;
mod web_browser;
mod web_guard;
mod web_stream;
