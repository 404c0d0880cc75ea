//! libtorch calls that tch 0.26 does not expose, through the C++ shim in `csrc/torch_extras.cpp`
//! (compiled by `build.rs` against the same libtorch headers): the CUDA autocast dtype, so mixed
//! precision can use bfloat16 (which needs no loss scaling) instead of libtorch's default float16, and
//! the channels-last memory format that makes convolutions faster on tensor-core GPUs.

use std::ffi::{c_char, c_int, CStr};
use tch::Tensor;

/// tch's C tensor handle (`at::Tensor*` in C++).
type CTensor = torch_sys::C_tensor;

extern "C" {
    fn ts_set_cuda_autocast_bfloat16(bfloat16: c_int);
    fn ts_cuda_autocast_is_bfloat16() -> c_int;
    fn ts_channels_last(tensor: *const CTensor, error: *mut *mut c_char) -> *mut CTensor;
    fn ts_is_channels_last(tensor: *const CTensor) -> c_int;
}

/// Makes CUDA autocast (`tch::autocast`) compute in bfloat16 (`true`) or float16 (`false`). The setting
/// is process-wide; it does not need a GPU to be set.
pub fn set_cuda_autocast_bfloat16(bfloat16: bool) {
    // SAFETY: sets a libtorch global; no pointers involved.
    unsafe { ts_set_cuda_autocast_bfloat16(c_int::from(bfloat16)) }
}

/// Whether CUDA autocast computes in bfloat16.
pub fn cuda_autocast_is_bfloat16() -> bool {
    // SAFETY: reads a libtorch global.
    unsafe { ts_cuda_autocast_is_bfloat16() != 0 }
}

/// A copy of a 4-D tensor in the channels-last (NHWC) memory format; same shape and values.
pub fn channels_last(tensor: &Tensor) -> Result<Tensor, tch::TchError> {
    let mut error: *mut c_char = std::ptr::null_mut();
    // SAFETY: `tensor.as_ptr()` is a live `at::Tensor*`; the shim returns a new heap tensor that
    // `Tensor::from_ptr` takes ownership of, or null with a malloc'ed message that is freed here.
    unsafe {
        let result = ts_channels_last(tensor.as_ptr(), &mut error);
        if result.is_null() {
            let message = if error.is_null() {
                "channels_last failed".to_string()
            } else {
                let text = CStr::from_ptr(error).to_string_lossy().into_owned();
                libc_free(error.cast());
                text
            };
            return Err(tch::TchError::Torch(message));
        }
        Ok(Tensor::from_ptr(result))
    }
}

/// Whether a tensor is laid out channels-last.
pub fn is_channels_last(tensor: &Tensor) -> bool {
    // SAFETY: `tensor.as_ptr()` is a live `at::Tensor*`.
    unsafe { ts_is_channels_last(tensor.as_ptr()) != 0 }
}

extern "C" {
    #[link_name = "free"]
    fn libc_free(pointer: *mut std::ffi::c_void);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn channels_last_keeps_shape_and_values_and_changes_the_layout() {
        let x = Tensor::randn([2, 3, 5, 7], (Kind::Float, Device::Cpu));
        assert!(!is_channels_last(&x));
        let nhwc = channels_last(&x).unwrap();
        assert!(is_channels_last(&nhwc));
        assert_eq!(nhwc.size(), x.size());
        assert_eq!(nhwc.stride(), [105, 1, 21, 3]);
        assert!(nhwc.equal(&x));
        let err = channels_last(&Tensor::zeros([3], (Kind::Float, Device::Cpu))).unwrap_err().to_string();
        assert!(err.contains("rank 4"), "{err}");
    }

    #[test]
    fn the_cuda_autocast_dtype_can_be_switched_without_a_gpu() {
        set_cuda_autocast_bfloat16(true);
        assert!(cuda_autocast_is_bfloat16());
        set_cuda_autocast_bfloat16(false);
        assert!(!cuda_autocast_is_bfloat16());
    }
}
