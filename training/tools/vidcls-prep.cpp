// vidcls-prep: decodes every video of a dataset once into a memory-mapped clip cache, so
// training reads frames instead of decoding them. Running it again on an unchanged dataset does
// nothing; a changed dataset is updated incrementally. Videos that cannot be decoded are
// skipped and listed. Exits 1 when the dataset cannot be read or no video could be decoded.
#include <algorithm>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "vidcls/registry.h"
#include "vidcls/errors.h"
#include "vidcls/train/clip_cache.h"

namespace {

std::string human_bytes(int64_t bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string base_name(const std::string &path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{
      "Decode a video dataset (MSR DailyActivity3D, Kinetics-400 or a folder per class) once "
      "into a memory-mapped uint8 clip cache for vidcls-train and vidcls-eval."};
  std::string data, out, preset, split;
  vidcls::train::CacheOptions options;
  bool quiet = false;
  app.add_option("--data", data, "dataset folder (layout detected)")->required();
  app.add_option("--out", out, "cache folder (created; updated in place when it exists)")
      ->required();
  auto *side = app.add_option("--short-side", options.short_side,
                              "short side of the stored training frames in pixels, aspect kept; "
                              "0 keeps the decoded size (default: 73, 8/7 of the 64-px crop of "
                              "the CPU presets)")
                   ->check(CLI::NonNegativeNumber);
  auto *eval_side = app.add_option("--eval-short-side", options.eval_short_side,
                                   "short side of the stored validation and test frames: the "
                                   "one the clip spec crops from, so evaluation clips are the "
                                   "live pipeline's up to rounding; 0 keeps the decoded size "
                                   "(default: 64)")
                        ->check(CLI::NonNegativeNumber);
  app.add_option("--preset", preset,
                 "take both short sides from a model preset's clip spec (training: 8/7 of its "
                 "crop, 256 for 224 px; evaluation: the spec's own)")
      ->excludes(side)
      ->excludes(eval_side);
  app.add_option("--val-fraction", options.val_fraction,
                 "share of the training side that becomes the validation side (MSR "
                 "cross-subject: whole subjects; else per class)")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  app.add_option("--max-frames", options.max_frames,
                 "decode at most this many frames per video (default: 0, all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--split", split,
                 "split recorded in the cache: msr cross-subject (default) | random80; "
                 "kinetics400 val (default) | test; folder random80 (default) | folders");
  app.add_flag("-q,--quiet", quiet, "print the summary only");
  CLI11_PARSE(app, argc, argv);

  return vidcls::run_tool("vidcls-prep", [&] {
    if (!preset.empty()) {
      const auto chosen = vidcls::train::cache_options_for(vidcls::find_preset(preset).clip);
      options.short_side = chosen.short_side;
      options.eval_short_side = chosen.eval_short_side;
    }
    options.split = split;
    if (!quiet) {
      options.progress = [](const vidcls::train::CacheOptions::Event &e) {
        if (e.action == "reused") return;
        if (e.action == "skipped") {
          std::printf("[%zu/%zu] skipped %s: %s\n", e.index + 1, e.total, base_name(e.path).c_str(),
                      e.reason.c_str());
        } else {
          std::printf("[%zu/%zu] decoded %s (%lld frames, %.2f s)\n", e.index + 1, e.total,
                      base_name(e.path).c_str(), static_cast<long long>(e.frames), e.seconds);
        }
        std::fflush(stdout);
      };
    }
    const auto report = vidcls::train::build_cache(data, out, options);
    const auto cache = vidcls::train::ClipCache::open(out);

    std::printf("cache:    %s (%s)\n", report.cache_dir.c_str(),
                report.written ? "updated" : "up to date, nothing written");
    std::printf("dataset:  %s, %s split, %zu classes\n", cache.layout().c_str(),
                cache.split().c_str(), cache.classes().size());
    std::printf("videos:   %zu (decoded %zu, reused %zu, removed %zu); train %zu, validation "
                "%zu, test %zu\n",
                report.videos, report.decoded, report.reused, report.removed,
                cache.indices("train").size(), cache.indices("val").size(),
                cache.indices("test").size());
    std::printf("frames:   %lld, short side %d (validation and test %d; 0: decoded size)\n",
                static_cast<long long>(report.frames), cache.short_side(),
                cache.eval_short_side());
    std::printf("bytes:    %s\n", human_bytes(report.bytes).c_str());
    std::printf("seconds:  %.1f\n", report.seconds);
    std::printf("skipped:  %zu\n", report.skipped.size());
    for (const auto &s : report.skipped)
      std::printf("  %s: %s\n", s.path.c_str(), s.reason.c_str());
    if (!report.missing.empty()) {
      std::printf("missing:  %zu\n", report.missing.size());
      for (const auto &m : report.missing) std::printf("  %s\n", m.c_str());
    }
    if (report.videos == 0) {
      std::fprintf(stderr, "vidcls-prep: no video of %s could be decoded\n", data.c_str());
      return 1;
    }
    return 0;
  });
}
