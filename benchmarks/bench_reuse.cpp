// Dense classification with tubelet reuse: clips/s of vividinfer at a hop of one tubelet (2
// sampled frames) with reuse on and off, in one run, and how much of a live source one instance
// keeps up with.
//
// Files: renders the frames once (videotestsrc, 320x240 I420, in memory), then pushes them
// through `appsrc ! vidclsclipper clip-stride=HOP ! vividinfer mode=sync reuse=R ! fakesink` as
// fast as they go, from PLAYING to EOS (the model loads and warms up before). Exactly N clips
// (no end-of-stream clip). Prints clips/s, ms of inference per clip (the element's mean-latency)
// and the tubelets computed and reused per clip; the speed-up is clips/s on over off. With reuse
// on the first clip computes all its tubelets and each later one a new tubelet.
// Keeping up: a clip every HOP sampled frames costs its steady-state inference time (with reuse
// on: the run's mean without its first clip, which computes all its tubelets), so one instance
// keeps up with a source of HOP x frame-stride / that time frames/s; printed for
// vivit-b16x2-fe. Then live runs confirm it: `videotestsrc is-live=true` at 30 fps and at
// --live-fps, 224x224, through the same elements in async mode (the default for live sources: a
// clip the model cannot take yet is dropped, the oldest first), S seconds each; printed: clips
// classified and dropped, and dropped in the second half (none: it keeps up once warm).
//
// Random weights (speed does not depend on them). vivit-xs runs with the tubelet-local input
// "tubelet-normal-flow": its preset's "normal-flow" looks at the whole clip and is never reused.
//
//   bench-reuse --plugin-dir DIR [--presets vivit-b16x2-fe,vivit-xs,mini-vivit-ti] [--hop 2]
//               [--clips-off 4] [--clips-on 48] [--live-seconds 30] [--live-fps 10]
#include <gst/gst.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <torch/utils.h>

#include "bench_frames.h"
#include "vidcls/checkpoint.h"
#include "vidcls/registry.h"
#include "vidcls/runtime.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string plugin_dir;
  std::vector<std::string> presets = {"vivit-b16x2-fe", "vivit-xs", "mini-vivit-ti"};
  int hop = 2;
  int clips_off = 4, clips_on = 48;
  double live_seconds = 30;
  double live_fps = 10;
};

// A checkpoint of `preset` with random weights (vivit-xs on its tubelet-local input).
std::string make_checkpoint(const fs::path &dir, const std::string &preset) {
  const auto path = (dir / (preset + ".safetensors")).string();
  auto cfg = vidcls::preset_config(preset, 0);
  if (cfg.at("input_transform") != "none") cfg["input_transform"] = "tubelet-normal-flow";
  torch::manual_seed(1);
  auto model = vidcls::make_model(vidcls::find_preset(preset).architecture, cfg);
  vidcls::CheckpointInfo info;
  info.preset = preset;
  info.clip = vidcls::find_preset(preset).clip;
  for (int64_t i = 0; i < model->num_classes(); ++i) info.labels.push_back("c" + std::to_string(i));
  vidcls::save_checkpoint(path, *model, info);
  return path;
}

struct Stats {
  guint64 classified = 0, dropped = 0, computed = 0, reused = 0;
  double latency_ms = 0, delay_ms = 0;
};

Stats stats_of(GstElement *pipeline) {
  GstElement *infer = gst_bin_get_by_name(GST_BIN(pipeline), "infer");
  GstStructure *s = nullptr;
  g_object_get(infer, "stats", &s, nullptr);
  Stats out;
  gst_structure_get_uint64(s, "clips-classified", &out.classified);
  gst_structure_get_uint64(s, "clips-dropped", &out.dropped);
  gst_structure_get_uint64(s, "features-computed", &out.computed);
  gst_structure_get_uint64(s, "features-reused", &out.reused);
  gst_structure_get_double(s, "mean-latency", &out.latency_ms);
  gst_structure_get_double(s, "mean-delay", &out.delay_ms);
  gst_structure_free(s);
  gst_object_unref(infer);
  return out;
}

// Waits for EOS or an error (false).
bool wait_eos(GstElement *pipeline, GstClockTime timeout = GST_CLOCK_TIME_NONE) {
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered(
      bus, timeout, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  bool ok = msg != nullptr && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS;
  if (msg != nullptr && !ok) {
    GError *err = nullptr;
    gst_message_parse_error(msg, &err, nullptr);
    std::fprintf(stderr, "pipeline error: %s\n", err->message);
    g_error_free(err);
  }
  if (msg != nullptr) gst_message_unref(msg);
  gst_object_unref(bus);
  return ok;
}

// The file case: the first `frames` of `source` through the pipeline; seconds PLAYING to EOS.
double run_file(const std::string &model, int hop, bool reuse,
                const std::vector<GstBuffer *> &source, size_t frames, Stats &stats) {
  const std::string desc =
      "appsrc name=src format=time max-bytes=0 "
      "caps=video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! "
      "vidclsclipper clip-stride=" +
      std::to_string(hop) +
      " ! vividinfer name=infer mode=sync reuse=" + (reuse ? "true" : "false") + " model=" + model +
      " ! fakesink";
  GstElement *pipeline = gst_parse_launch(desc.c_str(), nullptr);
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  gst_element_set_state(pipeline, GST_STATE_PAUSED);
  for (size_t i = 0; i < frames; ++i) {
    GstFlowReturn ret = GST_FLOW_OK;
    g_signal_emit_by_name(src, "push-buffer", source[i], &ret);
  }
  GstFlowReturn ret = GST_FLOW_OK;
  g_signal_emit_by_name(src, "end-of-stream", &ret);
  gst_object_unref(src);
  gst_element_get_state(pipeline, nullptr, nullptr, GST_CLOCK_TIME_NONE);
  const auto t0 = Clock::now();
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  const bool ok = wait_eos(pipeline);
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  stats = stats_of(pipeline);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return ok ? seconds : -1;
}

// The live case: `seconds` of a live `fps` 224x224 source; `half` holds the statistics halfway.
Stats run_live(const std::string &model, int hop, bool reuse, int fps, double seconds,
               Stats &half) {
  const std::string desc =
      "videotestsrc is-live=true pattern=ball num-buffers=" + std::to_string(int(seconds * fps)) +
      " ! video/x-raw,format=I420,width=224,height=224,framerate=" + std::to_string(fps) +
      "/1 ! vidclsclipper clip-stride=" + std::to_string(hop) +
      " ! vividinfer name=infer reuse=" + (reuse ? "true" : "false") + " model=" + model +
      " ! fakesink sync=true";
  GstElement *pipeline = gst_parse_launch(desc.c_str(), nullptr);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  g_usleep(static_cast<gulong>(seconds / 2 * G_USEC_PER_SEC));
  half = stats_of(pipeline);
  wait_eos(pipeline, static_cast<GstClockTime>((seconds + 120) * GST_SECOND));
  const Stats s = stats_of(pipeline);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return s;
}

// Clips/s with reuse off and on. A case that ran under 2 s runs again with clips enough for
// about 3 s, so that start and end do not dominate.
// Returns the steady-state ms per clip with reuse off and on.
std::pair<double, double> file_case(const std::string &preset, const std::string &model,
                                    const Options &o) {
  const auto &clip = vidcls::find_preset(preset).clip;
  const int T = clip.frames, stride = clip.frame_stride;
  auto frames_for = [&](int clips) { return size_t(stride) * (T + o.hop * (clips - 1)); };
  double rate[2] = {0, 0}, steady[2] = {0, 0};
  for (bool reuse : {false, true}) {
    int clips = reuse ? o.clips_on : o.clips_off;
    Stats s;
    double sec = 0;
    for (int attempt = 0; attempt < 2; ++attempt) {
      const auto source =
          vidcls_bench::render("video/x-raw,format=I420,width=320,height=240,framerate=30/1",
                               static_cast<int>(frames_for(clips)));
      sec = run_file(model, o.hop, reuse, source, source.size(), s);
      for (GstBuffer *b : source) gst_buffer_unref(b);
      if (sec <= 0 || sec >= 2.0) break;
      clips = std::min(20000, static_cast<int>(clips * 3.0 / std::max(sec, 1e-3)));
    }
    rate[reuse] = sec > 0 ? s.classified / sec : 0;
    // with reuse on, the first clip computed every tubelet: what a clip costs without reuse
    steady[reuse] = reuse && s.classified > 1
                        ? (s.latency_ms * s.classified - steady[0]) / (s.classified - 1)
                        : s.latency_ms;
    std::printf(
        "%-16s hop %d reuse %-3s %5llu clips in %6.2f s: %8.2f clips/s, %8.1f ms "
        "inference per clip, tubelets per clip %.2f computed, %.2f reused\n",
        preset.c_str(), o.hop, reuse ? "on" : "off", static_cast<unsigned long long>(s.classified),
        sec, rate[reuse], s.latency_ms, double(s.computed) / std::max<guint64>(s.classified, 1),
        double(s.reused) / std::max<guint64>(s.classified, 1));
    std::fflush(stdout);
  }
  std::printf("%-16s hop %d: reuse on / off = %.1fx (ideal about %dx, the tubelets per clip)\n",
              preset.c_str(), o.hop, rate[0] > 0 ? rate[1] / rate[0] : 0.0, T / 2);
  const double frames = double(o.hop) * stride;
  std::printf(
      "%-16s hop %d: steady state %.1f ms per clip off, %.1f on: one instance keeps up "
      "with %.2f frames/s off, %.2f on (a clip every %.0f frames)\n",
      preset.c_str(), o.hop, steady[0], steady[1], 1e3 * frames / steady[0],
      1e3 * frames / steady[1], frames);
  std::fflush(stdout);
  return {steady[0], steady[1]};
}

}  // namespace

int main(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    if (a == "--plugin-dir" && has) {
      o.plugin_dir = argv[++i];
    } else if (a == "--presets" && has) {
      o.presets.clear();
      std::stringstream ss(argv[++i]);
      for (std::string p; std::getline(ss, p, ',');) o.presets.push_back(p);
    } else if (a == "--hop" && has) {
      o.hop = std::stoi(argv[++i]);
    } else if (a == "--clips-off" && has) {
      o.clips_off = std::stoi(argv[++i]);
    } else if (a == "--clips-on" && has) {
      o.clips_on = std::stoi(argv[++i]);
    } else if (a == "--live-fps" && has) {
      o.live_fps = std::stod(argv[++i]);
    } else if (a == "--live-seconds" && has) {
      o.live_seconds = std::stod(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: bench-reuse --plugin-dir DIR [--presets A,B] [--hop 2] "
                   "[--clips-off 4] [--clips-on 48] [--live-seconds 30] [--live-fps 10]\n");
      return 2;
    }
  }
  if (!o.plugin_dir.empty()) setenv("GST_PLUGIN_PATH", o.plugin_dir.c_str(), 1);
  gst_init(nullptr, nullptr);
  const int threads = vidcls::configure_runtime();
  const auto tmp = fs::temp_directory_path() / ("vidcls-bench-reuse-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  std::printf(
      "threads %d; file: 320x240 I420 frames from memory, sync mode; hop %d sampled "
      "frames\n",
      threads, o.hop);
  std::string live_model;
  for (const auto &preset : o.presets) {
    const auto model = make_checkpoint(tmp, preset);
    if (preset == "vivit-b16x2-fe") live_model = model;
    file_case(preset, model, o);
  }
  if (o.live_seconds > 0 && !live_model.empty()) {
    for (int fps : {30, static_cast<int>(o.live_fps)}) {
      for (bool reuse : {false, true}) {
        Stats half;
        const Stats s = run_live(live_model, o.hop, reuse, fps, o.live_seconds, half);
        std::printf(
            "live vivit-b16x2-fe 224x224 at %d fps for %.0f s, hop %d, reuse %-3s: %llu "
            "clips classified, %llu dropped (%llu in the second half), mean delay %.0f "
            "ms\n",
            fps, o.live_seconds, o.hop, reuse ? "on" : "off",
            static_cast<unsigned long long>(s.classified),
            static_cast<unsigned long long>(s.dropped),
            static_cast<unsigned long long>(s.dropped - half.dropped), s.delay_ms);
        std::fflush(stdout);
      }
    }
  }
  fs::remove_all(tmp);
  return 0;
}
