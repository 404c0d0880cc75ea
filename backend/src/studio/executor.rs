//! Where runs train. The studio decides *what* runs and when it is queued; an [`Executor`] decides
//! *where*: it takes the attempts the studio hands it, in order, and reports through the engine's events
//! where each was placed ([`EngineEventKind::Began`](crate::engine::EngineEventKind::Began)) and how it
//! ended. The web layer and the engine know nothing of executors.
//!
//! [`Local`] trains on the studio's own machine, in the engine's slots (`serve --slots N`).

use crate::engine::{device_name, Engine, Slot, TrainJob};
use shared::Placement;

/// Somewhere runs are trained.
pub trait Executor: Send + Sync {
    /// What `/api/health` says of it, without the counts of queued and running runs.
    fn describe(&self) -> Description;
    /// Hands over an attempt: it starts when there is room, after those handed over before it.
    fn submit(&self, job: TrainJob);
    /// From now on no attempt handed over starts; those running go on until stopped.
    fn stop_taking_jobs(&self);
    /// How many attempts (or learning-rate sweeps) are being worked on now.
    fn busy(&self) -> usize;
    /// Follows again `job`, handed over before the studio last stopped as the executor's `job_id`; true if
    /// it can (the job may since have ended: it is then reported as it ended). Local attempts die with the
    /// studio, so by default there is nothing to follow.
    fn reattach(&self, job: TrainJob, job_id: &str) -> bool {
        let _ = (job, job_id);
        false
    }
}

/// An executor as `/api/health` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// `"local"`.
    pub kind: &'static str,
    /// Runs that can train at once.
    pub slots: u32,
    /// Each slot's device, in slot order.
    pub devices: Vec<String>,
    /// libtorch's intra-op threads per run.
    pub threads_per_run: u32,
}

/// The studio's own machine: the engine's trainer slots, one run each.
pub struct Local {
    engine: Engine,
}

impl Local {
    /// Trains in `engine`'s slots.
    pub fn new(engine: Engine) -> Self {
        Local { engine }
    }
}

/// The placement of an attempt that began in slot `index` of the local machine.
pub fn local_placement(index: usize, slot: Slot) -> Placement {
    Placement::Local { device: device_name(slot.device), slot: index as u32, threads: slot.threads as u32 }
}

impl Executor for Local {
    fn describe(&self) -> Description {
        let slots = self.engine.slots();
        Description {
            kind: "local",
            slots: slots.len() as u32,
            devices: slots.iter().map(|slot| device_name(slot.device)).collect(),
            threads_per_run: slots.first().map_or(1, |slot| slot.threads as u32),
        }
    }

    fn submit(&self, job: TrainJob) {
        self.engine.submit(job);
    }

    fn stop_taking_jobs(&self) {
        self.engine.stop_taking_jobs();
    }

    fn busy(&self) -> usize {
        self.engine.busy_slots()
    }
}
