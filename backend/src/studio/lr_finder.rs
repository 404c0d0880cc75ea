//! The studio's side of the learning-rate finder: checks a request, hands the sweep to the trainer
//! thread (see [`crate::engine::lr_finder`]) and turns its points into
//! [`ServerMessage::LrFinderProgress`] for every connected page.
//!
//! The sweep shares the trainer thread with runs, one job at a time, so it never trains beside a run:
//! both would halve each other's CPU, and libtorch's generator, thread count and cuDNN flags are
//! process-wide. A request while a run is queued or training is refused ([`StudioError::TrainerBusy`])
//! rather than left waiting minutes behind it; a run created during a sweep waits in the queue until
//! the sweep's (at most 100) batches are done, or until it is stopped ([`Studio::stop_lr_finder`], or
//! the request that started it going away), which frees the trainer within one batch.

use super::{Studio, StudioError};
use crate::data;
use crate::engine::lr_finder::{LrFinderError, LrFinderEvent, LrFinding, SweepEnd};
use crate::engine::training::RunControl;
use crate::engine::LrFinderJob;
use shared::{LrFinderProgress, LrFinderResponse, LrPoint, ServerMessage, TrainConfig};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

impl Studio {
    /// Starts a learning-rate sweep for `config` on the trainer thread, broadcasting the points so far
    /// after every batch; the future answers with the whole sweep and its suggestion when it ends.
    /// Dropping the future before then (an HTTP client that went away) stops the sweep.
    /// Refused while a run is queued or training or another sweep runs. Blocking: it looks at the files.
    pub fn find_learning_rate(
        &self,
        config: TrainConfig,
    ) -> Result<impl Future<Output = Result<LrFinderResponse, StudioError>> + Send + 'static, StudioError> {
        self.check_trainable(&config)?;
        if let Err(error) = data::inspect(&self.0.settings.data_dir, &config.dataset) {
            return Err(StudioError::InvalidConfig(format!(
                "{error}; the learning-rate finder uses only datasets already in the data folder (a run downloads it)"
            )));
        }
        let control = RunControl::default();
        {
            let mut live = self.live();
            if live.shutting_down {
                return Err(StudioError::ShuttingDown);
            }
            if !live.jobs.is_empty() {
                return Err(StudioError::TrainerBusy);
            }
            if live.lr_finder.is_some() {
                return Err(StudioError::LrFinderRunning);
            }
            live.lr_finder = Some(control.clone());
        }
        let (reply, answer) = oneshot::channel();
        let swept: Arc<Mutex<Vec<LrPoint>>> = Arc::default();
        // The sweep writes nothing, so its paths name no run folder.
        let paths = self.training_paths(PathBuf::new());
        let emit = Box::new(self.sweep_reporter(swept.clone()));
        let finish = Box::new(self.sweep_finisher(swept, reply));
        let unwatched = StopWhenDropped(control.clone());
        self.0.engine.find_learning_rate(LrFinderJob { config, paths, control, emit, finish });
        Ok(async move {
            let _unwatched = unwatched;
            let found = answer.await.unwrap_or(Err(LrFinderError::Stopped));
            let LrFinding { points, suggestion, end } = found.map_err(|error| match error {
                LrFinderError::Stopped => StudioError::ShuttingDown,
                other => StudioError::LrFinder(other),
            })?;
            let note = suggestion.is_none().then(|| shared::lr_finder_too_few_points(points.len()));
            Ok(LrFinderResponse { points, suggestion, stopped: end == SweepEnd::Stopped, note })
        })
    }

    /// Stops the learning-rate sweep in flight: it ends within one batch, answering the points so far.
    /// [`StudioError::NoLrFinder`] when none is running.
    pub fn stop_lr_finder(&self) -> Result<(), StudioError> {
        let live = self.live();
        let sweep = live.lr_finder.as_ref().ok_or(StudioError::NoLrFinder)?;
        sweep.cancel();
        Ok(())
    }

    /// Logs the sweep's notes and broadcasts its points so far after each new one.
    fn sweep_reporter(&self, swept: Arc<Mutex<Vec<LrPoint>>>) -> impl FnMut(LrFinderEvent) + Send + 'static {
        let events = self.0.events.clone();
        move |event| match event {
            LrFinderEvent::Note(note) => tracing::info!("learning-rate finder: {note}"),
            LrFinderEvent::Point(point) => {
                let points = {
                    let mut swept = swept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    swept.push(point);
                    swept.clone()
                };
                let _ = events.send(ServerMessage::LrFinderProgress(LrFinderProgress {
                    points,
                    suggestion: None,
                    finished: false,
                    stopped: false,
                }));
            }
        }
    }

    /// Frees the trainer for the next sweep, tells every page the sweep ended, and answers `reply`.
    fn sweep_finisher(
        &self,
        swept: Arc<Mutex<Vec<LrPoint>>>,
        reply: oneshot::Sender<Result<LrFinding, LrFinderError>>,
    ) -> impl FnOnce(Result<LrFinding, LrFinderError>) + Send + 'static {
        let studio = Arc::downgrade(&self.0);
        let events = self.0.events.clone();
        move |outcome| {
            if let Some(inner) = studio.upgrade() {
                Studio(inner).live().lr_finder = None;
            }
            match &outcome {
                Ok(found) => tracing::info!(
                    points = found.points.len(),
                    suggestion = found.suggestion,
                    end = ?found.end,
                    "learning-rate sweep ended"
                ),
                Err(error) => tracing::warn!("learning-rate sweep failed: {error}"),
            }
            let points = swept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
            let suggestion = outcome.as_ref().ok().and_then(|found| found.suggestion);
            let stopped = outcome.as_ref().is_ok_and(|found| found.end == SweepEnd::Stopped);
            let _ = events.send(ServerMessage::LrFinderProgress(LrFinderProgress {
                points,
                suggestion,
                finished: true,
                stopped,
            }));
            // Nobody waits when the request was dropped: the broadcast above still told every page.
            let _ = reply.send(outcome);
        }
    }
}

/// Cancels a sweep's control when the future waiting for its answer is dropped: nobody would see the
/// rest, and the trainer is shared with runs. Cancelling a sweep that already ended does nothing.
struct StopWhenDropped(RunControl);

impl Drop for StopWhenDropped {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
