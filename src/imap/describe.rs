//! What a client's IMAP line means, in one sentence for the class
//! ("bob-phone asks the server for message 1's headers"), and what the
//! trace may show of it (passwords are masked).

use super::parser::{CommandBody, FetchItem, SearchKey, SequenceSet};
use super::session::{flags_in_words, section_in_words};
use crate::calendar::{civil_from_days, month_name};
use crate::store::FlagChange;

/// The line as the trace shows it: LOGIN passwords and AUTHENTICATE
/// responses become `********`.
pub fn shown_line(line: &[u8], secret: bool) -> String {
    if secret {
        return "******** (hidden)".into();
    }
    let text = String::from_utf8_lossy(&line[..line.len().min(1024)]).into_owned();
    let text = if line.len() > 1024 { format!("{text}… ({} bytes)", line.len()) } else { text };
    let words: Vec<&str> = text.splitn(4, ' ').collect();
    match words.as_slice() {
        [tag, cmd, user, _] if cmd.eq_ignore_ascii_case("LOGIN") => format!("{tag} {cmd} {user} ********"),
        [tag, cmd, mechanism, _] if cmd.eq_ignore_ascii_case("AUTHENTICATE") => format!("{tag} {cmd} {mechanism} ********"),
        _ => text,
    }
}

/// Does this first line of a command carry secrets in its continuation
/// (LOGIN with literals)?
pub fn is_login(line: &[u8]) -> bool {
    let mut words = line.split(|&b| b == b' ');
    words.next();
    words.next().is_some_and(|w| w.eq_ignore_ascii_case(b"LOGIN") || w.eq_ignore_ascii_case(b"AUTHENTICATE"))
}

/// The first line of a command that continues with a literal.
pub fn describe_partial(who: &str, line: &[u8], size: usize) -> String {
    let text = String::from_utf8_lossy(line);
    let words: Vec<&str> = text.split(' ').collect();
    let command = words.get(1).map(|w| w.to_ascii_uppercase()).unwrap_or_default();
    match command.as_str() {
        "APPEND" => format!("{who} uploads a message into {} ({size} bytes follow as a literal)", words.get(2).unwrap_or(&"a folder")),
        "LOGIN" => format!("{who} logs in; the next {size} bytes come as a literal (hidden)"),
        "" => format!("{who} sends a line; {size} bytes follow"),
        _ => format!("{who} sends {command}; a literal of {size} bytes follows"),
    }
}

/// A complete command in words.
pub fn describe_command(who: &str, body: &CommandBody) -> String {
    use CommandBody as C;
    match body {
        C::Capability => format!("{who} asks what the server can do"),
        C::StartTls => format!("{who} asks to encrypt this connection (STARTTLS)"),
        C::Noop => format!("{who} asks: anything new? (NOOP)"),
        C::Logout => format!("{who} says goodbye (LOGOUT)"),
        C::Login { user, .. } => format!("{who} logs in as {user} (password hidden)"),
        C::Authenticate { mechanism, .. } => format!("{who} logs in with AUTHENTICATE {mechanism}"),
        C::Select { mailbox, read_only: false } => format!("{who} opens the folder {mailbox}"),
        C::Select { mailbox, read_only: true } => format!("{who} looks into {mailbox} without changing anything (EXAMINE)"),
        C::Create(name) => format!("{who} creates the folder {name}"),
        C::Delete(name) => format!("{who} deletes the folder {name}"),
        C::Rename { from, to } => format!("{who} renames the folder {from} to {to}"),
        C::Subscribe(name) => format!("{who} subscribes to {name} (shows it in the folder list)"),
        C::Unsubscribe(name) => format!("{who} unsubscribes from {name}"),
        C::List { subscribed_only: false, .. } => format!("{who} asks for the list of folders"),
        C::List { subscribed_only: true, .. } => format!("{who} asks for the list of subscribed folders"),
        C::Status { mailbox, .. } => format!("{who} asks how {mailbox} is doing, without opening it"),
        C::Append { mailbox, message, .. } => format!("{who} uploads a message of {} bytes into {mailbox}", message.len()),
        C::Check => format!("{who} asks the server to save everything (CHECK)"),
        C::Close => format!("{who} closes the folder (messages marked \\Deleted go away)"),
        C::Expunge { uids: None } => format!("{who} asks to remove the messages marked \\Deleted, for good"),
        C::Expunge { uids: Some(set) } => format!("{who} asks to remove the \\Deleted messages among UIDs {set}, for good"),
        C::Search { uid, criteria, .. } => {
            let answer = if *uid { " (answer with UIDs)" } else { "" };
            format!("{who} asks which messages {}{answer}", search_in_words(criteria))
        }
        C::Fetch { uid, set, items } => {
            let whole = |i: &FetchItem| {
                matches!(i, FetchItem::Rfc822) || matches!(i, FetchItem::Section { section, .. } if section.part.is_empty() && section.text.is_none())
            };
            match items.iter().find(|i| whole(i)) {
                Some(FetchItem::Section { peek: true, .. }) => format!("{who} downloads {}, peeking (it stays unread)", messages(*uid, set)),
                Some(_) => format!("{who} downloads {} (and so marks it read)", messages(*uid, set)),
                None => format!("{who} asks the server for {}'s {}", messages(*uid, set), items_in_words(items)),
            }
        }
        C::Store { uid, set, change, flags, .. } => {
            let words = flags_in_words(&flags.iter().cloned().collect());
            let list = flags.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(" ");
            match change {
                FlagChange::Add => format!("{who} marks {} with {list}", messages(*uid, set)),
                FlagChange::Remove => format!("{who} takes {list} off {}", messages(*uid, set)),
                FlagChange::Replace => format!("{who} sets the flags of {} to: {words}", messages(*uid, set)),
            }
        }
        C::Copy { uid, set, mailbox } => format!("{who} copies {} to {mailbox}", messages(*uid, set)),
        C::Idle => format!("{who} says: tell me the moment anything changes (IDLE)"),
    }
}

/// "message 1", "messages 1:3", "the message with UID 7".
fn messages(uid: bool, set: &SequenceSet) -> String {
    let single = set.0.len() == 1 && set.0[0].0 == set.0[0].1;
    match (uid, single) {
        (false, true) => format!("message {set}"),
        (false, false) => format!("messages {set}"),
        (true, true) => format!("message UID {set}"),
        (true, false) => format!("messages UID {set}"),
    }
}

fn items_in_words(items: &[FetchItem]) -> String {
    let mut words: Vec<String> = Vec::new();
    for item in items {
        let word = match item {
            FetchItem::Uid => continue,
            FetchItem::Flags => "flags".to_string(),
            FetchItem::InternalDate => "arrival date".into(),
            FetchItem::Rfc822Size => "size".into(),
            FetchItem::Envelope => "envelope (sender, subject, date)".into(),
            FetchItem::Body | FetchItem::BodyStructure => "structure (its MIME parts)".into(),
            FetchItem::Rfc822 => "whole message".into(),
            FetchItem::Rfc822Header => "headers".into(),
            FetchItem::Rfc822Text => "text".into(),
            FetchItem::Section { section, peek, .. } => {
                let what = section_in_words(section);
                let what = what.strip_prefix("the ").unwrap_or(&what).to_string();
                if *peek { format!("{what} (peeking: not marked read)") } else { what }
            }
        };
        words.push(word);
    }
    match words.as_slice() {
        [] => "UID".into(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{d} {} {y}", month_name(m))
}

/// "are unread", "are from alice and are flagged".
fn search_in_words(key: &SearchKey) -> String {
    match key {
        SearchKey::All => "there are".into(),
        SearchKey::Unseen => "are unread".into(),
        SearchKey::Seen => "are read".into(),
        SearchKey::Flagged => "are flagged".into(),
        SearchKey::Unflagged => "are not flagged".into(),
        SearchKey::Deleted => "are marked for deletion".into(),
        SearchKey::Answered => "were answered".into(),
        SearchKey::New | SearchKey::Recent => "are new".into(),
        SearchKey::From(s) => format!("are from \"{s}\""),
        SearchKey::To(s) => format!("are to \"{s}\""),
        SearchKey::Subject(s) => format!("have \"{s}\" in the subject"),
        SearchKey::Body(s) | SearchKey::Text(s) => format!("contain \"{s}\""),
        SearchKey::Since(d) => format!("arrived since {}", date(*d)),
        SearchKey::Before(d) => format!("arrived before {}", date(*d)),
        SearchKey::Uid(set) => format!("have UIDs {set}"),
        SearchKey::Sequence(set) => format!("are among {set}"),
        SearchKey::Not(inner) => format!("do not match ({})", search_in_words(inner)),
        SearchKey::Or(a, b) => format!("{} or {}", search_in_words(a), search_in_words(b)),
        SearchKey::And(keys) => keys.iter().map(search_in_words).collect::<Vec<_>>().join(" and "),
        _ => "match the criteria".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse_command;
    use super::*;

    #[test]
    fn commands_in_words() {
        let say = |line: &str| describe_command("bob-phone", &parse_command(line.as_bytes()).unwrap().body);
        assert_eq!(say("a FETCH 1 BODY.PEEK[HEADER]"), "bob-phone asks the server for message 1's headers (peeking: not marked read)");
        assert_eq!(say("a UID FETCH 3 BODY[]"), "bob-phone downloads message UID 3 (and so marks it read)");
        assert_eq!(say("a FETCH 1:* (FLAGS UID)"), "bob-phone asks the server for messages 1:*'s flags");
        assert_eq!(say("a UID SEARCH UNSEEN"), "bob-phone asks which messages are unread (answer with UIDs)");
        assert_eq!(say("a STORE 1:2 +FLAGS (\\Flagged)"), "bob-phone marks messages 1:2 with \\Flagged");
        assert_eq!(say("a LOGIN bob pw"), "bob-phone logs in as bob (password hidden)");
        assert_eq!(shown_line(b"a1 LOGIN bob secret", false), "a1 LOGIN bob ********");
        assert_eq!(shown_line(b"a1 login \"bob\" \"se cret\"", false), "a1 login \"bob\" ********");
        assert_eq!(shown_line(b"a1 AUTHENTICATE PLAIN AGJvYgBi", false), "a1 AUTHENTICATE PLAIN ********");
        assert_eq!(shown_line(b"a1 NOOP", false), "a1 NOOP");
        assert!(is_login(b"a1 LOGIN {3}") && !is_login(b"a1 APPEND x {3}"));
    }
}
