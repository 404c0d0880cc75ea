//! The Slurm executor against a real private cluster (two `slurmd` nodes on this machine, started and
//! stopped by each test): runs train as batch jobs whose worker is this project's binary, report live
//! like local runs, stop, resume, fail and vanish with a defined outcome, and train bit for bit as they
//! do locally with the same thread count. On the page, a run trained as a job shows its job and its
//! progress live, as a local run does.

use crate::common;

use common::browser::{built_page, completed_on_page, eventually, look_at, open_browser, show_run, OpenPage};
use common::process::ServerProcess;
use common::slurm::{self, Cluster};
use common::{write_color_dataset, TestServer};
use serde_json::{json, Value};
use shared::{EpochMetrics, Placement, Run, RunStatus, ServerMessage};
use std::time::Duration;

/// Every figure of an epoch except how long it took.
fn figures(epochs: &[EpochMetrics]) -> Vec<EpochMetrics> {
    epochs.iter().map(|metrics| EpochMetrics { seconds: 0.0, ..metrics.clone() }).collect()
}

fn config(epochs: u32) -> Value {
    json!({"dataset": "colors", "epochs": epochs, "batch_size": 8, "weights": "none", "seed": 5})
}

/// Jobs on `cluster` in `partition`, one CPU each, at most four at once, with the time limit `time`.
fn slurm_settings(cluster: &Cluster, partition: &str, time: Option<&str>) -> backend::studio::slurm::SlurmSettings {
    backend::studio::slurm::SlurmSettings {
        partition: partition.to_string(),
        account: None,
        gres: None,
        cpus: 1,
        time: time.map(str::to_string),
        max_jobs: 4,
        conf: Some(cluster.conf()),
        worker: common::workspace_root().join("target/release/transfer-studio"),
    }
}

/// A studio over its own data folder (three colours, 48 + 6 images each at 32 px) training on `cluster`
/// in `partition`, one CPU a job; or locally with one thread when `cluster` is `None`.
async fn studio(cluster: Option<&Cluster>, partition: &str) -> TestServer {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 48, 6, 32);
    studio_over(data, cluster, partition, None).await
}

/// A studio over `data` as [`studio`] makes it, serving the page from `ui_dir` if given.
async fn studio_over(
    data: tempfile::TempDir,
    cluster: Option<&Cluster>,
    partition: &str,
    ui_dir: Option<std::path::PathBuf>,
) -> TestServer {
    let slurm = cluster.map(|cluster| slurm_settings(cluster, partition, None));
    TestServer::start_with(
        data,
        move |settings| {
            settings.threads_per_run = Some(1);
            if let Some(slurm) = slurm {
                settings.executor = backend::studio::ExecutorChoice::Slurm(slurm);
            }
        },
        ui_dir,
    )
    .await
}

/// As [`studio`], with a time limit, so jobs are warned (USR1) before it and may be requeued.
async fn studio_with_time_limit(cluster: &Cluster) -> TestServer {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 48, 6, 32);
    let slurm = slurm_settings(cluster, "studio", Some("00:30:00"));
    TestServer::start_with(
        data,
        move |settings| settings.executor = backend::studio::ExecutorChoice::Slurm(slurm),
        None,
    )
    .await
}

fn skip_without_slurm() -> bool {
    if !slurm::installed() {
        println!("SKIPPED: Slurm is not installed (scripts/setup.sh --test installs slurmctld, slurmd and munge)");
        return true;
    }
    false
}

async fn run(server: &TestServer, id: u64) -> Run {
    reqwest::get(server.url(&format!("/api/runs/{id}"))).await.unwrap().json().await.unwrap()
}

fn job_of(run: &Run) -> (String, Option<String>) {
    match &run.placement {
        Some(Placement::Slurm { job_id, node, .. }) => (job_id.clone(), node.clone()),
        other => panic!("run {} is not placed on Slurm: {other:?}", run.id),
    }
}

#[tokio::test]
async fn a_run_trains_as_a_slurm_job_live_and_bit_for_bit_as_it_trains_locally() {
    if skip_without_slurm() {
        return;
    }
    let local = studio(None, "").await;
    let alone = local.wait_until_finished(local.create_run(config(2)).await).await;
    assert_eq!(alone.status, RunStatus::Completed, "{alone:?}");

    let cluster = Cluster::start();
    let server = studio(Some(&cluster), "studio").await;
    let health: Value = reqwest::get(server.url("/api/health")).await.unwrap().json().await.unwrap();
    assert_eq!((health["executor"]["kind"].as_str(), health["executor"]["slots"].as_u64()), (Some("slurm"), Some(4)));
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url()).await.unwrap();
    let id = server.create_run(config(2)).await;
    let (mut progress, mut placements) = (0, Vec::new());
    loop {
        match common::next_server_message(&mut socket).await {
            ServerMessage::Progress(p) if p.run_id == id => progress += 1,
            ServerMessage::RunUpdated { run } if run.id == id => {
                placements.push(run.placement.clone());
                if run.status.is_finished() {
                    break;
                }
            }
            _ => {}
        }
    }
    assert!(progress >= 2, "live batches came from the job: {progress}");
    let states: Vec<String> = placements
        .iter()
        .filter_map(|p| match p {
            Some(Placement::Slurm { state, .. }) => Some(state.clone()),
            _ => None,
        })
        .collect();
    assert!(states.contains(&"RUNNING".to_string()), "the page saw the job run: {states:?}");
    let done = run(&server, id).await;
    assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    let (job, node) = job_of(&done);
    assert!(job.parse::<u64>().is_ok(), "{job}");
    assert!(matches!(node.as_deref(), Some("n1" | "n2")), "{node:?}");
    assert_eq!(figures(&done.epochs), figures(&alone.epochs), "a Slurm job trains as the studio does");
    assert!(done.has_model, "its model classifies on the studio's side");
}

#[tokio::test]
async fn stop_cancels_the_job_with_a_checkpoint_and_resume_finishes_it_exactly() {
    if skip_without_slurm() {
        return;
    }
    let local = studio(None, "").await;
    let whole = local.wait_until_finished(local.create_run(config(3)).await).await;
    let cluster = Cluster::start();
    let server = studio(Some(&cluster), "studio").await;
    let id = server.create_run(config(3)).await;
    server.wait_for_run(id, Duration::from_secs(120), |run| !run.epochs.is_empty()).await;
    server.studio.stop_run(id).unwrap();
    let stopped = server.wait_until_finished(id).await;
    assert_eq!(stopped.status, RunStatus::Stopped, "{stopped:?}");
    assert!(stopped.epochs.len() < 3, "it stopped before the end: {stopped:?}");

    server.studio.resume_run(id).unwrap();
    let resumed = server.wait_for_run(id, Duration::from_secs(180), |run| run.status == RunStatus::Completed).await;
    assert_ne!(job_of(&resumed).0, job_of(&stopped).0, "a resume is a new job");
    assert_eq!(figures(&resumed.epochs), figures(&whole.epochs), "stopped and resumed on Slurm, as trained whole");
}

#[tokio::test]
async fn two_runs_train_on_two_nodes_and_a_job_killed_outside_ends_interrupted() {
    if skip_without_slurm() {
        return;
    }
    let cluster = Cluster::start();
    let server = studio(Some(&cluster), "studio").await;
    let ids = [server.create_run(config(30)).await, server.create_run(config(30)).await];
    let mut nodes = Vec::new();
    for id in ids {
        let running = server.wait_for_run(id, Duration::from_secs(60), |run| run.status == RunStatus::Running).await;
        nodes.push(job_of(&running).1);
    }
    // Both are running now, one on each one-CPU node.
    nodes.sort();
    assert_eq!(nodes, [Some("n1".to_string()), Some("n2".to_string())]);

    let (job, _) = job_of(&run(&server, ids[0]).await);
    cluster.ask("scancel", &["--signal=KILL", &job]);
    let killed = server.wait_until_finished(ids[0]).await;
    assert_eq!(killed.status, RunStatus::Interrupted, "{killed:?}");
    let why = killed.error.unwrap_or_default();
    assert!(why.contains(&format!("Slurm job {job} ended")) && why.contains("resume"), "{why}");
    server.studio.stop_run(ids[1]).unwrap();
    assert_eq!(server.wait_until_finished(ids[1]).await.status, RunStatus::Stopped);
}

#[tokio::test]
async fn a_partition_slurm_does_not_know_fails_the_run_with_slurms_own_sentence() {
    if skip_without_slurm() {
        return;
    }
    let cluster = Cluster::start();
    let server = studio(Some(&cluster), "no-such-partition").await;
    let failed = server.wait_until_finished(server.create_run(config(1)).await).await;
    assert_eq!(failed.status, RunStatus::Failed);
    let why = failed.error.unwrap_or_default();
    assert!(why.starts_with("Slurm refused the job: ") && why.contains("nvalid partition"), "{why}");
}

/// The studio's binary over `data`, handing runs to `cluster`, on a port of its own choosing.
fn serve(cluster: &Cluster, data: &std::path::Path) -> ServerProcess {
    let slurm = ["--executor", "slurm", "--slurm-partition", "studio", "--slurm-cpus", "1"];
    let conf = cluster.conf();
    ServerProcess::start_with(data, &slurm, &[("SLURM_CONF", conf.to_str().unwrap())])
}

#[tokio::test]
async fn a_studio_killed_while_its_job_trains_follows_the_same_job_again_when_it_starts() {
    if skip_without_slurm() {
        return;
    }
    let cluster = Cluster::start();
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 48, 6, 32);
    let studio = serve(&cluster, data.path());
    let created = reqwest::Client::new().post(studio.url("/api/runs")).json(&config(6)).send().await.unwrap();
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_u64().unwrap_or_else(|| panic!("{created}"));
    let before = studio
        .wait_for_run(id, Duration::from_secs(120), |run| run.status == RunStatus::Running && !run.epochs.is_empty())
        .await;
    let (job, _) = job_of(&before);
    studio.kill_hard(); // SIGKILL: no shutdown, no scancel
    assert!(cluster.ask("squeue", &["-h", "-j", &job, "-o", "%T"]).contains("RUNNING"), "the job went on");

    let studio = serve(&cluster, data.path());
    let done = studio.wait_for_run(id, Duration::from_secs(180), |run| run.status.is_finished()).await;
    drop(studio);
    assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    assert_eq!(job_of(&done).0, job, "the same job, followed again, not a new one");
    let epochs: Vec<u32> = done.epochs.iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, [1, 2, 3, 4, 5, 6], "every epoch, including those while the studio was down");
}

#[tokio::test]
async fn warned_before_its_time_limit_a_job_checkpoints_is_requeued_and_finishes_exactly() {
    if skip_without_slurm() {
        return;
    }
    let local = studio(None, "").await;
    let whole = local.wait_until_finished(local.create_run(config(4)).await).await;
    let cluster = Cluster::start();
    let server = studio_with_time_limit(&cluster).await;
    let id = server.create_run(config(4)).await;
    let before = server.wait_for_run(id, Duration::from_secs(120), |run| !run.epochs.is_empty()).await;
    let (job, _) = job_of(&before);
    // What Slurm sends 90 s before the limit (--signal=B:USR1@90), sent now.
    cluster.ask("scancel", &["--signal=USR1", "--batch", &job]);
    let done = server.wait_until_finished(id).await;
    assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    let Some(Placement::Slurm { job_id, restarts, .. }) = &done.placement else { panic!("{done:?}") };
    assert_eq!((job_id.as_str(), *restarts), (job.as_str(), 1), "requeued as the same job, once");
    assert_eq!(figures(&done.epochs), figures(&whole.epochs), "requeued and resumed, as trained whole");
}

/// A sweep's trials are ordinary runs, so on Slurm each attempt is a job: with ASHA the good trial pauses
/// at each rung (its job ends), goes on in a new job from its checkpoint, and ends bit for bit as a plain
/// local run; the learning rate of 1.0 is pruned at the first rung. The same in ASHA's promotion variant,
/// where the good trial waits at each rung (its job ended) until it is promoted, then goes on in a new job.
#[tokio::test]
async fn a_sweep_with_asha_trains_its_trials_as_jobs_that_pause_at_rungs_and_go_on_exactly() {
    if skip_without_slurm() {
        return;
    }
    let local = studio(None, "").await;
    let plain = local.wait_until_finished(local.create_run(config(3)).await).await;
    let cluster = Cluster::start();
    let server = studio(Some(&cluster), "studio").await;
    for variant in ["stopping", "promotion"] {
        let request: shared::sweep::SweepRequest = serde_json::from_value(json!({
            "name": format!("on the cluster, {variant}"),
            "base": config(3),
            "parameters": {"lr": {"values": [0.001, 1.0]}},
            "early_stopping": {"asha": {"grace_epochs": 1, "eta": 2, "variant": variant}},
        }))
        .unwrap();
        assert_eq!(request.base.lr, 0.001, "the first trial is the plain run's settings");
        let id = server.studio.create_sweep(request).unwrap().id;
        let started = std::time::Instant::now();
        let sweep = loop {
            let sweep = server.studio.sweep(id).unwrap();
            if sweep.status == shared::sweep::SweepStatus::Completed {
                break sweep;
            }
            assert!(started.elapsed() < Duration::from_secs(300), "{sweep:#?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let status: Vec<(u32, Option<RunStatus>, u32)> =
            sweep.trials.iter().map(|t| (t.trial, t.status, t.epochs_done)).collect();
        assert_eq!(status, [(1, Some(RunStatus::Completed), 3), (2, Some(RunStatus::Pruned), 1)], "{sweep:#?}");
        let mut decided: Vec<(u32, u32, bool)> =
            sweep.decisions.iter().map(|d| (d.trial, d.epoch, d.continued)).collect();
        decided.sort();
        assert_eq!(decided, [(1, 1, true), (1, 2, true), (2, 1, false)], "{variant}: {sweep:#?}");
        let good = run(&server, sweep.trials[0].run_id.unwrap()).await;
        assert!(job_of(&good).0.parse::<u64>().is_ok(), "{good:?}");
        assert_eq!(figures(&good.epochs), figures(&plain.epochs), "{variant}: paused twice across jobs, as one run");
    }
}

#[tokio::test]
async fn the_page_shows_a_slurm_runs_job_and_its_progress_live_until_it_completes() {
    if skip_without_slurm() {
        return;
    }
    let cluster = Cluster::start();
    let data = tempfile::tempdir().unwrap();
    // 3 x 96 images in batches of 4: 72 batches an epoch, seconds of training for the page to follow.
    write_color_dataset(data.path(), "colors", 3, 96, 6, 32);
    let page = open_browser(studio_over(data, Some(&cluster), "studio", Some(built_page())).await).await;
    let OpenPage { browser, server, .. } = &page;
    let id = server
        .create_run(json!({"dataset": "colors", "epochs": 2, "batch_size": 4, "weights": "none", "seed": 5}))
        .await;
    let placed = server.wait_for_run(id, Duration::from_secs(60), |run| run.placement.is_some()).await;
    let (job_id, _) = job_of(&placed);

    // The page names the job, then where it trains, and its batches move on while it trains.
    let seen = std::cell::RefCell::new(Vec::new());
    let running =
        eventually("the page to show the job training and its batches moving on", Duration::from_secs(60), || async {
            let panel = show_run(browser, id).await;
            let mut seen = seen.borrow_mut();
            assert_ne!(panel.status, "completed", "the run ended before the page saw it advance: {seen:?}");
            let training = panel.status == "running" && panel.placement.starts_with(&format!("Slurm job {job_id} "));
            if let Some(batch) = panel.batch().filter(|batch| training && seen.last() < Some(batch)) {
                seen.push(batch);
            }
            (seen.len() >= 3).then_some(panel)
        })
        .await;
    assert!(running.placement.contains("RUNNING on n"), "{running:?}");
    look_at(browser, "slurm-run-live").await;

    completed_on_page(browser, id).await;
    let ended = server.wait_until_finished(id).await;
    assert_eq!(ended.status, RunStatus::Completed, "{ended:?}");
    assert_eq!(ended.epochs.len(), 2);
}
