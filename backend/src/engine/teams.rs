//! OpenMP teams that live only as long as their work.
//!
//! libtorch's CPU kernels run on OpenMP (GNU libgomp here). A thread that starts a parallel region keeps
//! a team of worker threads for the rest of its life, and once the process holds more OpenMP threads
//! than the machine has CPUs, libgomp stops letting idle workers spin between regions (its throttled
//! wait: about a hundred spins, then sleep), so every parallel region of every team pays for waking
//! its workers. Measured on the 2-CPU machine this was found on: after one classify request, whose
//! thread kept its team, every later training epoch took 6.0–6.6 s instead of 3.9–4.0 s; a training
//! step beside another thread's idle team took 156 ms instead of 109 ms.
//!
//! So libtorch work that runs in parallel runs on a thread of its own that ends with the work (see
//! [`on_own_team`]), taking its team with it: each training run and learning-rate sweep, the
//! classifier's sessions, the health check's duplicate search and the ONNX export's verification.
//! Helper threads that only copy (the batch stream) use one OpenMP thread, which starts no team.

/// Runs `work` on a new thread named `name` with `threads` OpenMP threads and waits for it; the thread,
/// and the OpenMP team it started, end with the work. The new thread inherits the caller's scheduling
/// priority. A panic in `work` continues in the caller. If the system refuses a new thread, `work` runs
/// on the calling thread instead (its team then stays with that thread), so the work is never lost.
pub fn on_own_team<T: Send>(name: &str, threads: usize, work: impl FnOnce() -> T + Send) -> T {
    on_thread_from(std::thread::Builder::new().name(name.to_string()), threads, work)
}

/// [`on_own_team`] with the new thread made by `builder`.
fn on_thread_from<T: Send>(builder: std::thread::Builder, threads: usize, work: impl FnOnce() -> T + Send) -> T {
    let threads = threads.max(1) as i32;
    // Shared with the new thread, so the work is still here when the thread cannot be made.
    let work = std::sync::Mutex::new(Some(work));
    let take = || work.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take().expect("the work runs once");
    std::thread::scope(|scope| {
        let spawned = builder.spawn_scoped(scope, || {
            tch::set_num_threads(threads);
            take()()
        });
        match spawned {
            Ok(worker) => worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(error) => {
                tracing::warn!("could not start a thread for libtorch work ({error}); running it here");
                take()()
            }
        }
    })
}

/// Runs `work` as [`on_own_team`] does, with an OpenMP thread for each CPU.
pub fn on_own_team_of_all_cores<T: Send>(name: &str, work: impl FnOnce() -> T + Send) -> T {
    on_own_team(name, std::thread::available_parallelism().map_or(1, |n| n.get()), work)
}

/// Names rayon's global pool's threads `rayon-N` (decoding runs there), unless the pool already started.
/// Unnamed, they would take the name of whichever thread first used the pool (a run's trainer thread),
/// and a list of the process's threads (`top -H`, a test) would take them for that thread's.
pub fn name_rayon_threads() {
    let _ = rayon::ThreadPoolBuilder::new().thread_name(|index| format!("rayon-{index}")).build_global();
}

/// Makes the calling thread's libtorch work single-threaded, so it never starts an OpenMP team of its
/// own (for threads that only copy, beside training).
pub fn single_threaded() {
    tch::set_num_threads(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Threads of this process named `name` (OpenMP's workers take the name of the thread that started
    /// them).
    fn threads_named(name: &str) -> usize {
        let tasks = std::fs::read_dir("/proc/self/task").expect("Linux's /proc");
        tasks
            .filter(|task| {
                task.as_ref()
                    .is_ok_and(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|comm| comm.trim() == name))
            })
            .count()
    }

    /// Parallel libtorch work on a thread of its own: the sum and the names of this process's threads
    /// named `name` while it runs.
    fn parallel_sum_on(name: &str) -> (f64, usize) {
        on_own_team(name, 2, || {
            let ones = tch::Tensor::ones([1 << 22], (tch::Kind::Float, tch::Device::Cpu));
            ((&ones * 2.0).sum(tch::Kind::Float).double_value(&[]), threads_named(name))
        })
    }

    #[test]
    fn the_team_of_parallel_work_ends_with_it() {
        // The first such work in a process also starts libtorch's one pthreadpool worker, which stays for
        // the process's life under the name of the thread that started it: let a warm-up start it.
        parallel_sum_on("team-warm-up");
        let (sum, during) = parallel_sum_on("team-probe");
        assert_eq!(sum, f64::from(1u32 << 23));
        assert_eq!(during, 2, "the work's thread and its OpenMP worker");
        let deadline = Instant::now() + Duration::from_secs(5);
        while threads_named("team-probe") > 0 {
            assert!(Instant::now() < deadline, "the thread and its team end with the work");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn work_runs_on_the_calling_thread_when_no_thread_can_be_made() {
        // A stack no system can give: the thread is refused.
        let refused = std::thread::Builder::new().name("team-refused".into()).stack_size(usize::MAX / 2);
        let caller = std::thread::current().id();
        assert_eq!(on_thread_from(refused, 1, || std::thread::current().id()), caller);
    }

    #[test]
    fn a_panic_in_the_work_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| on_own_team("team-panic", 1, || panic!("inside")));
        assert!(caught.is_err());
    }
}
