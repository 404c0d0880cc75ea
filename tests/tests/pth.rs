//! PyTorch checkpoints: a `torch.save(model.state_dict())` file from torchvision loads here and gives
//! torchvision's logits, and the `"imagenet"` weights are found or downloaded (from a local server
//! only: these tests never contact anything but 127.0.0.1).

use crate::common;

use backend::data::download::DownloadSource;
use backend::engine::training::{train, RunControl, TrainOutcome, TrainingEvent, TrainingPaths};
use backend::model::pretrained::{self, PretrainedError, PretrainedSource, CACHE_FOLDER, RESNET18_FILE};
use backend::model::ResNet18;
use sha2::{Digest, Sha256};
use shared::{FineTuneMode, TrainConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tch::{Device, Kind, Tensor};

/// Classes of the reference network: ImageNet's, so its backbone also serves as "imagenet" weights.
const CLASSES: usize = 1000;

/// The folder `tests/python/save_pth.py` wrote its files to, made once per test binary.
fn fixture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pth-fixture");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        common::run_python("save_pth.py", &[dir.as_os_str(), CLASSES.to_string().as_ref()]);
        dir
    })
}

fn read_safetensors(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

#[test]
fn a_torchvision_pth_gives_torchvisions_logits() {
    let dir = fixture();
    let mut model = ResNet18::new(Device::Cpu, CLASSES, 0);
    model.load_all(&dir.join("w.pth")).unwrap();
    let io = read_safetensors(&dir.join("io.safetensors"));
    let logits = tch::no_grad(|| model.forward_t(&io["input"], false));
    let diff = (logits - &io["logits"]).abs().max().double_value(&[]);
    assert!(diff <= 1e-4, "max abs difference to torchvision: {diff}");

    // The same file as a backbone under a new head.
    let mut small = ResNet18::new(Device::Cpu, 7, 0);
    let loaded = small.load_backbone(&dir.join("w.pth")).unwrap();
    assert_eq!(loaded, small.vs.variables().len() - 2);
    let ours = small.vs.variables();
    let theirs = model.vs.variables();
    assert_eq!(
        (&ours["layer4.1.bn2.running_var"] - &theirs["layer4.1.bn2.running_var"]).abs().max().double_value(&[]),
        0.0
    );
}

#[test]
fn half_storages_and_strided_views_read_exactly() {
    let dir = fixture();
    let tensors = backend::formats::pth::read_state_dict(&dir.join("half.pt")).unwrap();
    let reference = read_safetensors(&dir.join("half.safetensors"));
    assert_eq!(tensors.len(), reference.len());
    for (name, tensor) in &tensors {
        let expected = &reference[name];
        assert_eq!(tensor.kind(), expected.kind(), "{name}");
        assert_eq!(tensor.size(), expected.size(), "{name}");
        assert!(tensor.equal(expected), "{name} differs");
    }
    let names: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    assert_eq!(names["conv1.weight"].kind(), Kind::Half);
    assert_eq!(names["bn1.num_batches_tracked"].kind(), Kind::Int64);
    assert_eq!(names["bn1.num_batches_tracked"].int64_value(&[]), 17);
    assert_eq!(names["fc.weight_view"].size(), [20, 10]);
}

/// A local HTTP server serving `body` at `/models/resnet18-f37072fd.pth`, counting requests.
async fn serve(body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let body = Arc::new(body);
    let app = axum::Router::new().route(
        &format!("/models/{RESNET18_FILE}"),
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move { body.as_ref().clone() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/models/{RESNET18_FILE}"), hits)
}

/// Resolves `source` off the async threads; also returns the bytes the last progress report counted.
async fn resolve(weights_dir: &Path, source: &PretrainedSource) -> (Result<PathBuf, PretrainedError>, Option<u64>) {
    let (dir, source) = (weights_dir.to_path_buf(), source.clone());
    tokio::task::spawn_blocking(move || {
        let mut downloaded = None;
        let result = pretrained::resolve(&dir, &source, &mut |report| {
            downloaded = Some(report.done);
            std::ops::ControlFlow::Continue(())
        });
        (result, downloaded)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imagenet_weights_are_downloaded_once_checked_and_cached() {
    let bytes = std::fs::read(fixture().join("w.pth")).unwrap();
    let prefix = hex::encode(Sha256::digest(&bytes))[..8].to_string();
    let (url, hits) = serve(bytes.clone()).await;
    let weights = tempfile::tempdir().unwrap();

    // The real file's hash cannot be reproduced, so the expected prefix is this file's.
    let source =
        PretrainedSource { sha256_prefix: prefix.clone(), ..PretrainedSource::imagenet_resnet18().with_url(&url) };
    let (path, downloaded) = resolve(weights.path(), &source).await;
    let path = path.unwrap();
    assert_eq!(downloaded, Some(bytes.len() as u64), "the last progress report counts every byte");
    assert_eq!(path, weights.path().join(CACHE_FOLDER).join(RESNET18_FILE));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // Cached: no second request.
    let (cached, downloaded) = resolve(weights.path(), &source).await;
    assert_eq!((cached.unwrap(), downloaded), (path.clone(), None));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let mut model = ResNet18::new(Device::Cpu, 10, 0);
    assert_eq!(model.load_backbone(&path).unwrap(), model.vs.variables().len() - 2);

    // A file whose SHA-256 does not start with the expected prefix is discarded.
    let other = tempfile::tempdir().unwrap();
    let wrong: String = prefix.chars().map(|c| if c == '0' { '1' } else { '0' }).collect();
    let bad = PretrainedSource { sha256_prefix: wrong.clone(), ..source.clone() };
    let err = resolve(other.path(), &bad).await.0.unwrap_err();
    assert!(matches!(err, PretrainedError::Checksum { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&format!("does not start with {wrong}")) && message.contains(&prefix), "{message}");
    let leftovers: Vec<_> = std::fs::read_dir(other.path().join(CACHE_FOLDER)).unwrap().collect();
    assert!(leftovers.is_empty(), "a rejected download leaves nothing: {leftovers:?}");

    // A server without the file: the error says where to put it by hand.
    let missing = PretrainedSource { url: url.replace("/models/", "/nothing/"), ..source };
    let err = resolve(other.path(), &missing).await.0.unwrap_err().to_string();
    let wanted = format!("put {RESNET18_FILE} (torchvision's ImageNet ResNet-18) in {}", other.path().display());
    assert!(err.contains(&wanted), "{err}");
}

#[test]
fn training_with_imagenet_weights_loads_the_file_from_the_weights_folder() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 2, 8, 4, 32);
    let weights_dir = dir.path().join("weights");
    std::fs::create_dir_all(&weights_dir).unwrap();
    std::fs::copy(fixture().join("w.pth"), weights_dir.join(RESNET18_FILE)).unwrap();
    let config = TrainConfig {
        epochs: 1,
        batch_size: 8,
        weights: "imagenet".into(),
        mode: FineTuneMode::Frozen,
        ..TrainConfig::for_dataset("colors")
    };
    config.validate().unwrap();
    let paths = TrainingPaths {
        data_dir: dir.path().to_path_buf(),
        weights_dir,
        run_dir: dir.path().join("run"),
        cifar10: DownloadSource { url: "http://127.0.0.1:9/".into(), md5: String::new() },
        imagenet: PretrainedSource::imagenet_resnet18().with_url("http://127.0.0.1:9/"),
        dataset_memory: None,
    };
    let mut notes = Vec::new();
    let outcome = train(&config, &paths, Device::Cpu, &RunControl::default(), false, &mut |event| {
        if let TrainingEvent::Note(note) = event {
            notes.push(note);
        }
    })
    .unwrap();
    assert_eq!(outcome, TrainOutcome::Completed);
    let backbone = ResNet18::new(Device::Cpu, 2, 0).vs.variables().len() - 2;
    let wanted = format!("loaded {backbone} backbone tensors from imagenet");
    assert!(notes.contains(&wanted), "{notes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torchvision_pth_upload_is_kept_and_imagenets_name_needs_its_checksum() {
    let bytes = std::fs::read(fixture().join("w.pth")).unwrap();
    let server = common::TestServer::start().await;
    let upload = |name: &str| {
        reqwest::Client::new()
            .post(server.url(&format!("/api/weights?name={name}")))
            .header("Content-Type", "application/octet-stream")
            .body(bytes.clone())
            .send()
    };
    let kept = upload("torchvision.pth").await.unwrap();
    assert_eq!(kept.status(), reqwest::StatusCode::CREATED);
    let entry: shared::WeightsEntry = kept.json().await.unwrap();
    assert_eq!((entry.name.as_str(), entry.present), ("torchvision.pth", true));

    // Under ImageNet's published name, only torchvision's own file is kept: this one's hash differs.
    let refused = upload(RESNET18_FILE).await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let sentence = refused.json::<shared::ErrorBody>().await.unwrap().error;
    assert!(sentence.starts_with("this is not torchvision's resnet18-f37072fd.pth: its SHA-256 is"), "{sentence}");
    assert!(!server.data.path().join("weights").join(RESNET18_FILE).exists());
}
