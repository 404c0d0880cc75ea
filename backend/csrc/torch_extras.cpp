// Two libtorch calls that tch 0.26 does not expose, as a C API for backend/src/torch_extras.rs:
// the CUDA autocast dtype (tch's autocast always uses libtorch's default, float16) and the
// channels-last memory format. Tensors are `at::Tensor*`, as in tch's own C API (libtch).
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <cstring>
#include <exception>

extern "C" {

void ts_set_cuda_autocast_bfloat16(int bfloat16) {
  at::autocast::set_autocast_dtype(at::kCUDA, bfloat16 ? at::kBFloat16 : at::kHalf);
}

int ts_cuda_autocast_is_bfloat16() {
  return at::autocast::get_autocast_dtype(at::kCUDA) == at::kBFloat16;
}

// A channels-last copy of a 4-D tensor, or null with `*error` set (free it with `free`).
at::Tensor *ts_channels_last(const at::Tensor *tensor, char **error) {
  try {
    return new at::Tensor(tensor->contiguous(at::MemoryFormat::ChannelsLast));
  } catch (const std::exception &e) {
    *error = strdup(e.what());
    return nullptr;
  }
}

int ts_is_channels_last(const at::Tensor *tensor) {
  return tensor->is_contiguous(at::MemoryFormat::ChannelsLast);
}

}  // extern "C"
