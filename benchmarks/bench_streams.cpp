// Many streams, one model: N streams through one shared model instance (model-instance-id,
// batch-size N) against N elements with a private model each, on the same clips.
//
//   bench-streams --plugin-dir DIR [--preset P] [--streams 1,2,4,8] [--clips K]
//   bench-streams --plugin-dir DIR --soak FRAMES [--preset P] [--soak-streams 4]
//
// Each case runs in a child process of its own (so its peak RSS, from wait4(), is its alone):
// one pipeline of N branches `videotestsrc num-buffers=F ! vidclsclipper ! vividinfer mode=sync
// ... ! fakesink`, F frames giving K clips per stream. Timed from PLAYING to EOS (loading is in
// READY -> PAUSED and is printed apart). Prints aggregate clips/s, the instance's mean batch,
// peak RSS, and load time.
// --soak pushes FRAMES frames in all through --soak-streams streams of one shared instance,
// samples VmRSS every 10 s, prints the samples and their least-squares slope after the first
// minute, and, with GStreamer's leaks tracer on, the objects still alive once the pipeline is
// gone.
#include <gst/gst.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <algorithm>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <torch/utils.h>

#include "vidcls/checkpoint.h"
#include "vidcls/registry.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

long vm_kib(const char *field) {
  std::ifstream in("/proc/self/status");
  const std::string key = std::string(field) + ":";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  }
  return -1;
}

// Frames of a 30 fps source that give `clips` clips of `spec`.
int frames_for(const vidcls::ClipSpec &spec, int clips) {
  const int sampled = spec.frames + (clips - 1) * spec.hop;
  if (spec.sample_rate > 0) return static_cast<int>(std::ceil(sampled * 30.0 / spec.sample_rate)) + 2;
  return sampled * spec.frame_stride;
}

std::string pipeline_text(const std::string &ckpt, int streams, int frames, bool shared,
                          const std::string &extra) {
  std::ostringstream d;
  for (int i = 0; i < streams; ++i) {
    d << "videotestsrc num-buffers=" << frames << " pattern=" << (i % 20)
      << " ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! vidclsclipper ! "
      << "vividinfer name=infer" << i << " mode=sync model=" << ckpt << " " << extra;
    if (shared)
      d << " model-instance-id=bench batch-size=" << streams << " batch-timeout=10000";
    d << " ! fakesink name=sink" << i << " ";
  }
  return d.str();
}

// Plays to EOS; false on an error (printed).
bool play_to_eos(GstElement *pipeline) {
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstMessage *msg = gst_bus_timed_pop_filtered(
      bus, GST_CLOCK_TIME_NONE, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  bool ok = GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS;
  if (!ok) {
    GError *e = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error(msg, &e, &dbg);
    std::fprintf(stderr, "error: %s (%s)\n", e->message, dbg ? dbg : "");
    g_error_free(e);
    g_free(dbg);
  }
  gst_message_unref(msg);
  gst_object_unref(bus);
  return ok;
}

// The child of one case: prints "clips seconds mean_batch load_s".
int run_case(const std::string &ckpt, int streams, int frames, bool shared) {
  GstElement *pipeline =
      gst_parse_launch(pipeline_text(ckpt, streams, frames, shared, "").c_str(), nullptr);
  if (pipeline == nullptr) return 1;
  const auto t0 = Clock::now();
  gst_element_set_state(pipeline, GST_STATE_PAUSED);
  if (gst_element_get_state(pipeline, nullptr, nullptr, GST_CLOCK_TIME_NONE) ==
      GST_STATE_CHANGE_FAILURE)
    return 1;
  const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto t1 = Clock::now();
  if (!play_to_eos(pipeline)) return 1;
  const double seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  guint64 clips = 0;
  double batch_sum = 0;
  for (int i = 0; i < streams; ++i) {
    GstElement *e = gst_bin_get_by_name(GST_BIN(pipeline), ("infer" + std::to_string(i)).c_str());
    guint64 c = 0;
    double mean_batch = 0;
    GstStructure *stats = nullptr;
    g_object_get(e, "stats", &stats, nullptr);
    gst_structure_get_uint64(stats, "clips-classified", &c);
    gst_structure_get_double(stats, "instance-mean-batch", &mean_batch);
    gst_structure_free(stats);
    clips += c;
    batch_sum += mean_batch;
    gst_object_unref(e);
  }
  std::printf("%llu %.3f %.3f %.3f\n", static_cast<unsigned long long>(clips), seconds,
              batch_sum / streams, load_s);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return 0;
}

// Runs one case in a child; its output line and its peak RSS (MiB).
bool spawn_case(const std::string &self, const std::string &plugin_dir, const std::string &ckpt,
                int streams, int frames, bool shared, std::string &line, double &rss_mib) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    const std::string n = std::to_string(streams), f = std::to_string(frames);
    execl(self.c_str(), self.c_str(), "--plugin-dir", plugin_dir.c_str(), "--child", ckpt.c_str(),
          n.c_str(), f.c_str(), shared ? "shared" : "private", nullptr);
    _exit(127);
  }
  close(fds[1]);
  char buf[256];
  ssize_t got;
  line.clear();
  while ((got = read(fds[0], buf, sizeof buf)) > 0) line.append(buf, got);
  close(fds[0]);
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  rss_mib = ru.ru_maxrss / 1024.0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string make_checkpoint(const fs::path &dir, const std::string &preset) {
  const auto path = (dir / (preset + ".safetensors")).string();
  torch::manual_seed(0);
  auto model = vidcls::make_preset_model(preset, 400);
  vidcls::CheckpointInfo info;
  info.preset = preset;
  info.clip = vidcls::find_preset(preset).clip;
  for (int i = 0; i < 400; ++i) info.labels.push_back("class" + std::to_string(i));
  vidcls::save_checkpoint(path, *model, info);
  return path;
}

int compare(const std::string &self, const std::string &plugin_dir, const std::string &preset,
            const std::vector<int> &counts, int clips_per_stream, const fs::path &dir) {
  const auto ckpt = make_checkpoint(dir, preset);
  const int frames = frames_for(vidcls::find_preset(preset).clip, clips_per_stream);
  std::printf("%s, %d clips per stream (%d frames of 320x240 each), sync elements; clips/s "
              "from PLAYING to EOS; RSS = peak of the process\n",
              preset.c_str(), clips_per_stream, frames);
  std::printf("%-8s %-8s %8s %10s %10s %10s %9s\n", "streams", "models", "clips", "clips/s",
              "mean-batch", "peak-MiB", "load-s");
  for (int n : counts) {
    for (bool shared : {true, false}) {
      std::string line;
      double rss = 0;
      if (!spawn_case(self, plugin_dir, ckpt, n, frames, shared, line, rss)) {
        std::printf("%-8d %-8s failed\n", n, shared ? "shared" : "private");
        return 1;
      }
      unsigned long long clips = 0;
      double seconds = 0, mean_batch = 0, load = 0;
      std::sscanf(line.c_str(), "%llu %lf %lf %lf", &clips, &seconds, &mean_batch, &load);
      std::printf("%-8d %-8s %8llu %10.3f %10.2f %10.0f %9.2f\n", n,
                  shared ? "shared" : "private", clips, clips / seconds, mean_batch, rss, load);
      std::fflush(stdout);
    }
  }
  return 0;
}

// Least-squares slope of y over x.
double slope(const std::vector<double> &x, const std::vector<double> &y) {
  const double n = x.size();
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  const double d = n * sxx - sx * sx;
  return d != 0 ? (n * sxy - sx * sy) / d : 0.0;
}

// Objects the leaks tracer tracks now, by type; empty without the tracer.
std::map<std::string, long> live_objects(bool *active) {
  std::map<std::string, long> by_type;
  *active = false;
  GList *tracers = gst_tracing_get_active_tracers();
  for (GList *l = tracers; l != nullptr; l = l->next) {
    if (std::string(G_OBJECT_TYPE_NAME(l->data)) != "GstLeaksTracer") continue;
    *active = true;
    GstStructure *live = nullptr;
    g_signal_emit_by_name(l->data, "get-live-objects", &live);
    const GValue *list = live ? gst_structure_get_value(live, "objects-list") : nullptr;
    for (guint i = 0; list && i < gst_value_list_get_size(list); ++i) {
      const GstStructure *o = gst_value_get_structure(gst_value_list_get_value(list, i));
      const char *type = gst_structure_get_string(o, "type-name");
      ++by_type[type ? type : "?"];
    }
    if (live) gst_structure_free(live);
  }
  g_list_free_full(tracers, gst_object_unref);
  return by_type;
}

int soak(const std::string &preset, long total_frames, int streams, const fs::path &dir) {
  const auto ckpt = make_checkpoint(dir, preset);
  const int frames = static_cast<int>(total_frames / streams);
  bool tracing = false;
  const auto baseline = live_objects(&tracing);
  GstElement *pipeline = gst_parse_launch(
      pipeline_text(ckpt, streams, frames, true, "").c_str(), nullptr);
  if (pipeline == nullptr) return 1;
  std::atomic<bool> done{false};
  std::vector<double> t, rss;
  const auto t0 = Clock::now();
  std::thread sampler([&] {
    while (!done) {
      t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      rss.push_back(vm_kib("VmRSS") / 1024.0);
      std::printf("  t=%5.0f s  RSS %.1f MiB\n", t.back(), rss.back());
      std::fflush(stdout);
      for (int i = 0; i < 100 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  const bool ok = play_to_eos(pipeline);
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  guint64 clips = 0;
  double mean_batch = 0;
  GstElement *e = gst_bin_get_by_name(GST_BIN(pipeline), "infer0");
  GstStructure *stats = nullptr;
  g_object_get(e, "stats", &stats, nullptr);
  gst_structure_get_uint64(stats, "instance-clips", &clips);
  gst_structure_get_double(stats, "instance-mean-batch", &mean_batch);
  gst_structure_free(stats);
  gst_object_unref(e);
  done = true;
  sampler.join();
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  std::vector<double> xt, yr;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] >= 60.0) {
      xt.push_back(t[i]);
      yr.push_back(rss[i]);
    }
  }
  std::printf("soak: %s, %d streams x %d frames = %ld frames in %.0f s (%.0f frames/s), %llu "
              "clips, mean batch %.2f\n",
              preset.c_str(), streams, frames, static_cast<long>(frames) * streams, seconds,
              frames * streams / seconds, static_cast<unsigned long long>(clips), mean_batch);
  std::printf("soak: RSS %.1f MiB at 60 s, %.1f MiB at the end; slope after 60 s: %.3f MiB/min "
              "(%zu samples)\n",
              yr.empty() ? 0.0 : yr.front(), rss.empty() ? 0.0 : rss.back(),
              xt.size() > 1 ? slope(xt, yr) * 60.0 : 0.0, xt.size());
  if (!tracing) {
    std::printf("soak: leaks tracer not active (GST_TRACERS=leaks)\n");
  } else {
    long leaked = 0;
    for (const auto &kv : live_objects(&tracing)) {
      const auto it = baseline.find(kv.first);
      const long extra = kv.second - (it == baseline.end() ? 0 : it->second);
      if (extra > 0) std::printf("  still alive: %ld %s\n", extra, kv.first.c_str());
      leaked += std::max(0L, extra);
    }
    std::printf("soak: leaks tracer: %ld GStreamer objects made since the start still alive "
                "after the pipeline was freed\n", leaked);
  }
  return ok ? 0 : 1;
}

std::vector<int> parse_counts(const std::string &s) {
  std::vector<int> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoi(item));
  return out;
}

}  // namespace

int main(int argc, char **argv) {
  std::string plugin_dir, preset = "vivit-b16x2-fe", counts = "1,2,4,8";
  int clips = 2, soak_streams = 4;
  long soak_frames = 0;
  std::vector<std::string> child;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--plugin-dir") plugin_dir = next();
    else if (a == "--preset") preset = next();
    else if (a == "--streams") counts = next();
    else if (a == "--clips") clips = std::stoi(next());
    else if (a == "--soak") soak_frames = std::stol(next());
    else if (a == "--soak-streams") soak_streams = std::stoi(next());
    else if (a == "--child") {
      for (int k = 0; k < 4; ++k) child.push_back(next());
    } else {
      std::fprintf(stderr, "usage: %s --plugin-dir DIR [--preset P] [--streams 1,2,4,8] "
                           "[--clips K] | --soak FRAMES [--soak-streams N]\n", argv[0]);
      return 2;
    }
  }
  const fs::path dir = fs::temp_directory_path() / ("vidcls-bench-streams-" + std::to_string(getpid()));
  if (child.empty()) fs::create_directories(dir);
  setenv("GST_PLUGIN_PATH", plugin_dir.c_str(), 1);
  setenv("GST_REGISTRY", (fs::temp_directory_path() / ("vidcls-bench-streams-registry-" +
                                                       std::to_string(getuid()) + ".bin"))
                             .c_str(),
         1);
  if (soak_frames > 0) setenv("GST_TRACERS", "leaks", 0);
  gst_init(nullptr, nullptr);
  int rc;
  if (!child.empty()) {
    rc = run_case(child[0], std::stoi(child[1]), std::stoi(child[2]), child[3] == "shared");
  } else if (soak_frames > 0) {
    rc = soak(preset, soak_frames, soak_streams, dir);
  } else {
    rc = compare(fs::canonical("/proc/self/exe"), plugin_dir, preset, parse_counts(counts), clips,
                 dir);
  }
  if (child.empty()) fs::remove_all(dir);
  return rc;
}
