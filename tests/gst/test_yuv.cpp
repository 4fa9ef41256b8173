// The clipper's GPU path turns 4:2:0 frames into RGB with tensor ops; the CPU path uses
// GstVideoConverter with videoconvert's defaults (what training decodes with). Run here on CPU
// tensors, the tensor conversion must give the converter's pixels within rounding, for every
// 4:2:0 layout, matrix, range and chroma siting a decoder hands out.
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <cstdio>
#include <string>

#include <torch/types.h>

#include "gstvidclsyuv.h"

namespace {

struct Case {
  const char *format;
  const char *colorimetry;
  const char *chroma_site;
  int width, height;
};

std::string name_of(const Case &c) {
  std::string n = std::string(c.format) + "_" + c.colorimetry + "_" + c.chroma_site + "_" +
                  std::to_string(c.width) + "x" + std::to_string(c.height);
  for (char &c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

std::string name(const ::testing::TestParamInfo<Case> &p) { return name_of(p.param); }

class YuvToRgb : public ::testing::TestWithParam<Case> {};

TEST_P(YuvToRgb, TensorOpsGiveTheConvertersPixels) {
  const Case &c = GetParam();
  GstCaps *caps = gst_caps_from_string(
      ("video/x-raw,format=" + std::string(c.format) + ",width=" + std::to_string(c.width) +
       ",height=" + std::to_string(c.height) + ",framerate=30/1,colorimetry=" + c.colorimetry +
       ",chroma-site=" + c.chroma_site)
          .c_str());
  GstVideoInfo in;
  ASSERT_TRUE(gst_video_info_from_caps(&in, caps));
  gst_caps_unref(caps);
  const auto layout = vidcls::gst::yuv420_layout(&in);
  ASSERT_TRUE(layout.supported);

  // Smooth content with texture: gradients plus noise, in every plane.
  torch::manual_seed(1);
  GstBuffer *yuv = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&in), nullptr);
  {
    GstMapInfo map;
    ASSERT_TRUE(gst_buffer_map(yuv, &map, GST_MAP_WRITE));
    auto ramp = torch::arange(static_cast<int64_t>(map.size)).remainder(251).to(torch::kFloat32);
    auto noise = torch::randint(-40, 40, {static_cast<int64_t>(map.size)}, torch::kFloat32);
    auto bytes = (ramp + noise).clamp(0, 255).to(torch::kUInt8);
    std::memcpy(map.data, bytes.data_ptr<uint8_t>(), map.size);
    gst_buffer_unmap(yuv, &map);
  }

  GstVideoInfo out;
  vidcls::gst::rgb_info_like(&in, &out);
  GstVideoConverter *conv =
      gst_video_converter_new(&in, &out, vidcls::gst::rgb_converter_config());
  ASSERT_NE(conv, nullptr);
  GstBuffer *rgb = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&out), nullptr);
  GstVideoFrame src, dst;
  ASSERT_TRUE(gst_video_frame_map(&src, &in, yuv, GST_MAP_READ));
  ASSERT_TRUE(gst_video_frame_map(&dst, &out, rgb, GST_MAP_WRITE));
  gst_video_converter_frame(conv, &src, &dst);
  auto expected = torch::from_blob(GST_VIDEO_FRAME_PLANE_DATA(&dst, 0), {c.height, c.width, 3},
                                   {GST_VIDEO_FRAME_PLANE_STRIDE(&dst, 0), 3, 1}, torch::kUInt8)
                      .to(torch::kInt32);

  auto got = vidcls::gst::yuv420_to_rgb(vidcls::gst::frame_planes(&src), layout);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{c.height, c.width, 3}));
  auto diff = (got.to(torch::kInt32) - expected).abs();
  const int max_diff = diff.max().item<int>();
  const double mean_diff = diff.to(torch::kFloat64).mean().item<double>();
  // GstVideoConverter computes in fixed point (8-bit coefficients, truncating shifts), the
  // tensor path in float: a few levels apart, never more. A wrong chroma filter, siting or
  // matrix is tens of levels off on this content.
  std::printf("%s: max difference %d, mean %.3f levels\n", name_of(c).c_str(), max_diff, mean_diff);
  EXPECT_LE(max_diff, 7) << "mean " << mean_diff;
  EXPECT_LT(mean_diff, 2.0) << "max " << max_diff;
  // Swapping the chroma planes (reading I420 as YV12) must be caught by the bounds above.
  auto swapped = layout;
  swapped.v_first = !swapped.v_first;
  auto wrong = vidcls::gst::yuv420_to_rgb(vidcls::gst::frame_planes(&src), swapped);
  EXPECT_GT((wrong.to(torch::kInt32) - expected).abs().max().item<int>(), 20);

  gst_video_frame_unmap(&dst);
  gst_video_frame_unmap(&src);
  gst_buffer_unref(rgb);
  gst_buffer_unref(yuv);
  gst_video_converter_free(conv);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, YuvToRgb,
    ::testing::Values(Case{"I420", "bt601", "mpeg2", 64, 48}, Case{"I420", "bt709", "mpeg2", 64, 48},
                      Case{"I420", "bt709", "jpeg", 37, 21}, Case{"YV12", "bt601", "mpeg2", 64, 48},
                      Case{"NV12", "bt709", "mpeg2", 64, 48}, Case{"NV12", "bt601", "jpeg", 37, 21},
                      Case{"NV21", "bt709", "mpeg2", 64, 48},
                      Case{"I420", "1:4:0:0", "mpeg2", 64, 48},  // full range, BT.601
                      Case{"NV12", "bt2020", "mpeg2", 64, 48}),
    name);

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
