//! Transfer Studio's server and training engine.
//!
//! Layers, from the bottom:
//! - [`images`] and [`data`]: decoding images and datasets into `u8` tensors;
//! - [`model`]: ResNet-18 in torchvision's layout, weight loading and the saved-model files;
//! - [`pickle`], [`pth`] and [`pretrained`]: a restricted pickle reader, PyTorch `.pth` state dicts and
//!   torchvision's ImageNet weights;
//! - [`torch_extras`]: libtorch calls tch lacks (bfloat16 autocast, channels-last), via a C++ shim;
//! - [`run_dir`]: a run's folder, whose checkpoints are committed atomically ([`fault`] injects crashes
//!   between the writes for the tests);
//! - [`training`] and [`inference`]: the training loop (typed events, a cancel flag) and classification,
//!   free of any web code;
//! - [`engine`]: the threads that own libtorch work, talked to over channels;
//! - [`store`]: the run history in SQLite;
//! - [`studio`]: the application core that queues runs, records them and broadcasts live messages;
//! - [`web`]: HTTP API, WebSocket and the built page, with axum, behind one guard;
//! - [`cli`]: the `transfer-studio` command line.
//!
//! The protocol both the browser and this server speak lives in the `shared` crate.

pub mod allocator;
pub mod augment;
pub mod cli;
pub mod data;
pub mod download;
pub mod engine;
pub mod fault;
pub mod images;
pub mod inference;
pub mod model;
pub mod optim;
pub mod pretrained;
pub mod pickle;
pub mod pth;
pub mod run_dir;
pub mod schedule;
pub mod store;
pub mod studio;
pub mod torch_extras;
pub mod training;
pub mod upload;
pub mod web;

/// The web layer under its former name, for callers written before it became [`web`].
pub use web as server;

#[cfg(test)]
mod fuzz_targets;
