//! libtorch calls that tch 0.26 does not expose, through the C++ shim in `csrc/torch_extras.cpp`
//! (compiled by `build.rs` against the same libtorch headers): the CUDA autocast dtype, so mixed
//! precision can use bfloat16 (which needs no loss scaling) instead of libtorch's default float16, and
//! the autocast region itself (tch's prints a deprecation warning on every call);
//! whether gradients are being recorded; the channels-last memory format that makes convolutions faster
//! on tensor-core GPUs; and the scaled updates (`add`/`add_` with `alpha`, `addcdiv_`/`addcmul_` with
//! `value`) and gradient reset (`grad = None`) that let an optimiser step run without allocating a
//! temporary per parameter.

use std::ffi::{c_char, c_int, CStr};
use tch::Tensor;

/// tch's C tensor handle (`at::Tensor*` in C++).
type CTensor = torch_sys::C_tensor;

extern "C" {
    fn ts_set_cuda_autocast_bfloat16(bfloat16: c_int);
    fn ts_cuda_autocast_is_bfloat16() -> c_int;
    fn ts_cuda_autocast_enter(enabled: c_int) -> c_int;
    fn ts_cuda_autocast_exit(previous: c_int);
    fn ts_cuda_autocast_enabled() -> c_int;
    fn ts_set_cuda_tf32(allow: c_int);
    fn ts_set_cudnn_deterministic(deterministic: c_int);
    fn ts_grad_enabled() -> c_int;
    fn ts_channels_last(tensor: *const CTensor, error: *mut *mut c_char) -> *mut CTensor;
    fn ts_is_channels_last(tensor: *const CTensor) -> c_int;
    fn ts_add_scaled(
        tensor: *const CTensor,
        other: *const CTensor,
        alpha: f64,
        error: *mut *mut c_char,
    ) -> *mut CTensor;
    fn ts_add_scaled_(tensor: *mut CTensor, other: *const CTensor, alpha: f64) -> *mut c_char;
    fn ts_addcdiv_scaled_(
        tensor: *mut CTensor,
        numerator: *const CTensor,
        denominator: *const CTensor,
        value: f64,
    ) -> *mut c_char;
    fn ts_addcmul_scaled_(tensor: *mut CTensor, a: *const CTensor, b: *const CTensor, value: f64) -> *mut c_char;
    fn ts_clear_grad(tensor: *mut CTensor);
}

/// Makes CUDA autocast (`with_cuda_autocast`) compute in bfloat16 (`true`) or float16 (`false`). The setting
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

/// Runs `body` with CUDA autocast on (in the dtype `set_cuda_autocast_bfloat16` chose), then restores
/// the state from before, even if `body` panics. It does what `tch::autocast(true, body)` does, through
/// libtorch's per-device calls, which do not print a deprecation warning on every call as tch's do.
/// The state is per thread and settable without a GPU; it only changes CUDA operations.
pub fn with_cuda_autocast<T>(body: impl FnOnce() -> T) -> T {
    /// Closes the autocast region when dropped.
    struct Region(c_int);
    impl Drop for Region {
        fn drop(&mut self) {
            // SAFETY: closes the region `ts_cuda_autocast_enter` opened on this thread; no pointers.
            unsafe { ts_cuda_autocast_exit(self.0) }
        }
    }
    // SAFETY: sets libtorch's thread-local autocast state; no pointers involved.
    let _region = Region(unsafe { ts_cuda_autocast_enter(1) });
    body()
}

/// Whether CUDA autocast is on for the calling thread.
pub fn cuda_autocast_enabled() -> bool {
    // SAFETY: reads libtorch's thread-local autocast state.
    unsafe { ts_cuda_autocast_enabled() != 0 }
}

/// Lets CUDA float32 convolutions and matrix products use TF32 tensor cores (libtorch's default for
/// convolutions) or not (true float32, as the CPU computes). Process-wide; settable without a GPU.
pub fn set_cuda_tf32(allow: bool) {
    // SAFETY: sets libtorch globals; no pointers involved.
    unsafe { ts_set_cuda_tf32(c_int::from(allow)) }
}

/// Makes cuDNN pick deterministic algorithms (bit-identical results for the same inputs) or not.
/// Process-wide; settable without a GPU.
pub fn set_cudnn_deterministic(deterministic: bool) {
    // SAFETY: sets a libtorch global; no pointers involved.
    unsafe { ts_set_cudnn_deterministic(c_int::from(deterministic)) }
}

/// Whether operations on this thread record gradients now (false inside `tch::no_grad`).
pub fn grad_enabled() -> bool {
    // SAFETY: reads libtorch's thread-local grad mode.
    unsafe { ts_grad_enabled() != 0 }
}

/// A copy of a 4-D tensor in the channels-last (NHWC) memory format; same shape and values.
pub fn channels_last(tensor: &Tensor) -> Result<Tensor, tch::TchError> {
    // SAFETY: `tensor.as_ptr()` is a live `at::Tensor*`.
    new_tensor(|error| unsafe { ts_channels_last(tensor.as_ptr(), error) })
}

/// Whether a tensor is laid out channels-last.
pub fn is_channels_last(tensor: &Tensor) -> bool {
    // SAFETY: `tensor.as_ptr()` is a live `at::Tensor*`.
    unsafe { ts_is_channels_last(tensor.as_ptr()) != 0 }
}

/// `tensor + alpha * other` as a new tensor, as `Tensor.add(other, alpha=alpha)`: one pass.
pub fn add_scaled(tensor: &Tensor, other: &Tensor, alpha: f64) -> Result<Tensor, tch::TchError> {
    // SAFETY: both are live `at::Tensor*`.
    new_tensor(|error| unsafe { ts_add_scaled(tensor.as_ptr(), other.as_ptr(), alpha, error) })
}

/// `tensor += alpha * other` in place, as `Tensor.add_(other, alpha=alpha)`: one pass, no temporary.
pub fn add_scaled_(tensor: &mut Tensor, other: &Tensor, alpha: f64) -> Result<(), tch::TchError> {
    // SAFETY: both are live `at::Tensor*`; the shim returns null or a malloc'ed message.
    into_result(unsafe { ts_add_scaled_(tensor.as_mut_ptr(), other.as_ptr(), alpha) })
}

/// `tensor += value * numerator / denominator` in place, as `Tensor.addcdiv_(n, d, value=value)`.
pub fn addcdiv_scaled_(
    tensor: &mut Tensor,
    numerator: &Tensor,
    denominator: &Tensor,
    value: f64,
) -> Result<(), tch::TchError> {
    // SAFETY: all three are live `at::Tensor*`; the shim returns null or a malloc'ed message.
    into_result(unsafe { ts_addcdiv_scaled_(tensor.as_mut_ptr(), numerator.as_ptr(), denominator.as_ptr(), value) })
}

/// `tensor += value * a * b` in place, as `Tensor.addcmul_(a, b, value=value)`.
pub fn addcmul_scaled_(tensor: &mut Tensor, a: &Tensor, b: &Tensor, value: f64) -> Result<(), tch::TchError> {
    // SAFETY: all three are live `at::Tensor*`; the shim returns null or a malloc'ed message.
    into_result(unsafe { ts_addcmul_scaled_(tensor.as_mut_ptr(), a.as_ptr(), b.as_ptr(), value) })
}

/// Drops the tensor's gradient, as `param.grad = None`: the next backward pass writes a fresh gradient
/// instead of adding into a zeroed one, which saves a pass over every parameter.
pub fn clear_grad(tensor: &mut Tensor) {
    // SAFETY: `tensor.as_mut_ptr()` is a live `at::Tensor*`; resetting its gradient cannot throw.
    unsafe { ts_clear_grad(tensor.as_mut_ptr()) }
}

/// Runs a shim call that returns a new heap tensor, or null with its error argument set, as a `Result`.
fn new_tensor(call: impl FnOnce(*mut *mut c_char) -> *mut CTensor) -> Result<Tensor, tch::TchError> {
    let mut error: *mut c_char = std::ptr::null_mut();
    let result = call(&mut error);
    into_result(error)?;
    // SAFETY: no error, so `result` is the shim's new tensor, which `Tensor::from_ptr` takes ownership of.
    Ok(unsafe { Tensor::from_ptr(result) })
}

/// Turns the shim's error convention (null, or a malloc'ed message) into a `Result`, freeing the message.
fn into_result(error: *mut c_char) -> Result<(), tch::TchError> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null error is a NUL-terminated string from `strdup`, freed here exactly once.
    let message = unsafe {
        let text = CStr::from_ptr(error).to_string_lossy().into_owned();
        libc_free(error.cast());
        text
    };
    Err(tch::TchError::Torch(message))
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
    fn grad_mode_is_read_inside_and_outside_no_grad() {
        assert!(grad_enabled());
        assert!(!tch::no_grad(grad_enabled));
        assert!(grad_enabled());
    }

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
    fn scaled_in_place_updates_compute_what_torch_does_and_report_shape_errors() {
        let x = || Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        let (a, b) = (Tensor::from_slice(&[2.0f32, 4.0, 8.0]), Tensor::from_slice(&[1.0f32, 2.0, 4.0]));
        let sum = add_scaled(&x(), &a, -0.5).unwrap();
        assert_eq!(Vec::<f32>::try_from(&sum).unwrap(), [0.0, 0.0, -1.0]);
        assert!(add_scaled(&x(), &Tensor::ones([2], (Kind::Float, Device::Cpu)), 1.0).is_err());
        let mut t = x();
        add_scaled_(&mut t, &a, -0.5).unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), [0.0, 0.0, -1.0]);
        let mut t = x();
        addcdiv_scaled_(&mut t, &a, &b, 2.0).unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), [5.0, 6.0, 7.0]);
        let mut t = x();
        addcmul_scaled_(&mut t, &a, &b, 0.25).unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), [1.5, 4.0, 11.0]);
        let err = add_scaled_(&mut x(), &Tensor::ones([2], (Kind::Float, Device::Cpu)), 1.0).unwrap_err();
        assert!(err.to_string().contains("size"), "{err}");
    }

    #[test]
    fn a_cleared_gradient_is_undefined_and_the_next_backward_writes_it_fresh() {
        let mut w = Tensor::from_slice(&[3.0f32]).set_requires_grad(true);
        (&w * 2.0).sum(Kind::Float).backward();
        assert_eq!(w.grad().double_value(&[0]), 2.0);
        clear_grad(&mut w);
        assert!(!w.grad().defined());
        (&w * 5.0).sum(Kind::Float).backward();
        assert_eq!(w.grad().double_value(&[0]), 5.0, "not 7: the old gradient is gone");
    }

    #[test]
    fn cuda_autocast_is_on_inside_its_region_only_and_nested_regions_restore_it() {
        assert!(!cuda_autocast_enabled());
        let inner = with_cuda_autocast(|| {
            assert!(cuda_autocast_enabled());
            with_cuda_autocast(cuda_autocast_enabled)
        });
        assert!(inner);
        assert!(!cuda_autocast_enabled(), "the outer region's end restores the state from before");
        let panicked = std::panic::catch_unwind(|| with_cuda_autocast(|| panic!("inside the region")));
        assert!(panicked.is_err());
        assert!(!cuda_autocast_enabled(), "a panic inside the region still closes it");
    }

    #[test]
    fn the_cuda_autocast_dtype_can_be_switched_without_a_gpu() {
        set_cuda_autocast_bfloat16(true);
        assert!(cuda_autocast_is_bfloat16());
        set_cuda_autocast_bfloat16(false);
        assert!(!cuda_autocast_is_bfloat16());
    }
}
