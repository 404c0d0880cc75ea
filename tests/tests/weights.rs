//! Starting weights: `GET /api/weights` always offers ImageNet's, `POST /api/weights` keeps an uploaded
//! file only if it is a ResNet-18 state dict, and a run asking for ImageNet's weights without network
//! says where to put the file.

mod common;

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
