// On a CUDA device: the models give the CPU's logits, the clipper's ring and clips live on the
// device, a 4:2:0 frame is converted there into the clip the CPU path makes (within the
// converter's rounding), and vividinfer classifies on the device as on the CPU. Without a
// CUDA device (or a build without LibTorch's CUDA backend) the test reports itself skipped:
// exit status 77, which meson shows as SKIP.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include <torch/cuda.h>
#include <torch/utils.h>
#include <torch/version.h>

#include "gst_test_clip.h"
#include "gst_test_models.h"
#include "gstvidclsmeta.h"
#include "vidcls/checkpoint.h"
#include "vidcls/registry.h"

namespace {

using vidcls_test::make_checkpoint;

TEST(Cuda, ModelsGiveTheCpuLogits) {
  for (const char *preset : {"vivit-xs", "mini-vivit-xs", "resnet18-tvit-xs"}) {
    torch::manual_seed(0);
    auto model = vidcls::make_preset_model(preset, 7);
    model->eval();
    torch::NoGradGuard no_grad;
    const auto s = model->input_shape();
    auto clip = torch::randn({2, s.frames, s.channels, s.height, s.width});
    auto cpu = model->forward(clip);
    model->to(torch::kCUDA);
    auto gpu = model->forward(clip.cuda()).cpu();
    EXPECT_TRUE(torch::allclose(cpu, gpu, 1e-3, 1e-3))
        << preset << ": max difference " << (cpu - gpu).abs().max().item<double>();
  }
}

// The clips a clipper makes of `n` frames of `caps` (deterministic content), copied to the CPU;
// checks where they lived.
std::vector<torch::Tensor> clips_of(const std::string &clipper, const std::string &caps, int n,
                                    bool expect_cuda) {
  GstHarness *h = gst_harness_new_parse(clipper.c_str());
  gst_harness_set_src_caps_str(h, caps.c_str());
  GstVideoInfo info;
  GstCaps *c = gst_caps_from_string(caps.c_str());
  EXPECT_TRUE(gst_video_info_from_caps(&info, c));
  gst_caps_unref(c);
  std::vector<torch::Tensor> clips;
  torch::manual_seed(3);
  for (int i = 0; i < n; ++i) {
    GstBuffer *in = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr);
    auto bytes = torch::randint(16, 236, {static_cast<int64_t>(GST_VIDEO_INFO_SIZE(&info))},
                                torch::kUInt8);
    gst_buffer_fill(in, 0, bytes.data_ptr<uint8_t>(), bytes.numel());
    GST_BUFFER_PTS(in) = i * GST_SECOND / 30;
    GST_BUFFER_DURATION(in) = GST_SECOND / 30;
    GstBuffer *out = gst_harness_push_and_pull(h, in);
    if (auto *meta = vidcls_test::find_clip_meta(out)) {
      EXPECT_EQ(meta->clip->is_cuda(), expect_cuda);
      clips.push_back(meta->clip->cpu());
    }
    gst_buffer_unref(out);
  }
  gst_harness_teardown(h);
  return clips;
}

// 1080p frames to 224 clips: the ring stays on the device and a 4:2:0 frame converted there gives
// the CPU path's clip within the converter's rounding (a few levels of 255 before normalising).
TEST(Cuda, ClipperBuildsClipsOnTheDevice) {
  const std::string spec = " clip-length=4 frame-stride=1 clip-stride=4 width=224 height=224";
  for (const char *format : {"I420", "NV12", "RGB"}) {
    const std::string caps = std::string("video/x-raw,format=") + format +
                             ",width=1920,height=1080,framerate=30/1";
    auto cpu = clips_of("vidclsclipper device=cpu" + spec, caps, 8, false);
    auto gpu = clips_of("vidclsclipper device=cuda" + spec, caps, 8, true);
    ASSERT_EQ(cpu.size(), 2u) << format;
    ASSERT_EQ(gpu.size(), cpu.size()) << format;
    for (size_t i = 0; i < cpu.size(); ++i) {
      auto diff = (cpu[i] - gpu[i]).abs();
      // Normalised units: one level of 255 is about 0.017 at ImageNet's std.
      EXPECT_LT(diff.max().item<double>(), 0.15) << format << " clip " << i;
      EXPECT_LT(diff.mean().item<double>(), 0.04) << format << " clip " << i;
    }
  }
}

// vividinfer on the device gives the scores it gives on the CPU.
TEST(Cuda, VividInferClassifiesOnTheDevice) {
  const auto ckpt = make_checkpoint("vivit-xs");
  std::vector<float> scores[2];
  int k = 0;
  for (const char *device : {"cpu", "cuda"}) {
    GstHarness *h = gst_harness_new_parse(
        (std::string("vidclsclipper ! vividinfer mode=sync top-k=5 device=") + device +
         " model=" + ckpt).c_str());
    gst_harness_set_src_caps_str(h, "video/x-raw,format=RGB,width=80,height=64,framerate=30/1");
    torch::manual_seed(4);
    for (int i = 0; i < 16; ++i) {
      auto bytes = torch::randint(0, 256, {80 * 64 * 3}, torch::kUInt8);
      GstBuffer *in = gst_buffer_new_allocate(nullptr, bytes.numel(), nullptr);
      gst_buffer_fill(in, 0, bytes.data_ptr<uint8_t>(), bytes.numel());
      GST_BUFFER_PTS(in) = i * GST_SECOND / 30;
      GstBuffer *out = gst_harness_push_and_pull(h, in);
      if (auto *res = gst_buffer_get_vidcls_classification_meta(out))
        for (guint j = 0; j < res->n_results; ++j) scores[k].push_back(res->scores[j]);
      gst_buffer_unref(out);
    }
    gst_harness_teardown(h);
    ++k;
  }
  ASSERT_FALSE(scores[0].empty());
  ASSERT_EQ(scores[0].size(), scores[1].size());
  for (size_t i = 0; i < scores[0].size(); ++i) EXPECT_NEAR(scores[0][i], scores[1][i], 1e-3);
}

}  // namespace

int main(int argc, char **argv) {
  if (!torch::cuda::is_available()) {
    std::printf("SKIP: no CUDA device visible to LibTorch %s (built %s its CUDA backend)\n",
                TORCH_VERSION,
#ifdef VIDCLS_WITH_CUDA
                "with"
#else
                "without"
#endif
    );
    return 77;
  }
  return vidcls_test::run_element_tests(argc, argv);
}
