#include "vidcls/train/video_writer.h"

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "gst_util.h"

namespace vidcls::train {

namespace {

struct CodecElements {
  const char *encoder;
  const char *muxer;
  const char *package;  // where a missing element comes from, for the error message
};

CodecElements elements_of(VideoCodec codec) {
  switch (codec) {
    case VideoCodec::kMjpegAvi: return {"jpegenc", "avimux", "gstreamer1.0-plugins-good"};
    case VideoCodec::kMpeg4Mp4: return {"avenc_mpeg4", "mp4mux", "gstreamer1.0-libav, -good"};
    case VideoCodec::kVp8Webm: return {"vp8enc", "webmmux", "gstreamer1.0-plugins-good"};
  }
  return {"jpegenc", "avimux", "gstreamer1.0-plugins-good"};
}

// Queued raw video the writer lets pile up in appsrc before it waits for the encoder.
constexpr guint64 kMaxQueuedBytes = 32u << 20;

// Debian 12's avenc_mpeg4 (gst-libav 1.22.0 on FFmpeg 5.1) stamps every packet with PTS and DTS
// 2^63, and mp4mux then writes zero sample durations: every decoded frame would have PTS 0.
// The encoder runs without B-frames, one packet per frame in input order, so each packet takes
// the timestamps of its input frame, moved into the encoder's output segment.
class TimestampRepair {
 public:
  void attach(GstElement *encoder) {
    GstPad *sink = gst_element_get_static_pad(encoder, "sink");
    GstPad *src = gst_element_get_static_pad(encoder, "src");
    gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_BUFFER, on_input, this, nullptr);
    gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_output, this, nullptr);
    gst_object_unref(sink);
    gst_object_unref(src);
  }

 private:
  static GstPadProbeReturn on_input(GstPad *, GstPadProbeInfo *info, gpointer data) {
    auto *self = static_cast<TimestampRepair *>(data);
    GstBuffer *buf = gst_pad_probe_info_get_buffer(info);
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->pending_.emplace_back(GST_BUFFER_PTS(buf), GST_BUFFER_DURATION(buf));
    return GST_PAD_PROBE_OK;
  }

  static GstPadProbeReturn on_output(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
    auto *self = static_cast<TimestampRepair *>(data);
    GstClockTime pts, duration;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      if (self->pending_.empty()) return GST_PAD_PROBE_OK;
      std::tie(pts, duration) = self->pending_.front();
      self->pending_.pop_front();
    }
    if (!GST_CLOCK_TIME_IS_VALID(pts)) return GST_PAD_PROBE_OK;
    GstClockTime out_pts = pts;
    GstElement *encoder = gst_pad_get_parent_element(pad);
    GstPad *sink = gst_element_get_static_pad(encoder, "sink");
    GstEvent *in_event = gst_pad_get_sticky_event(sink, GST_EVENT_SEGMENT, 0);
    GstEvent *out_event = gst_pad_get_sticky_event(pad, GST_EVENT_SEGMENT, 0);
    if (in_event != nullptr && out_event != nullptr) {
      const GstSegment *in_seg, *out_seg;
      gst_event_parse_segment(in_event, &in_seg);
      gst_event_parse_segment(out_event, &out_seg);
      const guint64 running = gst_segment_to_running_time(in_seg, GST_FORMAT_TIME, pts);
      out_pts = gst_segment_position_from_running_time(out_seg, GST_FORMAT_TIME, running);
    }
    if (in_event != nullptr) gst_event_unref(in_event);
    if (out_event != nullptr) gst_event_unref(out_event);
    gst_object_unref(sink);
    gst_object_unref(encoder);
    GstBuffer *buf = gst_buffer_make_writable(gst_pad_probe_info_get_buffer(info));
    GST_BUFFER_PTS(buf) = out_pts;
    GST_BUFFER_DTS(buf) = out_pts;
    GST_BUFFER_DURATION(buf) = duration;
    GST_PAD_PROBE_INFO_DATA(info) = buf;
    return GST_PAD_PROBE_OK;
  }

  std::mutex mutex_;
  std::deque<std::pair<GstClockTime, GstClockTime>> pending_;
};

}  // namespace

std::string to_string(VideoCodec codec) {
  switch (codec) {
    case VideoCodec::kMjpegAvi: return "mjpeg-avi";
    case VideoCodec::kMpeg4Mp4: return "mpeg4-mp4";
    case VideoCodec::kVp8Webm: return "vp8-webm";
  }
  return "mjpeg-avi";
}

VideoCodec video_codec_from_string(const std::string &name) {
  for (auto c : {VideoCodec::kMjpegAvi, VideoCodec::kMpeg4Mp4, VideoCodec::kVp8Webm}) {
    if (name == to_string(c)) return c;
  }
  throw std::invalid_argument("unknown video codec '" + name +
                              "' (expected mjpeg-avi, mpeg4-mp4 or vp8-webm)");
}

std::string file_extension(VideoCodec codec) {
  switch (codec) {
    case VideoCodec::kMjpegAvi: return ".avi";
    case VideoCodec::kMpeg4Mp4: return ".mp4";
    case VideoCodec::kVp8Webm: return ".webm";
  }
  return ".avi";
}

// The encoder's input rows end in alignment padding that videoconvert leaves as allocated, and
// jpegenc hands libjpeg whole 8x8 blocks (raw-data mode, no edge expansion of its own): where a
// plane's width is not a multiple of 8, the last block column was encoded with whatever the
// heap held, so the same frames gave other files and other decoded pixels from run to run. The
// padding gets each row's last sample again, as libjpeg's own edge expansion would give it.
GstPadProbeReturn extend_right_edges(GstPad *, GstPadProbeInfo *info, gpointer user_data) {
  const auto *vinfo = static_cast<const GstVideoInfo *>(user_data);
  GstBuffer *buffer = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
  GST_PAD_PROBE_INFO_DATA(info) = buffer;
  GstVideoFrame frame;
  if (!gst_video_frame_map(&frame, const_cast<GstVideoInfo *>(vinfo), buffer, GST_MAP_WRITE))
    return GST_PAD_PROBE_OK;  // the encoder will say what is wrong with the buffer
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(&frame); ++p) {
    auto *data = static_cast<uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, p));
    const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, p);
    const int width = GST_VIDEO_FRAME_COMP_WIDTH(&frame, p);
    for (int y = 0; y < GST_VIDEO_FRAME_COMP_HEIGHT(&frame, p); ++y) {
      uint8_t *row = data + static_cast<size_t>(y) * stride;
      std::memset(row + width, row[width - 1], stride - width);
    }
  }
  gst_video_frame_unmap(&frame);
  return GST_PAD_PROBE_OK;
}

struct VideoWriter::Impl {
  std::string path;
  GstVideoInfo info;  // the RGB frames we push
  GstVideoInfo i420;  // what the encoder gets
  GstElement *pipeline = nullptr;
  GstAppSrc *src = nullptr;  // owned by the pipeline
  GstBus *bus = nullptr;
  int64_t frames = 0;
  bool finished = false;
  TimestampRepair repair;  // mpeg4 only; outlives the pipeline (stop() in the destructor)

  ~Impl() { stop(); }

  void stop() { detail::release_pipeline(pipeline, bus); }

  [[noreturn]] void fail(const std::string &what) const {
    throw std::runtime_error("cannot write " + path + ": " + what);
  }
};

VideoWriter::VideoWriter(const std::string &path, VideoCodec codec, int width, int height,
                         int fps_n, int fps_d)
    : impl_(std::make_unique<Impl>()) {
  Impl &d = *impl_;
  d.path = path;
  if (width < 1 || height < 1) d.fail("frame size must be positive");
  if (fps_n < 1 || fps_d < 1) d.fail("frame rate must be positive");
  detail::ensure_gst_initialized();
  const CodecElements ce = elements_of(codec);
  for (const char *factory : {"appsrc", "videoconvert", "capsfilter", ce.encoder, ce.muxer,
                              "filesink"}) {
    if (!detail::have_element(factory)) {
      d.fail(std::string("GStreamer element '") + factory + "' is not installed (" + ce.package +
             ")");
    }
  }
  gst_video_info_set_format(&d.info, GST_VIDEO_FORMAT_RGB, width, height);
  GST_VIDEO_INFO_FPS_N(&d.info) = fps_n;
  GST_VIDEO_INFO_FPS_D(&d.info) = fps_d;

  d.pipeline = gst_pipeline_new("vidcls-video-writer");
  GstElement *src = gst_element_factory_make("appsrc", nullptr);
  GstElement *convert = gst_element_factory_make("videoconvert", nullptr);
  GstElement *filter = gst_element_factory_make("capsfilter", nullptr);
  GstElement *encoder = gst_element_factory_make(ce.encoder, nullptr);
  GstElement *muxer = gst_element_factory_make(ce.muxer, nullptr);
  GstElement *sink = gst_element_factory_make("filesink", nullptr);
  gst_bin_add_many(GST_BIN(d.pipeline), src, convert, filter, encoder, muxer, sink, nullptr);
  d.src = GST_APP_SRC(src);
  d.bus = gst_element_get_bus(d.pipeline);

  GstCaps *caps = gst_video_info_to_caps(&d.info);
  g_object_set(src, "caps", caps, "format", GST_FORMAT_TIME, "is-live", FALSE, "block", FALSE,
               "max-bytes", static_cast<guint64>(kMaxQueuedBytes), nullptr);
  gst_caps_unref(caps);
  // 4:2:0 as cameras and the real datasets store it. JPEG's YCbCr is full range (JFIF, and
  // jpegdec reports 1:4:0:0): given the default limited-range I420, jpegenc would store it as
  // it is and every decoded colour would come back with its contrast reduced by 219/255.
  GstCaps *i420 = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "I420", nullptr);
  if (codec == VideoCodec::kMjpegAvi) {
    gst_caps_set_simple(i420, "colorimetry", G_TYPE_STRING, "1:4:0:0", "chroma-site",
                        G_TYPE_STRING, "jpeg", nullptr);
  }
  g_object_set(filter, "caps", i420, nullptr);
  gst_caps_unref(i420);
  gst_video_info_set_format(&d.i420, GST_VIDEO_FORMAT_I420, width, height);
  GstPad *encoder_input = gst_element_get_static_pad(filter, "src");
  gst_pad_add_probe(encoder_input, GST_PAD_PROBE_TYPE_BUFFER, extend_right_edges, &d.i420,
                    nullptr);
  gst_object_unref(encoder_input);
  if (codec == VideoCodec::kMpeg4Mp4) {
    // A constant quantiser: the rate control of this avenc_mpeg4 starves every frame after the
    // first key frame (the broken timestamps, see TimestampRepair, are a likely cause).
    gst_util_set_object_arg(G_OBJECT(encoder), "pass", "quant");
    g_object_set(encoder, "quantizer", 4.0f, "max-bframes", 0, nullptr);
    d.repair.attach(encoder);
  } else if (codec == VideoCodec::kVp8Webm) {
    // Enough bits that small frames keep their edges (~0.5 bit per pixel); the realtime
    // deadline, as vp8enc's default of one second per frame is 7x slower for no visible gain.
    const double pixels_per_s = static_cast<double>(width) * height * fps_n / fps_d;
    const int bitrate = static_cast<int>(std::clamp(0.5 * pixels_per_s, 400e3, 20e6));
    g_object_set(encoder, "target-bitrate", bitrate, "deadline", static_cast<gint64>(1), nullptr);
  }
  g_object_set(sink, "location", path.c_str(), nullptr);
  if (!gst_element_link_many(src, convert, filter, encoder, muxer, sink, nullptr)) {
    d.fail(std::string("cannot link ") + ce.encoder + " ! " + ce.muxer);
  }
  if (gst_element_set_state(d.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    std::string err = detail::pop_error(d.bus);
    d.fail(err.empty() ? "the pipeline did not start" : err);
  }
}

VideoWriter::~VideoWriter() = default;

void VideoWriter::write(const uint8_t *rgb, int64_t row_stride) {
  Impl &d = *impl_;
  if (d.finished) d.fail("write() after finish()");
  const int width = GST_VIDEO_INFO_WIDTH(&d.info), height = GST_VIDEO_INFO_HEIGHT(&d.info);
  GstBuffer *buffer = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&d.info), nullptr);
  GstMapInfo map;
  gst_buffer_map(buffer, &map, GST_MAP_WRITE);
  // GStreamer's RGB rows are 4-byte aligned; ours are packed.
  const int stride = GST_VIDEO_INFO_PLANE_STRIDE(&d.info, 0);
  for (int y = 0; y < height; ++y) {
    std::memcpy(map.data + static_cast<size_t>(y) * stride, rgb + y * row_stride, width * 3);
  }
  gst_buffer_unmap(buffer, &map);
  const guint64 fps_n = GST_VIDEO_INFO_FPS_N(&d.info), fps_d = GST_VIDEO_INFO_FPS_D(&d.info);
  const GstClockTime pts = gst_util_uint64_scale(d.frames, fps_d * GST_SECOND, fps_n);
  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DURATION(buffer) = gst_util_uint64_scale(d.frames + 1, fps_d * GST_SECOND, fps_n) - pts;
  const GstFlowReturn ret = gst_app_src_push_buffer(d.src, buffer);  // takes the buffer
  std::string err = detail::pop_error(d.bus);
  if (ret != GST_FLOW_OK && err.empty()) err = detail::pop_error(d.bus, GST_SECOND);
  if (ret != GST_FLOW_OK && err.empty()) err = gst_flow_get_name(ret);
  while (err.empty() && gst_app_src_get_current_level_bytes(d.src) > kMaxQueuedBytes / 2) {
    err = detail::pop_error(d.bus, 10 * GST_MSECOND);
  }
  if (!err.empty()) d.fail(err);
  ++d.frames;
}

void VideoWriter::write(const torch::Tensor &rgb_hwc_u8) {
  const Impl &d = *impl_;
  TORCH_CHECK(rgb_hwc_u8.dim() == 3 && rgb_hwc_u8.size(2) == 3 &&
                  rgb_hwc_u8.scalar_type() == torch::kUInt8 && rgb_hwc_u8.device().is_cpu(),
              "VideoWriter::write: expected a CPU uint8 [H, W, 3] tensor, got ",
              rgb_hwc_u8.sizes(), " ", rgb_hwc_u8.scalar_type());
  TORCH_CHECK(rgb_hwc_u8.size(0) == GST_VIDEO_INFO_HEIGHT(&d.info) &&
                  rgb_hwc_u8.size(1) == GST_VIDEO_INFO_WIDTH(&d.info),
              "VideoWriter::write: frame is ", rgb_hwc_u8.size(1), "x", rgb_hwc_u8.size(0),
              ", the video ", GST_VIDEO_INFO_WIDTH(&d.info), "x", GST_VIDEO_INFO_HEIGHT(&d.info));
  auto frame = rgb_hwc_u8.contiguous();
  write(frame.data_ptr<uint8_t>(), frame.size(1) * 3);
}

void VideoWriter::finish() {
  Impl &d = *impl_;
  if (d.finished) return;
  if (d.frames == 0) d.fail("no frames written");
  gst_app_src_end_of_stream(d.src);
  GstMessage *msg = gst_bus_timed_pop_filtered(
      d.bus, 120 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  std::string err;
  if (msg == nullptr) {
    err = "timed out waiting for the muxer to finish";
  } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    err = detail::error_text(msg);
  }
  if (msg != nullptr) gst_message_unref(msg);
  d.stop();
  d.finished = true;
  if (!err.empty()) d.fail(err);
}

}  // namespace vidcls::train
