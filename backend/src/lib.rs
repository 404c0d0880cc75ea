//! Transfer Studio's server and training engine.
//!
//! Layers, from the bottom, one folder each (and three modules every layer uses: [`files`], safe file
//! writing, [`fault`], the crash and full-disk seam of the reliability tests, and [`memory`], admission
//! control for memory-hungry work):
//! - [`formats`]: readers of outside file formats: a restricted pickle machine and PyTorch `.pth`
//!   state dicts;
//! - [`data`]: datasets (CIFAR binary and python, class folders), image decoding, zip uploads, downloads
//!   and augmentation, decoded into `u8` tensors;
//! - [`model`]: ResNet-18 in torchvision's layout, its optimisers and schedules, torchvision's ImageNet
//!   weights, and libtorch calls tch lacks (a C++ shim);
//! - [`engine`]: the training loop and classification (free of any web code, emitting typed events),
//!   a run's folder whose checkpoints are committed atomically, and the threads that own libtorch work;
//! - [`studio`]: the application core that queues runs, records them in SQLite and broadcasts live
//!   messages;
//! - [`web`]: HTTP API, WebSocket and the built page, with axum, behind one guard;
//! - [`cli`]: the `transfer-studio` command line.
//!
//! The protocol both the browser and this server speak lives in the `shared` crate.

pub mod cli;
pub mod data;
pub mod engine;
pub mod fault;
pub mod files;
pub mod formats;
pub mod memory;
pub mod model;
pub mod studio;
pub mod web;

#[cfg(test)]
mod fuzz_targets;
