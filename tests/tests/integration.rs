//! Every integration test that can share a process with the others, as one test binary: one compile
//! and one link against libtorch instead of one per file (33 binaries took 11 minutes to build on a
//! 2-core machine), and one pool of test threads, so a file's slowest test no longer leaves a core idle.
//! Each file is a module; `cargo test --test integration slurm::` runs one file's tests.
//!
//! Five files stay binaries of their own (`tests/Cargo.toml`): `api.rs` counts this process's threads,
//! `hostile_inputs.rs`, `reliability.rs` and `memory_bound.rs` measure its memory, and `gpu.rs` is what
//! `scripts/gpu-run.sh` builds and runs alone on a GPU machine. Tests of another file running beside
//! them would change what they measure.

mod common;

mod bounds;
mod browser;
mod browser_analysis;
mod browser_classify;
mod browser_form;
mod browser_health;
mod browser_lr_finder;
mod browser_phone;
mod browser_presets;
mod browser_receipt;
mod browser_sweeps;
mod browser_versions;
mod browser_widths;
mod cifar_python;
mod cli;
mod explain;
mod export;
mod health;
mod health_images;
mod learning;
mod lr_finder;
mod page_assets;
mod parity;
mod pth;
mod receipt;
mod security;
mod slots;
mod slurm;
mod sweeps;
mod test_image_paths;
mod versions;
mod weights;
mod weights_download;

/// With `autotests = false`, a new file under `tests/tests/` is built only if it is named: this fails
/// for a file that is neither a module above nor a `[[test]]` of its own, so none is silently skipped.
#[test]
fn every_test_file_is_built_as_a_module_here_or_a_binary_of_its_own() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let here = std::fs::read_to_string(root.join("tests/integration.rs")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let unbuilt: Vec<String> = std::fs::read_dir(root.join("tests"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.strip_suffix(".rs").map(str::to_string))
        .filter(|stem| stem != "integration")
        .filter(|stem| {
            !here.lines().any(|line| line == format!("mod {stem};"))
                && !manifest.lines().any(|line| line == format!("path = \"tests/{stem}.rs\""))
        })
        .collect();
    assert!(unbuilt.is_empty(), "test files that no test binary builds: {unbuilt:?}");
}
