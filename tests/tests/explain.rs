//! Grad-CAM explanations from the classify routes, checked against the same map computed in PyTorch with
//! hooks on torchvision's ResNet-18 loaded from the run's downloaded checkpoint (`tests/python/gradcam.py`).

use crate::common;

use common::{png_bytes, write_color_dataset, TestServer, COLOR_CLASSES};
use reqwest::StatusCode;
use serde_json::json;
use shared::{ClassifyBatchResponse, ClassifyResponse, Explanation, RunStatus};
use std::collections::HashMap;

/// Side of the test images and the run's input size: the four stages' outputs are 16, 8, 4 and 2 pixels.
const SIDE: u32 = 64;

async fn explained_batch(server: &TestServer, run: u64, layer: &str, images: &[Vec<u8>]) -> Vec<Explanation> {
    let mut form = reqwest::multipart::Form::new();
    for (i, bytes) in images.iter().enumerate() {
        form = form.part("images", reqwest::multipart::Part::bytes(bytes.clone()).file_name(format!("{i}.png")));
    }
    let url = server.url(&format!("/api/classify/batch?run={run}&explain={layer}"));
    let response = reqwest::Client::new().post(url).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: ClassifyBatchResponse = response.json().await.unwrap();
    answer
        .results
        .into_iter()
        .map(|result| {
            let explanation = result.explanation.expect("every readable image is explained");
            assert_eq!(explanation.class_index, result.predictions[0].index, "the top class is explained");
            explanation
        })
        .collect()
}

#[tokio::test]
async fn grad_cam_matches_pytorch_hooks_on_torchvisions_model_within_1e_4() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 6, 2, SIDE);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let run = server.create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 6, "input_size": SIDE})).await;
    assert_eq!(server.wait_until_finished(run).await.status, RunStatus::Completed);

    let dir = tempfile::tempdir().unwrap();
    let images: Vec<Vec<u8>> = (0..3).map(|i| png_bytes(COLOR_CLASSES[i].1, SIDE, 10 + i as u64)).collect();
    let paths: Vec<_> = (0..images.len()).map(|i| dir.path().join(format!("{i}.png"))).collect();
    for (path, bytes) in paths.iter().zip(&images) {
        std::fs::write(path, bytes).unwrap();
    }
    let checkpoint = dir.path().join("model.safetensors");
    let download = reqwest::get(server.url(&format!("/api/runs/{run}/checkpoint"))).await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    std::fs::write(&checkpoint, download.bytes().await.unwrap()).unwrap();

    let layers = ["layer1", "layer2", "layer3"];
    let reference = dir.path().join("reference.json");
    let mut args = vec![checkpoint.as_os_str(), reference.as_os_str(), "layer1,layer2,layer3".as_ref()];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    common::run_python("gradcam.py", &args);
    let reference: HashMap<String, Vec<Explanation>> =
        serde_json::from_slice(&std::fs::read(&reference).unwrap()).unwrap();

    let mut nonzero_maps = 0;
    for (layer, side) in layers.into_iter().zip([16, 8, 4]) {
        let ours = explained_batch(&server, run, layer, &images).await;
        for (i, (ours, theirs)) in ours.iter().zip(&reference[layer]).enumerate() {
            assert_eq!(ours.layer, layer);
            assert_eq!((ours.width, ours.height), (side, side), "{layer}");
            assert_eq!((ours.class_index, ours.width, ours.height), (theirs.class_index, theirs.width, theirs.height));
            assert_eq!(ours.cam.len(), theirs.cam.len());
            let diff = ours.cam.iter().zip(&theirs.cam).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            eprintln!("{layer} image {i}: max abs difference to PyTorch {diff:e}");
            assert!(diff <= 1e-4, "{layer} image {i}: max abs difference to PyTorch {diff}");
            nonzero_maps += usize::from(ours.cam.contains(&1.0));
        }
    }
    assert!(nonzero_maps >= 3, "some maps are not all zero ({nonzero_maps}), or the comparison says little");

    // One image on its own route, with `auto`: the deepest stage at least 4x4 at 64 px is layer3.
    let url = server.url(&format!("/api/classify?run={run}&explain=auto"));
    let response = reqwest::Client::new().post(url).body(images[0].clone()).send().await.unwrap();
    let single: ClassifyResponse = response.json().await.unwrap();
    let explanation = single.explanation.expect("explained");
    let theirs = &reference["layer3"][0];
    assert_eq!((explanation.layer.as_str(), explanation.class_index), ("layer3", theirs.class_index));
    let diff = explanation.cam.iter().zip(&theirs.cam).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(diff <= 1e-4, "auto, alone: max abs difference to PyTorch {diff}");

    // Without `explain` the answer has no explanation at all.
    let url = server.url(&format!("/api/classify?run={run}"));
    let plain: serde_json::Value =
        reqwest::Client::new().post(url).body(images[0].clone()).send().await.unwrap().json().await.unwrap();
    assert!(plain.get("explanation").is_none(), "{plain}");
}

#[tokio::test]
async fn an_unknown_explain_layer_is_refused_with_400_listing_the_allowed_values() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let single = client.post(server.url("/api/classify?explain=layer5")).body(png_bytes([1, 2, 3], 8, 0));
    let form =
        reqwest::multipart::Form::new().part("images", reqwest::multipart::Part::bytes(png_bytes([1, 2, 3], 8, 0)));
    let batch = client.post(server.url("/api/classify/batch?explain=fc")).multipart(form);
    for (request, value) in [(single, "layer5"), (batch, "fc")] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let message = response.json::<shared::ErrorBody>().await.unwrap().error;
        assert!(message.contains("layer1, layer2, layer3, layer4 or auto") && message.contains(value), "{message}");
    }
}
