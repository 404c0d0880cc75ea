//! Sweeps through the HTTP API: requests checked before anything starts, trials that are ordinary runs,
//! ASHA pruning a diverging learning rate at its first rung (with trials that went on training exactly as
//! a plain run), and a grid sweep that survives a SIGKILL of the real binary, then a stop and a resume,
//! with bit-identical metrics.

use crate::common;

use common::process::ServerProcess;
use common::{next_server_message, write_color_dataset, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::sweep::{Sweep, SweepStatus};
use shared::{EpochMetrics, Run, RunStatus, ServerMessage};
use std::time::{Duration, Instant};

/// Every figure of an epoch except how long it took.
fn figures(epochs: &[EpochMetrics]) -> Vec<EpochMetrics> {
    epochs.iter().map(|metrics| EpochMetrics { seconds: 0.0, ..metrics.clone() }).collect()
}

/// The base every sweep here varies: three colours, 48 training images each, from scratch.
fn base(epochs: u32) -> Value {
    json!({"dataset": "colors", "epochs": epochs, "batch_size": 8, "weights": "none", "seed": 3})
}

/// A studio over [`base`]'s three colours (48 training and 6 test images each at 32 px), one thread a run.
async fn colors_studio() -> TestServer {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 48, 6, 32);
    TestServer::start_with(data, |settings| settings.threads_per_run = Some(1), None).await
}

async fn post(base_url: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let client = reqwest::Client::new();
    let request = client.post(format!("{base_url}{path}"));
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap()
}

async fn get_sweep(base_url: &str, id: u64) -> Sweep {
    reqwest::get(format!("{base_url}/api/sweeps/{id}")).await.unwrap().json().await.unwrap()
}

async fn get_run(base_url: &str, id: u64) -> Run {
    reqwest::get(format!("{base_url}/api/runs/{id}")).await.unwrap().json().await.unwrap()
}

/// Polls sweep `id` until `done` holds (at most `timeout`).
async fn wait_for_sweep(base_url: &str, id: u64, timeout: Duration, done: impl Fn(&Sweep) -> bool) -> Sweep {
    let started = Instant::now();
    loop {
        let sweep = get_sweep(base_url, id).await;
        if done(&sweep) {
            return sweep;
        }
        assert!(started.elapsed() < timeout, "sweep {id} did not get there: {sweep:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The error sentence of a refused request, with its status.
async fn refusal(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn a_sweep_is_checked_whole_before_anything_starts() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 4, 2, 16);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let base_url = server.url("");
    let cases = [
        (json!({"learning_rate": {"values": [0.1]}}), "unknown field \"learning_rate\""),
        (json!({"lr": {"values": []}}), "lr: values is empty"),
        (json!({"lr": {"values": [0.01, 11.0]}}), "trial 2 (lr = 11)"),
        (json!({"lr": {"min": 0.1, "max": 0.01, "distribution": "log_uniform"}}), "needs method \"random\""),
    ];
    for (parameters, expected) in cases {
        let request = json!({"name": "bad", "base": base(1), "parameters": parameters});
        let (status, sentence) = refusal(post(&base_url, "/api/sweeps", Some(request)).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{sentence}");
        assert!(sentence.contains(expected), "{expected:?} not in {sentence:?}");
    }
    let too_wide = json!({"base": base(1), "parameters": {"lr": {"values": [0.01]}}, "parallel": 2});
    let (status, sentence) = refusal(post(&base_url, "/api/sweeps", Some(too_wide)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(sentence.contains("parallel is 2 but the studio trains at most 1 run at once"), "{sentence}");
    let missing_data = json!({"base": {"dataset": "nowhere"}, "parameters": {"lr": {"values": [0.01]}}});
    let (status, sentence) = refusal(post(&base_url, "/api/sweeps", Some(missing_data)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(sentence.contains("nowhere"), "{sentence}");
    let listed: Vec<Sweep> = reqwest::get(server.url("/api/sweeps")).await.unwrap().json().await.unwrap();
    assert!(listed.is_empty(), "nothing was recorded: {listed:?}");
    let runs: Vec<Run> = reqwest::get(server.url("/api/runs")).await.unwrap().json().await.unwrap();
    assert!(runs.is_empty(), "nothing started: {runs:?}");
    let missing = reqwest::get(server.url("/api/sweeps/9")).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// Two learning rates, one at a time, ASHA with rungs at epochs 1 and 2: the learning rate of 1.0
/// (its loss finite but huge, its test accuracy at chance) is pruned at epoch 1 with a sentence; the
/// other pauses at each rung, goes on, and ends with exactly the metrics of a plain run of its settings.
#[tokio::test]
async fn asha_prunes_a_diverging_learning_rate_at_the_first_rung_and_the_rest_train_as_plain_runs() {
    let server = colors_studio().await;
    let base_url = server.url("");
    let request = json!({
        "name": "learning rates",
        "base": base(3),
        "parameters": {"lr": {"values": [0.001, 1.0]}},
        "early_stopping": {"asha": {"grace_epochs": 1, "eta": 2}},
    });
    // A page connected before the sweep hears every change of it.
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url()).await.unwrap();
    let heard = tokio::spawn(async move {
        loop {
            if let ServerMessage::SweepUpdated { sweep } = next_server_message(&mut socket).await {
                if sweep.status == SweepStatus::Completed {
                    return sweep;
                }
            }
        }
    });
    let response = post(&base_url, "/api/sweeps", Some(request)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Sweep = response.json().await.unwrap();
    assert_eq!(
        (created.name.as_str(), created.status, created.trials.len()),
        ("learning rates", SweepStatus::Running, 2)
    );
    let deleting =
        reqwest::Client::new().delete(server.url(&format!("/api/sweeps/{}", created.id))).send().await.unwrap();
    let (status, sentence) = refusal(deleting).await;
    assert_eq!(status, StatusCode::CONFLICT, "a running sweep is not deleted: {sentence}");

    let sweep =
        wait_for_sweep(&base_url, created.id, Duration::from_secs(300), |s| s.status == SweepStatus::Completed).await;
    let by_lr = |lr: f64| sweep.trials.iter().find(|t| t.parameters["lr"].as_f64() == Some(lr)).unwrap();
    let diverging = by_lr(1.0);
    assert_eq!((diverging.status, diverging.epochs_done), (Some(RunStatus::Pruned), 1), "{sweep:#?}");
    let note = diverging.note.as_deref().unwrap_or_default();
    assert!(note.starts_with("stopped after epoch 1: "), "{note}");
    assert!(note.contains("was not in the top half of the 2 trials that reached epoch 1 (the cut was"), "{note}");
    let good = by_lr(0.001);
    assert_eq!((good.status, good.epochs_done), (Some(RunStatus::Completed), 3), "{sweep:#?}");
    assert_eq!(sweep.trials[0].trial, good.trial, "ranked first: {sweep:#?}");
    assert!(good.best_metric > diverging.best_metric, "{sweep:#?}");
    let judged: Vec<(u32, u32, bool)> = sweep.decisions.iter().map(|d| (d.trial, d.epoch, d.continued)).collect();
    assert_eq!(judged, [(1, 1, true), (1, 2, true), (2, 1, false)], "one trial at a time, in grid order");
    let heard = tokio::time::timeout(Duration::from_secs(60), heard).await.unwrap().unwrap();
    assert_eq!(heard, sweep, "the WebSocket's last word on the sweep is what the API answers");

    // A trial is an ordinary run: named after its sweep, it knows its trial, and it trained exactly as a
    // plain run of its settings does, though it paused at two rungs.
    let first = by_lr(0.001);
    let trial_run = get_run(&base_url, first.run_id.unwrap()).await;
    assert_eq!(trial_run.sweep.map(|s| (s.id, s.trial)), Some((sweep.id, first.trial)));
    assert_eq!(trial_run.name.as_deref(), Some(format!("learning rates · trial {}", first.trial).as_str()));
    let mut plain = base(3);
    plain["lr"] = json!(0.001);
    let plain = server.create_run(plain).await;
    let plain = server.wait_until_finished(plain).await;
    assert_eq!(figures(&plain.epochs), figures(&trial_run.epochs), "pausing at rungs changes nothing");

    let deleting =
        reqwest::Client::new().delete(server.url(&format!("/api/runs/{}", trial_run.id))).send().await.unwrap();
    assert_eq!(deleting.status(), StatusCode::CONFLICT, "a trial's run goes only after its sweep's records");
    let deleted = reqwest::Client::new().delete(server.url(&format!("/api/sweeps/{}", sweep.id))).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let kept = get_run(&base_url, trial_run.id).await;
    assert_eq!((kept.sweep, kept.status), (None, RunStatus::Completed), "its runs stay, as ordinary runs");
}

/// ASHA's promotion variant, one trial at a time: no trial goes on before three have reached the rung
/// (floor(n/3) is 0 below three), then the best of the three is promoted and trains to its end, exactly
/// as a plain run; when nothing else is left, the two waiting ones are pruned, each with its sentence.
/// In the stopping variant the first trial would have gone on at once, alone at the rung.
#[tokio::test]
async fn asha_promotion_waits_for_a_third_of_the_trials_before_any_goes_on_then_prunes_the_rest() {
    let server = colors_studio().await;
    let base_url = server.url("");
    let request = json!({
        "name": "promoted",
        "base": base(3),
        "parameters": {"lr": {"values": [0.001, 1.0, 0.003]}},
        "early_stopping": {"asha": {"grace_epochs": 1, "eta": 3, "variant": "promotion"}},
    });
    let response = post(&base_url, "/api/sweeps", Some(request)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Sweep = response.json().await.unwrap();
    let asha = created.request.early_stopping.unwrap().asha;
    assert_eq!(asha.variant, shared::sweep::AshaVariant::Promotion);
    // The first trial, alone at the rung, waits there (its run stopped) while the next ones train.
    let early = wait_for_sweep(&base_url, created.id, Duration::from_secs(120), |s| {
        s.trials.iter().any(|t| t.trial == 1 && t.waiting_at.is_some())
    })
    .await;
    let first = early.trials.iter().find(|t| t.trial == 1).unwrap();
    assert_eq!((first.waiting_at, first.status, first.status_word()), (Some(1), Some(RunStatus::Stopped), "waiting"));
    assert!(first.note.as_deref().unwrap_or_default().starts_with("waits after epoch 1"), "{first:?}");
    assert!(early.decisions.is_empty(), "nobody is judged before three reached the rung: {early:#?}");
    let sweep =
        wait_for_sweep(&base_url, created.id, Duration::from_secs(300), |s| s.status == SweepStatus::Completed).await;

    // Every decision was made with all three at the rung; the best after epoch 1 went on, alone.
    let mut after_one = Vec::new();
    for trial in &sweep.trials {
        let run = get_run(&base_url, trial.run_id.unwrap()).await;
        after_one.push((trial.trial, run.epochs[0].test_accuracy));
    }
    after_one.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let best = after_one[0].0;
    let judged: Vec<(u32, u32, u32, bool)> =
        sweep.decisions.iter().map(|d| (d.trial, d.epoch, d.reached, d.continued)).collect();
    assert_eq!(judged.first(), Some(&(best, 1, 3, true)), "the best went on first: {judged:?}");
    let mut rest = judged[1..].to_vec();
    rest.sort();
    let mut others: Vec<(u32, u32, u32, bool)> =
        after_one[1..].iter().map(|&(trial, _)| (trial, 1, 3, false)).collect();
    others.sort();
    assert_eq!(rest, others, "then the two others were pruned: {judged:?}");
    for trial in &sweep.trials {
        let note = trial.note.as_deref().unwrap_or_default();
        assert_eq!(trial.waiting_at, None, "nobody waits once the sweep completed: {trial:?}");
        if trial.trial == best {
            assert_eq!((trial.status, trial.epochs_done), (Some(RunStatus::Completed), 3), "{sweep:#?}");
            assert!(note.starts_with("went on after epoch 1: "), "{note}");
            assert!(note.contains("was in the top third of the 3 trials that reached epoch 1"), "{note}");
        } else {
            assert_eq!((trial.status, trial.epochs_done), (Some(RunStatus::Pruned), 1), "{sweep:#?}");
            assert!(note.starts_with("stopped after epoch 1: "), "{note}");
            assert!(note.contains("was not in the top third of the 3 trials that reached epoch 1"), "{note}");
        }
    }

    // It waited at the rung, stopped, and went on from its checkpoint: exactly a plain run.
    let winner = sweep.trials.iter().find(|t| t.trial == best).unwrap();
    let trial_run = get_run(&base_url, winner.run_id.unwrap()).await;
    let mut plain = base(3);
    plain["lr"] = winner.parameters["lr"].clone();
    let plain = server.create_run(plain).await;
    let plain = server.wait_until_finished(plain).await;
    assert_eq!(figures(&plain.epochs), figures(&trial_run.epochs), "waiting at a rung changes nothing");
}

/// ASHA's promotion variant, a waiting trial resumed by hand: it goes on at once, its rung decided as gone
/// on by hand (one decision, with where it stood), and it is not judged at that rung again when the others
/// arrive; it trains to its end.
#[tokio::test]
async fn a_waiting_trial_a_person_resumes_goes_on_recorded_as_by_hand() {
    let server = colors_studio().await;
    let base_url = server.url("");
    let request = json!({
        "name": "by hand",
        "base": base(2),
        "parameters": {"lr": {"values": [1.0, 0.001, 0.003]}},
        "early_stopping": {"asha": {"grace_epochs": 1, "eta": 3, "variant": "promotion"}},
    });
    let created: Sweep = post(&base_url, "/api/sweeps", Some(request)).await.json().await.unwrap();
    let early = wait_for_sweep(&base_url, created.id, Duration::from_secs(120), |s| {
        s.trials.iter().any(|t| t.trial == 1 && t.waiting_at == Some(1))
    })
    .await;
    let run_id = early.trials[0].run_id.unwrap();
    let resumed = post(&base_url, &format!("/api/runs/{run_id}/resume"), None).await;
    assert_eq!(resumed.status(), StatusCode::OK);
    let sweep =
        wait_for_sweep(&base_url, created.id, Duration::from_secs(300), |s| s.status == SweepStatus::Completed).await;

    let first: Vec<_> = sweep.decisions.iter().filter(|d| d.trial == 1).collect();
    assert_eq!(first.len(), 1, "trial 1 is decided once, by hand: {:#?}", sweep.decisions);
    let decision = first[0];
    assert_eq!((decision.epoch, decision.continued), (1, true));
    assert!(decision.sentence.starts_with("went on by hand after epoch 1: "), "{}", decision.sentence);
    assert!(decision.sentence.contains("was resumed before ASHA decided"), "{}", decision.sentence);
    let trial = sweep.trials.iter().find(|t| t.trial == 1).unwrap();
    assert_eq!((trial.status, trial.epochs_done, trial.waiting_at), (Some(RunStatus::Completed), 2, None));
    assert_eq!(trial.note.as_deref(), Some(decision.sentence.as_str()));
    // The others were judged among three at the rung, trial 1's epoch counted among them.
    for other in sweep.decisions.iter().filter(|d| d.trial != 1) {
        assert_eq!((other.epoch, other.reached), (1, 3), "{:#?}", sweep.decisions);
    }
    assert_eq!(sweep.decisions.len(), 3, "every trial decided at the rung once: {:#?}", sweep.decisions);
}

/// ASHA's promotion variant two trials at a time, where the order of events is not fixed: whatever it
/// is, no trial goes on from a rung before two (eta) have reached it, except by the end rule; every
/// trial ends completed or pruned at a rung with a decision saying so; at least one completes; nobody
/// is left waiting, and the sweep completes.
#[tokio::test]
async fn asha_promotion_two_at_a_time_keeps_its_rules_whatever_the_order_of_events() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 48, 6, 32);
    let server = TestServer::start_with(
        data,
        |settings| {
            settings.slots = 2;
            settings.threads_per_run = Some(1);
        },
        None,
    )
    .await;
    let base_url = server.url("");
    let request = json!({
        "name": "two at a time",
        "base": base(3),
        "parameters": {"lr": {"values": [0.001, 1.0, 0.003, 0.01]}},
        "parallel": 2,
        "early_stopping": {"asha": {"grace_epochs": 1, "eta": 2, "variant": "promotion"}},
    });
    let response = post(&base_url, "/api/sweeps", Some(request)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Sweep = response.json().await.unwrap();
    let sweep =
        wait_for_sweep(&base_url, created.id, Duration::from_secs(300), |s| s.status == SweepStatus::Completed).await;
    for decision in &sweep.decisions {
        println!("trial {} {}", decision.trial, decision.sentence);
        let by_end_rule = decision.sentence.contains("one at least goes on from each rung");
        assert!(
            !decision.continued || by_end_rule || decision.reached >= 2,
            "promoted before two reached epoch {}: {decision:?}",
            decision.epoch
        );
        assert!([1, 2].contains(&decision.epoch), "rungs are epochs 1 and 2: {decision:?}");
    }
    for trial in &sweep.trials {
        assert_eq!(trial.waiting_at, None, "{trial:?}");
        match trial.status {
            Some(RunStatus::Completed) => assert_eq!(trial.epochs_done, 3, "{trial:?}"),
            Some(RunStatus::Pruned) => {
                let stopped_here = sweep
                    .decisions
                    .iter()
                    .any(|d| d.trial == trial.trial && d.epoch == trial.epochs_done && !d.continued);
                assert!(stopped_here, "pruned without a decision at its last epoch: {trial:?} {:?}", sweep.decisions);
            }
            other => panic!("trial {} ended {other:?}: {sweep:#?}", trial.trial),
        }
    }
    assert!(sweep.trials.iter().any(|t| t.status == Some(RunStatus::Completed)), "{sweep:#?}");
}

/// A grid of three learning rates, two epochs each, one trial at a time on the real binary.
fn grid_request() -> Value {
    json!({"name": "grid", "base": base(2), "parameters": {"lr": {"values": [0.001, 0.003, 0.01]}}})
}

/// Every trial's figures, by trial number.
async fn trial_figures(base_url: &str, sweep: &Sweep) -> Vec<(u32, Vec<EpochMetrics>)> {
    let mut figures_by_trial = Vec::new();
    for trial in &sweep.trials {
        let run = get_run(base_url, trial.run_id.unwrap()).await;
        figures_by_trial.push((trial.trial, figures(&run.epochs)));
    }
    figures_by_trial.sort_by_key(|(trial, _)| *trial);
    figures_by_trial
}

#[tokio::test]
async fn a_grid_sweep_killed_then_stopped_and_resumed_ends_with_bit_identical_metrics() {
    let args = ["--threads-per-run", "1"];
    let straight = tempfile::tempdir().unwrap();
    write_color_dataset(straight.path(), "colors", 3, 48, 6, 32);
    let server = ServerProcess::start_with(straight.path(), &args, &[]);
    let created: Sweep = post(&server.url(""), "/api/sweeps", Some(grid_request())).await.json().await.unwrap();
    let done = |s: &Sweep| s.status == SweepStatus::Completed;
    let uninterrupted = wait_for_sweep(&server.url(""), created.id, Duration::from_secs(300), done).await;
    let expected = trial_figures(&server.url(""), &uninterrupted).await;
    drop(server);

    let killed = tempfile::tempdir().unwrap();
    write_color_dataset(killed.path(), "colors", 3, 48, 6, 32);
    let server = ServerProcess::start_with(killed.path(), &args, &[]);
    let created: Sweep = post(&server.url(""), "/api/sweeps", Some(grid_request())).await.json().await.unwrap();
    // Killed while the second trial trains, after its first epoch.
    wait_for_sweep(&server.url(""), created.id, Duration::from_secs(300), |s| {
        s.trials.iter().any(|t| t.trial == 2 && t.epochs_done == 1 && t.status == Some(RunStatus::Running))
    })
    .await;
    server.kill_hard();
    let server = ServerProcess::start_with(killed.path(), &args, &[]);
    // Then stopped while the third trains, and resumed.
    let base_url = server.url("");
    wait_for_sweep(&base_url, created.id, Duration::from_secs(300), |s| {
        s.trials.iter().any(|t| t.trial == 3 && t.status == Some(RunStatus::Running))
    })
    .await;
    let stopped: Sweep = post(&base_url, &format!("/api/sweeps/{}/stop", created.id), None).await.json().await.unwrap();
    assert_eq!(stopped.status, SweepStatus::Stopped);
    let third = |s: &Sweep| s.trials.iter().find(|t| t.trial == 3).unwrap().status;
    let stopped =
        wait_for_sweep(&base_url, created.id, Duration::from_secs(60), |s| third(s) == Some(RunStatus::Stopped)).await;
    assert_eq!(stopped.status, SweepStatus::Stopped, "{stopped:#?}");
    let again = post(&base_url, &format!("/api/sweeps/{}/stop", created.id), None).await;
    assert_eq!(again.status(), StatusCode::CONFLICT, "a stopped sweep is not stopped twice");
    let resumed = post(&base_url, &format!("/api/sweeps/{}/resume", created.id), None).await;
    assert_eq!(resumed.status(), StatusCode::OK);
    let resumed = wait_for_sweep(&server.url(""), created.id, Duration::from_secs(300), done).await;
    assert!(resumed.trials.iter().all(|t| t.status == Some(RunStatus::Completed)), "{resumed:#?}");
    assert_eq!(resumed.trials.len(), 3);
    assert!(resumed.trials.iter().all(|t| t.retries == 0), "a restart is not the trial's failure: {resumed:#?}");
    assert_eq!(trial_figures(&server.url(""), &resumed).await, expected);
}

/// On the real binary with a disk that fails three checkpoint writes: trial 1 fails in its second epoch,
/// is retried once from its first epoch's checkpoint and completes; trial 2 fails before any checkpoint,
/// is retried once, fails again and stays failed; the sweep goes on and trial 3 completes.
#[tokio::test]
async fn a_failed_trial_is_retried_once_from_its_checkpoint_then_left_failed_and_the_sweep_goes_on() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 16, 4, 32);
    let faults = [(backend::fault::FAULT_VARIABLE, "write-last@2=enospc,write-last@4=enospc,write-last@5=enospc")];
    let server = ServerProcess::start_with(data.path(), &["--threads-per-run", "1"], &faults);
    let base_url = server.url("");
    let request = json!({"base": base(2), "parameters": {"lr": {"values": [0.001, 0.002, 0.003]}}});
    let created: Sweep = post(&base_url, "/api/sweeps", Some(request)).await.json().await.unwrap();
    assert_eq!(created.name, "sweep of lr", "a sweep without a name is named after what it varies");
    let done = |s: &Sweep| s.status == SweepStatus::Completed;
    let sweep = wait_for_sweep(&base_url, created.id, Duration::from_secs(300), done).await;
    let mut trials = sweep.trials.clone();
    trials.sort_by_key(|t| t.trial);
    let outcome: Vec<(Option<RunStatus>, u32, u32)> =
        trials.iter().map(|t| (t.status, t.retries, t.epochs_done)).collect();
    assert_eq!(
        outcome,
        [(Some(RunStatus::Completed), 1, 2), (Some(RunStatus::Failed), 1, 0), (Some(RunStatus::Completed), 0, 2)],
        "{sweep:#?}"
    );
    for trial in &trials[..2] {
        let note = trial.note.as_deref().unwrap_or_default();
        assert!(note.starts_with("retried once from its checkpoint after: ") && note.contains("space"), "{note}");
    }
}

/// A person who stops one trial of a running sweep holds it: the sweep starts the next trial instead of
/// restarting it. Stopping and resuming the sweep lets it go on.
#[tokio::test]
async fn a_trial_a_person_stops_is_held_until_the_sweep_is_stopped_and_resumed() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 16, 4, 16);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let base_url = server.url("");
    let request = json!({"base": base(200), "parameters": {"lr": {"values": [0.001, 0.002]}}});
    let created: Sweep = post(&base_url, "/api/sweeps", Some(request)).await.json().await.unwrap();
    let status_of = |s: &Sweep, trial: u32| s.trials.iter().find(|t| t.trial == trial).unwrap().status;
    let sweep =
        wait_for_sweep(&base_url, created.id, Duration::from_secs(60), |s| status_of(s, 1) == Some(RunStatus::Running))
            .await;
    let first = sweep.trials.iter().find(|t| t.trial == 1).unwrap().run_id.unwrap();
    assert_eq!(post(&base_url, &format!("/api/runs/{first}/stop"), None).await.status(), StatusCode::OK);
    let sweep =
        wait_for_sweep(&base_url, created.id, Duration::from_secs(60), |s| status_of(s, 2) == Some(RunStatus::Running))
            .await;
    assert_eq!(status_of(&sweep, 1), Some(RunStatus::Stopped), "held, not restarted: {sweep:#?}");
    assert_eq!(post(&base_url, &format!("/api/sweeps/{}/stop", created.id), None).await.status(), StatusCode::OK);
    wait_for_sweep(&base_url, created.id, Duration::from_secs(60), |s| status_of(s, 2) == Some(RunStatus::Stopped))
        .await;
    assert_eq!(post(&base_url, &format!("/api/sweeps/{}/resume", created.id), None).await.status(), StatusCode::OK);
    let resumed = wait_for_sweep(&base_url, created.id, Duration::from_secs(60), |s| {
        status_of(s, 1) == Some(RunStatus::Running) || status_of(s, 2) == Some(RunStatus::Running)
    })
    .await;
    assert_eq!(resumed.status, SweepStatus::Running);
    assert_eq!(post(&base_url, &format!("/api/sweeps/{}/stop", created.id), None).await.status(), StatusCode::OK);
}
