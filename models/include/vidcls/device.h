// The one parser of device names, for every element and tool: "cpu", "cuda", "cuda:N" and, where
// a caller allows it, "auto".
#pragma once

#include <stdexcept>
#include <string>

#include <c10/core/Device.h>

namespace vidcls {

// A device name that cannot be used, with a message that says what to use instead.
class DeviceError : public std::invalid_argument {
 public:
  enum class Kind {
    kUnknown,      // not a device name, or a kind of device vidcls does not run on
    kUnavailable,  // a CUDA device this LibTorch cannot see
  };
  DeviceError(Kind kind, const std::string &message)
      : std::invalid_argument(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// Parses and checks `name`. "auto" (when allow_auto) is CUDA device 0 when LibTorch sees one,
// else the CPU; "cuda" is device 0. Throws DeviceError for a name that is not cpu, cuda or
// cuda:N (nor auto), and for a CUDA device that is not there.
c10::Device parse_device(const std::string &name, bool allow_auto = true);

}  // namespace vidcls
