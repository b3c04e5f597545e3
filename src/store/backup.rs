//! Backups: `mailflow export` and `mailflow import` (restore).
//!
//! The POP3 lesson ends with "the only copy of the mail is on the laptop";
//! this one answers "so make copies". A world started with `--data DIR`
//! keeps every mailbox as a Maildir under `DIR/<host>/<user>/Maildir`
//! (see `maildir.rs`). `export` copies one user's mail out of it, as a
//! Maildir (every folder, flags in the file names) or as one mbox file
//! (one folder, flags in `Status:` lines, see `mbox.rs`); `import` puts
//! such a backup back, into an existing account or an empty data
//! directory. Messages come back byte for byte with their flags and
//! arrival dates; they get new UIDs in the account they are restored to.
//!
//! Run these while the world is stopped: a running world does not notice
//! files changed under it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::maildir::{self, HostMaildirs, MaildirWriter};
use super::{AccountSnapshot, Flag, INBOX, Message, Snapshot, mbox};

/// The two backup formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One file for one folder (RFC 4155, mboxrd).
    Mbox,
    /// A Maildir with Maildir++ folders: every folder, one file per message.
    Maildir,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    // The cause is in the message, so it is not also a `source` (printed
    // twice by anyhow's `{:#}` otherwise).
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error(
        "no mailbox of {user} under {data} (looked for {data}/<host>/{user}/Maildir); is this the --data folder of a world? To restore into a new one, give --host"
    )]
    NoAccount { user: String, data: PathBuf },
    #[error("{user} has mailboxes on several hosts ({hosts}); choose one with --host")]
    Ambiguous { user: String, hosts: String },
    #[error("{user} has no mailbox on host {host}; to restore into it, the host's folder {path} must exist (or give --host for a new data folder)")]
    NoHost { user: String, host: String, path: PathBuf },
    #[error("{user} has no folder {folder:?} (folders: {folders})")]
    NoFolder { user: String, folder: String, folders: String },
    #[error("{0} already exists; a backup never overwrites: choose a new name")]
    Exists(PathBuf),
    #[error("{0} is not a Maildir (it has no cur/ folder)")]
    NotMaildir(PathBuf),
    #[error("{0} holds no messages in mbox format (no \"From \" line)")]
    NotMbox(PathBuf),
}

/// What an export or import did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub messages: usize,
    pub folders: usize,
    /// The Maildir written (import) or the backup written (export).
    pub path: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |error| BackupError::Io { path: path.to_path_buf(), error }
}

/// The host folder (`DATA/<host>`) holding `user`'s mail. With `host`
/// given it is that one (for import it need not hold the user yet);
/// without, the one host that has the user.
pub fn host_dir(data: &Path, user: &str, host: Option<&str>) -> Result<PathBuf, BackupError> {
    if let Some(host) = host {
        return Ok(data.join(host));
    }
    let mut found = Vec::new();
    for entry in fs::read_dir(data).map_err(io_err(data))?.flatten() {
        if HostMaildirs::maildir(&entry.path(), user).is_dir() {
            found.push(entry.path());
        }
    }
    found.sort();
    match found.len() {
        0 => Err(BackupError::NoAccount { user: user.to_string(), data: data.to_path_buf() }),
        1 => Ok(found.remove(0)),
        _ => {
            let hosts: Vec<String> = found.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
            Err(BackupError::Ambiguous { user: user.to_string(), hosts: hosts.join(", ") })
        }
    }
}

/// Copies `user`'s mail out of the data folder into `out`: a new Maildir,
/// or an mbox file of `folder`.
pub fn export(data: &Path, user: &str, host: Option<&str>, format: Format, folder: &str, out: &Path) -> Result<Report, BackupError> {
    let user = user.to_ascii_lowercase();
    let source = HostMaildirs::maildir(&host_dir(data, &user, host)?, &user);
    if !source.is_dir() {
        return Err(BackupError::NoAccount { user, data: data.to_path_buf() });
    }
    let account = maildir::read_maildir(&source).map_err(io_err(&source))?;
    let empty_dir = out.is_dir() && fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false);
    if out.exists() && !empty_dir {
        return Err(BackupError::Exists(out.to_path_buf()));
    }
    match format {
        Format::Maildir => {
            let mut writer = MaildirWriter::new(out.to_path_buf(), Default::default());
            writer.sync(&account).map_err(io_err(out))?;
            let messages = account.mailboxes.iter().map(|m| m.messages.len()).sum();
            Ok(Report { messages, folders: account.mailboxes.len(), path: out.to_path_buf() })
        }
        Format::Mbox => {
            let Some(mailbox) = account.mailboxes.iter().find(|m| same_folder(&m.name, folder)) else {
                let folders: Vec<&str> = account.mailboxes.iter().map(|m| m.name.as_str()).collect();
                return Err(BackupError::NoFolder { user, folder: folder.to_string(), folders: folders.join(", ") });
            };
            fs::write(out, mbox::write(&mailbox.messages)).map_err(io_err(out))?;
            Ok(Report { messages: mailbox.messages.len(), folders: 1, path: out.to_path_buf() })
        }
    }
}

/// Puts a backup back into `user`'s account in the data folder (created
/// if need be): every folder of a Maildir, or an mbox file into `folder`.
/// The messages are added; nothing already there is removed.
pub fn import(data: &Path, user: &str, host: Option<&str>, format: Format, folder: &str, input: &Path) -> Result<Report, BackupError> {
    let user = user.to_ascii_lowercase();
    let host_dir = host_dir(data, &user, host)?;
    if host.is_some() && !host_dir.is_dir() && data.is_dir() && fs::read_dir(data).map(|mut d| d.next().is_some()).unwrap_or(false) {
        // A data folder with other hosts but not this one: probably a typo.
        return Err(BackupError::NoHost { user, host: host.unwrap_or_default().to_string(), path: host_dir });
    }
    let mut subscriptions = Vec::new();
    let incoming: Vec<(String, Vec<Message>)> = match format {
        Format::Maildir => {
            if !input.join("cur").is_dir() {
                return Err(BackupError::NotMaildir(input.to_path_buf()));
            }
            let account = maildir::read_maildir(input).map_err(io_err(input))?;
            subscriptions = account.subscriptions;
            account.mailboxes.into_iter().map(|m| (m.name, m.messages)).collect()
        }
        Format::Mbox => {
            let bytes = fs::read(input).map_err(io_err(input))?;
            let entries = mbox::read(&bytes);
            if entries.is_empty() && !bytes.is_empty() {
                return Err(BackupError::NotMbox(input.to_path_buf()));
            }
            let now = unix_now();
            let messages = entries
                .into_iter()
                .map(|e| Message { uid: 0, raw: Arc::new(e.raw), flags: e.flags, arrived: Duration::ZERO, internal_date: e.internal_date.unwrap_or(now) })
                .collect();
            vec![(folder.to_string(), messages)]
        }
    };
    let target = HostMaildirs::maildir(&host_dir, &user);
    let (mut account, index) = maildir::read_indexed(&target).map_err(io_err(&target))?;
    let mut validity = account.mailboxes.iter().map(|m| m.uid_validity).max().unwrap_or(0).max(unix_now() as u32);
    let mut count = 0;
    let folders = incoming.len();
    for (name, messages) in incoming {
        count += messages.len();
        merge(&mut account, &name, messages.into_iter().map(|m| (m.raw, m.flags, m.internal_date)), &mut validity);
    }
    if !account.mailboxes.iter().any(|m| m.name == INBOX) {
        merge(&mut account, INBOX, std::iter::empty(), &mut validity);
    }
    for name in subscriptions {
        if !account.subscriptions.contains(&name) {
            account.subscriptions.push(name);
        }
    }
    let mut writer = MaildirWriter::new(target.clone(), index);
    writer.sync(&account).map_err(io_err(&target))?;
    Ok(Report { messages: count, folders, path: target })
}

/// INBOX in any case, other folders exactly.
fn same_folder(a: &str, b: &str) -> bool {
    a == b || (a.eq_ignore_ascii_case(INBOX) && b.eq_ignore_ascii_case(INBOX))
}

/// Appends messages to a folder of the account (creating it with a new
/// UIDVALIDITY), each with the next UID.
fn merge(
    account: &mut AccountSnapshot,
    folder: &str,
    messages: impl Iterator<Item = (Arc<Vec<u8>>, std::collections::BTreeSet<Flag>, i64)>,
    validity: &mut u32,
) {
    let name = if folder.eq_ignore_ascii_case(INBOX) { INBOX.to_string() } else { folder.to_string() };
    let index = match account.mailboxes.iter().position(|m| m.name == name) {
        Some(index) => index,
        None => {
            *validity = validity.wrapping_add(1).max(1);
            account.mailboxes.push(Snapshot { name, uid_validity: *validity, uid_next: 1, messages: Vec::new() });
            account.mailboxes.len() - 1
        }
    };
    let mailbox = &mut account.mailboxes[index];
    for (raw, flags, internal_date) in messages {
        let uid = mailbox.uid_next;
        mailbox.uid_next += 1;
        mailbox.messages.push(Message { uid, raw, flags, arrived: Duration::ZERO, internal_date });
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FlagChange, Store};
    use std::collections::BTreeSet;

    #[test]
    fn export_then_import_into_an_empty_data_folder_keeps_everything() {
        let base = std::env::temp_dir().join(format!("mailflow-backup-{}-{}", std::process::id(), unix_now()));
        let _ = fs::remove_dir_all(&base);
        let (data, restored) = (base.join("data"), base.join("restored"));
        let store = Store::new(1_764_000_000);
        maildir::attach(&store, &data.join("mx1.example.org"), "mx1.example.org", None).unwrap();
        let user = "bob@example.org";
        store.deliver(user, b"Return-Path: <a@b.c>\r\nSubject: one\r\n\r\nFrom me\r\n".to_vec(), Duration::from_secs(60)).expect("delivered");
        store.deliver(user, b"Subject: two\r\n\r\n.\r\n".to_vec(), Duration::from_secs(120)).expect("delivered");
        store.set_flags(user, INBOX, &[2], FlagChange::Add, &BTreeSet::from([Flag::Seen, Flag::Keyword("$Label1".into())])).unwrap();
        store.create(user, "Sent").unwrap();
        store.append(user, "Sent", b"Subject: sent\r\n\r\nx\r\n".to_vec(), BTreeSet::from([Flag::Seen]), Duration::ZERO).unwrap();

        let strip = |m: &Message| (m.raw.clone(), m.flags.clone(), m.internal_date);
        let folder =
            |account: &AccountSnapshot, name: &str| account.mailboxes.iter().find(|m| m.name == name).map(|m| m.messages.iter().map(strip).collect::<Vec<_>>());
        let original = store.account_snapshot(user);

        // mbox: INBOX only.
        let file = base.join("bob.mbox");
        let report = export(&data, user, None, Format::Mbox, "inbox", &file).unwrap();
        assert_eq!(report.messages, 2);
        assert!(matches!(export(&data, user, None, Format::Mbox, "INBOX", &file), Err(BackupError::Exists(_))));
        import(&restored, user, Some("mx1.example.org"), Format::Mbox, INBOX, &file).unwrap();
        let back = maildir::read_maildir(&HostMaildirs::maildir(&restored.join("mx1.example.org"), user)).unwrap();
        assert_eq!(folder(&back, INBOX), folder(&original, INBOX));

        // Maildir: every folder.
        let copy = base.join("bob-maildir");
        assert_eq!(export(&data, user, Some("mx1.example.org"), Format::Maildir, INBOX, &copy).unwrap().messages, 3);
        let fresh = base.join("fresh");
        import(&fresh, user, Some("mx1.example.org"), Format::Maildir, INBOX, &copy).unwrap();
        let back = maildir::read_maildir(&HostMaildirs::maildir(&fresh.join("mx1.example.org"), user)).unwrap();
        for name in [INBOX, "Sent"] {
            assert_eq!(folder(&back, name), folder(&original, name), "{name}");
        }

        assert!(matches!(export(&data, "nobody@example.org", None, Format::Mbox, INBOX, &base.join("x")), Err(BackupError::NoAccount { .. })));
        assert!(matches!(export(&data, user, None, Format::Mbox, "Nope", &base.join("y")), Err(BackupError::NoFolder { .. })));
        let _ = fs::remove_dir_all(&base);
    }
}
