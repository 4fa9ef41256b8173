#include "vidcls/train/video_reader.h"

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>

#include "gst_util.h"
#include "vidcls/errors.h"

namespace vidcls::train {

namespace {

// How long a pull waits before looking at the bus for an error.
constexpr GstClockTime kPollInterval = 20 * GST_MSECOND;
// Time to the first frame after which a pull-mode pipeline is taken for stuck (see next()).
constexpr GstClockTime kPullModeGrace = 2 * GST_SECOND;
// A decoder that produces nothing and reports nothing for this long is treated as stuck.
constexpr GstClockTime kStallTimeout = 60 * GST_SECOND;

}  // namespace

struct VideoReader::Impl {
  std::string path;
  GstElement *pipeline = nullptr;
  GstElement *convert = nullptr;  // owned by the pipeline; where decodebin's video pad goes
  GstAppSink *sink = nullptr;     // owned by the pipeline
  GstBus *bus = nullptr;
  std::atomic<bool> linked{false};
  std::mutex mutex;
  std::string undecodable;  // streams decodebin found no decoder for, guarded by mutex
  double fps = 0;
  int64_t width = 0, height = 0, frames = 0;
  bool ended = false;
  bool push_mode = false;  // a queue before decodebin (see next())

  ~Impl() { stop(); }

  void stop() { detail::release_pipeline(pipeline, bus); }

  [[noreturn]] void fail(const std::string &what) const {
    throw vidcls::FormatError(path + ": " + what);
  }

  [[noreturn]] void fail_decoding(const std::string &gst_error) {
    std::string what = "cannot decode: " + gst_error;
    std::lock_guard<std::mutex> lock(mutex);
    if (!undecodable.empty()) what += "; no decoder for " + undecodable;
    fail(what);
  }

  // Builds and starts filesrc ! [queue !] decodebin ! videoconvert ! appsink.
  void open(bool push);
  VideoFrame copy_frame(GstSample *sample);

  // decodebin signals, from its streaming threads.
  static void on_pad_added(GstElement *, GstPad *pad, gpointer data) {
    auto *impl = static_cast<Impl *>(data);
    GstCaps *caps = gst_pad_get_current_caps(pad);
    if (caps == nullptr) caps = gst_pad_query_caps(pad, nullptr);
    const bool raw_video = caps != nullptr && !gst_caps_is_empty(caps) &&
                           gst_structure_has_name(gst_caps_get_structure(caps, 0), "video/x-raw");
    gst_clear_caps(&caps);
    // Audio, subtitles and any second video stream stay unlinked; demuxers go on while one
    // stream is linked.
    if (!raw_video || impl->linked) return;
    GstPad *sink = gst_element_get_static_pad(impl->convert, "sink");
    if (gst_pad_link(pad, sink) == GST_PAD_LINK_OK) impl->linked = true;
    gst_object_unref(sink);
  }

  static void on_unknown_type(GstElement *, GstPad *, GstCaps *caps, gpointer data) {
    auto *impl = static_cast<Impl *>(data);
    gchar *text = gst_caps_to_string(caps);
    std::lock_guard<std::mutex> lock(impl->mutex);
    if (!impl->undecodable.empty()) impl->undecodable += ", ";
    impl->undecodable += text;
    g_free(text);
  }

  static void on_no_more_pads(GstElement *decodebin, gpointer data) {
    auto *impl = static_cast<Impl *>(data);
    if (impl->linked) return;
    GError *err = g_error_new_literal(GST_STREAM_ERROR, GST_STREAM_ERROR_WRONG_TYPE,
                                      "the file has no video stream");
    gst_element_post_message(decodebin, gst_message_new_error(GST_OBJECT(decodebin), err, nullptr));
    g_error_free(err);
  }
};

VideoReader::VideoReader(const std::string &path) : impl_(std::make_unique<Impl>()) {
  Impl &d = *impl_;
  d.path = path;
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) d.fail("no such file");
  if (std::filesystem::is_directory(status)) d.fail("is a directory, not a video file");

  detail::ensure_gst_initialized();
  for (const char *factory : {"filesrc", "queue", "decodebin", "videoconvert", "appsink"}) {
    if (!detail::have_element(factory)) {
      throw std::runtime_error(std::string("GStreamer element '") + factory +
                               "' is not installed (gstreamer1.0-plugins-base)");
    }
  }
  d.open(false);
}

void VideoReader::Impl::open(bool push) {
  push_mode = push;
  linked = false;
  {
    std::lock_guard<std::mutex> lock(mutex);
    undecodable.clear();
  }
  pipeline = gst_pipeline_new("vidcls-video-reader");
  GstElement *src = gst_element_factory_make("filesrc", nullptr);
  GstElement *decode = gst_element_factory_make("decodebin", nullptr);
  convert = gst_element_factory_make("videoconvert", nullptr);
  GstElement *appsink = gst_element_factory_make("appsink", nullptr);
  gst_bin_add_many(GST_BIN(pipeline), src, decode, convert, appsink, nullptr);
  sink = GST_APP_SINK(appsink);
  bus = gst_element_get_bus(pipeline);

  g_object_set(src, "location", path.c_str(), nullptr);
  GstCaps *rgb = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "RGB", nullptr);
  // A few decoded frames in flight at most; the decoder waits for the caller.
  g_object_set(appsink, "caps", rgb, "sync", FALSE, "max-buffers", 4, "drop", FALSE,
               "enable-last-sample", FALSE, nullptr);
  gst_caps_unref(rgb);
  bool ok = gst_element_link(convert, appsink);
  if (push) {
    GstElement *queue = gst_element_factory_make("queue", nullptr);
    gst_bin_add(GST_BIN(pipeline), queue);
    ok = ok && gst_element_link_many(src, queue, decode, nullptr);
  } else {
    ok = ok && gst_element_link(src, decode);
  }
  if (!ok) fail("cannot link the decoding pipeline");
  g_signal_connect(decode, "pad-added", G_CALLBACK(Impl::on_pad_added), this);
  g_signal_connect(decode, "unknown-type", G_CALLBACK(Impl::on_unknown_type), this);
  g_signal_connect(decode, "no-more-pads", G_CALLBACK(Impl::on_no_more_pads), this);

  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    std::string err = detail::pop_error(bus, GST_SECOND);
    fail_decoding(err.empty() ? "the pipeline did not start" : err);
  }
}

VideoReader::~VideoReader() = default;

const std::string &VideoReader::path() const { return impl_->path; }
double VideoReader::fps() const { return impl_->fps; }
int64_t VideoReader::frames_read() const { return impl_->frames; }

std::optional<VideoFrame> VideoReader::next() {
  Impl &d = *impl_;
  if (d.ended) return std::nullopt;
  GstClockTime waited = 0;
  while (true) {
    GstSample *sample = gst_app_sink_try_pull_sample(d.sink, kPollInterval);
    if (sample != nullptr) return d.copy_frame(sample);
    std::string err = detail::pop_error(d.bus);
    if (err.empty() && gst_app_sink_is_eos(d.sink)) {
      // An element that fails posts its error before the end-of-stream it sends downstream.
      err = detail::pop_error(d.bus);
      if (err.empty()) {
        d.ended = true;
        d.stop();
        return std::nullopt;
      }
    }
    if (!err.empty()) d.fail_decoding(err);
    waited += kPollInterval;
    // decodebin reads in pull mode, as in `filesrc ! decodebin`. A demuxer that fails on the
    // header at once (a truncated file) fails while decodebin is still trying it, and decodebin
    // (1.22) drops the errors of elements on trial: no error, no pad, nothing ever comes. So a
    // first frame that is late starts the file again in push mode (a queue in front), where
    // the demuxer fails after the trial and its error is posted. Same demuxer, decoder and
    // converter, same frames; pull mode stays the default because push mode has a rare stall
    // of its own (a serialized query in the queue during qtdemux's seek to the moov).
    if (d.frames == 0 && !d.push_mode && waited >= kPullModeGrace) {
      d.stop();
      d.open(true);
      waited = 0;
      continue;
    }
    if (waited >= kStallTimeout) {
      d.fail("decoding stalled: no frame, error or end of stream in " +
             std::to_string(kStallTimeout / GST_SECOND) + " s");
    }
  }
}

VideoFrame VideoReader::Impl::copy_frame(GstSample *sample) {
  std::unique_ptr<GstSample, decltype(&gst_sample_unref)> guard(sample, gst_sample_unref);
  GstVideoInfo info;
  GstCaps *caps = gst_sample_get_caps(sample);
  GstBuffer *buffer = gst_sample_get_buffer(sample);
  if (caps == nullptr || buffer == nullptr || !gst_video_info_from_caps(&info, caps)) {
    fail("the decoder produced a frame without video caps");
  }
  const int64_t w = GST_VIDEO_INFO_WIDTH(&info), h = GST_VIDEO_INFO_HEIGHT(&info);
  if (frames == 0) {
    width = w;
    height = h;
    fps = GST_VIDEO_INFO_FPS_N(&info) > 0 && GST_VIDEO_INFO_FPS_D(&info) > 0
              ? static_cast<double>(GST_VIDEO_INFO_FPS_N(&info)) / GST_VIDEO_INFO_FPS_D(&info)
              : 0.0;
  } else if (w != width || h != height) {
    fail("the frame size changes from " + std::to_string(width) + "x" + std::to_string(height) +
         " to " + std::to_string(w) + "x" + std::to_string(h) + " at frame " +
         std::to_string(frames));
  }
  GstVideoFrame vframe;
  if (!gst_video_frame_map(&vframe, &info, buffer, GST_MAP_READ)) {
    fail("cannot map decoded frame " + std::to_string(frames));
  }
  VideoFrame out;
  out.rgb = torch::empty({h, w, 3}, torch::kUInt8);
  // Rows of the decoder's buffers may be padded (RGB rows are 4-byte aligned).
  const auto *src = static_cast<const uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&vframe, 0));
  const int src_stride = GST_VIDEO_FRAME_PLANE_STRIDE(&vframe, 0);
  auto *dst = out.rgb.data_ptr<uint8_t>();
  for (int64_t y = 0; y < h; ++y) std::memcpy(dst + y * w * 3, src + y * src_stride, w * 3);
  gst_video_frame_unmap(&vframe);
  out.pts_ns = GST_BUFFER_PTS_IS_VALID(buffer) ? static_cast<int64_t>(GST_BUFFER_PTS(buffer)) : -1;
  out.duration_ns =
      GST_BUFFER_DURATION_IS_VALID(buffer) ? static_cast<int64_t>(GST_BUFFER_DURATION(buffer)) : -1;
  ++frames;
  return out;
}

DecodedVideo decode_video(const std::string &path, int max_frames) {
  VideoReader reader(path);
  DecodedVideo out;
  std::vector<uint8_t> data;
  int64_t n = 0, h = 0, w = 0;
  while (max_frames <= 0 || n < max_frames) {
    auto frame = reader.next();
    if (!frame) break;
    if (n == 0) {
      h = frame->rgb.size(0);
      w = frame->rgb.size(1);
      if (max_frames > 0) data.reserve(static_cast<size_t>(max_frames) * h * w * 3);
    }
    const auto *p = frame->rgb.data_ptr<uint8_t>();
    data.insert(data.end(), p, p + h * w * 3);
    out.pts_ns.push_back(frame->pts_ns);
    out.duration_ns.push_back(frame->duration_ns);
    ++n;
  }
  if (n == 0) throw vidcls::FormatError(path + ": the video stream has no frames");
  out.fps = reader.fps();
  auto *store = new std::vector<uint8_t>(std::move(data));
  out.frames = torch::from_blob(
      store->data(), {n, h, w, 3}, [store](void *) { delete store; }, torch::kUInt8);
  return out;
}

}  // namespace vidcls::train
