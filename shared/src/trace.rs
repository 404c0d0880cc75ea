//! The training loss of a run as its progress messages report it: the server keeps one per run and sends
//! it with its snapshot, each page keeps extending it from the messages that follow, so every tab and a
//! reload draw the same line.

use crate::BatchProgress;
use serde::{Deserialize, Serialize};

/// Most points a trace keeps (about 30 KB of JSON); past it, every other point is dropped and new ones are taken half as often.
pub const TRACE_CAP: usize = 1_000;

/// The training loss of one run as its progress messages reported it, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossTrace {
    /// `(epochs done, as a fraction, loss)`: 1.5 is halfway through the second epoch. The loss is the last
    /// batch's own ([`BatchProgress::batch_loss`]), or the epoch's mean so far from a server that does not
    /// send it.
    pub points: Vec<(f64, f64)>,
    /// The latest progress message, kept even when decimation skips its point.
    pub last: BatchProgress,
    /// Take one message in `stride`; doubles each time the trace is thinned.
    stride: u64,
    /// Messages heard since the trace began.
    heard: u64,
}

impl LossTrace {
    /// A trace that starts with this message.
    pub fn new(progress: BatchProgress) -> Self {
        let mut trace = LossTrace { points: Vec::new(), last: progress.clone(), stride: 1, heard: 0 };
        trace.push(progress);
        trace
    }

    /// Adds one progress message; thins the trace to half when it would pass [`TRACE_CAP`].
    /// A message not after the last one heard (the same batch heard twice, as a page joining just as the
    /// server reports one can) changes nothing.
    pub fn push(&mut self, progress: BatchProgress) {
        if self.heard > 0 && (progress.epoch, progress.batch) <= (self.last.epoch, self.last.batch) {
            return;
        }
        // Each batch's own loss where the server sends it; older servers send only the epoch's mean so far.
        let loss = progress.batch_loss.unwrap_or(progress.loss);
        if self.heard.is_multiple_of(self.stride) && loss.is_finite() {
            self.points.push((epochs_done(&progress), loss));
            if self.points.len() > TRACE_CAP {
                let mut index = 0usize;
                self.points.retain(|_| {
                    index += 1;
                    !index.is_multiple_of(2)
                });
                self.stride *= 2;
            }
        }
        self.heard += 1;
        self.last = progress;
    }
}

/// Epochs done at this progress message, as a fraction: `(epoch - 1) + batch / batches`.
pub fn epochs_done(progress: &BatchProgress) -> f64 {
    f64::from(progress.epoch.saturating_sub(1)) + f64::from(progress.batch) / f64::from(progress.batches.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(epoch: u32, batch: u32, batches: u32, loss: f64) -> BatchProgress {
        BatchProgress {
            run_id: 1,
            epoch,
            batch,
            batches,
            loss,
            batch_loss: Some(loss),
            images_per_second: 100.0,
            eta_seconds: 10.0,
        }
    }

    #[test]
    fn a_trace_places_each_batch_at_its_fraction_of_the_epochs() {
        let mut trace = LossTrace::new(progress(1, 5, 20, 2.1));
        trace.push(progress(2, 10, 20, 1.4));
        assert_eq!(trace.points, [(0.25, 2.1), (1.5, 1.4)]);
        assert_eq!(trace.last.batch, 10);
    }

    #[test]
    fn a_long_trace_is_thinned_and_keeps_its_ends() {
        let mut trace = LossTrace::new(progress(1, 0, 100_000, 3.0));
        for batch in 1..=10_000 {
            trace.push(progress(1, batch, 100_000, 1.0));
        }
        assert!(trace.points.len() <= TRACE_CAP, "{}", trace.points.len());
        assert!(trace.points.len() > TRACE_CAP / 4, "{}", trace.points.len());
        assert_eq!(trace.points[0], (0.0, 3.0), "the first batch stays");
        assert!(trace.points.last().unwrap().0 > 0.099, "the line reaches the latest batches");
        assert_eq!(trace.last.batch, 10_000);
        assert!(trace.points.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn a_batch_heard_twice_is_drawn_once() {
        let mut trace = LossTrace::new(progress(1, 5, 20, 2.1));
        trace.push(progress(1, 6, 20, 2.0));
        let once = trace.clone();
        trace.push(progress(1, 6, 20, 2.0));
        trace.push(progress(1, 5, 20, 2.1));
        assert_eq!(trace, once);
    }

    #[test]
    fn a_trace_read_back_from_json_goes_on_as_the_one_that_wrote_it() {
        let mut kept = LossTrace::new(progress(1, 0, 100_000, 3.0));
        for batch in 1..=2_500 {
            kept.push(progress(1, batch, 100_000, 1.0 + f64::from(batch % 7)));
        }
        let mut joined: LossTrace = serde_json::from_str(&serde_json::to_string(&kept).unwrap()).unwrap();
        for batch in 2_501..=4_000 {
            kept.push(progress(1, batch, 100_000, 2.0));
            joined.push(progress(1, batch, 100_000, 2.0));
        }
        assert_eq!(joined, kept, "a page that joined late draws the same points as one there from the start");
    }
}
