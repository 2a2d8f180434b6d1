//! A peer CA's server process (cfssl, step-ca): started on a free loopback
//! port, waited for until it listens, killed when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A running peer; killed when dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback address.
pub fn free_addr() -> Result<SocketAddr> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(([127, 0, 0, 1], port).into())
}

/// Starts `command` (which must listen on `addr`), its standard error to
/// `log`, and waits up to `wait` until it accepts connections.
pub fn start(
    mut command: Command,
    addr: SocketAddr,
    log: &Path,
    wait: Duration,
) -> Result<Process> {
    let program = command.get_program().to_string_lossy().into_owned();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let mut process = Process { child, addr };
    let deadline = Instant::now() + wait;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(process);
        }
        if let Some(status) = process.child.try_wait()? {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!("{program} exited ({status}): {}", text.trim());
        }
        if Instant::now() > deadline {
            bail!(
                "{program} did not listen on {addr} within {} s",
                wait.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
