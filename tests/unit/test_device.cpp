// The one device parser every element and tool uses, and the errors it gives.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/cuda.h>

#include "vidcls/device.h"
#include "vidcls/errors.h"

namespace {

using ::testing::HasSubstr;

vidcls::DeviceError::Kind kind_of(const std::string &name, bool allow_auto = true) {
  try {
    vidcls::parse_device(name, allow_auto);
  } catch (const vidcls::DeviceError &e) {
    return e.kind();
  }
  ADD_FAILURE() << "'" << name << "' was taken";
  return vidcls::DeviceError::Kind::kUnknown;
}

TEST(Device, CpuAndAutoAreAlwaysThere) {
  EXPECT_EQ(vidcls::parse_device("cpu"), c10::Device(c10::kCPU));
  const auto automatic = vidcls::parse_device("auto");
  EXPECT_EQ(automatic, torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0)
                                                    : c10::Device(c10::kCPU));
}

TEST(Device, UnknownNamesSayWhatToUse) {
  for (const char *name : {"gpu", "cuda:x", "", "mps"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(kind_of(name), vidcls::DeviceError::Kind::kUnknown);
  }
  EXPECT_EQ(kind_of("auto", false), vidcls::DeviceError::Kind::kUnknown);
  try {
    vidcls::parse_device("gpu", false);
    FAIL() << "gpu was taken";
  } catch (const vidcls::DeviceError &e) {
    EXPECT_THAT(e.what(), HasSubstr("'gpu'"));
    EXPECT_THAT(e.what(), HasSubstr("cpu, cuda or cuda:N"));
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("auto")));
  }
}

TEST(Device, CudaNamesAreCheckedAgainstWhatLibTorchSees) {
  const int count = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (count > 0) {
    EXPECT_EQ(vidcls::parse_device("cuda"), c10::Device(c10::kCUDA, 0));
    EXPECT_EQ(vidcls::parse_device("cuda:0"), c10::Device(c10::kCUDA, 0));
  } else {
    EXPECT_EQ(kind_of("cuda"), vidcls::DeviceError::Kind::kUnavailable);
  }
  const std::string beyond = "cuda:" + std::to_string(count);
  EXPECT_EQ(kind_of(beyond), vidcls::DeviceError::Kind::kUnavailable);
}

TEST(Errors, MessagesLeaveLibTorchBacktracesOut) {
  try {
    TORCH_CHECK(false, "the reason");
  } catch (const std::exception &e) {
    EXPECT_EQ(vidcls::error_message(e), "the reason");
  }
  EXPECT_EQ(vidcls::run_tool("tool", [] { return 3; }), 3);
  testing::internal::CaptureStderr();
  EXPECT_EQ(vidcls::run_tool("tool", []() -> int { throw std::runtime_error("no file"); }), 1);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "tool: no file\n");
}

}  // namespace
