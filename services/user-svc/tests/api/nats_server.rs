//! A NATS server with JetStream of a test's own (Debian's `nats-server`), which the test can
//! stop and start again on the same port and store, as an outage or a restart would.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::closed_port;

/// A running (or stopped) `nats-server -js`; killed and its store removed on drop.
pub struct NatsServer {
    port: u16,
    store: PathBuf,
    process: Option<Child>,
}

impl NatsServer {
    /// Starts a server on a free port with a fresh store directory; returns once it answers.
    pub async fn start() -> Self {
        let store = std::env::temp_dir().join(format!("vottery-nats-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&store).expect("the JetStream store directory");
        let mut server = Self {
            port: closed_port(),
            store,
            process: None,
        };
        server.resume().await;
        server
    }

    /// The server's URL, the same across restarts.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server as an operator would (SIGTERM) and waits until it has exited.
    pub fn stop(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        let signalled = Command::new("kill")
            .args(["-TERM", &process.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(signalled.success(), "nats-server could not be signalled");
        process.wait().expect("nats-server exits");
    }

    /// Starts the server again on its port and store; returns once clients can connect.
    pub async fn resume(&mut self) {
        assert!(self.process.is_none(), "nats-server is already running");
        let process = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start nats-server ({error}): the relay fault tests need it on PATH \
                     (Debian's nats-server package)"
                )
            });
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(10);
        while async_nats::connect(self.url()).await.is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
