//! Fault injection for the crash and disk-full tests: a seam at each step where a crash or a failed write
//! could leave files half done.
//!
//! Named points are passed by the code that writes checkpoints and by the history's epoch records
//! ([`point`]). Nothing happens unless the
//! environment variable [`FAULT_VARIABLE`] names one of them, as `POINT@N` (the N-th time this process
//! reaches POINT, 1-based) followed by `=kill` (the process sends itself SIGKILL: the same signal a
//! crash, the OOM killer or a power cut of the process amounts to) or `=enospc` (the write fails as on
//! a full disk). Several faults are separated by commas. It is read once, at the first point reached.
//!
//! Tests set it on the real binary: `TRANSFER_STUDIO_FAULT=after-optimizer@2=kill transfer-studio serve`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The environment variable holding the faults to inject.
pub const FAULT_VARIABLE: &str = "TRANSFER_STUDIO_FAULT";

/// What to do when a fault's point is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// SIGKILL this process.
    Kill,
    /// Fail the write as if the disk were full.
    NoSpace,
}

/// One fault: its point, the occurrence that triggers it, and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fault {
    point: String,
    occurrence: u64,
    action: Action,
}

/// The faults of this process and how often each point has been reached.
#[derive(Default)]
struct Faults {
    planned: Vec<Fault>,
    reached: HashMap<String, u64>,
}

fn parse(spec: &str) -> Vec<Fault> {
    spec.split(',')
        .filter_map(|fault| {
            let (place, action) = fault.trim().split_once('=')?;
            let (point, occurrence) = place.split_once('@').unwrap_or((place, "1"));
            let action = match action {
                "kill" => Action::Kill,
                "enospc" => Action::NoSpace,
                _ => return None,
            };
            Some(Fault { point: point.to_string(), occurrence: occurrence.parse().ok()?, action })
        })
        .collect()
}

fn faults() -> &'static Mutex<Faults> {
    static FAULTS: OnceLock<Mutex<Faults>> = OnceLock::new();
    FAULTS.get_or_init(|| {
        let planned = std::env::var(FAULT_VARIABLE).map(|spec| parse(&spec)).unwrap_or_default();
        Mutex::new(Faults { planned, reached: HashMap::new() })
    })
}

/// Marks that the code reached `name`. Without a fault planned there, returns `Ok`; a planned kill
/// never returns; a planned disk-full returns the error a full disk gives.
pub fn point(name: &str) -> std::io::Result<()> {
    let action = {
        let mut faults = faults().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if faults.planned.is_empty() {
            return Ok(());
        }
        let reached = faults.reached.entry(name.to_string()).or_insert(0);
        *reached += 1;
        let count = *reached;
        faults.planned.iter().find(|f| f.point == name && f.occurrence == count).map(|f| f.action)
    };
    match action {
        None => Ok(()),
        Some(Action::NoSpace) => Err(std::io::Error::from_raw_os_error(libc::ENOSPC)),
        Some(Action::Kill) => {
            tracing::warn!("fault injection: killing the process at {name}");
            // SAFETY: kill(2) with our own pid and a valid signal number has no memory effects.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            unreachable!("SIGKILL cannot be caught")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_point_an_occurrence_and_an_action() {
        assert_eq!(
            parse("after-optimizer@2=kill, before-manifest=enospc,bogus,x@y=kill"),
            [
                Fault { point: "after-optimizer".into(), occurrence: 2, action: Action::Kill },
                Fault { point: "before-manifest".into(), occurrence: 1, action: Action::NoSpace },
            ]
        );
    }
}
