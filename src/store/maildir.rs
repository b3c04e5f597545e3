//! Mailboxes on disk as Maildir (and Maildir++ folders), so a world can
//! stop and resume, and so a student can open the files and see that a
//! mailbox is nothing magic: one file per message.
//!
//! The layout with `--data DIR` is `DIR/<host>/<user>/Maildir/`:
//!
//! ```text
//! Maildir/
//!   cur/1764130000.U1.mailflow:2,S      one message: seen (S), UID 1
//!   new/  tmp/                          Maildir's other two folders
//!   mailflow-uidlist                    "V1764130000 N2": UIDVALIDITY, next UID
//!   mailflow-keywords                   "0 $Junk": keywords, as letters a, b, …
//!   subscriptions                       subscribed folders, one per line
//!   .Sent/  .Archive.2024/              Maildir++ folders ("Archive/2024")
//! ```
//!
//! A message is written into `tmp/` and then *renamed* into `cur/`: a
//! rename is atomic, so a reader never sees half a message (the Maildir
//! delivery rule of D. J. Bernstein's maildir(5)). Flags live in the file
//! name after `:2,` in ASCII order — D draft, F flagged, R replied
//! (\Answered), S seen, T trashed (\Deleted), a–z keywords — so changing a
//! flag is a rename, not a rewrite. The UID is kept in the name (`U1`);
//! files from other programs, without one, get the next free UID on load.
//!
//! The pure helpers (names, flags, the small metadata files) come first
//! and are unit-tested; [`MaildirWriter`] brings a Maildir in line with an
//! account after each change, and [`attach`] connects a host's [`Store`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{AccountSnapshot, Flag, INBOX, Message, Persist, Snapshot, Store};
use crate::trace::{Draft, Kind, Protocol, Trace};

/// The per-folder file with UIDVALIDITY and the next UID (like Dovecot's
/// `dovecot-uidlist`).
pub const UIDLIST: &str = "mailflow-uidlist";
/// The per-folder file naming the keyword letters (like `dovecot-keywords`).
pub const KEYWORDS: &str = "mailflow-keywords";
/// The list of subscribed folders (Maildir++).
pub const SUBSCRIPTIONS: &str = "subscriptions";
/// Keywords a file name can carry: the letters a to z.
pub const MAX_KEYWORDS: usize = 26;
/// The longest file (or folder) name Linux file systems take, in bytes.
pub const MAX_FILE_NAME: usize = 255;

/// The folder's directory inside the Maildir: "" for INBOX, Maildir++
/// `.Name` for others, with "/" as the hierarchy step (`Archive/2024` →
/// `.Archive.2024`). A "." or "%" inside a name, or a control character,
/// is written as `%XX`, so every name comes back exactly.
pub fn folder_dir(mailbox: &str) -> String {
    if mailbox.eq_ignore_ascii_case(INBOX) {
        return String::new();
    }
    let mut out = String::from(".");
    for c in mailbox.chars() {
        match c {
            '/' => out.push('.'),
            '.' | '%' => push_escaped(&mut out, c),
            c if c.is_control() => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// The mailbox name of a Maildir++ folder directory (`.Sent` → `Sent`).
pub fn folder_name(dir: &str) -> Option<String> {
    let encoded = dir.strip_prefix('.').filter(|rest| !rest.is_empty() && *rest != ".")?;
    let mut bytes = Vec::new();
    let raw = encoded.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'.' => bytes.push(b'/'),
            b'%' if i + 3 <= raw.len() => {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())?;
                bytes.push(hex);
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    String::from_utf8(bytes).ok()
}

/// Flag letters in ASCII order, keywords as a, b, … by their index in
/// `keywords` (a keyword past z is not kept in the name).
pub fn info_flags(flags: &BTreeSet<Flag>, keywords: &[String]) -> String {
    let mut letters: Vec<char> = Vec::new();
    for flag in flags {
        match flag {
            Flag::Draft => letters.push('D'),
            Flag::Flagged => letters.push('F'),
            Flag::Answered => letters.push('R'),
            Flag::Seen => letters.push('S'),
            Flag::Deleted => letters.push('T'),
            Flag::Keyword(k) => {
                if let Some(i) = keywords.iter().position(|x| x == k).filter(|&i| i < MAX_KEYWORDS) {
                    letters.push((b'a' + i as u8) as char);
                }
            }
        }
    }
    letters.sort_unstable();
    letters.dedup();
    letters.into_iter().collect()
}

/// The flags of a `:2,` info part. Unknown letters (P, passed) are ignored.
pub fn parse_flags(info: &str, keywords: &[String]) -> BTreeSet<Flag> {
    info.chars()
        .filter_map(|c| match c {
            'D' => Some(Flag::Draft),
            'F' => Some(Flag::Flagged),
            'R' => Some(Flag::Answered),
            'S' => Some(Flag::Seen),
            'T' => Some(Flag::Deleted),
            'a'..='z' => keywords.get((c as u8 - b'a') as usize).map(|k| Flag::Keyword(k.clone())),
            _ => None,
        })
        .collect()
}

/// A message's file name: `<arrival>.U<uid>.mailflow:2,<flags>`.
pub fn file_name(message: &Message, keywords: &[String]) -> String {
    format!("{}.U{}.mailflow:2,{}", message.internal_date.max(0), message.uid, info_flags(&message.flags, keywords))
}

/// What a file name tells: the UID (ours only), the arrival time, and the
/// flag letters after `:2,`.
#[derive(Debug, PartialEq, Eq)]
pub struct NameInfo<'a> {
    pub uid: Option<u32>,
    pub time: Option<i64>,
    pub flags: &'a str,
}

pub fn parse_file_name(name: &str) -> NameInfo<'_> {
    let (base, flags) = match name.split_once(":2,") {
        Some((base, flags)) => (base, flags),
        None => (name.split_once(':').map_or(name, |(b, _)| b), ""),
    };
    let mut parts = base.split('.');
    let time = parts.next().and_then(|t| t.parse().ok());
    let uid = parts.next().and_then(|u| u.strip_prefix('U')).and_then(|u| u.parse().ok()).filter(|&u| u > 0);
    NameInfo { uid, time, flags }
}

/// `V<uidvalidity> N<uidnext>`.
pub fn format_uidlist(uid_validity: u32, uid_next: u32) -> String {
    format!("V{uid_validity} N{uid_next}\n")
}

pub fn parse_uidlist(text: &str) -> Option<(u32, u32)> {
    let mut validity = None;
    let mut next = None;
    for word in text.lines().next()?.split_ascii_whitespace() {
        if let Some(v) = word.strip_prefix('V') {
            validity = v.parse().ok();
        } else if let Some(n) = word.strip_prefix('N') {
            next = n.parse().ok();
        }
    }
    Some((validity.filter(|&v| v > 0)?, next.unwrap_or(1).max(1)))
}

/// `0 $Junk` lines: the index is the letter (0 = a).
pub fn format_keywords(keywords: &[String]) -> String {
    keywords.iter().enumerate().map(|(i, k)| format!("{i} {k}\n")).collect()
}

pub fn parse_keywords(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some((index, word)) = line.split_once(' ')
            && let Ok(index) = index.parse::<usize>()
            && index < MAX_KEYWORDS
        {
            if out.len() <= index {
                out.resize(index + 1, String::new());
            }
            out[index] = word.to_string();
        }
    }
    out
}

/// Writes `c` as `%XX` per UTF-8 byte (ASCII is one byte, so `.` is `%2E`).
fn push_escaped(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push_str(&format!("%{b:02X}"));
    }
}

/// A user's directory name under the host's directory: the address, with
/// "/", "%", control characters and a leading "." written as `%XX`.
pub fn user_dir(user: &str) -> String {
    let mut out = String::new();
    for (i, c) in user.chars().enumerate() {
        match c {
            '/' | '%' | '\\' => push_escaped(&mut out, c),
            '.' if i == 0 => push_escaped(&mut out, c),
            c if c.is_control() => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

fn user_from_dir(dir: &str) -> Option<String> {
    let mut bytes = Vec::new();
    let raw = dir.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 3 <= raw.len() {
            bytes.push(std::str::from_utf8(&raw[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())?);
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).ok()
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// What is on disk for one folder, so a save only touches what changed.
#[derive(Debug, Default)]
struct FolderDisk {
    uid_validity: u32,
    uid_next: u32,
    keywords: Vec<String>,
    /// UID → file path relative to the folder ("cur/…" or "new/…").
    files: HashMap<u32, String>,
    /// The metadata files as last written ("" = not yet).
    uidlist: String,
    keywords_file: String,
}

/// What is on disk for one Maildir.
#[derive(Debug, Default)]
pub struct DiskIndex {
    folders: BTreeMap<String, FolderDisk>,
    subscriptions: Option<Vec<String>>,
}

/// Reads a Maildir (with its Maildir++ folders) into an account. A missing
/// Maildir is an empty account.
pub fn read_maildir(path: &Path) -> io::Result<AccountSnapshot> {
    read_indexed(path).map(|(account, _)| account)
}

/// Reads a Maildir and remembers which file is which message.
pub fn read_indexed(path: &Path) -> io::Result<(AccountSnapshot, DiskIndex)> {
    let mut account = AccountSnapshot::default();
    let mut index = DiskIndex::default();
    if !path.is_dir() {
        return Ok((account, index));
    }
    let mut folders = vec![(INBOX.to_string(), path.to_path_buf())];
    let mut entries: Vec<_> = fs::read_dir(path)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Some(dir) = entry.file_name().to_str().map(str::to_string) else { continue };
        if let Some(name) = folder_name(&dir).filter(|_| entry.path().is_dir()) {
            folders.push((name, entry.path()));
        }
    }
    let mut fresh_validity = unix_now().max(1) as u32;
    for (name, dir) in folders {
        let (snapshot, disk) = read_folder(&name, &dir, &mut fresh_validity)?;
        index.folders.insert(snapshot.name.clone(), disk);
        account.mailboxes.push(snapshot);
    }
    if let Ok(text) = fs::read_to_string(path.join(SUBSCRIPTIONS)) {
        account.subscriptions = text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
        index.subscriptions = Some(account.subscriptions.clone());
    }
    Ok((account, index))
}

fn read_folder(name: &str, dir: &Path, fresh_validity: &mut u32) -> io::Result<(Snapshot, FolderDisk)> {
    let mut disk = FolderDisk::default();
    let uidlist = fs::read_to_string(dir.join(UIDLIST)).ok().and_then(|t| parse_uidlist(&t));
    let (uid_validity, mut uid_next) = uidlist.unwrap_or_else(|| {
        // A Maildir from another program: a new UIDVALIDITY tells IMAP
        // clients their cached UIDs do not apply.
        *fresh_validity += 1;
        (*fresh_validity, 1)
    });
    if uidlist.is_some() {
        disk.uidlist = format_uidlist(uid_validity, uid_next);
    }
    if let Ok(text) = fs::read_to_string(dir.join(KEYWORDS)) {
        disk.keywords = parse_keywords(&text);
        disk.keywords_file = text;
    }
    let mut found: Vec<(Option<u32>, String, Message)> = Vec::new();
    for sub in ["cur", "new"] {
        let Ok(entries) = fs::read_dir(dir.join(sub)) else { continue };
        for entry in entries.flatten() {
            let Some(file) = entry.file_name().to_str().map(str::to_string) else { continue };
            if file.starts_with('.') || !entry.path().is_file() {
                continue;
            }
            let info = parse_file_name(&file);
            let raw = fs::read(entry.path())?;
            let internal_date =
                info.time.or_else(|| entry.metadata().ok()?.modified().ok()?.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs() as i64)).unwrap_or(0);
            let flags = parse_flags(info.flags, &disk.keywords);
            let message = Message { uid: 0, raw: Arc::new(raw), flags, arrived: Duration::ZERO, internal_date };
            found.push((info.uid, format!("{sub}/{file}"), message));
        }
    }
    // Our files keep their UID; others follow in arrival order. A UID seen
    // twice (a copied file) is treated as new.
    found.sort_by(|a, b| (a.0.is_none(), a.0, a.2.internal_date, &a.1).cmp(&(b.0.is_none(), b.0, b.2.internal_date, &b.1)));
    let mut used = HashSet::new();
    let mut messages = Vec::new();
    let highest = found.iter().filter_map(|f| f.0).max().unwrap_or(0);
    uid_next = uid_next.max(highest.saturating_add(1));
    for (uid, file, mut message) in found {
        message.uid = match uid {
            Some(uid) if used.insert(uid) => uid,
            _ => {
                let uid = uid_next;
                uid_next += 1;
                used.insert(uid);
                uid
            }
        };
        disk.files.insert(message.uid, file);
        messages.push(message);
    }
    messages.sort_by_key(|m| m.uid);
    disk.uid_validity = uid_validity;
    disk.uid_next = uid_next;
    Ok((Snapshot { name: name.to_string(), uid_validity, uid_next, messages }, disk))
}

/// Keeps one Maildir in line with an account.
#[derive(Debug)]
pub struct MaildirWriter {
    path: PathBuf,
    index: DiskIndex,
}

impl MaildirWriter {
    /// A writer for a Maildir that has `index` on disk (from
    /// [`read_indexed`]; `DiskIndex::default()` for a new one).
    pub fn new(path: PathBuf, index: DiskIndex) -> Self {
        MaildirWriter { path, index }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes what changed since the last sync: new messages (through
    /// `tmp/`), renames for changed flags, removals, folders, metadata.
    /// Stops at the first failure (backups use this).
    pub fn sync(&mut self, account: &AccountSnapshot) -> io::Result<()> {
        match self.sync_each(account).into_iter().next() {
            Some((_, err)) => Err(err),
            None => Ok(()),
        }
    }

    /// Like [`sync`](Self::sync), but every folder is tried, whatever
    /// happens to the others; returns each failure with its folder (`None`:
    /// the Maildir's own files). Everything written is durable (fsync of
    /// the file and of its directory) when this returns.
    pub fn sync_each(&mut self, account: &AccountSnapshot) -> Vec<(Option<String>, io::Error)> {
        let mut failures = Vec::new();
        let mut live = HashSet::new();
        for mailbox in &account.mailboxes {
            live.insert(mailbox.name.clone());
            if let Err(err) = self.sync_folder(mailbox) {
                failures.push((Some(mailbox.name.clone()), err));
            }
        }
        let gone: Vec<String> = self.index.folders.keys().filter(|name| !live.contains(*name)).cloned().collect();
        for name in gone {
            let dir = self.path.join(folder_dir(&name));
            if name != INBOX
                && dir.exists()
                && let Err(err) = fs::remove_dir_all(&dir).and_then(|()| sync_dir(&self.path))
            {
                failures.push((Some(name), err));
                continue;
            }
            self.index.folders.remove(&name);
        }
        if self.index.subscriptions.as_ref() != Some(&account.subscriptions) {
            let text: String = account.subscriptions.iter().map(|s| format!("{s}\n")).collect();
            match write_atomic(&self.path, SUBSCRIPTIONS, text.as_bytes()) {
                Ok(()) => self.index.subscriptions = Some(account.subscriptions.clone()),
                Err(err) => failures.push((None, err)),
            }
        }
        failures
    }

    fn sync_folder(&mut self, mailbox: &Snapshot) -> io::Result<()> {
        let dir = self.path.join(folder_dir(&mailbox.name));
        let current = self.index.folders.get(&mailbox.name).is_some_and(|d| d.uid_validity == mailbox.uid_validity);
        if !current {
            // A new folder, or one deleted and created again: its old files
            // belong to another UIDVALIDITY. The index changes only once
            // the folder is really there.
            let old = self.index.folders.get(&mailbox.name);
            for file in old.map(|o| o.files.values().cloned().collect::<Vec<_>>()).unwrap_or_default() {
                remove_if_there(&dir.join(file))?;
            }
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(dir.join(sub))?;
            }
            if mailbox.name != INBOX {
                // Maildir++ marks a folder with this empty file.
                fs::write(dir.join("maildirfolder"), b"")?;
            }
            sync_dir(&dir)?;
            sync_dir(&self.path)?;
            let old = self.index.folders.remove(&mailbox.name).unwrap_or_default();
            let fresh = FolderDisk { uid_validity: mailbox.uid_validity, keywords: old.keywords, keywords_file: old.keywords_file, ..FolderDisk::default() };
            self.index.folders.insert(mailbox.name.clone(), fresh);
        }
        let disk = self.index.folders.get_mut(&mailbox.name).ok_or_else(|| io::Error::other("folder index lost"))?;
        // Keywords keep their letter forever; new ones are appended.
        let mut new_keyword = false;
        for message in &mailbox.messages {
            for flag in &message.flags {
                if let Flag::Keyword(k) = flag
                    && !disk.keywords.contains(k)
                {
                    if disk.keywords.len() >= MAX_KEYWORDS {
                        tracing::warn!(keyword = %k, "a Maildir folder can name at most 26 keywords; this one is not saved");
                        continue;
                    }
                    disk.keywords.push(k.clone());
                    new_keyword = true;
                }
            }
        }
        let keywords_file = format_keywords(&disk.keywords);
        if new_keyword || (disk.keywords_file != keywords_file && !disk.keywords.is_empty()) {
            write_atomic(&dir, KEYWORDS, keywords_file.as_bytes())?;
            disk.keywords_file = keywords_file;
        }
        let mut present = HashSet::with_capacity(mailbox.messages.len());
        // Directories whose entries changed: fsync'd once at the end, so
        // a rename or a removal survives a crash too.
        let mut touched_dirs = BTreeSet::new();
        for message in &mailbox.messages {
            present.insert(message.uid);
            let want = format!("cur/{}", file_name(message, &disk.keywords));
            match disk.files.get(&message.uid) {
                Some(have) if *have == want => {}
                Some(have) => {
                    // Only the flags changed: a rename, the content stays.
                    fs::rename(dir.join(have), dir.join(&want))?;
                    touched_dirs.insert(dir.join(have).parent().map(Path::to_path_buf).unwrap_or_else(|| dir.clone()));
                    touched_dirs.insert(dir.join("cur"));
                    disk.files.insert(message.uid, want);
                }
                None => {
                    // maildir(5): write into tmp/, flush it to the disk,
                    // then rename into place (atomic: never half a message).
                    let tmp = dir.join("tmp").join(file_name(message, &disk.keywords));
                    write_durably(&tmp, message.raw.as_slice())?;
                    fs::rename(&tmp, dir.join(&want))?;
                    touched_dirs.insert(dir.join("cur"));
                    disk.files.insert(message.uid, want);
                }
            }
        }
        let removed: Vec<u32> = disk.files.keys().filter(|uid| !present.contains(uid)).copied().collect();
        for uid in removed {
            if let Some(file) = disk.files.get(&uid).cloned() {
                remove_if_there(&dir.join(&file))?;
                touched_dirs.insert(dir.join(&file).parent().map(Path::to_path_buf).unwrap_or_else(|| dir.clone()));
                disk.files.remove(&uid);
            }
        }
        for touched in &touched_dirs {
            sync_dir(touched)?;
        }
        let uidlist = format_uidlist(mailbox.uid_validity, mailbox.uid_next);
        if disk.uidlist != uidlist {
            write_atomic(&dir, UIDLIST, uidlist.as_bytes())?;
            disk.uidlist = uidlist;
            disk.uid_next = mailbox.uid_next;
        }
        Ok(())
    }
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Writes a small file through a temporary name, so it is never seen half
/// written, and durably.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    write_durably(&tmp, bytes)?;
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Writes a file and waits until its bytes are on the disk (fsync).
fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut file = fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Waits until a directory's entries (a new name, a rename, a removal) are
/// on the disk: a file's own fsync does not cover its name (fsync(2)).
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// The [`Persist`] hook of one host: `<root>/<user>/Maildir` per user.
pub struct HostMaildirs {
    root: PathBuf,
    // A plain mutex: saves already run one at a time under the store's
    // lock; this one only guards the writers' indexes.
    writers: Mutex<HashMap<String, MaildirWriter>>,
    /// Failures already reported ("user/folder: error"), so a folder that
    /// stays broken is one event, not one per later save.
    reported: Mutex<HashSet<String>>,
    trace: Option<Trace>,
    host: String,
}

impl std::fmt::Debug for HostMaildirs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostMaildirs").field("root", &self.root).field("host", &self.host).finish_non_exhaustive()
    }
}

impl HostMaildirs {
    /// The Maildir of `user` under `root`.
    pub fn maildir(root: &Path, user: &str) -> PathBuf {
        root.join(user_dir(user)).join("Maildir")
    }
}

impl Persist for HostMaildirs {
    fn save(&self, user: &str, account: &AccountSnapshot, touched: &[String]) -> Result<(), String> {
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        let writer = writers.entry(user.to_string()).or_insert_with(|| MaildirWriter::new(Self::maildir(&self.root, user), DiskIndex::default()));
        let path = writer.path().display().to_string();
        let failures = writer.sync_each(account);
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        if failures.is_empty() {
            reported.retain(|r| !r.starts_with(&format!("{user}/")));
        }
        let mut fatal = Vec::new();
        for (folder, err) in failures {
            let what = folder.as_deref().unwrap_or("the Maildir's own files");
            // Only the folders this change touched decide its fate.
            if folder.as_ref().is_none_or(|f| touched.contains(f)) {
                fatal.push(format!("{what}: {err}"));
            }
            if reported.insert(format!("{user}/{what}: {err}")) {
                tracing::warn!(%path, folder = %what, %err, "cannot save a mailbox");
                if let Some(trace) = &self.trace {
                    let summary = format!("{} cannot save {what} of {user}'s mailbox to {path}: {err}", self.host);
                    trace.emit(Draft::new(&self.host, &self.host, Protocol::Sim, Kind::Failure { reason: err.to_string() }, summary));
                }
            }
        }
        if fatal.is_empty() { Ok(()) } else { Err(fatal.join("; ")) }
    }
}

/// Loads every user's Maildir under `root` (`DIR/<host>`) into `store`
/// and makes the store write each change back. Returns the users loaded.
pub fn attach(store: &Store, root: &Path, host: &str, trace: Option<Trace>) -> io::Result<Vec<String>> {
    fs::create_dir_all(root)?;
    let mut writers = HashMap::new();
    let mut loaded = Vec::new();
    for entry in fs::read_dir(root)?.flatten() {
        let Some(user) = entry.file_name().to_str().and_then(user_from_dir) else { continue };
        let maildir = entry.path().join("Maildir");
        if !maildir.is_dir() {
            continue;
        }
        let (account, index) = read_indexed(&maildir)?;
        store.load(&user, account);
        writers.insert(user.to_ascii_lowercase(), MaildirWriter::new(maildir, index));
        loaded.push(user);
    }
    loaded.sort();
    let persist = HostMaildirs { root: root.to_path_buf(), writers: Mutex::new(writers), reported: Mutex::default(), trace, host: host.to_string() };
    store.set_persist(Arc::new(persist));
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FlagChange;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mailflow-maildir-{name}-{}-{}", std::process::id(), unix_now()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn names_round_trip() {
        for name in ["Sent", "Archive/2024", "a.b", "100%", "Ünïcödé", "tab\there", "x/.y"] {
            let dir = folder_dir(name);
            assert!(dir.starts_with('.') && !dir.contains('/'), "{dir}");
            assert_eq!(folder_name(&dir).as_deref(), Some(name), "{dir}");
        }
        assert_eq!(folder_dir("Archive/2024"), ".Archive.2024");
        assert_eq!(folder_dir("inbox"), "");
        assert_eq!(folder_name("."), None);
        assert_eq!(folder_name(".."), None);
        assert_eq!(folder_name("cur"), None);
        assert_eq!(folder_name(".bad%zz"), None);
        assert_eq!(folder_name(".cut%4"), Some("cut%4".into()));
        for user in ["bob@example.org", ".hidden", "a/b", "50%"] {
            assert_eq!(user_from_dir(&user_dir(user)).as_deref(), Some(user));
            assert!(!user_dir(user).contains('/') && !user_dir(user).starts_with('.'));
        }
    }

    #[test]
    fn flags_and_file_names() {
        let keywords = vec!["$Junk".to_string(), "Work".to_string()];
        let flags = BTreeSet::from([Flag::Seen, Flag::Answered, Flag::Deleted, Flag::Draft, Flag::Flagged, Flag::Keyword("Work".into())]);
        assert_eq!(info_flags(&flags, &keywords), "DFRSTb");
        assert_eq!(parse_flags("DFRSTbP", &keywords), flags);
        let message = Message { uid: 12, raw: Arc::new(vec![]), flags, arrived: Duration::ZERO, internal_date: 1_764_130_000 };
        let name = file_name(&message, &keywords);
        assert_eq!(name, "1764130000.U12.mailflow:2,DFRSTb");
        assert_eq!(parse_file_name(&name), NameInfo { uid: Some(12), time: Some(1_764_130_000), flags: "DFRSTb" });
        assert_eq!(parse_file_name("1700000000.M1P2.host,S=120:2,S"), NameInfo { uid: None, time: Some(1_700_000_000), flags: "S" });
        assert_eq!(parse_file_name("garbage"), NameInfo { uid: None, time: None, flags: "" });
        assert_eq!(parse_uidlist(&format_uidlist(77, 5)), Some((77, 5)));
        assert_eq!(parse_uidlist("junk"), None);
        assert_eq!(parse_keywords(&format_keywords(&keywords)), keywords);
    }

    #[test]
    fn every_change_reaches_the_disk_and_loads_back() {
        let root = temp_dir("sync");
        let store = Store::new(1_764_130_000);
        let user = "bob@example.org";
        attach(&store, &root, "mx1", None).unwrap();
        store.deliver(user, b"Subject: one\r\n\r\nfirst\r\n".to_vec(), Duration::from_secs(5)).expect("delivered");
        store.deliver(user, b"Subject: two\r\n\r\nsecond\r\n".to_vec(), Duration::from_secs(9)).expect("delivered");
        store.set_flags(user, INBOX, &[1], FlagChange::Add, &BTreeSet::from([Flag::Seen, Flag::Keyword("$Junk".into())])).unwrap();
        store.create(user, "Archive/2024").unwrap();
        store.copy(user, INBOX, &[2], "Archive/2024").unwrap();
        store.expunge(user, INBOX, Some(&[2])).unwrap();
        store.subscribe(user, "Archive/2024", true).unwrap();
        let maildir = root.join("bob@example.org/Maildir");
        let cur: Vec<String> = fs::read_dir(maildir.join("cur")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(cur, vec!["1764130005.U1.mailflow:2,Sa".to_string()]);
        assert!(maildir.join(".Archive.2024/maildirfolder").exists());
        assert!(fs::read_dir(maildir.join("tmp")).unwrap().next().is_none(), "tmp/ is empty after delivery");

        let again = Store::new(1_764_200_000);
        attach(&again, &root, "mx1", None).unwrap();
        let before = store.account_snapshot(user);
        let after = again.account_snapshot(user);
        assert_eq!(after.subscriptions, before.subscriptions);
        assert_eq!(after.mailboxes.len(), 2);
        for (a, b) in before.mailboxes.iter().zip(&after.mailboxes) {
            assert_eq!((&a.name, a.uid_validity, a.uid_next), (&b.name, b.uid_validity, b.uid_next));
            let strip = |m: &Message| (m.uid, m.raw.clone(), m.flags.clone(), m.internal_date);
            assert_eq!(a.messages.iter().map(strip).collect::<Vec<_>>(), b.messages.iter().map(strip).collect::<Vec<_>>());
        }
        // Deleting a folder removes its directory.
        again.delete(user, "Archive/2024").unwrap();
        assert!(!maildir.join(".Archive.2024").exists());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn foreign_maildirs_get_uids() {
        let root = temp_dir("foreign");
        let maildir = root.join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        fs::write(maildir.join("new/1700000002.M1.host"), b"Subject: b\r\n\r\n").unwrap();
        fs::write(maildir.join("cur/1700000001.M1.host:2,RS"), b"Subject: a\r\n\r\n").unwrap();
        fs::write(maildir.join("tmp/1700000003.M1.host"), b"half written").unwrap();
        let account = read_maildir(&maildir).unwrap();
        let inbox = &account.mailboxes[0];
        assert_eq!(inbox.messages.iter().map(|m| (m.uid, m.flags.len())).collect::<Vec<_>>(), vec![(1, 2), (2, 0)]);
        assert_eq!(inbox.uid_next, 3);
        assert!(read_maildir(&root.join("missing")).unwrap().mailboxes.is_empty());
        let _ = fs::remove_dir_all(&root);
    }
}
