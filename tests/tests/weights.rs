//! Starting weights: `GET /api/weights` always offers ImageNet's, `POST /api/weights` keeps an uploaded
//! file only if it is a ResNet-18 state dict, and a run asking for ImageNet's weights without network
//! says where to put the file.

use crate::common;

use backend::model::pretrained::RESNET18_FILE;
use backend::model::{safetensors_bytes, ResNet18};
use common::{write_color_dataset, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use shared::{ErrorBody, RunStatus, WeightsEntry};
use tch::{Device, Kind, Tensor};

async fn listed(server: &TestServer) -> Vec<WeightsEntry> {
    let response = reqwest::get(server.url("/api/weights")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn upload(server: &TestServer, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url(&format!("/api/weights?name={name}")))
        .header("Content-Type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

async fn refusal(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    response.json::<ErrorBody>().await.unwrap().error
}

/// Everything in the weights folder, hidden files included.
fn weights_folder(server: &TestServer) -> Vec<String> {
    let dir = server.data.path().join("weights");
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_list_always_starts_with_imagenet_to_be_downloaded_when_its_file_is_absent() {
    let server = TestServer::start().await;
    let list = listed(&server).await;
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].name.as_str(), list[0].present), ("imagenet", false));
    assert_eq!((list[0].download_bytes, list[0].size_bytes), (Some(46_830_571), None));

    // Put there by hand, the file makes it present, and is not listed a second time.
    std::fs::write(server.data.path().join("weights").join(RESNET18_FILE), b"weights").unwrap();
    let list = listed(&server).await;
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].present, list[0].size_bytes, list[0].download_bytes), (true, Some(7), None));
}

#[tokio::test]
async fn an_uploaded_resnet18_state_dict_is_kept_and_listed_as_present() {
    let server = TestServer::start().await;
    // A 10-class head: any head size is a ResNet-18 state dict.
    let bytes = ResNet18::new(Device::Cpu, 10, 1).to_safetensors(None).unwrap();
    let response = upload(&server, "mine.safetensors", bytes.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let entry: WeightsEntry = response.json().await.unwrap();
    assert_eq!(
        (entry.name.as_str(), entry.present, entry.size_bytes),
        ("mine.safetensors", true, Some(bytes.len() as u64))
    );
    assert_eq!(listed(&server).await[1..], [entry]);
    assert_eq!(weights_folder(&server), ["mine.safetensors"]);

    let again = refusal(upload(&server, "mine.safetensors", bytes).await, StatusCode::CONFLICT).await;
    assert_eq!(
        again,
        "a weights file named \"mine.safetensors\" already exists; rename the new file or remove the old one first"
    );
}

#[tokio::test]
async fn files_that_are_not_resnet18_state_dicts_are_refused_with_a_sentence_and_leave_nothing() {
    let server = TestServer::start().await;

    let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let sentence = refusal(upload(&server, "noise.pth", noise).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(sentence.starts_with("this file is not a ResNet-18 state dict: noise.pth"), "{sentence}");

    let other = safetensors_bytes([("weight".to_string(), Tensor::zeros([3, 3], (Kind::Float, Device::Cpu)))], None);
    let sentence =
        refusal(upload(&server, "other.safetensors", other.unwrap()).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        sentence,
        "this file is not a ResNet-18 state dict: it has no bn1.bias (nor 99 other ResNet-18 tensors)"
    );

    let name = refusal(upload(&server, "weights.bin", vec![1, 2, 3]).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(name, "name \"weights.bin\" must end in .safetensors, .pth or .pt");

    assert!(weights_folder(&server).is_empty(), "left behind: {:?}", weights_folder(&server));
    assert_eq!(listed(&server).await.len(), 1);
}

#[tokio::test]
async fn a_run_from_imagenet_weights_without_network_says_where_to_put_the_file() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 4, 2, 32);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let id = server
        .create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 4, "weights": "imagenet", "mode": "frozen"}))
        .await;
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    let wanted = format!(
        "put {RESNET18_FILE} (torchvision's ImageNet ResNet-18) in weights (the weights folder), or upload it in the \
         studio with \"Upload weights…\""
    );
    assert!(error.contains(&wanted), "{error}");
    assert!(!error.contains(&server.data.path().display().to_string()), "no server path: {error}");
}

#[tokio::test]
async fn a_weights_upload_cut_short_by_a_crash_is_removed_when_the_studio_opens() {
    let data = tempfile::tempdir().unwrap();
    let leftover = data.path().join("weights/.upload-0-mine.pth");
    std::fs::create_dir_all(leftover.parent().unwrap()).unwrap();
    std::fs::write(&leftover, b"half a file").unwrap();
    let server = TestServer::start_with(data, |_| {}, None).await;
    assert!(!leftover.exists());
    assert!(weights_folder(&server).is_empty());
}

#[tokio::test]
async fn only_exactly_resnet18_weights_are_kept_and_other_torchvision_networks_are_named() {
    let made = tempfile::tempdir().unwrap();
    common::run_python("save_architectures.py", &[made.path().as_os_str()]);
    let server = TestServer::start().await;
    for (file, says) in [
        ("resnet34.pth", "such as layer1.2.bn1.bias (it looks like a deeper ResNet (ResNet-34))"),
        ("resnet50.pth", "bottleneck blocks (ResNet-50, 101 or 152)"),
        (
            "mobilenet_v2.pth",
            "it has no bn1.bias (nor 99 other ResNet-18 tensors) (it looks like another family of network",
        ),
        ("partial.pth", "it has no layer4.0.bn1.bias (nor 24 other ResNet-18 tensors)"),
    ] {
        let bytes = std::fs::read(made.path().join(file)).unwrap();
        let refused = refusal(upload(&server, file, bytes).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(refused.starts_with("this file is not a ResNet-18 state dict: "), "{file}: {refused}");
        assert!(refused.contains(says), "{file}: {refused}");
    }
    let resnet18 = std::fs::read(made.path().join("resnet18.pth")).unwrap();
    assert_eq!(upload(&server, "resnet18.pth", resnet18).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_resnet34_put_in_the_weights_folder_by_hand_fails_the_run_with_the_reason() {
    let made = tempfile::tempdir().unwrap();
    common::run_python("save_architectures.py", &[made.path().as_os_str()]);
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 4, 2, 32);
    std::fs::create_dir_all(data.path().join("weights")).unwrap();
    std::fs::copy(made.path().join("resnet34.pth"), data.path().join("weights/resnet34.pth")).unwrap();
    let server = TestServer::start_with(data, |_| {}, None).await;
    let id = server.create_run(json!({"dataset": "colors", "epochs": 1, "weights": "resnet34.pth"})).await;
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap_or_default();
    assert!(error.contains("is not a ResNet-18 state dict") && error.contains("ResNet-34"), "{error}");
}

#[tokio::test]
async fn the_list_says_when_imagenet_cannot_be_had_and_a_resume_asks_again_instead_of_failing_again() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 4, 2, 32);
    // A stand-in file name (a safetensors file is quicker to make than a .pth); its address is a closed port.
    let stand_in = "imagenet-stand-in.safetensors";
    let server = TestServer::start_with(data, |s| s.imagenet.file_name = stand_in.into(), None).await;
    let imagenet = &listed(&server).await[0];
    let why = imagenet.unavailable.clone().expect("ImageNet's address is a closed port here");
    assert!(why.contains("cannot be downloaded from here") && why.contains(stand_in), "{why}");

    let id =
        server.create_run(json!({"dataset": "colors", "epochs": 1, "weights": "imagenet", "mode": "frozen"})).await;
    assert_eq!(server.wait_until_finished(id).await.status, RunStatus::Failed);
    let resume = reqwest::Client::new().post(server.url(&format!("/api/runs/{id}/resume"))).send().await.unwrap();
    let refused = refusal(resume, StatusCode::CONFLICT).await;
    assert!(refused.contains("cannot be downloaded from here"), "{refused}");

    // Once the file is there, the list and the resume follow.
    let weights = server.data.path().join("weights");
    ResNet18::new(Device::Cpu, 1000, 0).save(&weights.join(stand_in), None).unwrap();
    let present = &listed(&server).await[0];
    assert!(present.present && present.unavailable.is_none(), "{present:?}");
    let resume = reqwest::Client::new().post(server.url(&format!("/api/runs/{id}/resume"))).send().await.unwrap();
    assert_eq!(resume.status(), StatusCode::OK);
    assert_eq!(server.wait_until_finished(id).await.status, RunStatus::Completed);
}
