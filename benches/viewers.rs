//! How well the live stream keeps up: 30 viewers follow one world that
//! produces more than 10,000 events as fast as it can.
//!
//! ```sh
//! cargo bench --bench viewers                    # 30 viewers, 250 messages
//! cargo bench --bench viewers -- 50 400          # 50 viewers, 400 messages
//! ```
//!
//! The world starts paused; all viewers subscribe from sequence 0; then
//! the story is played with no pacing (`speed 0`). Each viewer records, for
//! every event, the delay between the event's creation (`wall_ms`) and the
//! frame's arrival. Reported: events produced, events delivered per second
//! (all viewers together), and the delay percentiles. Target: every viewer
//! gets every event exactly once and in order, p95 < 100 ms. Figures from
//! this machine are in `benches/README-viewers.md`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use mailflow::conductor::Pace;
use mailflow::scenario::{DEFAULT_SCENARIO, Scenario};
use mailflow::web::{AppState, Control, WebConfig, WebServer};
use mailflow::world::WorldOptions;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The numbers the benchmark needs from an event, found by scanning the
/// frame's text: 30 viewers fully parsing 150 MB of JSON in this process
/// would measure this process's parser (a browser parses on its own
/// machine), not the server.
fn scan_events(frame: &str) -> Vec<(u64, u64, bool)> {
    let mut out = Vec::new();
    let mut rest = frame;
    while let Some(at) = rest.find("{\"seq\":") {
        rest = &rest[at + 7..];
        let number = |text: &str, key: &str| -> u64 {
            let start = text.find(key).map(|i| i + key.len()).unwrap_or(text.len());
            text[start..].bytes().take_while(u8::is_ascii_digit).fold(0u64, |n, b| n * 10 + u64::from(b - b'0'))
        };
        let seq = number(rest, "");
        let wall_ms = number(rest, "\"wall_ms\":");
        let finished = rest.find("\"kind\":\"").map(|i| rest[i + 8..].starts_with("finished\"")).unwrap_or(false);
        out.push((seq, wall_ms, finished));
    }
    out
}

struct ViewerResult {
    seqs_in_order: bool,
    count: u64,
    delays: Vec<u64>,
    done_at: Instant,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The built-in scenario with `messages` sends, ten starting each
/// simulated second.
fn scenario_text(messages: usize) -> String {
    let mut scenario: Value = serde_json::from_str(DEFAULT_SCENARIO).expect("the built-in scenario is JSON");
    let steps: Vec<Value> = (0..messages)
        .map(|i| {
            json!({
                "at": format!("{}s", i / 10),
                "send": {"client": "alice-laptop", "to": ["bob@example.org"], "subject": format!("Message {i}"), "body": "Benchmark.\n"}
            })
        })
        .collect();
    scenario["steps"] = Value::Array(steps);
    scenario.to_string()
}

async fn viewer(url: String, start_ms: std::sync::Arc<std::sync::atomic::AtomicU64>) -> ViewerResult {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("the stream accepts");
    let mut next = 0u64;
    let mut in_order = true;
    let mut delays = Vec::with_capacity(16_384);
    while let Some(message) = socket.next().await {
        let Ok(Message::Text(text)) = message else { continue };
        let arrived = now_ms();
        if !text.starts_with("{\"type\":\"events\"") {
            continue;
        }
        let start = start_ms.load(std::sync::atomic::Ordering::Relaxed);
        let mut finished = false;
        for (seq, wall_ms, last) in scan_events(&text) {
            in_order &= seq == next;
            next = seq + 1;
            // Events made before play (the world coming up) waited for
            // the viewers on purpose: they are not measured.
            if start > 0 && wall_ms >= start {
                delays.push(arrived.saturating_sub(wall_ms));
            }
            finished |= last;
        }
        if finished {
            break;
        }
    }
    ViewerResult { seqs_in_order: in_order, count: next, delays, done_at: Instant::now() }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let viewers: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(30);
    let messages: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(250);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let ok = runtime.block_on(run(viewers, messages));
    std::process::exit(if ok { 0 } else { 1 });
}

async fn run(viewers: usize, messages: usize) -> bool {
    let text = scenario_text(messages);
    let scenario = Scenario::parse("bench.json", &text).expect("a valid scenario");
    let seed = now_ms();
    let subnet = format!("127.{}.{}.0/24", 128 + seed % 120, (seed / 7) % 256).parse().expect("a subnet");
    let config = WebConfig {
        world: WorldOptions { subnet, ..WorldOptions::default() },
        control_token: None,
        scenarios_dir: "scenarios".into(),
        limits: Default::default(),
    };
    let state = AppState::start(config, Control::from_pace(Pace::Step), scenario, "bench.json".into(), text).await.expect("the world starts");
    let server = WebServer::start("127.0.0.1:0".parse().unwrap(), state.clone()).await.expect("the server starts");
    let url = format!("ws://{}/api/stream?since=0", server.addr);

    let start_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..viewers).map(|_| tokio::spawn(viewer(url.clone(), start_ms.clone()))).collect();
    // Let every viewer connect and read the first events.
    tokio::time::sleep(Duration::from_millis(500)).await;

    println!("mailflow stream benchmark: {viewers} viewers, {messages} messages, pace fast");
    let started = Instant::now();
    start_ms.store(now_ms(), std::sync::atomic::Ordering::Relaxed);
    state.set_control(Control { paused: false, speed: 0.0 });

    let mut results = Vec::new();
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(300), task).await {
            Ok(Ok(result)) => results.push(result),
            _ => {
                println!("a viewer did not finish within 300 s");
                return false;
            }
        }
    }
    let session = state.session();
    let trace = session.world.trace.since(0);
    let total = trace.len() as u64;
    let produced_ms = trace.last().map(|e| e.wall_ms.saturating_sub(start_ms.load(std::sync::atomic::Ordering::Relaxed))).unwrap_or(0);
    let last_done = results.iter().map(|r| r.done_at).max().unwrap_or(started);
    let elapsed = last_done.duration_since(started).as_secs_f64();
    let mut delays: Vec<u64> = results.iter().flat_map(|r| r.delays.iter().copied()).collect();
    delays.sort_unstable();
    let complete = results.iter().all(|r| r.seqs_in_order && r.count == total);

    println!("events in the trace:          {total}");
    println!("world produced them in:       {produced_ms} ms ({:.0} events/s)", total as f64 / (produced_ms.max(1) as f64 / 1000.0));
    println!("every viewer got every event: {}", if complete { "yes, exactly once and in order" } else { "NO" });
    println!("delivered (all viewers):      {} events in {:.2} s = {:.0} events/s", total * viewers as u64, elapsed, (total * viewers as u64) as f64 / elapsed);
    println!(
        "delay creation → viewer (ms): p50 {}  p95 {}  p99 {}  max {}  ({} samples)",
        percentile(&delays, 0.50),
        percentile(&delays, 0.95),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(0),
        delays.len()
    );
    let p95 = percentile(&delays, 0.95);
    let target = complete && total >= 10_000 && p95 < 100;
    println!("target (all events, ≥ 10,000 events, p95 < 100 ms): {}", if target { "met" } else { "NOT met" });
    server.shutdown().await;
    complete
}
