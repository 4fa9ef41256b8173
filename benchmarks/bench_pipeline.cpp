// Pipeline throughput against the model alone, on the same clips.
//
// Renders N frames with videotestsrc once, up front (its moving ball costs more per frame than
// vidclsclipper does, and is not ours to count), then for each case pushes them through
// `appsrc ! vidclsclipper ! <infer> mode=sync ! fakesink` (no clock sync: as fast as it goes),
// keeps the clip tensors that reached the sink, and times the model on exactly those clips in a
// plain loop (batch 1). Prints frames/s of the pipeline, the frames/s the model-only time allows,
// and the pipeline's overhead.
// The clipper's own cost is timed inside the same runs, between pad probes on its sink and source
// pads (sync mode: the inference element runs after the source probe), and printed per sampled
// frame.
// For resnetvitinfer the model-only loop runs the full model on every clip (the backbone again
// for every window), so the ratio shows what the feature ring saves (ideal: T / hop).
//
//   bench-pipeline --plugin-dir DIR [--frames N] [--repeats N] [--only PRESET,...]
#include <gst/gst.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/utils.h>

#include "gstvidclsclip.h"
#include "bench_frames.h"
#include "vidcls/checkpoint.h"
#include "vidcls/registry.h"
#include "vidcls/runtime.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Case {
  std::string element;
  std::string preset;
  std::string clipper;  // extra clipper properties
  std::string caps;
};

GstPadProbeReturn keep_clip(GstPad *, GstPadProbeInfo *info, gpointer data) {
  static GType api = g_type_from_name("GstVidclsClipMetaAPI");
  auto *clips = static_cast<std::vector<torch::Tensor> *>(data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (auto *m = reinterpret_cast<GstVidclsClipMeta *>(gst_buffer_get_meta(buf, api))) {
    if (m->clip != nullptr && !m->record->partial) clips->push_back(*m->clip);
  }
  return GST_PAD_PROBE_OK;
}

// Time spent between vidclsclipper's sink and source pads (one streaming thread).
struct ClipperTimer {
  Clock::time_point entered;
  double seconds = 0;
};

GstPadProbeReturn clipper_in(GstPad *, GstPadProbeInfo *, gpointer data) {
  static_cast<ClipperTimer *>(data)->entered = Clock::now();
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn clipper_out(GstPad *, GstPadProbeInfo *, gpointer data) {
  auto *t = static_cast<ClipperTimer *>(data);
  t->seconds += std::chrono::duration<double>(Clock::now() - t->entered).count();
  return GST_PAD_PROBE_OK;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string fmt3(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

struct PipelineRun {
  double seconds = -1;          // PLAYING to EOS; -1 on an error
  double clipper_seconds = 0;   // inside vidclsclipper
  double model_seconds = 0;     // inference inside the pipeline (the element's mean-latency)
  guint64 sampled = 0;          // frames the clipper sampled
};

// Runs `desc` (appsrc "src" ! vidclsclipper name=clipper ... fakesink "sink") on `source`, keeps
// the clips that reached the sink.
PipelineRun run_pipeline(const std::string &desc, const std::vector<GstBuffer *> &source,
                         std::vector<torch::Tensor> &clips) {
  PipelineRun result;
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  if (pipeline == nullptr) {
    std::fprintf(stderr, "%s\n", err->message);
    g_clear_error(&err);
    return result;
  }
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, keep_clip, &clips, nullptr);
  ClipperTimer timer;
  GstElement *clipper = gst_bin_get_by_name(GST_BIN(pipeline), "clipper");
  GstPad *clipper_sink = gst_element_get_static_pad(clipper, "sink");
  GstPad *clipper_src = gst_element_get_static_pad(clipper, "src");
  gst_pad_add_probe(clipper_sink, GST_PAD_PROBE_TYPE_BUFFER, clipper_in, &timer, nullptr);
  gst_pad_add_probe(clipper_src, GST_PAD_PROBE_TYPE_BUFFER, clipper_out, &timer, nullptr);
  // Queue every frame in appsrc, then preroll: the model loads and warms up in start(),
  // outside the timed part (one frame passes, no clip completes).
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  gst_element_set_state(pipeline, GST_STATE_PAUSED);
  for (GstBuffer *b : source) {
    GstFlowReturn ret = GST_FLOW_OK;
    g_signal_emit_by_name(src, "push-buffer", b, &ret);
  }
  GstFlowReturn eos_ret = GST_FLOW_OK;
  g_signal_emit_by_name(src, "end-of-stream", &eos_ret);
  gst_object_unref(src);
  gst_element_get_state(pipeline, nullptr, nullptr, GST_CLOCK_TIME_NONE);
  const auto t0 = Clock::now();
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered(
      bus, GST_CLOCK_TIME_NONE, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  const double t = seconds_since(t0);
  const bool ok = GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS;
  gst_message_unref(msg);
  g_object_get(clipper, "frames-sampled", &result.sampled, nullptr);
  GstElement *infer = gst_bin_get_by_name(GST_BIN(pipeline), "infer");
  guint64 classified = 0;
  double latency_ms = 0;
  GstStructure *stats = nullptr;
  g_object_get(infer, "stats", &stats, nullptr);
  gst_structure_get_uint64(stats, "clips-classified", &classified);
  gst_structure_get_double(stats, "mean-latency", &latency_ms);
  gst_structure_free(stats);
  result.model_seconds = classified * latency_ms / 1e3;
  gst_object_unref(infer);
  result.clipper_seconds = timer.seconds;
  gst_object_unref(clipper_sink);
  gst_object_unref(clipper_src);
  gst_object_unref(clipper);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(pad);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  if (!ok) std::fprintf(stderr, "%s: pipeline error\n", desc.c_str());
  if (ok) result.seconds = t;
  return result;
}

}  // namespace

int main(int argc, char **argv) {
  std::string plugin_dir;
  int frames = 480;
  int repeats = 3;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--plugin-dir" && i + 1 < argc) plugin_dir = argv[++i];
    else if (a == "--frames" && i + 1 < argc) frames = std::atoi(argv[++i]);
    else if (a == "--repeats" && i + 1 < argc) repeats = std::max(1, std::atoi(argv[++i]));
    else if (a == "--only" && i + 1 < argc) only = "," + std::string(argv[++i]) + ",";
  }
  if (plugin_dir.empty()) {
    std::fprintf(stderr, "usage: %s --plugin-dir DIR [--frames N] [--repeats N] [--only P,...]\n",
                 argv[0]);
    return 2;
  }
  const auto tmp = fs::temp_directory_path() / ("vidcls-bench-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  setenv("GST_PLUGIN_PATH", plugin_dir.c_str(), 1);
  setenv("GST_REGISTRY", (tmp / "registry.bin").c_str(), 1);
  gst_init(&argc, &argv);
  const int threads = vidcls::configure_runtime();

  const std::string caps320 = "video/x-raw,format=I420,width=320,height=240,framerate=30/1";
  const std::vector<Case> cases = {
      {"vividinfer", "vivit-xs", "", caps320},
      {"vividinfer", "mini-vivit-seed", "", caps320},
      {"vividinfer", "vivit-b16x2-fe", "", caps320},
      {"resnetvitinfer", "resnet18-tvit-xs", "clip-stride=8", caps320},
      {"resnetvitinfer", "resnet18-tvit-xs", "clip-stride=2", caps320},
      {"resnetvitinfer", "resnet18-tvit-xs", "clip-stride=1", caps320},
      // The study's model at 224 px: T = 16, hop 4 -> each clip brings 4 new frames.
      {"resnetvitinfer", "resnet50-tvit", "clip-stride=4", caps320},
  };
  std::vector<GstBuffer *> source = vidcls_bench::render(caps320, frames);
  if (static_cast<int>(source.size()) != frames) {
    std::fprintf(stderr, "videotestsrc gave %zu frames, not %d\n", source.size(), frames);
    return 1;
  }
  std::printf("%d frames of 320x240 I420 per case (rendered beforehand, pushed by appsrc), %d "
              "threads, sync mode, no clock\n",
              frames, threads);
  std::printf("%-15s %-17s %-14s %6s %13s %15s %9s %13s %14s %12s\n", "element", "preset",
              "clipper", "clips", "pipeline f/s", "model-only f/s", "ratio", "runs: range",
              "clipper us/smp", "model in/out");
  for (const auto &c : cases) {
    if (!only.empty() && only.find("," + c.preset + ",") == std::string::npos) continue;
    const auto ckpt = (tmp / (c.preset + ".safetensors")).string();
    if (!fs::exists(ckpt)) {
      torch::manual_seed(0);
      auto model = vidcls::make_preset_model(c.preset, 10);
      vidcls::CheckpointInfo info;
      info.preset = c.preset;
      info.clip = vidcls::find_preset(c.preset).clip;
      vidcls::save_checkpoint(ckpt, *model, info);
    }
    const std::string desc = "appsrc name=src format=time max-bytes=0 caps=\"" + c.caps +
                             "\" ! vidclsclipper name=clipper eos-policy=drop " + c.clipper +
                             " ! " + c.element + " name=infer mode=sync model=" + ckpt +
                             " ! fakesink name=sink sync=false";
    auto loaded = vidcls::load_checkpoint(ckpt);
    // Pipeline and model-only loop alternate, `repeats` times for models fast enough (this
    // machine's speed drifts by tens of percent within a minute); the median ratio is printed.
    std::vector<double> t_pipes, t_models, ratios, clipper_us, model_in_pipe;
    size_t n_clips = 0;
    for (int r = 0; r < repeats; ++r) {
      std::vector<torch::Tensor> clips;
      const PipelineRun run = run_pipeline(desc, source, clips);
      if (run.seconds < 0) return 1;
      const double t_pipe = run.seconds;
      clipper_us.push_back(1e6 * run.clipper_seconds / std::max<guint64>(run.sampled, 1));
      model_in_pipe.push_back(run.model_seconds);
      torch::NoGradGuard no_grad;
      if (!clips.empty()) loaded.model->forward(clips[0].unsqueeze(0));  // warm-up, as start()
      const auto t0 = Clock::now();
      for (const auto &clip : clips) loaded.model->forward(clip.unsqueeze(0));
      const double t_model = seconds_since(t0);
      t_pipes.push_back(t_pipe);
      t_models.push_back(t_model);
      ratios.push_back(t_pipe / t_model);
      n_clips = clips.size();
      if (t_pipe + t_model > 20) break;  // the large presets: once is long enough
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    const auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
    std::printf("%-15s %-17s %-14s %6zu %13.1f %15.1f %9.3f %13s %14.1f %12.3f\n",
                c.element.c_str(),
                c.preset.c_str(), c.clipper.empty() ? "(checkpoint)" : c.clipper.c_str(), n_clips,
                frames / median(t_pipes), frames / median(t_models), median(ratios),
                (std::to_string(ratios.size()) + ": " + fmt3(*lo) + "-" + fmt3(*hi)).c_str(),
                median(clipper_us), median(model_in_pipe) / median(t_models));
    std::fflush(stdout);
  }
  std::printf("ratio = pipeline time / model-only time: vividinfer rows show the pipeline's "
              "overhead (goal <= 1.10); resnetvitinfer rows compare the feature ring with "
              "recomputing the backbone for every window (goal about hop / T); clipper us/smp = time "
              "inside vidclsclipper per sampled frame (median run); model in/out = inference time inside "
              "the pipeline (the element's mean-latency) / the model-only loop's\n");
  for (GstBuffer *b : source) gst_buffer_unref(b);
  fs::remove_all(tmp);
  return 0;
}
