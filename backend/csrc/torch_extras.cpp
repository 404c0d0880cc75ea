// libtorch calls that tch 0.26 does not expose, as a C API for backend/src/torch_extras.rs: the CUDA
// autocast dtype (tch's autocast always uses libtorch's default, float16), whether gradients are being
// recorded, the channels-last memory format, and the scaled updates and gradient reset an optimiser
// step needs to run without temporaries. Tensors are `at::Tensor*`, as in tch's own C API (libtch).
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <c10/core/GradMode.h>
#include <cstring>
#include <exception>

// Runs `body`; returns null, or a malloc'ed copy of the exception's message (free it with `free`).
template <typename Body> static char *catching(Body body) {
  try {
    body();
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}

extern "C" {

void ts_set_cuda_autocast_bfloat16(int bfloat16) {
  at::autocast::set_autocast_dtype(at::kCUDA, bfloat16 ? at::kBFloat16 : at::kHalf);
}

int ts_cuda_autocast_is_bfloat16() {
  return at::autocast::get_autocast_dtype(at::kCUDA) == at::kBFloat16;
}

// CUDA autocast on or off for the calling thread, through libtorch's per-device calls: tch's autocast uses
// the device-less ones, which libtorch 2.4+ marks deprecated and warns about on every call (five lines a
// batch in a run's log). Returns whether it was on before, for ts_cuda_autocast_exit.
int ts_cuda_autocast_enter(int enabled) {
  bool previous = at::autocast::is_autocast_enabled(at::kCUDA);
  at::autocast::set_autocast_enabled(at::kCUDA, enabled != 0);
  at::autocast::increment_nesting();
  return previous;
}

// Leaves the autocast region ts_cuda_autocast_enter opened: frees the cast-weight cache when the
// outermost region ends, and restores the state from before.
void ts_cuda_autocast_exit(int previous) {
  if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
  at::autocast::set_autocast_enabled(at::kCUDA, previous != 0);
}

int ts_cuda_autocast_enabled() { return at::autocast::is_autocast_enabled(at::kCUDA); }

// Whether CUDA float32 convolutions and matrix products may use TF32 tensor cores (faster, about 1e-3
// relative error) instead of true float32.
void ts_set_cuda_tf32(int allow) {
  at::globalContext().setAllowTF32CuDNN(allow != 0);
  at::globalContext().setAllowTF32CuBLAS(allow != 0);
}

// Deterministic cuDNN algorithms, without the autotuner: the same inputs give bit-identical results.
void ts_set_cudnn_deterministic(int deterministic) {
  at::globalContext().setDeterministicCuDNN(deterministic != 0);
}

int ts_grad_enabled() {
  return c10::GradMode::is_enabled();
}

// A channels-last copy of a 4-D tensor, or null with `*error` set (free it with `free`).
at::Tensor *ts_channels_last(const at::Tensor *tensor, char **error) {
  at::Tensor *result = nullptr;
  *error = catching([&] { result = new at::Tensor(tensor->contiguous(at::MemoryFormat::ChannelsLast)); });
  return result;
}

int ts_is_channels_last(const at::Tensor *tensor) {
  return tensor->is_contiguous(at::MemoryFormat::ChannelsLast);
}

// `self + alpha * other` as a new tensor in one pass (`Tensor.add(other, alpha=alpha)`), or null with
// `*error` set (free it with `free`).
at::Tensor *ts_add_scaled(const at::Tensor *self, const at::Tensor *other, double alpha, char **error) {
  at::Tensor *result = nullptr;
  *error = catching([&] { result = new at::Tensor(self->add(*other, alpha)); });
  return result;
}

// `self += alpha * other`, in place (`Tensor.add_(other, alpha=alpha)`).
char *ts_add_scaled_(at::Tensor *self, const at::Tensor *other, double alpha) {
  return catching([&] { self->add_(*other, alpha); });
}

// `self += value * numerator / denominator`, in place (`Tensor.addcdiv_(n, d, value=value)`).
char *ts_addcdiv_scaled_(at::Tensor *self, const at::Tensor *numerator, const at::Tensor *denominator,
                         double value) {
  return catching([&] { self->addcdiv_(*numerator, *denominator, value); });
}

// `self += value * a * b`, in place (`Tensor.addcmul_(a, b, value=value)`).
char *ts_addcmul_scaled_(at::Tensor *self, const at::Tensor *a, const at::Tensor *b, double value) {
  return catching([&] { self->addcmul_(*a, *b, value); });
}

// Drops a tensor's gradient (`param.grad = None`): the next backward pass writes a fresh one instead
// of adding into zeros.
void ts_clear_grad(at::Tensor *tensor) {
  tensor->mutable_grad().reset();
}

}  // extern "C"
