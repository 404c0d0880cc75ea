//! Admission control for memory: work that a request starts and that can take much memory (decoding an
//! image, exporting a model) first asks a [`MemoryBudget`] for the bytes it will need, worked out before
//! it allocates them (an image's from its header). Requests that do not fit are refused at once, to be
//! retried ([`OverBudget`]: a 503 with `Retry-After`); work that must not fail halfway (a health check's
//! many images) waits its turn instead. So the server's peak memory is the budget, not the number of
//! requests times the largest one.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// The default budget: 1 GiB of decoded images and exports at once.
pub const DEFAULT_BUDGET_BYTES: u64 = 1 << 30;

/// The default memory budget of a run's decoded images ([`crate::engine::training::TrainingPaths::memory_budget`]):
/// half of this machine's memory, or 8 GiB where it cannot be read.
pub fn default_dataset_budget() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    total_memory(&meminfo).map_or(8 << 30, |total| total / 2)
}

/// The `MemTotal` of a `/proc/meminfo` text, in bytes.
fn total_memory(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.trim_start_matches("MemTotal:").trim().trim_end_matches("kB").trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// Bytes that memory-hungry work may hold at once.
#[derive(Clone)]
pub struct MemoryBudget(Arc<Shared>);

struct Shared {
    /// Most bytes admitted at once.
    limit: u64,
    /// Bytes admitted now.
    used: Mutex<u64>,
    /// Signalled whenever bytes are given back.
    freed: Condvar,
}

/// Bytes held from a [`MemoryBudget`] until dropped.
#[must_use = "the bytes go back to the budget when this is dropped"]
pub struct Admitted {
    budget: MemoryBudget,
    bytes: u64,
}

/// Work refused because the budget is spent for now.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the server is busy with other images and exports (it needs {needed_mb} MB of its {limit_mb} MB for this): \
     try again in a moment"
)]
pub struct OverBudget {
    /// What the work needed, in MB.
    pub needed_mb: u64,
    /// The whole budget, in MB.
    pub limit_mb: u64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        MemoryBudget(Arc::new(Shared { limit, used: Mutex::new(0), freed: Condvar::new() }))
    }

    /// The budget's size in bytes.
    pub fn limit(&self) -> u64 {
        self.0.limit
    }

    /// Holds `bytes` if they fit beside what is held now; else refuses at once.
    pub fn try_admit(&self, bytes: u64) -> Result<Admitted, OverBudget> {
        let mut used = self.0.used.lock().unwrap_or_else(PoisonError::into_inner);
        if used.saturating_add(bytes) > self.0.limit {
            return Err(OverBudget { needed_mb: bytes.div_ceil(1 << 20), limit_mb: self.0.limit >> 20 });
        }
        *used += bytes;
        Ok(Admitted { budget: self.clone(), bytes })
    }

    /// Holds `bytes`, waiting (blocking the thread) until they fit. Work larger than the whole budget is
    /// admitted once nothing else is held, so it runs alone rather than never.
    pub fn admit_waiting(&self, bytes: u64) -> Admitted {
        let mut used = self.0.used.lock().unwrap_or_else(PoisonError::into_inner);
        while *used > 0 && used.saturating_add(bytes) > self.0.limit {
            used = self.0.freed.wait(used).unwrap_or_else(PoisonError::into_inner);
        }
        *used += bytes;
        Admitted { budget: self.clone(), bytes }
    }

    /// Bytes held now.
    pub fn in_use(&self) -> u64 {
        *self.0.used.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget::new(DEFAULT_BUDGET_BYTES)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut used = self.budget.0.used.lock().unwrap_or_else(PoisonError::into_inner);
        *used -= self.bytes;
        self.budget.0.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_machines_memory_is_read_from_meminfo_and_nonsense_is_no_answer() {
        assert_eq!(total_memory("MemTotal:       16303428 kB\nMemFree: 1 kB\n"), Some(16303428 * 1024));
        for nonsense in ["", "MemTotal: lots kB", "MemTotal: 99999999999999999999 kB", "MemFree: 5 kB"] {
            assert_eq!(total_memory(nonsense), None, "{nonsense}");
        }
        assert!(default_dataset_budget() > 0);
    }

    #[test]
    fn work_is_admitted_while_it_fits_and_refused_past_the_limit_until_bytes_come_back() {
        let budget = MemoryBudget::new(100);
        let a = budget.try_admit(60).unwrap();
        let refused = budget.try_admit(41).err().unwrap();
        assert!(refused.to_string().contains("try again"), "{refused}");
        let b = budget.try_admit(40).unwrap();
        assert_eq!(budget.in_use(), 100);
        drop(a);
        assert_eq!(budget.in_use(), 40);
        assert!(budget.try_admit(60).is_ok());
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn waiting_work_starts_once_enough_is_given_back() {
        let budget = MemoryBudget::new(100);
        let held = budget.try_admit(80).unwrap();
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || {
                let _admitted = budget.admit_waiting(50);
                budget.in_use()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "admitted while 80 of 100 bytes were held");
        drop(held);
        assert_eq!(waiter.join().unwrap(), 50);
    }

    #[test]
    fn work_larger_than_the_budget_waits_to_run_alone() {
        let budget = MemoryBudget::new(100);
        assert!(budget.try_admit(101).is_err());
        let alone = budget.admit_waiting(500);
        assert_eq!(budget.in_use(), 500);
        drop(alone);
    }
}
