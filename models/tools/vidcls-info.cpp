// vidcls-info: what a checkpoint holds (architecture, preset, parameters, labels, clip spec,
// provenance), after checking that it loads, and how long loading took against reading the
// file. Exits 1 with the reason on a bad file.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "vidcls/checkpoint.h"
#include "vidcls/errors.h"
#include "vidcls/runtime.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// What loading is measured against: read() of the whole file into fresh memory, the least any
// loader has to do.
double file_read_ms(const std::string &path) {
  const auto t0 = Clock::now();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  const off_t size = ::lseek(fd, 0, SEEK_END);
  std::unique_ptr<char[]> buffer(new char[size > 0 ? size : 1]);
  for (off_t done = 0; done < size;) {
    const ssize_t n = ::pread(fd, buffer.get() + done, static_cast<size_t>(size - done), done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
    }
    done += n;
  }
  ::close(fd);
  return ms_since(t0);
}

// Where an imported classifier (vidcls-import) comes from and what its publisher claims.
void print_published(const nlohmann::json &prov) {
  if (prov.contains("publisher")) {  // an imported classifier (vidcls-import)
    std::printf("publisher:     %s, %s (%s)\n", prov.value("publisher", "").c_str(),
                prov.value("publisher_file", "").c_str(), prov.value("url", "").c_str());
    const auto claim = prov.value("claimed_accuracy", nlohmann::json::object());
    std::printf("claimed:       top-1 %.1f %%", claim.value("top1", 0.0));
    if (claim.value("top5", 0.0) > 0) std::printf(", top-5 %.1f %%", claim.value("top5", 0.0));
    std::printf(" (%s; source: %s)\n", claim.value("evaluation", "").c_str(),
                prov.value("source", "").c_str());
    if (prov.value("gflops_per_clip", 0.0) > 0) {
      std::printf("cost:          %.1f GFLOPs per clip (publisher's figure)\n",
                  prov.value("gflops_per_clip", 0.0));
    }
  }
}

void print_clip(const vidcls::ClipSpec &c) {
  std::printf("clip:          %d frames, ", c.frames);
  if (c.sample_rate > 0) {
    std::printf("sampled at %.3g fps", c.sample_rate);
  } else {
    std::printf("frame stride %d", c.frame_stride);
  }
  std::printf(", hop %d, %dx%d %s", c.hop, c.width, c.height, vidcls::to_string(c.resize).c_str());
  if (c.resize == vidcls::ResizeMode::kCrop && c.fixed_resize()) {
    std::printf(" (from %dx%d)", c.resize_width, c.resize_height);
  } else if (c.resize == vidcls::ResizeMode::kCrop && c.short_side > 0) {
    std::printf(" (short side %d)", c.short_side);
  }
  if (!c.antialias) std::printf(", plain bilinear (no antialiasing)");
  std::printf(
      "\n               mean [%.3f %.3f %.3f], std [%.3f %.3f %.3f], layout TCHW float32 RGB\n",
      c.mean[0], c.mean[1], c.mean[2], c.std[0], c.std[1], c.std[2]);
}

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{"Describe a vidcls checkpoint; exits non-zero with the reason if it cannot load."};
  std::string path;
  bool as_json = false;
  app.add_option("checkpoint", path, "vidcls checkpoint (.safetensors)")->required();
  app.add_flag("--json", as_json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);

  return vidcls::run_tool("vidcls-info", [&] {
    vidcls::configure_runtime();  // LibTorch's thread pool starts once per process, not per load
    const auto t0 = Clock::now();
    auto ckpt = vidcls::load_checkpoint(path);
    const double load_ms = ms_since(t0);
    const double read_ms = file_read_ms(path);  // after the load: both see a warm page cache
    const auto &info = ckpt.info;
    int64_t params = 0, trainable = 0;
    for (const auto &t : ckpt.model->parameters()) {
      params += t.numel();
      if (t.requires_grad()) trainable += t.numel();
    }
    const auto shape = ckpt.model->input_shape();
    nlohmann::json j = {
        {"file", path},
        {"architecture", info.architecture},
        {"preset", info.preset},
        {"parameters", params},
        {"trainable_parameters", trainable},
        {"num_classes", ckpt.model->num_classes()},
        {"labels", info.labels},
        {"input",
         {{"frames", shape.frames},
          {"channels", shape.channels},
          {"height", shape.height},
          {"width", shape.width}}},
        {"clip", info.clip},
        {"config", info.config},
        {"provenance", info.provenance},
        {"load_ms", load_ms},
        {"file_read_ms", read_ms},
    };
    if (as_json) {
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("file:          %s\n", path.c_str());
    std::printf("architecture:  %s\n", info.architecture.c_str());
    std::printf("preset:        %s\n", info.preset.empty() ? "-" : info.preset.c_str());
    std::printf("parameters:    %lld (%lld trainable)\n", static_cast<long long>(params),
                static_cast<long long>(trainable));
    std::printf("input:         [B, %lld, %lld, %lld, %lld] (T, C, H, W)\n",
                static_cast<long long>(shape.frames), static_cast<long long>(shape.channels),
                static_cast<long long>(shape.height), static_cast<long long>(shape.width));
    if (auto *net = ckpt.model->per_frame_backbone()) {
      // A motion backbone's feature is of a pair of frames: a clip of T frames has T - 1.
      const auto config = ckpt.model->config();
      std::printf("backbone:      %s input, %s pool, %s, %lld per-frame features per clip\n",
                  config.value("input", std::string("rgb")).c_str(),
                  config.value("/backbone/pool"_json_pointer, std::string("avg")).c_str(),
                  net->backbone_frozen() ? "frozen" : "trained",
                  static_cast<long long>(shape.frames - net->frame_context()));
    }
    if (auto *tokens = ckpt.model->token_sequence()) {
      // What vividinfer and resnetvitinfer share between overlapping clips (their `reuse`).
      const auto why = tokens->token_reuse_blocker();
      std::printf("reuse:         %s\n",
                  why.empty() ? ("overlapping clips share their tokens at a clip-stride that is "
                                 "a multiple of " +
                                 std::to_string(tokens->token_stride()) + " sampled frames")
                                    .c_str()
                              : ("none, every clip runs whole: " + why).c_str());
    } else {
      std::printf(
          "reuse:         none, every clip runs whole: the architecture sees the clip as "
          "a whole\n");
    }
    print_published(info.provenance);
    print_clip(info.clip);
    std::printf("%-15s", ("labels (" + std::to_string(info.labels.size()) + "):").c_str());
    for (size_t i = 0; i < info.labels.size(); ++i) {
      if (i == 12) {
        std::printf(" ... (%zu more)", info.labels.size() - i);
        break;
      }
      std::printf("%s%s", i ? ", " : "", info.labels[i].c_str());
    }
    std::printf("\nprovenance:    %s\n", info.provenance.dump().c_str());
    std::printf("loaded in %.0f ms (file read %.0f ms)\n", load_ms, read_ms);
    return 0;
  });
}
