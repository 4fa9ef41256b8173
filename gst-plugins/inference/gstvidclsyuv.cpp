#include "gstvidclsyuv.h"

#include <algorithm>
#include <cstring>

namespace vidcls {
namespace gst {

GstStructure *
rgb_converter_config ()
{
  return gst_structure_new ("GstVideoConverterConfig",
      GST_VIDEO_CONVERTER_OPT_DITHER_METHOD, GST_TYPE_VIDEO_DITHER_METHOD,
      GST_VIDEO_DITHER_BAYER,
      GST_VIDEO_CONVERTER_OPT_DITHER_QUANTIZATION, G_TYPE_UINT, 1,
      GST_VIDEO_CONVERTER_OPT_CHROMA_RESAMPLER_METHOD, GST_TYPE_VIDEO_RESAMPLER_METHOD,
      GST_VIDEO_RESAMPLER_METHOD_LINEAR,
      GST_VIDEO_CONVERTER_OPT_ALPHA_MODE, GST_TYPE_VIDEO_ALPHA_MODE,
      GST_VIDEO_ALPHA_MODE_COPY,
      GST_VIDEO_CONVERTER_OPT_CHROMA_MODE, GST_TYPE_VIDEO_CHROMA_MODE,
      GST_VIDEO_CHROMA_MODE_FULL,
      GST_VIDEO_CONVERTER_OPT_MATRIX_MODE, GST_TYPE_VIDEO_MATRIX_MODE,
      GST_VIDEO_MATRIX_MODE_FULL,
      GST_VIDEO_CONVERTER_OPT_GAMMA_MODE, GST_TYPE_VIDEO_GAMMA_MODE,
      GST_VIDEO_GAMMA_MODE_NONE,
      GST_VIDEO_CONVERTER_OPT_PRIMARIES_MODE, GST_TYPE_VIDEO_PRIMARIES_MODE,
      GST_VIDEO_PRIMARIES_MODE_NONE,
      /* One thread: a second one would share the other core with LibTorch's thread team,
       * still spinning after the model's last op (measured: 2.4x slower at 224 px). */
      GST_VIDEO_CONVERTER_OPT_THREADS, G_TYPE_UINT, 1, nullptr);
}

void
rgb_info_like (const GstVideoInfo * in, GstVideoInfo * rgb)
{
  gst_video_info_set_interlaced_format (rgb, GST_VIDEO_FORMAT_RGB,
      GST_VIDEO_INFO_INTERLACE_MODE (in), GST_VIDEO_INFO_WIDTH (in),
      GST_VIDEO_INFO_HEIGHT (in));
  GST_VIDEO_INFO_FPS_N (rgb) = GST_VIDEO_INFO_FPS_N (in);
  GST_VIDEO_INFO_FPS_D (rgb) = GST_VIDEO_INFO_FPS_D (in);
  GST_VIDEO_INFO_PAR_N (rgb) = GST_VIDEO_INFO_PAR_N (in);
  GST_VIDEO_INFO_PAR_D (rgb) = GST_VIDEO_INFO_PAR_D (in);
}

Yuv420Layout
yuv420_layout (const GstVideoInfo * info)
{
  Yuv420Layout l;
  switch (GST_VIDEO_INFO_FORMAT (info)) {
    case GST_VIDEO_FORMAT_I420:
      l.repeat_chroma = true;
      break;
    case GST_VIDEO_FORMAT_YV12:
      l.v_first = l.repeat_chroma = true;
      break;
    case GST_VIDEO_FORMAT_NV12:
      l.interleaved_uv = true;
      break;
    case GST_VIDEO_FORMAT_NV21:
      l.interleaved_uv = l.v_first = true;
      break;
    default:
      return l;
  }
  const GstVideoColorimetry & c = info->colorimetry;
  /* An unknown matrix is converted as BT.601, as GstVideoConverter does. */
  if (!gst_video_color_matrix_get_Kr_Kb (c.matrix, &l.kr, &l.kb)) {
    l.kr = 0.299;
    l.kb = 0.114;
  }
  l.full_range = c.range == GST_VIDEO_COLOR_RANGE_0_255;
  l.h_cosited = (info->chroma_site & GST_VIDEO_CHROMA_SITE_H_COSITED) != 0;
  l.v_cosited = (info->chroma_site & GST_VIDEO_CHROMA_SITE_V_COSITED) != 0;
  l.supported = true;
  return l;
}

FramePlanes
frame_planes (const GstVideoFrame * frame)
{
  FramePlanes p;
  const guint n = GST_VIDEO_FRAME_N_PLANES (frame);
  p.width = GST_VIDEO_FRAME_WIDTH (frame);
  p.height = GST_VIDEO_FRAME_HEIGHT (frame);
  const GstVideoFormatInfo *finfo = frame->info.finfo;
  gsize sizes[GST_VIDEO_MAX_PLANES] = {0};
  for (guint i = 0; i < n; i++) {
    p.stride[i] = GST_VIDEO_FRAME_PLANE_STRIDE (frame, i);
    gint comp[GST_VIDEO_MAX_COMPONENTS];
    gst_video_format_info_component (finfo, i, comp);
    sizes[i] = static_cast<gsize> (p.stride[i])
        * GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT (finfo, comp[0], p.height);
  }
  /* One memory: every plane lies in the first mapping, which is uploaded as it is. */
  const auto *base = static_cast<const guint8 *> (frame->map[0].data);
  bool one_mapping = gst_buffer_n_memory (frame->buffer) == 1;
  for (guint i = 0; i < n && one_mapping; i++) {
    const auto *data = static_cast<const guint8 *> (GST_VIDEO_FRAME_PLANE_DATA (frame, i));
    p.offset[i] = data - base;
    one_mapping = data >= base && p.offset[i] + sizes[i] <= frame->map[0].size;
  }
  if (one_mapping) {
    p.bytes = torch::from_blob (const_cast<guint8 *> (base),
        {static_cast<int64_t> (frame->map[0].size)}, torch::kUInt8);
    return p;
  }
  /* Planes in separate memories: pack them, one host copy, so the upload is still one. */
  gsize total = 0;
  for (guint i = 0; i < n; i++)
    total += sizes[i];
  p.bytes = torch::empty ({static_cast<int64_t> (total)}, torch::kUInt8);
  gsize at = 0;
  for (guint i = 0; i < n; i++) {
    std::memcpy (p.bytes.data_ptr<guint8> () + at, GST_VIDEO_FRAME_PLANE_DATA (frame, i),
        sizes[i]);
    p.offset[i] = static_cast<int64_t> (at);
    at += sizes[i];
  }
  return p;
}

namespace {

/* Doubles the last dimension of chroma samples `c` [..., n] to `out_len` samples with the
 * linear filters of GStreamer's chroma resampler: a co-sited sample lands on even outputs and
 * odd ones average their two neighbours; a centred sample sits between two outputs, weighted
 * 3/4 to the nearer and 1/4 to the other. Edges repeat the last sample. */
torch::Tensor
upsample_last (const torch::Tensor & c, bool cosited, int64_t out_len)
{
  const int64_t n = c.size (-1);
  auto prev = torch::cat ({c.narrow (-1, 0, 1), c.narrow (-1, 0, n - 1)}, -1);
  auto next = torch::cat ({c.narrow (-1, 1, n - 1), c.narrow (-1, n - 1, 1)}, -1);
  torch::Tensor even, odd;
  if (cosited) {
    even = c;
    odd = (c + next) * 0.5;
  } else {
    even = c * 0.75 + prev * 0.25;
    odd = c * 0.75 + next * 0.25;
  }
  auto sizes = c.sizes ().vec ();
  sizes.back () = 2 * n;
  return torch::stack ({even, odd}, -1).reshape (sizes).narrow (-1, 0, out_len);
}

torch::Tensor
plane (const FramePlanes & p, int i, int64_t rows, int64_t cols, int64_t pixel_stride,
    int64_t component)
{
  return p.bytes.as_strided ({rows, cols}, {p.stride[i], pixel_stride},
      p.bytes.storage_offset () + p.offset[i] + component);
}

}  // namespace

torch::Tensor
yuv420_to_rgb (const FramePlanes & p, const Yuv420Layout & l)
{
  const int64_t H = p.height, W = p.width;
  const int64_t ch = (H + 1) / 2, cw = (W + 1) / 2;
  const auto f = torch::kFloat32;
  auto y = plane (p, 0, H, W, 1, 0).to (f);
  torch::Tensor u, v;
  if (l.interleaved_uv) {
    u = plane (p, 1, ch, cw, 2, l.v_first ? 1 : 0).to (f);
    v = plane (p, 1, ch, cw, 2, l.v_first ? 0 : 1).to (f);
  } else {
    /* Plane 1 is U in I420, V in YV12 (GstVideoInfo's planes are in memory order). */
    u = plane (p, l.v_first ? 2 : 1, ch, cw, 1, 0).to (f);
    v = plane (p, l.v_first ? 1 : 2, ch, cw, 1, 0).to (f);
  }
  /* Both chroma planes at once: [2, ch, cw] -> [2, H, W]. */
  torch::Tensor uv = torch::stack ({u, v});
  if (l.repeat_chroma) {
    uv = uv.repeat_interleave (2, 1).repeat_interleave (2, 2).narrow (1, 0, H).narrow (2, 0, W);
  } else {
    uv = upsample_last (uv, l.h_cosited, W);
    uv = upsample_last (uv.transpose (1, 2), l.v_cosited, H).transpose (1, 2);
  }
  if (l.full_range) {
    uv = uv - 128.0;
  } else {
    y = (y - 16.0) * (255.0 / 219.0);
    uv = (uv - 128.0) * (255.0 / 224.0);
  }
  u = uv[0];
  v = uv[1];
  const double kg = 1.0 - l.kr - l.kb;
  auto r = y + v * (2.0 * (1.0 - l.kr));
  auto b = y + u * (2.0 * (1.0 - l.kb));
  auto g = y - v * (2.0 * l.kr * (1.0 - l.kr) / kg) - u * (2.0 * l.kb * (1.0 - l.kb) / kg);
  return torch::stack ({r, g, b}, -1).round_ ().clamp_ (0.0, 255.0).to (torch::kUInt8);
}

}  // namespace gst
}  // namespace vidcls
