//! The real `transfer-studio` binary as a child process, for tests that kill it with real signals.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `transfer-studio` binary as a child process on a free port.
pub struct ServerProcess {
    child: Child,
    base: String,
    /// The point where fault injection killed the process, as its log said.
    pub fault_killed_at: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl ServerProcess {
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[], &[])
    }

    /// Starts the binary over `data_dir` with extra `args` and environment `env`; fails if it does not
    /// print its address within a minute (a start-up that hangs).
    pub fn start_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let binary = super::workspace_root().join("target/release/transfer-studio");
        assert!(binary.is_file(), "{} is missing: run `cargo build --release -p transfer-studio`", binary.display());
        let mut child = Command::new(&binary)
            .args(["serve", "--port", "0", "--ui-dir", "/nonexistent", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (address, found) = std::sync::mpsc::channel();
        let fault_killed_at = std::sync::Arc::new(std::sync::Mutex::new(None));
        let fault_seen = fault_killed_at.clone();
        // Read the log on a thread of its own (and keep draining it so the server never blocks on a
        // full pipe), so that a server that never prints its address fails the test instead of hanging it.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some((_, point)) = line.split_once("killing the process at ") {
                    *fault_seen.lock().unwrap() = Some(point.trim().to_string());
                }
                if let Some(at) = line.find("http://127.0.0.1:") {
                    let _ = address.send(
                        line[at..].split_whitespace().next().unwrap().trim_end_matches(['/', ',', ')']).to_string(),
                    );
                }
            }
        });
        let base = found.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the server did not start listening within a minute")
        });
        ServerProcess { child, base, fault_killed_at }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Run `id` as `GET /api/runs/{id}` answers it.
    pub async fn run(&self, id: u64) -> shared::Run {
        reqwest::get(self.url(&format!("/api/runs/{id}"))).await.unwrap().json().await.unwrap()
    }

    /// Polls run `id` until `done` holds; fails the test if it does not within `timeout`.
    pub async fn wait_for_run(&self, id: u64, timeout: Duration, done: impl Fn(&shared::Run) -> bool) -> shared::Run {
        let started = Instant::now();
        loop {
            let run = self.run(id).await;
            if done(&run) {
                return run;
            }
            assert!(started.elapsed() < timeout, "run {id} did not get there: {run:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn kill_hard(mut self) {
        // SIGKILL: no chance to clean up, like a crash or a power cut of the process.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends `signal` (a name `kill` knows, as TERM or INT) and waits up to a minute for the exit.
    pub fn signal_and_wait(mut self, signal: &str) -> std::process::ExitStatus {
        let sent = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(sent.success());
        self.wait_for_exit(Duration::from_secs(60))
            .unwrap_or_else(|| panic!("the server did not exit within a minute of SIG{signal}"))
    }

    /// The exit status once the process ends, or `None` if it still runs after `timeout`.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
