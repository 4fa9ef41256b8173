/* Raw video to RGB, two ways that give the same pixels within rounding:
 *
 * - on the CPU, the GstVideoConverter that `videoconvert ! video/x-raw,format=RGB` uses with
 *   its default options (what training decodes with), made by rgb_converter_config();
 * - with tensor ops wherever the frame's tensors live (the clipper's GPU path): 8-bit 4:2:0
 *   frames (I420, YV12, NV12, NV21), the frame's bytes uploaded once, chroma upsampled as the
 *   converter does it and the frame's own matrix, range and chroma siting.
 *
 * The converter computes in fixed point (8-bit coefficients, truncating shifts), the tensor path
 * in float: on limited-range video they differ by at most 6 levels of 255, 1.6 on average
 * (tests/gst/test_yuv.cpp measures it for every layout).
 */
#pragma once

#include <gst/video/video.h>

#include <torch/types.h>

namespace vidcls {
namespace gst {

/* The converter options the clipper's CPU path uses (videoconvert's defaults, one thread). */
GstStructure *rgb_converter_config ();
/* Packed RGB of the same size, interlacing, frame rate and pixel aspect as `in`: the
 * converter's output. */
void rgb_info_like (const GstVideoInfo * in, GstVideoInfo * rgb);

/* Where the planes of a 4:2:0 frame are and how its samples become RGB. */
struct Yuv420Layout
{
  bool supported = false;      /* I420, YV12, NV12 or NV21, 8 bits */
  bool interleaved_uv = false; /* NV12 / NV21: one plane of U, V pairs */
  bool v_first = false;        /* YV12 / NV21 */
  double kr = 0.299, kb = 0.114;
  bool full_range = false;
  bool h_cosited = false, v_cosited = false;
  /* GstVideoConverter's fast path for I420 and YV12 to RGB repeats each chroma sample over its
   * 2x2 pixels; NV12 and NV21 go through its linear chroma resampler, which the siting places. */
  bool repeat_chroma = false;
};

Yuv420Layout yuv420_layout (const GstVideoInfo * info);

/* The bytes of a mapped frame's planes in one uint8 tensor, and where each plane starts in it:
 * a view of the mapping when the buffer is one memory, else one packed copy, so that the
 * frame is uploaded in one transfer. */
struct FramePlanes
{
  torch::Tensor bytes;
  int64_t offset[GST_VIDEO_MAX_PLANES] = {0};
  int64_t stride[GST_VIDEO_MAX_PLANES] = {0};
  int64_t width = 0, height = 0;
};

FramePlanes frame_planes (const GstVideoFrame * frame);

/* The RGB pixels [H, W, 3] uint8 of a 4:2:0 frame, computed on planes.bytes' device. */
torch::Tensor yuv420_to_rgb (const FramePlanes & planes, const Yuv420Layout & layout);

}  // namespace gst
}  // namespace vidcls
