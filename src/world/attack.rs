//! A guessing attack, as a scenario step (`"attack": {...}`).
//!
//! Nobody guesses a password at random. A robot takes a list of the
//! passwords people choose most often — leaked from real sites, sorted by
//! how many people used them — and tries them one after another against
//! an account, over the same login a mail program uses: IMAP `LOGIN`
//! (RFC 9051 §6.2.3), POP3 `USER`/`PASS` (RFC 1939 §7) or SMTP `AUTH
//! PLAIN` (RFC 4954, RFC 4616). A password on the list falls at its place
//! in the list; "sunshine" is the 46th guess. A long passphrase is on no
//! list and never falls.
//!
//! The defence is on the server: a growing delay after each failure, then
//! a lock (RFC 4954 §4 `454 4.7.0`, RFC 5530 `[UNAVAILABLE]`, RFC 3206
//! `[SYS/TEMP]`). The robot here reads those answers as a real one would:
//! a lock ends the attack ("stopped by the lock after N guesses").
//!
//! TLS does not stop guessing: like real robots, this one says STARTTLS
//! (or STLS) first when the server offers it, so servers that refuse
//! logins before TLS still hear every guess, encrypted.
//!
//! The robot is one of the world's machines (a client or a host), talks
//! over the real socket through the protocols' own clients, and waits
//! `pace` of *simulated* time between guesses, so "cracked after 46
//! guesses in 45 simulated seconds" is a fact of the run, not a formula.
//! Each try is an event; the passwords tried come from a public list and
//! are shown, except one that opens the account (or is any user's real
//! password), which is masked.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use tokio::net::TcpStream;

use super::World;
use crate::conductor::Activity;
use crate::imap::client::{ImapClient, quote};
use crate::net::Net;
use crate::pop3::client::Pop3Client;
use crate::pop3::reply::Status;
use crate::scenario::{AttackProtocol, AttackStep};
use crate::smtp::client::{SmtpClient, has_extension};
use crate::tls::ClientMode;
use crate::trace::{AttackOutcome, Draft, Kind, Protocol};
use crate::wire::Registration;

/// The list the robot tries, most common first (see the file's header for
/// where it comes from).
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// How a guessed password is shown when it must not be.
const MASK: &str = "********";

/// Reconnections in a row without an answer before the robot gives up.
const MAX_RECONNECTS: u32 = 3;

/// The shipped list, without its comment lines.
pub fn common_passwords() -> impl Iterator<Item = &'static str> {
    COMMON_PASSWORDS.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Everything an attack needs, read from the world before it starts.
pub struct Plan {
    attacker: String,
    from: IpAddr,
    server: (String, IpAddr),
    protocol: AttackProtocol,
    target: String,
    pace: Duration,
    max_tries: Option<u32>,
    budget: Option<Duration>,
    /// The step's own list, if it gives one (else the shipped list).
    passwords: Vec<String>,
    /// The users' real passwords: a guess equal to one is never shown.
    secrets: HashSet<String>,
}

impl Plan {
    /// The plan for `step` in `world`; `None` if a name points nowhere
    /// (validation has already said so).
    pub fn new(world: &World, step: &AttackStep) -> Option<Plan> {
        let from = world.node(&step.from)?;
        let server_name = step.server.clone().or_else(|| world.scenario.home_host(&step.target))?;
        let server = world.node(&server_name)?;
        Some(Plan {
            attacker: step.from.clone(),
            from: from.address.into(),
            server: (server.name.clone(), server.address.into()),
            protocol: step.protocol,
            target: step.target.clone(),
            pace: step.pace.map(|p| p.0).unwrap_or(Duration::from_secs(1)),
            max_tries: step.max_tries,
            budget: step.budget.map(|b| b.0),
            passwords: step.passwords.clone(),
            secrets: world.scenario.users.values().flat_map(|u| std::iter::once(u.password.clone()).chain(u.app_passwords.values().cloned())).collect(),
        })
    }
}

/// Starts the attack as a task of its own, so the step is done at once and
/// the simulated clock can move between guesses (the task sleeps on it with
/// its own activity, taken here before the step ends).
pub fn start(net: Net, plan: Plan) {
    let activity = net.conductor.clock().activity();
    tokio::spawn(async move { run(&net, &plan, activity).await });
}

/// What one login attempt came to, as the robot reads the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Welcome,
    Refused,
    /// The right password of a two-factor account: useless for mail.
    AppPasswordRequired,
    /// Locked: this guess was not even checked.
    Locked,
    /// The connection ended (a server hangs up after some failures).
    Closed,
    /// The server will not take logins like this one (e.g. TLS first).
    Blocked(String),
}

/// IMAP: the tagged status and its text (RFC 5530 response codes).
pub fn judge_imap(status: &str, text: &str) -> Answer {
    let upper = text.to_ascii_uppercase();
    match status {
        "OK" => Answer::Welcome,
        _ if upper.contains("[UNAVAILABLE]") => Answer::Locked,
        _ if app_password_hint(&upper) => Answer::AppPasswordRequired,
        "NO" if upper.contains("[PRIVACYREQUIRED]") || upper.contains("[CANNOT]") => Answer::Blocked(text.to_string()),
        "NO" => Answer::Refused,
        _ => Answer::Blocked(text.to_string()),
    }
}

/// POP3: the status and its response code (RFC 2449 §8, RFC 3206).
pub fn judge_pop3(ok: bool, code: Option<&str>, text: &str) -> Answer {
    let upper = text.to_ascii_uppercase();
    match code.map(str::to_ascii_uppercase).as_deref() {
        _ if ok => Answer::Welcome,
        Some("SYS/TEMP") | Some("LOGIN-DELAY") => Answer::Locked,
        _ if app_password_hint(&upper) => Answer::AppPasswordRequired,
        _ => Answer::Refused,
    }
}

/// SMTP AUTH: the reply code (RFC 4954 §6, RFC 5248).
pub fn judge_smtp(code: u16, text: &str) -> Answer {
    match code {
        235 => Answer::Welcome,
        534 => Answer::AppPasswordRequired,
        535 => Answer::Refused,
        454 => Answer::Locked,
        421 => Answer::Closed,
        _ => Answer::Blocked(format!("{code} {text}")),
    }
}

fn app_password_hint(upper: &str) -> bool {
    upper.contains("APPLICATION-SPECIFIC") || upper.contains("APP PASSWORD") || upper.contains("5.7.9")
}

/// One open login connection of the robot.
enum Conn {
    Imap(ImapClient<TcpStream>),
    Pop3(Pop3Client<TcpStream>),
    Smtp(SmtpClient<TcpStream>),
}

impl Conn {
    /// Connects and reads the greeting (and says EHLO, for SMTP).
    async fn open(net: &Net, plan: &Plan) -> Result<(Conn, Registration), String> {
        let server = (plan.server.0.as_str(), plan.server.1);
        let (wire, registration) = net.dial(&plan.attacker, plan.from, server, plan.protocol.service(), None).await.map_err(|e| e.to_string())?;
        let tls = net.tls.as_ref().map(|tls| tls.client(server.0, ClientMode::Opportunistic));
        let conn = match plan.protocol {
            AttackProtocol::Imap => {
                let mut client = ImapClient::new(wire);
                let greeting = client.read_response().await.map_err(|e| e.to_string())?;
                if !greeting.text.starts_with("* OK") {
                    return Err(format!("the server greeted with {}", greeting.text));
                }
                if let Some(tls) = &tls {
                    let reply = client.command("STARTTLS", &format!("{} asks for TLS first", plan.attacker)).await.map_err(|e| e.to_string())?;
                    if reply.is_ok() {
                        client.wire.start_tls_checked(tls).await?;
                    }
                }
                Conn::Imap(client)
            }
            AttackProtocol::Pop3 => {
                let mut client = Pop3Client::new(wire, &plan.attacker);
                let greeting = client.read_status().await.map_err(|e| e.to_string())?;
                if greeting.status != Status::Ok {
                    return Err(format!("the server greeted with -ERR {}", greeting.text));
                }
                if let Some(tls) = &tls {
                    let reply = client.command("STLS").await.map_err(|e| e.to_string())?;
                    if reply.status == Status::Ok {
                        client.wire.start_tls_checked(tls).await?;
                    }
                }
                Conn::Pop3(client)
            }
            AttackProtocol::Smtp => {
                let mut client = SmtpClient::new(wire);
                let greeting = client.read_reply().await.map_err(|e| e.to_string())?;
                if !greeting.is_positive() {
                    return Err(format!("the server greeted with {}", greeting.one_line()));
                }
                let mut hello = client.command(&format!("EHLO {}", plan.attacker)).await.map_err(|e| e.to_string())?;
                if let Some(tls) = &tls
                    && has_extension(&hello, "STARTTLS")
                    && client.command("STARTTLS").await.map_err(|e| e.to_string())?.code == 220
                {
                    client.wire.start_tls_checked(tls).await?;
                    // RFC 3207 §4.2: after TLS, hello again.
                    hello = client.command(&format!("EHLO {}", plan.attacker)).await.map_err(|e| e.to_string())?;
                }
                if !hello.is_positive() {
                    return Err(format!("EHLO refused: {}", hello.one_line()));
                }
                Conn::Smtp(client)
            }
        };
        Ok((conn, registration))
    }

    /// Tries one password. The server traces the login line (masked).
    async fn guess(&mut self, who: &str, user: &str, password: &str) -> Answer {
        match self {
            Conn::Imap(client) => match client.command(&format!("LOGIN {} {}", quote(user), quote(password)), &format!("{who} tries a password")).await {
                Ok(reply) => judge_imap(&reply.status, &reply.text),
                Err(_) => Answer::Closed,
            },
            Conn::Pop3(client) => {
                let Ok(status) = client.command(&format!("USER {user}")).await else { return Answer::Closed };
                if status.status != Status::Ok {
                    return judge_pop3(false, status.code.as_deref(), &status.text);
                }
                match client.command(&format!("PASS {password}")).await {
                    Ok(status) => judge_pop3(status.status == Status::Ok, status.code.as_deref(), &status.text),
                    Err(_) => Answer::Closed,
                }
            }
            Conn::Smtp(client) => {
                // AUTH PLAIN (RFC 4616): base64 of "\0user\0password".
                let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
                match client.command(&format!("AUTH PLAIN {token}")).await {
                    Ok(reply) => judge_smtp(reply.code, &reply.one_line()),
                    Err(_) => Answer::Closed,
                }
            }
        }
    }

    /// Says goodbye politely (the answer does not matter).
    async fn close(self) {
        match self {
            Conn::Imap(mut client) => drop(client.command("LOGOUT", "the robot logs out").await),
            Conn::Pop3(mut client) => drop(client.command("QUIT").await),
            Conn::Smtp(mut client) => drop(client.command("QUIT").await),
        }
    }
}

/// The robot's loop: guess, read the answer, wait, guess again.
async fn run(net: &Net, plan: &Plan, activity: Activity) {
    let list: Vec<&str> = if plan.passwords.is_empty() { common_passwords().collect() } else { plan.passwords.iter().map(String::as_str).collect() };
    let protocol = match plan.protocol {
        AttackProtocol::Imap => Protocol::Imap,
        AttackProtocol::Pop3 => Protocol::Pop3,
        AttackProtocol::Smtp => Protocol::Smtp,
    };
    let (who, server, target) = (plan.attacker.as_str(), plan.server.0.as_str(), plan.target.as_str());
    let started = net.now();
    let mut conn: Option<(Conn, Registration)> = None;
    let mut answered = 0u32;
    let mut reconnects = 0u32;
    let mut index = 0usize;
    let outcome = loop {
        let Some(&guess) = list.get(index) else { break AttackOutcome::Exhausted };
        if plan.max_tries.is_some_and(|max| answered >= max) || plan.budget.is_some_and(|b| net.now().saturating_sub(started) >= b) {
            break AttackOutcome::GaveUp;
        }
        if answered > 0 && reconnects == 0 {
            activity.sleep(plan.pace).await;
        }
        let (mut open, registration) = match conn.take() {
            Some(open) => open,
            None => match Conn::open(net, plan).await {
                Ok(open) => open,
                Err(why) => {
                    net.trace.emit(Draft::new(
                        who,
                        server,
                        protocol,
                        Kind::Failure { reason: why.clone() },
                        format!("{who} cannot try passwords on {server}: {why}"),
                    ));
                    break AttackOutcome::Blocked;
                }
            },
        };
        let answer = open.guess(who, target, guess).await;
        if answer == Answer::Closed {
            // The server hung up (some do after a few failures): the robot
            // simply dials again and repeats the guess.
            reconnects += 1;
            if reconnects > MAX_RECONNECTS {
                break AttackOutcome::Blocked;
            }
            continue;
        }
        reconnects = 0;
        conn = Some((open, registration));
        let shown = if answer == Answer::Welcome || answer == Answer::AppPasswordRequired || plan.secrets.contains(guess) { MASK } else { guess };
        let number = index + 1;
        let said = match &answer {
            Answer::Welcome => "it works!",
            Answer::AppPasswordRequired => "right, but refused: this account needs an app password",
            Answer::Locked => "refused unchecked: the account is locked",
            Answer::Blocked(_) => "not even checked",
            Answer::Refused | Answer::Closed => "wrong",
        };
        net.trace.emit(Draft::new(who, server, protocol, Kind::Note, format!("{who} guess {number}/{}: {target} with \"{shown}\": {said}", list.len())));
        match answer {
            Answer::Welcome => break AttackOutcome::Cracked,
            Answer::AppPasswordRequired => break AttackOutcome::AppPasswordRequired,
            Answer::Locked => break AttackOutcome::Locked,
            Answer::Blocked(why) => {
                net.trace.emit(Draft::new(who, server, protocol, Kind::Failure { reason: why.clone() }, format!("{server} does not take this login: {why}")));
                break AttackOutcome::Blocked;
            }
            Answer::Refused | Answer::Closed => {}
        }
        answered += 1;
        index += 1;
    };
    let guesses = match outcome {
        AttackOutcome::Cracked | AttackOutcome::AppPasswordRequired => answered + 1,
        _ => answered,
    };
    let seconds = net.now().saturating_sub(started).as_secs();
    let (summary, explain) = ending(who, target, outcome, guesses, seconds, list.len());
    net.trace
        .emit(Draft::new(who, server, protocol, Kind::Attack { target: target.to_string(), outcome, guesses, sim_seconds: seconds }, summary).explain(explain));
    if let Some((open, _registration)) = conn {
        open.close().await;
    }
    drop(activity);
}

/// The last event's words.
fn ending(who: &str, target: &str, outcome: AttackOutcome, guesses: u32, seconds: u64, listed: usize) -> (String, String) {
    let s = |n: u32| if n == 1 { "" } else { "es" };
    match outcome {
        AttackOutcome::Cracked => (
            format!("{who} cracked {target}'s password after {guesses} guess{} in {seconds} simulated seconds", s(guesses)),
            "The password was on the list of the most common passwords, so it fell at its place in the list. The attacker can now read and send mail as its owner. A long passphrase on no list, or a server that slows down and locks after a few failures, stops this.".into(),
        ),
        AttackOutcome::Locked => (
            format!("the attack on {target} was stopped by the lock after {guesses} guess{} ({seconds} simulated seconds)", s(guesses)),
            "The server counts failures: each wrong password made the next answer slower, and after a few it locked the account. While it is locked even the right password is refused, so the robot learns nothing; at a handful of guesses per lock, going through the list would take days, and the owner is warned.".into(),
        ),
        AttackOutcome::AppPasswordRequired => (
            format!("{who} guessed {target}'s password after {guesses} guess{}, but it opens no mailbox: the account has two-factor sign-in", s(guesses)),
            "Mail protocols cannot ask for a one-time code, so an account with two-factor sign-in refuses its main password on SMTP, IMAP and POP3 and takes only app passwords, made one per device. A guessed or phished main password is useless for mail.".into(),
        ),
        AttackOutcome::Exhausted => (
            format!("{who} tried all {listed} passwords on its list against {target} in {seconds} simulated seconds: none worked"),
            "A long passphrase is on no list of common passwords, so a guessing robot never finds it; it would have to try every combination, which takes longer than the universe has.".into(),
        ),
        AttackOutcome::GaveUp => (
            format!("{who} gave up on {target} after {guesses} guess{} in {seconds} simulated seconds (its budget ran out)", s(guesses)),
            "Robots move on when an account takes too long: there are easier ones.".into(),
        ),
        AttackOutcome::Blocked => (
            format!("{who} could not try passwords on {target} after {guesses} guess{}", s(guesses)),
            "The server would not take this kind of login from this machine.".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_a_few_hundred_passwords_most_common_first() {
        let list: Vec<&str> = common_passwords().collect();
        assert!(list.len() > 400, "{}", list.len());
        assert_eq!(list[0], "123456");
        assert_eq!(list.iter().position(|p| *p == "sunshine"), Some(45), "the lessons count on sunshine being guess 46");
        assert!(list.iter().all(|p| !p.contains(char::is_whitespace)));
        assert!(!list.contains(&"marble-tractor-violet-orbit-71"));
    }

    #[test]
    fn answers_are_read_as_a_robot_reads_them() {
        // (status, text, answer)
        let imap = [
            ("OK", "LOGIN completed", Answer::Welcome),
            ("NO", "[AUTHENTICATIONFAILED] Authentication failed", Answer::Refused),
            ("NO", "[UNAVAILABLE] Too many failures, try again later", Answer::Locked),
            ("NO", "[AUTHENTICATIONFAILED] Application-specific password required", Answer::AppPasswordRequired),
        ];
        for (status, text, answer) in imap {
            assert_eq!(judge_imap(status, text), answer, "{status} {text}");
        }
        assert_eq!(judge_pop3(false, Some("AUTH"), "Authentication failed"), Answer::Refused);
        assert_eq!(judge_pop3(false, Some("SYS/TEMP"), "locked"), Answer::Locked);
        assert_eq!(judge_pop3(true, None, "maildrop ready"), Answer::Welcome);
        assert_eq!(judge_smtp(235, "2.7.0 Authentication successful"), Answer::Welcome);
        assert_eq!(judge_smtp(535, "5.7.8 Authentication credentials invalid"), Answer::Refused);
        assert_eq!(judge_smtp(454, "4.7.0 Too many failures"), Answer::Locked);
        assert_eq!(judge_smtp(534, "5.7.9 Application-specific password required"), Answer::AppPasswordRequired);
    }
}
