//! A private two-node Slurm cluster in a temporary folder, as `../shared/docs/ENVIRONMENT.md` measured it:
//! its own munge key and socket, its own ports and state, `slurmctld` and two `slurmd` (nodes n1 and n2,
//! one CPU each) on this machine. Dropping it cancels its jobs and stops every daemon it started, by PID.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running private cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
}

/// Whether Slurm's daemons are installed (`make test` installs them); a test without them says so.
pub fn installed() -> bool {
    ["munged", "slurmctld", "slurmd", "sbatch"]
        .iter()
        .all(|program| ["/usr/sbin", "/usr/bin"].iter().any(|folder| Path::new(folder).join(program).exists()))
}

/// A loopback port free now and never handed out before in this test process: Slurm's daemons need their
/// ports written in the config before they start, and clusters of tests running side by side must not be
/// given the same one.
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
}

impl Cluster {
    /// Starts the cluster and waits until both nodes are idle.
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // munged refuses a socket folder that is not searchable by all.
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        for folder in ["state", "log", "out"] {
            std::fs::create_dir_all(root.join(folder)).unwrap();
        }
        let key = root.join("munge.key");
        run(Command::new("mungekey").arg("--create").arg(format!("--keyfile={}", key.display())));
        run(Command::new("munged")
            .arg(format!("--socket={}", root.join("munge.sock").display()))
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--pid-file={}", root.join("munged.pid").display()))
            .arg(format!("--log-file={}", root.join("log/munged.log").display()))
            .arg(format!("--seed-file={}", root.join("munge.seed").display()))
            .arg("--force"));
        std::fs::write(root.join("slurm.conf"), config(root)).unwrap();
        let cluster = Cluster { dir };
        run(cluster.command("slurmctld").arg("-i"));
        for node in ["n1", "n2"] {
            run(cluster.command("slurmd").args(["-N", node]));
        }
        cluster.wait_until_idle();
        cluster
    }

    /// The cluster's `slurm.conf`, for `SLURM_CONF`.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// A Slurm command aimed at this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", self.conf());
        command
    }

    /// What a Slurm command printed; panics when it fails.
    pub fn ask(&self, program: &str, args: &[&str]) -> String {
        let output = self.command(program).args(args).output().unwrap();
        assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn wait_until_idle(&self) {
        let started = Instant::now();
        loop {
            let nodes = self.ask("sinfo", &["-h", "-N", "-o", "%N %t"]);
            if nodes.lines().filter(|line| line.ends_with(" idle")).count() == 2 {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the nodes did not come up: {nodes}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The end of each daemon's log, so a failed test says what the cluster did.
    fn print_logs(&self) {
        for log in ["slurmctld.log", "slurmd-n1.log", "slurmd-n2.log"] {
            let text = std::fs::read_to_string(self.dir.path().join("log").join(log))
                .unwrap_or_else(|e| format!("(could not read it: {e})"));
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- the last lines of {log}:\n{}", lines[lines.len().saturating_sub(60)..].join("\n"));
        }
    }

    /// The daemons' PIDs from the files they wrote, each only while that PID is still one of these daemons: a
    /// PID freed by a daemon that ended may already be another test's process.
    fn pids(&self) -> Vec<i32> {
        ["slurmd-n1.pid", "slurmd-n2.pid", "slurmctld.pid", "munged.pid"]
            .iter()
            .filter_map(|file| std::fs::read_to_string(self.dir.path().join(file)).ok()?.trim().parse().ok())
            .filter(|pid: &i32| {
                let program = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                ["slurmd", "slurmctld", "munged"].contains(&program.trim())
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        let _ = self.command("scancel").args(["--me", "--full"]).output();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let listed = self.command("squeue").args(["-h", "--me", "-t", "running,completing"]).output();
            if listed.map_or(true, |o| o.stdout.is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        for signal in ["-TERM", "-KILL"] {
            for pid in self.pids() {
                // Only the daemons this cluster started, by the PIDs they wrote; one already gone is no matter.
                let _ = Command::new("kill").arg(signal).arg(pid.to_string()).output();
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn config(root: &Path) -> String {
    let (controller, daemon, n1, n2) = (free_port(), free_port(), free_port(), free_port());
    let host = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap().trim().to_string();
    let dir = root.display();
    format!(
        "ClusterName=studio\nSlurmctldHost=localhost\nSlurmctldPort={controller}\nSlurmdPort={daemon}\n\
         SlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\nAuthInfo=socket={dir}/munge.sock\nCredType=cred/munge\n\
         StateSaveLocation={dir}/state\nSlurmdSpoolDir={dir}/spool-%n\nSlurmctldPidFile={dir}/slurmctld.pid\n\
         SlurmdPidFile={dir}/slurmd-%n.pid\nSlurmctldLogFile={dir}/log/slurmctld.log\nSlurmdLogFile={dir}/log/slurmd-%n.log\n\
         ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
         JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\nMpiDefault=none\n\
         SwitchType=switch/none\nReturnToService=2\nKillWait=10\nMinJobAge=300\n\
         NodeName=n1 NodeHostname={host} NodeAddr=127.0.0.1 Port={n1} CPUs=1 RealMemory=4000\n\
         NodeName=n2 NodeHostname={host} NodeAddr=127.0.0.1 Port={n2} CPUs=1 RealMemory=4000\n\
         PartitionName=studio Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP\n"
    )
}
