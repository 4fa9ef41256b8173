// vidcls-eval: top-1 / top-5, per-class accuracy and the confusion matrix of a checkpoint on one
// side of a dataset's split, with clean transforms and multi-view testing.
//
//   vidcls-eval --model runs/vivit/best.safetensors --data DATASET --json eval/result.json
//
// A dataset folder is decoded with decode_video (the live pipeline's decoders and videoconvert)
// and cut with FrameSampler + clip_windows + preprocess_frames, so each 1x1 clip is the tensor
// vidclsclipper attaches for the same window. A clip cache (--data CACHE) is faster; its
// validation and test frames are stored at the spec's crop short side, so its clips differ from
// those only by the rounding of the stored pixels.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "vidcls/checkpoint.h"
#include "vidcls/device.h"
#include "vidcls/errors.h"
#include "vidcls/runtime.h"
#include "vidcls/train/evaluation.h"

namespace fs = std::filesystem;
namespace train = vidcls::train;

namespace {

void print_summary(const train::ClassificationMetrics &m, const std::string &title) {
  const auto &labels = m.classes();
  std::printf("%s: %lld videos, top-1 %.1f%%, top-%d %.1f%%\n", title.c_str(),
              static_cast<long long>(m.count()), 100 * m.top1(),
              static_cast<int>(std::min<size_t>(5, labels.size())), 100 * m.top5());
  const auto acc = m.per_class();
  for (size_t i = 0; i < labels.size(); ++i) {
    std::printf("  %-16s %5.1f%%  ", labels[i].c_str(), 100 * acc[i]);
    for (auto c : m.confusion()[i]) std::printf(" %3lld", static_cast<long long>(c));
    std::printf("\n");
  }
}

void write_json(const std::string &json_path, nlohmann::json j,
                const train::ClassificationMetrics &m) {
  const fs::path jp(json_path);
  if (jp.has_parent_path()) fs::create_directories(jp.parent_path());
  std::ofstream(jp) << j.dump(2) << "\n";
  const auto png = (jp.has_parent_path() ? jp.parent_path() : fs::path(".")) / "confusion.png";
  train::write_confusion_png(png.string(), m);
  std::printf("wrote %s and %s\n", json_path.c_str(), png.c_str());
}

}  // namespace

int main(int argc, char **argv) {
  std::string model_path, data, split, views_text = "1x1", json_path, side = "test",
                                       device_name = "cpu";
  bool quiet = false;
  CLI::App app{"Evaluate a vidcls checkpoint on a dataset folder or a clip cache."};
  app.add_option("--model", model_path, "checkpoint (.safetensors)")->required();
  app.add_option("--data", data, "dataset folder (decoded as the live pipeline does) or clip cache")
      ->required();
  app.add_option("--split", split, "dataset split (default: the layout's first, or the cache's)");
  app.add_option("--side", side, "which side of the split to evaluate")
      ->check(CLI::IsMember({"test", "val", "train", "all"}))
      ->capture_default_str();
  app.add_option("--views", views_text,
                 "TxS: T temporal clips (of the clipper's windows, spread evenly; 0 = all) x S "
                 "spatial crops (1 = centre, 3 = ends and centre of the long side); scores are "
                 "the mean of the views' softmax")
      ->capture_default_str();
  app.add_option("--json", json_path, "write the results here, and confusion.png beside it");
  app.add_option("--device", device_name, "cpu or cuda")->capture_default_str();
  app.add_flag("--quiet,-q", quiet, "no per-video progress");
  CLI11_PARSE(app, argc, argv);

  train::Views views;
  try {
    views = train::parse_views(views_text);
  } catch (const std::invalid_argument &e) {
    std::fprintf(stderr, "vidcls-eval: %s\n", e.what());
    return 2;
  }
  return vidcls::run_tool("vidcls-eval", [&] {
    vidcls::configure_runtime();
    const auto device = vidcls::parse_device(device_name, false);
    auto ckpt = vidcls::load_checkpoint(model_path);
    ckpt.model->to(device);
    ckpt.model->eval();
    const auto &labels = ckpt.info.labels;
    const auto set = train::eval_set(data, split, side);
    const auto report = train::evaluate_set(
        *ckpt.model, labels, ckpt.info.clip, set, views, device,
        [&](size_t i, size_t n, const nlohmann::json &v) {
          if (quiet) return;
          std::printf("%4zu/%zu %-40s %-14s -> %-14s %.3f\n", i + 1, n,
                      fs::path(v.at("path").get<std::string>()).filename().c_str(),
                      v.at("label").get<std::string>().c_str(),
                      v.at("predicted").get<std::string>().c_str(), v.at("score").get<double>());
        });
    char title[512];
    std::snprintf(title, sizeof title, "%s on %s (%s, split %s, %s side, views %dx%d)",
                  model_path.c_str(), data.c_str(), set.cache ? "clip cache" : "decoded",
                  set.split.c_str(), side.c_str(), views.temporal, views.spatial);
    print_summary(report.metrics, title);
    if (report.frame_map) {
      std::printf(
          "people: per-person top-1 above; frame mAP@0.5 (AVA) %.1f%% (%zu of %zu "
          "keyframe boxes scored), per class:",
          100 * report.frame_map->map, report.frame_map->detections, report.frame_map->truths);
      for (size_t c = 0; c < labels.size(); ++c) {
        if (report.frame_map->ap[c] >= 0)
          std::printf(" %s %.1f%%", labels[c].c_str(), 100 * report.frame_map->ap[c]);
      }
      std::printf("\n");
    }
    for (const auto &s : report.skipped)
      std::printf("skipped %s: %s\n", s.at("path").get<std::string>().c_str(),
                  s.at("reason").get<std::string>().c_str());
    if (json_path.empty()) return 0;
    auto j = report.metrics.to_json();
    j["model"] = model_path;
    j["data"] = data;
    j["source"] = set.cache ? "cache" : "decode";
    j["split"] = set.split;
    j["side"] = side;
    j["views"] = {{"temporal", views.temporal}, {"spatial", views.spatial}};
    j["skipped"] = report.skipped;
    j["videos"] = report.videos;
    if (report.frame_map) {
      nlohmann::json ap = nlohmann::json::object();
      for (size_t c = 0; c < labels.size(); ++c) {
        if (report.frame_map->ap[c] >= 0) ap[labels[c]] = report.frame_map->ap[c];
      }
      j["frame_map"] = {{"iou", 0.5},
                        {"map", report.frame_map->map},
                        {"ap", ap},
                        {"keyframe_boxes", report.frame_map->truths},
                        {"scored", report.frame_map->detections}};
    }
    write_json(json_path, j, report.metrics);
    return 0;
  });
}
