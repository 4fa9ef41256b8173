#include "vidcls/device.h"

#include <torch/cuda.h>

namespace vidcls {

c10::Device parse_device(const std::string &name, bool allow_auto) {
  const std::string choices = allow_auto ? "auto, cpu, cuda or cuda:N" : "cpu, cuda or cuda:N";
  if (name == "auto" && allow_auto) {
    return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  }
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const c10::Error &) {
    throw DeviceError(DeviceError::Kind::kUnknown, "unknown device '" + name + "': use " + choices);
  }
  if (device.is_cpu()) return c10::Device(c10::kCPU);
  if (!device.is_cuda()) {
    throw DeviceError(DeviceError::Kind::kUnknown,
                      "device '" + name + "' is not supported: use " + choices);
  }
  if (!torch::cuda::is_available()) {
    throw DeviceError(DeviceError::Kind::kUnavailable,
                      "device '" + name +
                          "' was asked for, but this LibTorch sees no CUDA device "
                          "(no CUDA support, or no GPU visible): use cpu, or a CUDA build of "
                          "LibTorch (meson -Dtorch_dir=...)");
  }
  const auto count = static_cast<int>(torch::cuda::device_count());
  const int index = device.has_index() ? device.index() : 0;
  if (index >= count) {
    throw DeviceError(DeviceError::Kind::kUnavailable,
                      "device '" + name + "' was asked for, but LibTorch sees " +
                          std::to_string(count) + " CUDA device(s)");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace vidcls
