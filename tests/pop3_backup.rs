//! Persistence and backups: a world with `--data` keeps its mailboxes as
//! Maildirs across a restart, POP3 deletions reach the disk, and
//! `mailflow export` + `mailflow import` (the real binary) give back every
//! message byte for byte with its flags.

use crate::pop3_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use mailflow::store::maildir::read_maildir;
use mailflow::store::{AccountSnapshot, Flag, FlagChange, INBOX};
use pop3_common::*;

/// What must survive: per folder, each message's bytes, flags and date.
type Contents = Vec<(String, Vec<(Arc<Vec<u8>>, BTreeSet<Flag>, i64)>)>;

fn contents(account: &AccountSnapshot) -> Contents {
    account.mailboxes.iter().map(|m| (m.name.clone(), m.messages.iter().map(|x| (x.raw.clone(), x.flags.clone(), x.internal_date)).collect())).collect()
}

fn maildir_of(data: &Path) -> std::path::PathBuf {
    data.join(MX).join(BOB).join("Maildir")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart_and_pop3_deletions_reach_the_disk() {
    let data = temp_dir("restart");
    let world = start(scenario(&format!("[{}, {}]", send_step("0s", "Lunch?"), send_step("1m", "Dinner?"))), Some(data.clone())).await;
    world.run_to_end().await;
    let store = &world.hosts[MX].store;
    store.set_flags(BOB, INBOX, &[1], FlagChange::Add, &BTreeSet::from([Flag::Seen, Flag::Flagged])).unwrap();
    let before = store.snapshot(BOB, INBOX).unwrap();
    assert_eq!(before.messages.len(), 2);
    world.shutdown().await;
    drop(world);
    let files = std::fs::read_dir(maildir_of(&data).join("cur")).unwrap().count();
    assert_eq!(files, 2, "one file per message in Maildir/cur");

    // Start again with the same folder and no steps: the mail is back.
    let world = start(scenario("[]"), Some(data.clone())).await;
    let after = world.hosts[MX].store.snapshot(BOB, INBOX).unwrap();
    assert_eq!((after.uid_validity, after.uid_next), (before.uid_validity, before.uid_next), "UIDVALIDITY and UIDNEXT survive");
    assert_eq!(after.messages.len(), 2);
    for (a, b) in before.messages.iter().zip(&after.messages) {
        assert_eq!((a.uid, &a.raw, &a.flags, a.internal_date), (b.uid, &b.raw, &b.flags, b.internal_date));
    }
    assert_eq!(after.messages[0].flags, BTreeSet::from([Flag::Seen, Flag::Flagged]));

    // A POP3 session deletes message 2; the file goes at QUIT.
    let mut pop = Raw::connect(pop3_addr(&world)).await;
    assert!(pop.login(BOB, "builder").await.starts_with("+OK bob@example.org has 2 messages"));
    assert_eq!(pop.cmd("DELE 2").await, "+OK message 2 deleted");
    assert_eq!(std::fs::read_dir(maildir_of(&data).join("cur")).unwrap().count(), 2, "DELE only marks");
    assert!(pop.cmd("QUIT").await.ends_with("(1 message deleted)"));
    assert_eq!(std::fs::read_dir(maildir_of(&data).join("cur")).unwrap().count(), 1, "QUIT removed the file");
    world.shutdown().await;
    drop(world);

    // And a third start sees that too; new mail gets a fresh UID.
    let world = start(scenario(&format!("[{}]", send_step("0s", "Again"))), Some(data.clone())).await;
    world.run_to_end().await;
    let uids: Vec<u32> = world.hosts[MX].store.inbox(BOB).iter().map(|m| m.uid).collect();
    assert_eq!(uids, vec![1, 3], "UID 2 is never used again");
    world.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
}

fn mailflow(args: &[&str]) -> std::process::Output {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mailflow")).args(args).output().expect("run mailflow");
    assert!(output.status.success(), "mailflow {args:?} failed:\n{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_gives_identical_messages_and_flags() {
    let base = temp_dir("backup");
    let data = base.join("data");
    let world = start(scenario(&format!("[{}, {}]", send_step("0s", "Lunch?"), send_step("1m", "From Alice"))), Some(data.clone())).await;
    world.run_to_end().await;
    let store = &world.hosts[MX].store;
    store.set_flags(BOB, INBOX, &[1], FlagChange::Add, &BTreeSet::from([Flag::Seen, Flag::Answered, Flag::Keyword("$Important".into())])).unwrap();
    store.set_flags(BOB, INBOX, &[2], FlagChange::Add, &BTreeSet::from([Flag::Deleted, Flag::Draft])).unwrap();
    store.create(BOB, "Archive").unwrap();
    store.copy(BOB, INBOX, &[1], "Archive").unwrap();
    world.shutdown().await;
    drop(world);
    let original = read_maildir(&maildir_of(&data)).unwrap();
    assert_eq!(original.mailboxes.len(), 2);

    // mbox: one folder per file.
    let mbox = base.join("bob.mbox");
    let out = mailflow(&["export", "--user", BOB, "--format", "mbox", "--data", data.to_str().unwrap(), mbox.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("exported 2 message(s)"));
    let text = String::from_utf8_lossy(&std::fs::read(&mbox).unwrap()).into_owned();
    assert!(text.starts_with("From alice@school.test "), "{text}");
    assert!(text.contains("\n>From the start of a line"), "mboxrd quoting: {text}");
    let restored = base.join("restored-mbox");
    mailflow(&["import", "--user", BOB, "--format", "mbox", "--data", restored.to_str().unwrap(), "--host", MX, mbox.to_str().unwrap()]);
    let back = read_maildir(&maildir_of(&restored)).unwrap();
    assert_eq!(contents(&back)[0], contents(&original).into_iter().find(|(n, _)| n == INBOX).unwrap(), "INBOX back byte for byte, with flags and dates");

    // Maildir: every folder.
    let copy = base.join("bob-Maildir");
    mailflow(&["export", "--user", BOB, "--format", "maildir", "--data", data.to_str().unwrap(), "--host", MX, copy.to_str().unwrap()]);
    let restored = base.join("restored-maildir");
    mailflow(&["import", "--user", BOB, "--format", "maildir", "--data", restored.to_str().unwrap(), "--host", MX, copy.to_str().unwrap()]);
    let back = read_maildir(&maildir_of(&restored)).unwrap();
    assert_eq!(contents(&back), contents(&original));

    // The restored folder works as a world's data: POP3 serves the mail.
    let world = start(scenario("[]"), Some(restored.clone())).await;
    let mut pop = Raw::connect(pop3_addr(&world)).await;
    assert!(pop.login(BOB, "builder").await.starts_with("+OK bob@example.org has 2 messages"));
    assert!(pop.cmd("QUIT").await.starts_with("+OK"));
    world.shutdown().await;

    // A backup never overwrites.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_mailflow")).args(["export", "--user", BOB, "--format", "mbox", "--data", data.to_str().unwrap(), mbox.to_str().unwrap()]).output().unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let _ = std::fs::remove_dir_all(&base);
}
