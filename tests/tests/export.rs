//! ONNX export against a real server: the file the server writes loads in ONNX Runtime (and passes
//! `onnx.checker`), declares its preprocessing, and gives the same probabilities as `/api/classify`.

use crate::common;

use common::{run_python, write_color_dataset, TestServer, COLOR_CLASSES};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::ClassifyBatchResponse;

const SIDE: u32 = 32;

#[tokio::test]
async fn the_onnx_export_matches_classify_in_onnx_runtime_within_1e_4() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 6, 2, SIDE);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let run = server.create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 6, "input_size": SIDE})).await;
    server.wait_until_finished(run).await;

    let response = reqwest::get(server.url(&format!("/api/runs/{run}/export?format=onnx"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.contains(&format!("run-{run}-resnet18.onnx")), "{disposition}");
    let work = tempfile::tempdir().unwrap();
    let onnx_file = work.path().join("model.onnx");
    std::fs::write(&onnx_file, response.bytes().await.unwrap()).unwrap();

    // The test images of each class, classified by the server in one batch.
    let images: Vec<std::path::PathBuf> = COLOR_CLASSES[..3]
        .iter()
        .flat_map(|(class, _)| (0..2).map(move |i| format!("colors/test/{class}/{i:04}.png")))
        .map(|relative| server.data.path().join(relative))
        .collect();
    let mut form = reqwest::multipart::Form::new();
    for (i, path) in images.iter().enumerate() {
        let part = reqwest::multipart::Part::bytes(std::fs::read(path).unwrap()).file_name(format!("{i}.png"));
        form = form.part("images", part);
    }
    let url = server.url(&format!("/api/classify/batch?run={run}"));
    let answer: ClassifyBatchResponse =
        reqwest::Client::new().post(url).multipart(form).send().await.unwrap().json().await.unwrap();

    let out = work.path().join("onnx.json");
    let mut args: Vec<&std::ffi::OsStr> = vec![onnx_file.as_os_str(), out.as_os_str()];
    args.extend(images.iter().map(|p| p.as_os_str()));
    run_python("onnx_check.py", &args);
    let onnx: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(onnx["opset"].as_i64().unwrap() >= 17, "{onnx}");
    assert_eq!(onnx["input"], json!(["input", "tensor(float)"]));
    assert_eq!(onnx["output"], "logits");
    assert_eq!(onnx["classes"], json!(["black", "blue", "green"]));
    let mut largest = 0.0f64;
    for (result, probabilities) in answer.results.iter().zip(onnx["probabilities"].as_array().unwrap()) {
        for prediction in &result.predictions {
            let theirs = probabilities[prediction.index].as_f64().unwrap();
            largest = largest.max((theirs - prediction.probability).abs());
        }
    }
    eprintln!("largest probability difference, ONNX Runtime vs /api/classify: {largest:.2e}");
    assert!(largest <= 1e-4, "{largest}");
    assert_eq!(answer.results.len(), 6);
}

#[tokio::test]
async fn an_unknown_export_format_is_a_400_and_a_missing_run_a_404() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 4, 1, 16);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let run = server.create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 4})).await;
    server.wait_until_finished(run).await;
    let answer = reqwest::get(server.url(&format!("/api/runs/{run}/export?format=tflite"))).await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let body: Value = answer.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("\"onnx\""), "{body}");
    let safetensors = reqwest::get(server.url(&format!("/api/runs/{run}/export?format=safetensors"))).await.unwrap();
    assert_eq!(safetensors.status(), StatusCode::OK);
    let missing = reqwest::get(server.url("/api/runs/999/export?format=onnx")).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}
