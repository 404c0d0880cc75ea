//! The "Receipt" section of a run's details: the content hashes of the images and labels the run used,
//! the program version, device, thread count, precision and seed, from `GET /api/runs/{id}/receipt`, with
//! a link that downloads the receipt for `transfer-studio train --receipt`.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{Run, RunReceipt, RunStatus};

use crate::api;

/// Where the section stands with the shown run's receipt.
#[derive(Debug, Clone, PartialEq)]
enum ReceiptState {
    /// No run shown, or one still queued: training writes the receipt when it starts.
    NotYet,
    /// The server's receipt of run `run_id`.
    Ready {
        /// The run it belongs to.
        run_id: u64,
        /// What the server answered.
        receipt: Box<RunReceipt>,
    },
    /// The server could not answer, in a sentence.
    Failed(String),
}

/// The receipt's lines as the page shows them: a label and a value each.
pub fn receipt_lines(receipt: &RunReceipt) -> Vec<(&'static str, String)> {
    let data = &receipt.data;
    vec![
        ("Dataset content (SHA-256)", data.sha256.clone()),
        ("Training images", format!("{} images · SHA-256 {}", data.train.images, data.train.images_sha256)),
        ("Training labels (SHA-256)", data.train.labels_sha256.clone()),
        ("Test images", format!("{} images · SHA-256 {}", data.test.images, data.test.images_sha256)),
        ("Test labels (SHA-256)", data.test.labels_sha256.clone()),
        ("Starting weights (SHA-256)", receipt.weights_sha256.clone().unwrap_or_else(|| "none (random)".into())),
        ("Program version", format!("Transfer Studio {}", receipt.version)),
        ("Device", receipt.device.clone()),
        ("Threads", receipt.threads.to_string()),
        ("Precision", receipt.precision.label().to_string()),
        ("Seed", receipt.seed.to_string()),
    ]
}

/// The file name a receipt downloads as.
pub fn download_name(run_id: u64) -> String {
    format!("run-{run_id}-receipt.json")
}

/// Fetches the shown run's receipt whenever the run or its status changes (the receipt is written when
/// training starts), dropping answers for a run no longer shown.
fn follow_shown_run(shown: Memo<Option<Run>>, state: RwSignal<ReceiptState>) {
    let key = Memo::new(move |_| shown.with(|run| run.as_ref().map(|run| (run.id, run.status))));
    Effect::new(move |_| {
        let Some((run_id, status)) = key.get() else {
            state.set(ReceiptState::NotYet);
            return;
        };
        if status == RunStatus::Queued {
            state.set(ReceiptState::NotYet);
            return;
        }
        spawn_local(async move {
            let answer = api::run_receipt(run_id).await;
            if key.get_untracked().map(|(id, _)| id) != Some(run_id) {
                return;
            }
            state.set(match answer {
                Ok(receipt) => ReceiptState::Ready { run_id, receipt: Box::new(receipt) },
                Err(api::ApiError::Refused(_)) => ReceiptState::NotYet,
                Err(error) => ReceiptState::Failed(format!("The receipt could not be loaded: {error}")),
            });
        });
    });
}

/// The "Receipt" section of the shown run.
#[component]
pub fn RunReceiptSection(shown: Memo<Option<Run>>) -> impl IntoView {
    let state = RwSignal::new(ReceiptState::NotYet);
    follow_shown_run(shown, state);
    view! {
        <details class="run-receipt-block" id="run-receipt">
            <summary>"Receipt"</summary>
            {move || match state.get() {
                ReceiptState::NotYet => view! {
                    <p class="hint">"The receipt is written when the run's training starts."</p>
                }.into_any(),
                ReceiptState::Failed(error) => view! { <p class="run-error" role="alert">{error}</p> }.into_any(),
                ReceiptState::Ready { run_id, receipt } => view! { <ReceiptLines run_id=run_id receipt=*receipt/> }.into_any(),
            }}
        </details>
    }
}

/// What the receipt holds, and its download link.
#[component]
fn ReceiptLines(run_id: u64, receipt: RunReceipt) -> impl IntoView {
    let lines = receipt_lines(&receipt)
        .into_iter()
        .map(|(label, value)| {
            view! {
                <div class="config-item">
                    <dt>{label}</dt>
                    <dd class="receipt-value">{value}</dd>
                </div>
            }
        })
        .collect_view();
    view! {
        <p class="hint">
            "What this run used and where it ran. The images and labels are hashed as decoded, in the order \
             training read them; the file also holds the full configuration and every epoch's metrics. \
             "<code>"transfer-studio train --receipt FILE"</code>" repeats a CPU run from it, bit for bit."
        </p>
        <dl id="receipt-lines" class="run-config receipt-lines">{lines}</dl>
        <a
            id="receipt-download"
            class="button-link"
            href=api::receipt_url(run_id)
            download=download_name(run_id)
        >
            "Download receipt (JSON)"
        </a>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{DataFingerprint, Precision, SplitFingerprint, TrainConfig};

    fn receipt() -> RunReceipt {
        let split = |images| SplitFingerprint { images, images_sha256: "ab".into(), labels_sha256: "cd".into() };
        RunReceipt {
            version: "0.1.0".into(),
            device: "cpu".into(),
            threads: 2,
            precision: Precision::Float32,
            seed: 42,
            data: DataFingerprint { classes: vec!["a".into()], train: split(24), test: split(9), sha256: "ef".into() },
            weights_sha256: None,
            config: TrainConfig::for_dataset("colors"),
            epochs: Vec::new(),
        }
    }

    #[test]
    fn the_receipt_reads_as_hashes_counts_version_device_threads_precision_and_seed() {
        let lines = receipt_lines(&receipt());
        let value = |label: &str| lines.iter().find(|(l, _)| *l == label).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(value("Dataset content (SHA-256)"), "ef");
        assert_eq!(value("Training images"), "24 images · SHA-256 ab");
        assert_eq!(value("Starting weights (SHA-256)"), "none (random)");
        assert_eq!(value("Program version"), "Transfer Studio 0.1.0");
        assert_eq!((value("Threads"), value("Precision"), value("Seed")), ("2".into(), "float32".into(), "42".into()));
        assert_eq!(download_name(7), "run-7-receipt.json");
    }
}
