//! Who owns the running world: the web server's shared state.
//!
//! A teacher may restart the story or load another scenario while the page
//! is open, so the world is not fixed for the life of the process. The
//! state holds the *current* [`Session`] (one world, numbered by a
//! generation) in a `watch` channel: handlers read it without waiting,
//! streams are told at once when it is replaced, and the generation number
//! travels with every batch of events so a page knows to start over.
//!
//! Each world runs on a tokio runtime of its own. The world's code spawns
//! tasks freely (one per connection, one per queued message, the clock
//! driver), and a message waiting for a retry in 15 simulated minutes is a
//! task asleep on the old world's clock. Shutting that runtime down drops
//! every one of those tasks and closes every socket they hold, so nothing
//! of the old world can wake up later and talk to the new one on the same
//! addresses. The web server itself runs on the main runtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{Mutex, watch};

use super::guard::{Guard, Limits};
use crate::conductor::Pace;
use crate::scenario::Scenario;
use crate::world::{World, WorldError, WorldOptions};

/// How the web server builds worlds and who may steer them.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Subnet, ports and timeouts of every world (the pace is taken from
    /// [`Control`]).
    pub world: WorldOptions,
    /// If set, only requests carrying this token may control or compose.
    pub control_token: Option<String>,
    /// Where `POST /api/scenario {"name": ...}` finds scenario files.
    pub scenarios_dir: PathBuf,
    /// Body sizes, the send rate and the number of live viewers.
    pub limits: Limits,
}

/// What the teacher chose: paused or playing, and how fast.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Control {
    /// Every hop waits for a step.
    pub paused: bool,
    /// Live speed factor; 0 means no waiting at all (fast).
    pub speed: f64,
}

impl Control {
    /// The control that matches a pace given on the command line.
    pub fn from_pace(pace: Pace) -> Control {
        match pace {
            Pace::Fast => Control { paused: false, speed: 0.0 },
            Pace::Live { speed } => Control { paused: false, speed },
            Pace::Step => Control { paused: true, speed: 1.0 },
        }
    }

    /// The conductor's pace for this control.
    pub fn pace(&self) -> Pace {
        if self.paused {
            Pace::Step
        } else if self.speed <= 0.0 {
            Pace::Fast
        } else {
            Pace::Live { speed: self.speed }
        }
    }
}

/// One world with its name and source text.
pub struct Session {
    /// 1 for the first world, +1 for each restart or new scenario.
    pub generation: u64,
    pub world: Arc<World>,
    /// The file name shown on the page (e.g. `scenarios/x.json`).
    pub file: String,
    /// The scenario's text, so "restart" can rebuild it exactly.
    pub text: String,
    handle: Handle,
    // Each event serialized once, by sequence number, for every viewer:
    // 30 tabs must not each turn the same 10,000 events into JSON.
    json: std::sync::Mutex<JsonCache>,
}

/// The JSON of the newest events (as many as the trace keeps), oldest first.
#[derive(Default)]
struct JsonCache {
    /// The sequence number of `list[0]`.
    first: u64,
    list: std::collections::VecDeque<Arc<str>>,
}

impl Session {
    fn new(generation: u64, world: Arc<World>, file: String, text: String, handle: Handle) -> Self {
        Session { generation, world, file, text, handle, json: std::sync::Mutex::new(JsonCache::default()) }
    }

    /// The JSON of `events` (consecutive, from this session's trace),
    /// serialized at most once per event for all viewers.
    pub fn json(&self, events: &[Arc<crate::trace::Event>]) -> Vec<Arc<str>> {
        fn serialize(event: &crate::trace::Event) -> Arc<str> {
            serde_json::to_string(event).expect("events serialize").into()
        }
        let mut cache = self.json.lock().unwrap_or_else(|e| e.into_inner());
        for event in events {
            let next = cache.first + cache.list.len() as u64;
            if event.seq > next {
                // A viewer far ahead of the cache (rare): start it again here.
                cache.list.clear();
                cache.first = event.seq;
            }
            if event.seq >= next {
                cache.list.push_back(serialize(event));
                if cache.list.len() > crate::trace::MAX_KEPT_EVENTS {
                    cache.list.pop_front();
                    cache.first += 1;
                }
            }
        }
        let first = cache.first;
        events.iter().map(|e| e.seq.checked_sub(first).and_then(|i| cache.list.get(i as usize)).cloned().unwrap_or_else(|| serialize(e))).collect()
    }

    /// Runs `future` on this world's runtime (where its sockets live).
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

/// A world's runtime. Dropping it (e.g. in a test that ends) must not
/// block inside async code, so drop only signals shutdown; the orderly
/// path is [`WorldRuntime::stop`].
struct WorldRuntime(Option<Runtime>);

impl WorldRuntime {
    fn new(generation: u64) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            // One thread: the world is mostly waiting on loopback sockets,
            // and in fast mode it must not take every core from the web
            // server that streams its events to the class.
            .worker_threads(1)
            .thread_name(format!("world-{generation}"))
            .enable_all()
            .build()?;
        Ok(WorldRuntime(Some(runtime)))
    }

    fn handle(&self) -> Handle {
        self.0.as_ref().expect("a live runtime").handle().clone()
    }

    /// Shuts the runtime down and waits (a little) until its tasks are
    /// dropped, so the world's listening sockets are closed on return.
    async fn stop(mut self) {
        if let Some(runtime) = self.0.take() {
            let _ = tokio::task::spawn_blocking(move || runtime.shutdown_timeout(Duration::from_secs(3))).await;
        }
    }
}

impl Drop for WorldRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Why a new world could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    // One cause once: see `WorldError`.
    #[error(transparent)]
    World(#[from] WorldError),
    #[error("cannot start a runtime for the world: {0}")]
    Runtime(std::io::Error),
}

/// The web server's shared state.
pub struct AppState {
    pub config: WebConfig,
    /// The limits' counters (send buckets, open viewers).
    pub guard: Guard,
    current: watch::Sender<Arc<Session>>,
    control: watch::Sender<Control>,
    // Only one restart at a time; holds the current world's runtime.
    lifecycle: Mutex<Option<WorldRuntime>>,
    closing: watch::Sender<bool>,
}

impl AppState {
    /// Builds the first world of `scenario` and starts its steps.
    pub async fn start(config: WebConfig, control: Control, scenario: Scenario, file: String, text: String) -> Result<Arc<AppState>, StartError> {
        let (runtime, world) = launch(&config, control, scenario, 1).await?;
        let session = Arc::new(Session::new(1, world, file, text, runtime.handle()));
        let (current, _) = watch::channel(session);
        let (control, _) = watch::channel(control);
        let (closing, _) = watch::channel(false);
        let guard = Guard::new(config.limits.clone());
        Ok(Arc::new(AppState { config, guard, current, control, lifecycle: Mutex::new(Some(runtime)), closing }))
    }

    /// The world now running.
    pub fn session(&self) -> Arc<Session> {
        self.current.borrow().clone()
    }

    /// Follows world replacements.
    pub fn watch_session(&self) -> watch::Receiver<Arc<Session>> {
        self.current.subscribe()
    }

    pub fn control(&self) -> Control {
        *self.control.borrow()
    }

    /// Follows changes of pause and speed.
    pub fn watch_control(&self) -> watch::Receiver<Control> {
        self.control.subscribe()
    }

    /// Turns on server shutdown: open streams end.
    pub fn watch_closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Applies a new control to the current world's conductor.
    pub fn set_control(&self, control: Control) {
        self.control.send_replace(control);
        self.session().world.conductor.set_pace(control.pace());
    }

    /// Lets one waiting hop move, pausing first if the story was playing.
    /// A hop that was just released from live pacing needs a moment to
    /// join the queue of waiting hops, so this waits up to half a second
    /// for one to appear. Returns whether a hop moved.
    pub async fn step(&self) -> bool {
        if !self.control().paused {
            let speed = self.control().speed;
            self.set_control(Control { paused: true, speed });
        }
        let conductor = self.session().world.conductor.clone();
        let mut changes = conductor.watch_waiting();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        loop {
            if conductor.step() {
                return true;
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                return false;
            }
        }
    }

    /// Replaces the running world with a new one of `scenario` on the same
    /// subnet and ports. If the new world cannot start, the old scenario
    /// is started again and the error returned.
    pub async fn replace(&self, scenario: Scenario, file: String, text: String) -> Result<Arc<Session>, StartError> {
        let mut lifecycle = self.lifecycle.lock().await;
        let old = self.session();
        stop_world(&old, lifecycle.take()).await;
        let generation = old.generation + 1;
        let control = self.control();
        match launch(&self.config, control, scenario, generation).await {
            Ok((runtime, world)) => Ok(self.publish(&mut lifecycle, runtime, world, generation, file, text)),
            Err(err) => {
                tracing::warn!(%err, "the new world did not start; restarting the previous one");
                if let Ok(previous) = Scenario::parse(&old.file, &old.text)
                    && let Ok((runtime, world)) = launch(&self.config, control, previous, generation).await
                {
                    self.publish(&mut lifecycle, runtime, world, generation, old.file.clone(), old.text.clone());
                }
                Err(err)
            }
        }
    }

    /// Starts the current scenario again from the beginning.
    pub async fn restart(&self) -> Result<Arc<Session>, StartError> {
        let session = self.session();
        let scenario = Scenario::parse(&session.file, &session.text).expect("the running scenario was valid when it started");
        self.replace(scenario, session.file.clone(), session.text.clone()).await
    }

    fn publish(
        &self,
        lifecycle: &mut Option<WorldRuntime>,
        runtime: WorldRuntime,
        world: Arc<World>,
        generation: u64,
        file: String,
        text: String,
    ) -> Arc<Session> {
        let session = Arc::new(Session::new(generation, world, file, text, runtime.handle()));
        *lifecycle = Some(runtime);
        self.current.send_replace(session.clone());
        session
    }

    /// Stops the current world and ends all streams (server shutdown).
    pub async fn shutdown(&self) {
        self.closing.send_replace(true);
        let mut lifecycle = self.lifecycle.lock().await;
        stop_world(&self.session(), lifecycle.take()).await;
    }
}

/// Builds a world on a runtime of its own and starts its steps there.
async fn launch(config: &WebConfig, control: Control, scenario: Scenario, generation: u64) -> Result<(WorldRuntime, Arc<World>), StartError> {
    let runtime = WorldRuntime::new(generation).map_err(StartError::Runtime)?;
    let options = WorldOptions { pace: control.pace(), ..config.world.clone() };
    let world = runtime.handle().spawn(World::start(scenario, options)).await.expect("world start is not cancelled")?;
    // A page shows this world: its quizzes wait for the teacher's reveal.
    world.quiz.attend();
    let runner = world.clone();
    runtime.handle().spawn(async move { runner.run_to_end().await });
    Ok((runtime, world))
}

/// Stops a world's servers (closing its trace) and then its runtime.
async fn stop_world(session: &Session, runtime: Option<WorldRuntime>) {
    let world = session.world.clone();
    let stopping = session.spawn(async move { world.shutdown().await });
    // A stuck shutdown must not hang the restart: the runtime stop below
    // drops whatever is left.
    let _ = tokio::time::timeout(Duration::from_secs(3), stopping).await;
    // Closing the trace again is harmless and ends followers even if the
    // shutdown above could not run.
    session.world.trace.close();
    if let Some(runtime) = runtime {
        runtime.stop().await;
    }
}
