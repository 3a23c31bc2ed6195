//! The service process (`local-stack`, the emulators staying up): started,
//! SIGKILLed and started again, its memory and CPU sampled from `/proc`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::process::{Child, Command};

/// Peak resident memory and CPU time, over every incarnation.
#[derive(Debug, Default, Clone)]
pub struct Usage {
    pub peak_rss_kib: u64,
    /// Clock ticks (utime + stime) per process id, last sample.
    pub cpu_ticks: HashMap<u32, u64>,
}

impl Usage {
    pub fn cpu_seconds(&self) -> f64 {
        // USER_HZ is 100 on Linux.
        self.cpu_ticks.values().sum::<u64>() as f64 / 100.0
    }
}

#[derive(Debug)]
pub struct Service {
    exe: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    pub kills: Vec<DateTime<Utc>>,
    pub starts: u32,
    pub usage: Arc<Mutex<Usage>>,
    /// The AWS faults, paused at each start until the service listens on
    /// this port.
    aws_faults: Option<(Arc<crate::aws::AwsFaults>, u16)>,
}

impl Service {
    pub fn new(exe: PathBuf, env: Vec<(String, String)>, log: PathBuf) -> Self {
        Self {
            exe,
            env,
            log,
            child: None,
            kills: Vec::new(),
            starts: 0,
            usage: Arc::default(),
            aws_faults: None,
        }
    }

    /// Pauses `faults` at each start until the service listens on `port`.
    pub fn with_aws_faults(mut self, faults: Arc<crate::aws::AwsFaults>, port: u16) -> Self {
        self.aws_faults = Some((faults, port));
        self
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn start(&mut self) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        if let Some((faults, port)) = &self.aws_faults {
            faults.pause_while_starting(*port);
        }
        let child = Command::new(&self.exe)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        if let Some(pid) = child.id() {
            tokio::spawn(sample(pid, Arc::clone(&self.usage)));
        }
        self.child = Some(child);
        self.starts += 1;
        Ok(())
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(&mut self) -> std::io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
            self.kills.push(Utc::now());
        }
        Ok(())
    }

    /// Whether the process is still running (it may have exited on its own).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }
}

/// Samples `/proc/{pid}` twice a second until the process is gone.
async fn sample(pid: u32, usage: Arc<Mutex<Usage>>) {
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        let (Ok(status), Ok(stat)) = (status, stat) else {
            return;
        };
        // A zombie has no memory left; its last CPU sample stands.
        let rss = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok());
        // Fields after the command's closing parenthesis: state is field 3,
        // utime and stime are fields 14 and 15.
        let ticks = stat.rsplit_once(')').map(|(_, rest)| {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| {
                fields
                    .get(n - 3)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            field(14) + field(15)
        });
        {
            let mut usage = usage
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(rss) = rss {
                usage.peak_rss_kib = usage.peak_rss_kib.max(rss);
            }
            if let Some(ticks) = ticks {
                usage.cpu_ticks.insert(pid, ticks);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
