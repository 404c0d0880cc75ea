//! The [`Studio`] handle every component of the page shares through context: a few signals, cheap to copy,
//! and the outbox of the WebSocket. [`crate::App`] provides it wired to the socket; [`Studio::new`] alone
//! gives a component in-memory state, which is how the component tests mount one.

use futures::channel::mpsc::UnboundedSender;
use leptos::prelude::*;
use shared::{ClientMessage, DatasetInfo, ServerMessage, TrainConfig};

use crate::health::HealthCheck;
use crate::queue::ExecutorKind;
use crate::state::{LiveRuns, PageState, StudioState};

/// What every component of the page shares.
#[derive(Clone, Copy)]
pub struct Studio {
    /// The run list and what goes with it, as the server told this page.
    pub state: RwSignal<StudioState>,
    /// Each run's batches, in a signal per run.
    pub live: LiveRuns,
    /// True while the WebSocket is open.
    pub connected: RwSignal<bool>,
    /// The run a person picked in the list; `None` follows the newest.
    pub chosen_run: RwSignal<Option<u64>>,
    /// Runs ticked for comparison, in the order they were ticked.
    pub compared: RwSignal<Vec<u64>>,
    /// The datasets a run can train on, as last listed.
    pub datasets: RwSignal<Vec<DatasetInfo>>,
    /// The dataset uploaded last, which the form then picks.
    pub uploaded_dataset: RwSignal<Option<String>>,
    /// A run's configuration that "Use these settings" asked the training form to take.
    pub form_request: RwSignal<Option<TrainConfig>>,
    /// The dataset chosen in the New run form; `None` before the form has one.
    pub chosen_dataset: RwSignal<Option<String>>,
    /// The health of [`Studio::chosen_dataset`], as far as the server has answered.
    pub health: RwSignal<HealthCheck>,
    /// The configuration "Sweep these settings" asked the sweep editor to start from.
    pub sweep_base: RwSignal<Option<TrainConfig>>,
    /// The sweep a person picked in the list; `None` follows the newest.
    pub chosen_sweep: RwSignal<Option<u64>>,
    /// Runs the server trains at once (its executor's slots): the most a sweep may train in parallel.
    pub slots: RwSignal<u32>,
    /// Where the server trains runs: its own slots or Slurm jobs (the queue says why runs wait by it).
    pub executor: RwSignal<ExecutorKind>,
    /// Messages for the server, sent by the WebSocket task.
    outbox: StoredValue<UnboundedSender<ClientMessage>>,
}

impl Studio {
    /// A page that has heard nothing from the server yet and is not connected; what it sends goes to
    /// `outbox`.
    pub fn new(outbox: UnboundedSender<ClientMessage>) -> Self {
        let PageState { list, live } = PageState::new();
        Studio {
            state: list,
            live,
            connected: RwSignal::new(false),
            chosen_run: RwSignal::new(None),
            compared: RwSignal::new(Vec::new()),
            datasets: RwSignal::new(Vec::new()),
            uploaded_dataset: RwSignal::new(None),
            form_request: RwSignal::new(None),
            chosen_dataset: RwSignal::new(None),
            health: RwSignal::new(HealthCheck::NotOnServer),
            sweep_base: RwSignal::new(None),
            chosen_sweep: RwSignal::new(None),
            slots: RwSignal::new(1),
            executor: RwSignal::new(ExecutorKind::Local),
            outbox: StoredValue::new(outbox),
        }
    }

    /// Folds one message from the server into the page (see [`PageState::apply`]).
    pub fn apply(&self, message: ServerMessage) {
        PageState { list: self.state, live: self.live }.apply(message);
    }

    /// Sends `message` to the server over the WebSocket.
    pub fn send(&self, message: ClientMessage) {
        self.outbox.with_value(|outbox| {
            // Fails only when the socket task has ended, which it never does while the page lives.
            let _ = outbox.unbounded_send(message);
        });
    }
}

/// The [`Studio`] handle the page provided.
pub(crate) fn studio() -> Studio {
    expect_context::<Studio>()
}
