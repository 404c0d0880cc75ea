//! Readers of outside file formats: a restricted pickle machine and PyTorch `.pth` checkpoints.

pub(crate) mod pickle;
pub mod pth;
