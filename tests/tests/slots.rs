//! Local slots (`serve --slots N`): runs train side by side, each placed in a slot with its device and
//! threads, and a run's metrics depend only on its config and thread count, not on what trains beside it.
//! On the page, two runs training at once both report live, and the queue says what waits and why.

use crate::common;

use common::browser::{
    built_page, eventually, look_at, open_browser, show_run, stand_in_imagenet, text_of, OpenPage, RunPanel,
};
use common::{write_color_dataset, TestServer};
use fantoccini::Locator;
use serde_json::{json, Value};
use shared::{EpochMetrics, Placement, Run, RunStatus};
use std::time::Duration;

/// Every figure of an epoch except how long it took.
fn figures(epochs: &[EpochMetrics]) -> Vec<EpochMetrics> {
    epochs.iter().map(|metrics| EpochMetrics { seconds: 0.0, ..metrics.clone() }).collect()
}

/// A studio over `data` with two slots of one thread each.
async fn two_slots_of_one_thread(data: tempfile::TempDir) -> TestServer {
    TestServer::start_with(
        data,
        |settings| {
            settings.slots = 2;
            settings.threads_per_run = Some(1);
        },
        None,
    )
    .await
}

async fn health(server: &TestServer) -> Value {
    reqwest::get(server.url("/api/health")).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn two_runs_train_at_once_in_two_slots_each_exactly_as_it_trains_alone() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 48, 6, 32);
    let server = two_slots_of_one_thread(data).await;
    let described = health(&server).await["executor"].clone();
    assert_eq!(
        described,
        json!({"kind": "local", "slots": 2, "devices": ["cpu", "cpu"], "threads_per_run": 1, "queued": 0, "running": 0})
    );
    let config = json!({"dataset": "colors", "epochs": 2, "batch_size": 8, "weights": "none", "seed": 11});

    let alone = server.create_run(config.clone()).await;
    let alone = server.wait_until_finished(alone).await;
    assert_eq!(alone.status, RunStatus::Completed, "{alone:?}");
    let Some(Placement::Local { device, threads, .. }) = &alone.placement else { panic!("{alone:?}") };
    assert_eq!((device.as_str(), *threads), ("cpu", 1));

    let pair = [server.create_run(config.clone()).await, server.create_run(config.clone()).await];
    // Both train at the same moment: the health answer counts them, the list shows them running.
    let mut seen_together = false;
    for _ in 0..600 {
        let executor = health(&server).await["executor"].clone();
        if executor["running"] == 2 {
            let runs: Vec<Run> = reqwest::get(server.url("/api/runs")).await.unwrap().json().await.unwrap();
            let running: Vec<&Run> = runs.iter().filter(|run| run.status == RunStatus::Running).collect();
            let slots: Vec<u32> = running
                .iter()
                .filter_map(|run| match &run.placement {
                    Some(Placement::Local { slot, .. }) => Some(*slot),
                    _ => None,
                })
                .collect();
            if running.len() == 2 && slots.len() == 2 {
                assert_ne!(slots[0], slots[1], "one slot each: {running:?}");
                seen_together = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen_together, "the two runs never trained at the same time");
    for id in pair {
        let run = server.wait_until_finished(id).await;
        assert_eq!(run.status, RunStatus::Completed, "{run:?}");
        assert_eq!(figures(&run.epochs), figures(&alone.epochs), "run {id} beside another, against run alone");
    }
    assert_eq!(health(&server).await["executor"]["running"], 0);
}

#[tokio::test]
async fn a_third_run_waits_for_a_free_slot_and_is_placed_nowhere_until_then() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 64, 4, 32);
    let server = two_slots_of_one_thread(data).await;
    let config = json!({"dataset": "colors", "epochs": 3, "batch_size": 4, "weights": "none"});
    let ids = [
        server.create_run(config.clone()).await,
        server.create_run(config.clone()).await,
        server.create_run(config.clone()).await,
    ];
    let waiting = server.wait_for_run(ids[0], Duration::from_secs(60), |run| run.status == RunStatus::Running).await;
    assert!(waiting.placement.is_some());
    // The second slot takes the second run at once; its start is recorded a moment later.
    let mut executor = health(&server).await["executor"].clone();
    for _ in 0..200 {
        if executor["running"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        executor = health(&server).await["executor"].clone();
    }
    let third: Run = reqwest::get(server.url(&format!("/api/runs/{}", ids[2]))).await.unwrap().json().await.unwrap();
    // Three epochs of 32 batches take seconds: both slots are still busy.
    assert_eq!((third.status, third.placement), (RunStatus::Queued, None), "a queued run is placed nowhere");
    let counts = (executor["running"].as_u64(), executor["queued"].as_u64(), executor["slots"].as_u64());
    assert_eq!(counts, (Some(2), Some(1), Some(2)), "{executor}");
    for id in ids {
        server.studio.stop_run(id).ok();
    }
    for id in ids {
        let run = server.wait_until_finished(id).await;
        assert_ne!(run.status, RunStatus::Failed, "{run:?}");
    }
}

/// Waits until the page shows run `id` (picked in the list) training a later batch than `before`.
async fn advanced_on_page(page: &OpenPage, id: u64, before: Option<(u32, u32)>) -> RunPanel {
    let what = format!("run {id}'s batch on the page to pass {before:?}");
    eventually(&what, Duration::from_secs(30), || async {
        let panel = show_run(&page.browser, id).await;
        assert_eq!(panel.status, "running", "run {id} stopped training before the page saw it advance: {panel:?}");
        (panel.batch().is_some() && panel.batch() > before).then_some(panel)
    })
    .await
}

#[tokio::test]
async fn the_page_shows_two_runs_training_at_once_each_advancing_live_and_a_third_waiting_for_a_slot() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 200, 4, 32);
    let imagenet = stand_in_imagenet(data.path());
    let server = TestServer::start_with(
        data,
        move |settings| {
            settings.slots = 2;
            settings.threads_per_run = Some(1);
            settings.imagenet = imagenet;
        },
        Some(built_page()),
    )
    .await;
    let page = open_browser(server).await;
    let server = &page.server;
    // 400 images in batches of 4, five epochs: far longer than the test watches; each is stopped at the end.
    let config = json!({"dataset": "colors", "epochs": 5, "batch_size": 4, "weights": "none", "seed": 3});
    let pair = [server.create_run(config.clone()).await, server.create_run(config.clone()).await];
    for id in pair {
        server.wait_for_run(id, Duration::from_secs(60), |run| run.status == RunStatus::Running).await;
    }
    let third = server.create_run(config).await;

    // The queue names the run that waits and why, as soon as the server says it was queued.
    let expected = format!("#{third} colors · waiting for a free slot (2 of 2 slots busy)");
    eventually("the queue to show the third run", Duration::from_secs(20), || async {
        let heading = text_of(&page.browser, "#queue h3").await?;
        let lines = page.browser.find_all(Locator::Css("#queue li.queue-item")).await.ok()?;
        let mut texts = Vec::new();
        for line in lines {
            texts.push(line.text().await.ok()?);
        }
        (heading == "Queue — 1 waiting" && texts == [expected.clone()]).then_some(())
    })
    .await;

    // Picked in turn, each run's bar has moved on since it was last shown: both runs' batches reach the page
    // while both train.
    let mut shown = [None; 2];
    for _round in 0..3 {
        for (index, id) in pair.into_iter().enumerate() {
            let panel = advanced_on_page(&page, id, shown[index]).await;
            assert!(panel.placement.starts_with("slot "), "{panel:?}");
            shown[index] = panel.batch();
        }
    }
    look_at(&page.browser, "slots-two-runs-live").await;
    for id in pair {
        let run: Run = reqwest::get(server.url(&format!("/api/runs/{id}"))).await.unwrap().json().await.unwrap();
        assert_eq!(run.status, RunStatus::Running, "both trained throughout: {run:?}");
    }

    for id in [third, pair[0], pair[1]] {
        server.studio.stop_run(id).ok();
    }
    for id in [third, pair[0], pair[1]] {
        let run = server.wait_until_finished(id).await;
        assert_ne!(run.status, RunStatus::Failed, "{run:?}");
    }
    eventually("the queue to empty", Duration::from_secs(20), || async {
        page.browser.find(Locator::Css("#queue")).await.is_err().then_some(())
    })
    .await;
}
