// The C++ half of the preprocessing parity test (test_preprocess.py is the other): plays a video
// through the live path, filesrc ! decodebin ! videoconvert ! vidclsclipper ! vidclsinfer, and
// writes what the clipper saw and what it cut, for comparison with the publisher's transforms.
//
//   clip_dump --plugin-dir DIR --video FILE --model CKPT --clips N --out OUT
//
// OUT (safetensors): "frames" [F, H, W, 3] uint8, the RGB frames that reached the clipper, with
// "frame_pts" [F] (ns); "clip_<k>" [T, 3, h, w] float32, the first N clips as the clipper put
// them on the buffers for vidclsinfer, with "clip_start" [N] (ns, the PTS of each clip's first
// frame). The clipper takes its clip spec from the checkpoint, through vidclsinfer.
#include <gst/gst.h>
#include <gst/video/video.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "gstvidclsclip.h"
#include "vidcls/clip_record.h"
#include "vidcls/safetensors.h"

namespace {

struct Dump {
  std::vector<torch::Tensor> frames;
  std::vector<int64_t> frame_pts;
  std::vector<torch::Tensor> clips;
  std::vector<int64_t> clip_start;
  size_t max_clips = 1;
};

GstPadProbeReturn on_frame(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  auto *dump = static_cast<Dump *>(data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  GstCaps *caps = gst_pad_get_current_caps(pad);
  GstVideoInfo vinfo;
  const bool ok = caps && gst_video_info_from_caps(&vinfo, caps);
  if (caps) gst_caps_unref(caps);
  GstVideoFrame frame;
  if (!ok || !gst_video_frame_map(&frame, &vinfo, buf, GST_MAP_READ)) return GST_PAD_PROBE_OK;
  const int64_t w = GST_VIDEO_FRAME_WIDTH(&frame), h = GST_VIDEO_FRAME_HEIGHT(&frame);
  const int64_t stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
  auto rgb = torch::from_blob(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0), {h, w, 3}, {stride, 3, 1},
                              torch::kUInt8)
                 .clone();
  gst_video_frame_unmap(&frame);
  dump->frames.push_back(rgb);
  dump->frame_pts.push_back(static_cast<int64_t>(GST_BUFFER_PTS(buf)));
  return GST_PAD_PROBE_OK;
}

// The plugin registers the clip meta; this program loads the plugin rather than linking it, so
// the meta's API type is looked up by name (its layout is the header's).
GstPadProbeReturn on_clip(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *dump = static_cast<Dump *>(data);
  const GType api = g_type_from_name("GstVidclsClipMetaAPI");
  gpointer state = nullptr;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  while (GstMeta *m = api ? gst_buffer_iterate_meta_filtered(buf, &state, api) : nullptr) {
    auto *meta = reinterpret_cast<GstVidclsClipMeta *>(m);
    if (dump->clips.size() >= dump->max_clips) break;
    dump->clips.push_back(meta->clip->to(torch::kCPU).clone());
    dump->clip_start.push_back(static_cast<int64_t>(meta->record->start));
  }
  return GST_PAD_PROBE_OK;
}

int play(const std::map<std::string, std::string> &args, Dump &dump) {
  const std::string launch = "filesrc location=\"" + args.at("video") +
                             "\" ! decodebin ! videoconvert ! video/x-raw,format=RGB ! "
                             "vidclsclipper name=clipper ! vidclsinfer model=\"" +
                             args.at("model") + "\" ! fakesink";
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(launch.c_str(), &error);
  if (!pipeline) {
    std::fprintf(stderr, "clip_dump: %s\n", error ? error->message : "cannot build the pipeline");
    return 1;
  }
  GstElement *clipper = gst_bin_get_by_name(GST_BIN(pipeline), "clipper");
  GstPad *sink = gst_element_get_static_pad(clipper, "sink");
  GstPad *src = gst_element_get_static_pad(clipper, "src");
  gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_BUFFER, on_frame, &dump, nullptr);
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_clip, &dump, nullptr);
  gst_object_unref(sink);
  gst_object_unref(src);
  gst_object_unref(clipper);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered(
      bus, GST_CLOCK_TIME_NONE, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  int rc = 0;
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gst_message_parse_error(msg, &err, nullptr);
    std::fprintf(stderr, "clip_dump: %s\n", err->message);
    g_error_free(err);
    rc = 1;
  }
  gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return rc;
}

}  // namespace

int main(int argc, char **argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) args[std::string(argv[i]).substr(2)] = argv[i + 1];
  for (const char *need : {"plugin-dir", "video", "model", "clips", "out"}) {
    if (!args.count(need)) {
      std::fprintf(stderr,
                   "usage: clip_dump --plugin-dir DIR --video FILE --model CKPT --clips N "
                   "--out OUT\n");
      return 2;
    }
  }
  setenv("GST_PLUGIN_PATH", args["plugin-dir"].c_str(), 1);
  gst_init(nullptr, nullptr);
  Dump dump;
  dump.max_clips = std::stoul(args["clips"]);
  if (int rc = play(args, dump)) return rc;
  if (dump.clips.size() < dump.max_clips) {
    std::fprintf(stderr, "clip_dump: %zu clips, %zu wanted\n", dump.clips.size(), dump.max_clips);
    return 1;
  }
  vidcls::NamedTensors out = {{"frames", torch::stack(dump.frames)},
                              {"frame_pts", torch::tensor(dump.frame_pts, torch::kInt64)},
                              {"clip_start", torch::tensor(dump.clip_start, torch::kInt64)}};
  for (size_t k = 0; k < dump.clips.size(); ++k) {
    out.emplace_back("clip_" + std::to_string(k), dump.clips[k]);
  }
  vidcls::write_safetensors(args["out"], out, {});
  std::printf("clip_dump: %zu frames, %zu clips of %s\n", dump.frames.size(), dump.clips.size(),
              c10::str(dump.clips[0].sizes()).c_str());
  return 0;
}
