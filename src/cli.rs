//! The command line: `mailflow demo | run | serve | check | schema | list | replay | diagram | export | import`.

use std::io::{BufRead, IsTerminal};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::conductor::Pace;
use crate::scenario::{DEFAULT_SCENARIO_NAME, Scenario};
use crate::trace::printer;
use crate::web::{AppState, Control, WebConfig, WebServer};
use crate::world::{Subnet, World, WorldOptions};

/// `println!` for the story and the reports, except that a closed stdout
/// (`mailflow demo | head`, a terminal gone away) is not an error: the
/// world keeps serving its clients; only the narration stops. (`println!`
/// would panic on the broken pipe and take the servers down with it.)
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `print!` with the same forgiveness.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

#[derive(Parser)]
#[command(name = "mailflow", version, about = "An educational email-flow simulator: real SMTP, DNS, POP3 and IMAP on loopback, shown hop by hop.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the built-in scenario (Alice writes to Bob) with its web page: no file needed.
    Demo {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        web: WebArgs,
    },
    /// Run a scenario's steps, print the story, and exit.
    Run {
        file: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run a scenario with its web page and keep the world up for your own clients until Ctrl-C (or SIGTERM).
    Serve {
        file: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        web: WebArgs,
    },
    /// Check scenario files and report every problem with line, column and field.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of scenario files (for editors).
    Schema,
    /// List the scenarios in a folder with their titles.
    List {
        #[arg(default_value = "scenarios")]
        folder: PathBuf,
    },
    /// Print a recorded trace (from --record) again.
    Replay { file: PathBuf },
    /// Draw a recorded trace (from --record) as a sequence diagram: SVG on A4 pages, or Mermaid text.
    Diagram {
        file: PathBuf,
        /// Only this message's hops (its Message-ID, as the trace and the page name it).
        #[arg(long, value_name = "ID")]
        message: Option<String>,
        #[arg(long, value_enum, default_value = "svg")]
        format: DiagramFormat,
        /// Write to this file instead of printing.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Write the world's CA certificate (PEM), for mail programs to trust (curl --cacert, openssl -CAfile).
    Ca {
        /// The --data folder of the world (its CA is kept in DIR/tls).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Write to this file instead of printing.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Back up one user's mail from a --data folder, as mbox or Maildir.
    Export {
        #[command(flatten)]
        backup: BackupArgs,
        /// Where to write the backup (a new mbox file, or a new Maildir folder).
        out: PathBuf,
    },
    /// Restore a backup (mbox or Maildir) into a user's mailbox in a --data folder.
    Import {
        #[command(flatten)]
        backup: BackupArgs,
        /// The backup to restore.
        input: PathBuf,
    },
}

/// Which mail a backup is about.
#[derive(Args, Clone)]
struct BackupArgs {
    /// The user's address, e.g. bob@example.org.
    #[arg(long)]
    user: String,
    #[arg(long, value_enum)]
    format: BackupFormat,
    /// The --data folder of the world.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The host keeping the user's mailbox (needed when restoring into a new data folder).
    #[arg(long)]
    host: Option<String>,
    /// For mbox, which folder (mbox holds one folder per file).
    #[arg(long, default_value = "INBOX")]
    folder: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DiagramFormat {
    /// A4 pages (portrait), for printing.
    Svg,
    /// A Mermaid sequenceDiagram, for wikis and notes.
    Mermaid,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BackupFormat {
    /// One file, one folder (RFC 4155, mboxrd); flags in Status: lines.
    Mbox,
    /// A Maildir: every folder, one file per message, flags in the names.
    Maildir,
}

impl From<BackupFormat> for crate::store::backup::Format {
    fn from(format: BackupFormat) -> Self {
        match format {
            BackupFormat::Mbox => Self::Mbox,
            BackupFormat::Maildir => Self::Maildir,
        }
    }
}

#[derive(Args, Clone)]
struct RunArgs {
    /// No waiting at all: the whole story at once.
    #[arg(long, conflicts_with_all = ["speed", "step"])]
    fast: bool,
    /// Live pacing: 1 is classroom speed, 2 twice as fast, 0.5 slower.
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    speed: f64,
    /// Wait for Enter before every hop.
    #[arg(long, conflicts_with = "speed")]
    step: bool,
    /// Do not print the story (for benchmarks and scripts).
    #[arg(long)]
    quiet: bool,
    /// Also write every event as JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// When the world stops, write a small JSON summary to this file: how
    /// many events were traced and how many messages each host stored
    /// (benches/smtp-intake.sh checks every accepted message arrived).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// The loopback block for the world's addresses.
    #[arg(long, default_value = "127.77.0.0/16")]
    subnet: Subnet,
    /// Use ports 53, 25, 587, 143, 110 (needs root) instead of port + 10000.
    #[arg(long)]
    standard_ports: bool,
    /// Keep the mailboxes in this folder (Maildir per user), so the world
    /// can stop and resume; back them up with `mailflow export`.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

/// The web page of `serve` and `demo`.
#[derive(Args, Clone)]
struct WebArgs {
    /// Where the web page is served (default 127.0.0.1:8025, or the next
    /// free port up to 8034 if another program holds it).
    #[arg(long, value_name = "ADDR")]
    web: Option<SocketAddr>,
    /// No web page: only the story in the terminal.
    #[arg(long, conflicts_with_all = ["open", "control_token"])]
    no_web: bool,
    /// Open the page in the browser (xdg-open).
    #[arg(long)]
    open: bool,
    /// Only requests carrying this token (`Authorization: Bearer T` or
    /// `?token=T`) may play, pause, step, restart or compose; everyone else
    /// watches read-only. Served beyond loopback (e.g. --web 0.0.0.0:8025), a token is
    /// required: one is generated when none is given, printed in the teacher's URL.
    #[arg(long, value_name = "T")]
    control_token: Option<String>,
    /// The folder whose scenarios the page offers.
    #[arg(long, value_name = "DIR", default_value = "scenarios")]
    scenarios: PathBuf,
    /// Also publish every host's services, the DNS and the page on ADDR (this
    /// computer's address on the classroom network), a port per host and
    /// service (20000 + 100 × host number + the standard port's last two
    /// digits), so students' own mail programs can join; prints their
    /// settings. The page there is read-only: a control token is required.
    #[arg(long, value_name = "ADDR")]
    share: Option<IpAddr>,
}

impl RunArgs {
    fn options(&self) -> WorldOptions {
        let pace = if self.fast {
            Pace::Fast
        } else if self.step {
            Pace::Step
        } else {
            Pace::Live { speed: self.speed.max(0.01) }
        };
        WorldOptions {
            subnet: self.subnet,
            port_offset: if self.standard_ports { 0 } else { 10_000 },
            pace,
            data_dir: self.data.clone(),
            ..WorldOptions::default()
        }
    }
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mailflow: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo { run, web } => {
            let scenario = Scenario::default_scenario();
            if web.no_web {
                return serve(scenario, DEFAULT_SCENARIO_NAME, &run, web.share, true).await;
            }
            serve_web(scenario, DEFAULT_SCENARIO_NAME, crate::scenario::DEFAULT_SCENARIO, &run, &web).await
        }
        Command::Run { file, run } => {
            let Some(scenario) = load(&file) else { return Ok(ExitCode::FAILURE) };
            serve(scenario, &file.display().to_string(), &run, None, false).await
        }
        Command::Serve { file, run, web } => {
            let Some(scenario) = load(&file) else { return Ok(ExitCode::FAILURE) };
            if web.no_web {
                return serve(scenario, &file.display().to_string(), &run, web.share, true).await;
            }
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            serve_web(scenario, &file.display().to_string(), &text, &run, &web).await
        }
        Command::Check { files } => {
            let mut ok = true;
            for file in files {
                match Scenario::load(&file) {
                    Ok(scenario) => {
                        say!("{}: OK", file.display());
                        let text = std::fs::read_to_string(&file).unwrap_or_default();
                        scenario.warnings(&file.display().to_string(), &text).iter().for_each(|w| say!("{w}"));
                    }
                    Err(err) => {
                        ok = false;
                        say!("{err}");
                    }
                }
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Schema => {
            say!("{}", serde_json::to_string_pretty(&Scenario::json_schema())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::List { folder } => list(&folder),
        Command::Ca { data, output } => {
            let pem = crate::tls::ca_pem(data.as_deref())?;
            match output {
                Some(file) => std::fs::write(&file, pem)?,
                None => say_raw!("{pem}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { file } => {
            let events = crate::trace::record::load(&file)?;
            for event in &events {
                say!("{}", printer::format(event));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Diagram { file, message, format, output } => {
            let events = crate::trace::record::load(&file)?;
            let format = match format {
                DiagramFormat::Svg => crate::diagram::Format::Svg,
                DiagramFormat::Mermaid => crate::diagram::Format::Mermaid,
            };
            let text = crate::diagram::render(&events, message.as_deref(), format).with_context(|| file.display().to_string())?;
            match output {
                Some(out) => std::fs::write(&out, text).with_context(|| format!("cannot write {}", out.display()))?,
                None => say_raw!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { backup, out } => {
            let b = &backup;
            let report = crate::store::backup::export(&b.data, &b.user, b.host.as_deref(), b.format.into(), &b.folder, &out)?;
            say!("exported {} message(s) in {} folder(s) of {} to {}", report.messages, report.folders, b.user, report.path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { backup, input } => {
            let b = &backup;
            let report = crate::store::backup::import(&b.data, &b.user, b.host.as_deref(), b.format.into(), &b.folder, &input)?;
            say!("imported {} message(s) in {} folder(s) into {}", report.messages, report.folders, report.path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(file: &Path) -> Option<Scenario> {
    match Scenario::load(file) {
        Ok(scenario) => Some(scenario),
        Err(err) => {
            eprintln!("{err}");
            None
        }
    }
}

fn list(folder: &Path) -> anyhow::Result<ExitCode> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .with_context(|| format!("cannot read {}", folder.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for file in files {
        match Scenario::load(&file) {
            Ok(s) => {
                // The lesson index: level, minutes and what it teaches, when given.
                let mut about: Vec<String> = Vec::new();
                about.extend(s.level.map(|l| l.name().to_string()));
                about.extend(s.minutes.map(|m| format!("{m} min")));
                if !s.teaches.is_empty() {
                    about.push(s.teaches.join(", "));
                }
                let about = if about.is_empty() { String::new() } else { format!("  [{}]", about.join("; ")) };
                say!("{:45} {}{about}", file.display(), s.title)
            }
            Err(_) => say!("{:45} (has errors: run `mailflow check {}`)", file.display(), file.display()),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the world, prints the story, and either exits when the steps are
/// done (`run`) or stays up until Ctrl-C or SIGTERM (`serve`, `demo`).
/// `share`: `--share ADDR` (see `world::share`).
async fn serve(scenario: Scenario, name: &str, args: &RunArgs, share: Option<IpAddr>, stay_up: bool) -> anyhow::Result<ExitCode> {
    let options = WorldOptions { share, ..args.options() };
    let world = World::start(scenario, options).await.with_context(|| format!("cannot build the world of {name}"))?;
    say!("{}", world.banner());
    if let Some(plan) = &world.share {
        say!("{}", plan.render(&world.scenario, None));
    }
    if args.step {
        eprintln!("Step mode: press Enter to let the next hop move.");
        spawn_stepper(world.clone());
    }
    let printer = print_story(world.trace.subscribe(0));
    let outputs = Outputs::start(args, &world, printer);
    world.run_to_end().await;
    if stay_up {
        eprintln!("\nAll steps are done. The world stays up for your own clients (dig, swaks, curl). Press Ctrl-C to stop.");
        stop_requested().await;
    }
    world.shutdown().await;
    // The trace is closed now, so the printer ends once it has printed all.
    outputs.finish(args, &world, None).await?;
    Ok(ExitCode::SUCCESS)
}

/// What a run writes besides the page: the story on the terminal, the
/// `--record` file, and the `--report` at the end. `serve`, `run`, `demo`
/// and the web server share it.
struct Outputs {
    recorder: Option<tokio::task::JoinHandle<Result<(), crate::trace::record::RecordError>>>,
    printer: Option<tokio::task::JoinHandle<()>>,
}

impl Outputs {
    /// Starts recording `world`'s trace (with `--record`) and `printer`
    /// (unless `--quiet`).
    fn start(args: &RunArgs, world: &World, printer: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        let recorder = args.record.clone().map(|path| {
            let events = world.trace.subscribe(0);
            tokio::spawn(async move { crate::trace::record::record(events, &path).await })
        });
        Outputs { recorder, printer: (!args.quiet).then(|| tokio::spawn(printer)) }
    }

    /// After shutdown: writes `--report` for `world`, lets the printer
    /// finish (for at most `printer_grace`, if given) and the recording end.
    async fn finish(self, args: &RunArgs, world: &World, printer_grace: Option<std::time::Duration>) -> anyhow::Result<()> {
        if let Some(path) = &args.report {
            write_report(world, path)?;
        }
        if let Some(printer) = self.printer {
            match printer_grace {
                Some(grace) => drop(tokio::time::timeout(grace, printer).await),
                None => drop(printer.await),
            }
        }
        if let Some(recorder) = self.recorder {
            recorder.await?.context("recording the trace")?;
        }
        Ok(())
    }
}

/// Prints one world's story until its trace closes.
async fn print_story(mut events: crate::trace::Subscription) {
    while let Some(event) = events.next().await {
        say!("{}", printer::format(&event));
    }
}

/// `serve` and `demo` with the web page: the web server owns the world
/// (the page can restart it or load another scenario), the terminal keeps
/// printing the story of whichever world runs, until Ctrl-C.
async fn serve_web(scenario: Scenario, name: &str, text: &str, args: &RunArgs, web: &WebArgs) -> anyhow::Result<ExitCode> {
    let options = WorldOptions { share: web.share, ..args.options() };
    // Beyond loopback, a control token is required (generated if not
    // given); a shared address is always beyond.
    let access = crate::web::Access::decide(web.web.map(|addr| addr.ip()).into_iter().chain(web.share), web.control_token.clone())?;
    let config = WebConfig { world: options.clone(), control_token: access.token.clone(), scenarios_dir: web.scenarios.clone(), limits: Default::default() };
    let state = AppState::start(config, Control::from_pace(options.pace), scenario, name.to_string(), text.to_string())
        .await
        .with_context(|| format!("cannot build the world of {name}"))?;
    // An address given with --web must work; the default may move up a
    // few ports, so a second demo on the same machine still starts.
    let candidates: Vec<SocketAddr> = match web.web {
        Some(addr) => vec![addr],
        None => (8025..8035).map(|port| SocketAddr::from(([127, 0, 0, 1], port))).collect(),
    };
    let mut started = None;
    let mut last_error = None;
    for addr in &candidates {
        match WebServer::start(*addr, state.clone()).await {
            Ok(server) => {
                started = Some(server);
                break;
            }
            Err(err) => last_error = Some(err),
        }
    }
    let Some(server) = started else {
        state.shutdown().await;
        let err = last_error.map(|e| e.to_string()).unwrap_or_default();
        anyhow::bail!("cannot serve the web page on {}: {err} (is another mailflow running? try --web 127.0.0.1:PORT)", candidates[0]);
    };
    // The same page on the shared address, on the same port: the page's
    // QR code and `/api/share` name this port (see `web::share`). A page
    // served on every address (`--web 0.0.0.0:P`) or on ADDR itself
    // already answers there.
    let students_page = web.share.map(|ip| format!("http://{}/", SocketAddr::new(ip, server.addr.port())));
    let covered = |ip: IpAddr| server.addr.ip().is_unspecified() || server.addr.ip() == ip;
    let shared_page = match web.share.filter(|ip| !covered(*ip)) {
        Some(ip) => match WebServer::start(SocketAddr::new(ip, server.addr.port()), state.clone()).await {
            Ok(shared) => Some(shared),
            Err(err) => {
                let port = server.addr.port();
                server.shutdown().await;
                anyhow::bail!("cannot serve the web page on the shared address {ip}:{port}: {err}");
            }
        },
        None => None,
    };
    let url = server.url();
    let teacher_url = access.teacher_url(&url);
    let world = state.session().world.clone();
    say!("{}", world.banner());
    if let Some(plan) = &world.share {
        say!("{}", plan.render(&world.scenario, students_page.as_deref()));
    }
    say!("{}", access.banner(&url));
    if web.open {
        crate::web::open_browser(teacher_url.as_deref().unwrap_or(&url));
    }
    if args.step {
        eprintln!("Step mode: press → on the page{} to let the next hop move.", if std::io::stdin().is_terminal() { " (or Enter here)" } else { "" });
        if std::io::stdin().is_terminal() {
            spawn_web_stepper(state.clone());
        }
    }
    // A recording is one trace: that of the first world.
    let outputs = Outputs::start(args, &state.session().world, print_every_world(state.clone()));
    stop_requested().await;
    let world = state.session().world.clone();
    if let Some(shared) = shared_page {
        shared.shutdown().await;
    }
    server.shutdown().await;
    // The printer follows whichever world runs; give it a moment to finish.
    outputs.finish(args, &world, Some(std::time::Duration::from_secs(2))).await?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the story of the running world, and of each world the page
/// starts after it.
async fn print_every_world(state: Arc<AppState>) {
    let mut sessions = state.watch_session();
    let mut closing = state.watch_closing();
    loop {
        let session = sessions.borrow_and_update().clone();
        if session.generation > 1 {
            say!("\n──── the page started a new world: {} ────\n{}", session.file, session.world.banner());
            if let Some(plan) = &session.world.share {
                say!("{}", plan.render(&session.world.scenario, None));
            }
        }
        let mut events = session.world.trace.subscribe(0);
        while let Some(event) = events.next().await {
            say!("{}", printer::format(&event));
            if matches!(event.kind, crate::trace::Kind::Finished) && session.generation == 1 {
                eprintln!("\nAll steps are done. The world stays up for your own clients (dig, swaks, curl). Press Ctrl-C to stop.");
            }
        }
        tokio::select! {
            changed = sessions.changed() => if changed.is_err() { return },
            _ = closing.wait_for(|c| *c) => return,
        }
    }
}

/// Enter on the terminal steps whichever world is running (or, while a
/// quiz is open, reveals its answer).
fn spawn_web_stepper(state: Arc<AppState>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if line.is_err() {
                break;
            }
            let world = state.session().world.clone();
            if world.quiz.reveal().is_ok() {
                eprintln!("(the quiz's answer is revealed)");
            } else if !world.conductor.step() {
                eprintln!("(nothing is waiting for a step right now)");
            }
        }
    });
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM, the signal `kill` and service
/// managers send. Both stop the world the same clean way, so a script can
/// end `serve` and still get its `--report`.
async fn stop_requested() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(err) => {
            // Without a SIGTERM handler, Ctrl-C still works.
            tracing::warn!(%err, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// Writes `--report`: `{ "events": N, "stored_messages": M, "stored_bytes": B, "per_host":
/// { host: { "stored": .., "queued": .. } } }`. Called after shutdown, so
/// the counts are final.
fn write_report(world: &World, path: &Path) -> anyhow::Result<()> {
    let per_host: serde_json::Map<String, serde_json::Value> =
        world.hosts.iter().map(|(name, host)| (name.clone(), serde_json::json!({ "stored": host.store.total(), "queued": host.queue().len() }))).collect();
    let stored: usize = world.hosts.values().map(|host| host.store.total()).sum();
    let stored_bytes: usize = world.hosts.values().map(|host| host.store.total_bytes()).sum();
    let report = serde_json::json!({ "events": world.trace.len(), "stored_messages": stored, "stored_bytes": stored_bytes, "per_host": per_host });
    std::fs::write(path, format!("{report:#}\n")).with_context(|| format!("cannot write the report to {}", path.display()))
}

/// In step mode, each Enter on the terminal lets one hop move. Without a
/// terminal (stdin closed), stepping ends and the story plays fast.
fn spawn_stepper(world: Arc<World>) {
    let conductor = world.conductor.clone();
    let interactive = std::io::stdin().is_terminal();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            if line.is_err() {
                break;
            }
            if !conductor.step() && interactive {
                eprintln!("(nothing is waiting for a step right now)");
            }
        }
        conductor.set_pace(Pace::Fast);
    });
    // Show which hop waits, so the teacher can announce it.
    let conductor = world.conductor.clone();
    tokio::spawn(async move {
        let mut changes = conductor.watch_waiting();
        let mut shown = String::new();
        while changes.changed().await.is_ok() {
            if let Some(next) = conductor.waiting().first()
                && *next != shown
            {
                eprintln!("  ⏸ next: {next}  [Enter]");
                shown = next.clone();
            }
        }
    });
}
