// vidcls-eval: top-1 / top-5, per-class accuracy and the confusion matrix of a checkpoint on a
// dataset's test side, with clean transforms and multi-view testing.
//
//   vidcls-eval --model runs/vivit/best.safetensors --data DATASET --json eval/result.json
//
// A dataset folder is decoded with decode_video (the live pipeline's decoders and videoconvert)
// and cut with FrameSampler + clip_windows + preprocess_frames, so each 1x1 clip is the tensor
// vidclsclipper attaches for the same window. A clip cache (--data CACHE) is faster but sees
// frames already scaled to the cache's short side.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vidcls/checkpoint.h"
#include "vidcls/errors.h"
#include "vidcls/runtime.h"
#include "vidcls/train/clip_cache.h"
#include "vidcls/train/dataset.h"
#include "vidcls/train/metrics.h"
#include "vidcls/train/transforms.h"
#include "vidcls/train/video_reader.h"

namespace fs = std::filesystem;
namespace train = vidcls::train;
using nlohmann::json;

namespace {

struct EvalVideo {
  std::string path;
  std::string label_name;
};

}  // namespace

int main(int argc, char **argv) {
  std::string model_path, data, split, views = "1x1", json_path, side = "test", device_name = "cpu";
  bool quiet = false;
  CLI::App app{"Evaluate a vidcls checkpoint on a dataset folder or a clip cache."};
  app.add_option("--model", model_path, "checkpoint (.safetensors)")->required();
  app.add_option("--data", data, "dataset folder (decoded as the live pipeline does) or clip cache")
      ->required();
  app.add_option("--split", split, "dataset split (default: the layout's first, or the cache's)");
  app.add_option("--side", side, "which side of the split to evaluate")
      ->check(CLI::IsMember({"test", "train", "all"}))
      ->capture_default_str();
  app.add_option("--views", views,
                 "TxS: T temporal clips (of the clipper's windows, spread evenly; 0 = all) x S "
                 "spatial crops (1 = centre, 3 = ends and centre of the long side); scores are "
                 "the mean of the views' softmax")
      ->capture_default_str();
  app.add_option("--json", json_path, "write the results here, and confusion.png beside it");
  app.add_option("--device", device_name, "cpu or cuda")->capture_default_str();
  app.add_flag("--quiet,-q", quiet, "no per-video progress");
  CLI11_PARSE(app, argc, argv);

  try {
    vidcls::configure_threads();
    int temporal = 1, spatial = 1;
    if (std::sscanf(views.c_str(), "%dx%d", &temporal, &spatial) != 2 || temporal < 0 ||
        (spatial != 1 && spatial != 3)) {
      std::fprintf(stderr, "vidcls-eval: --views must be TxS with T >= 0 and S 1 or 3, got %s\n",
                   views.c_str());
      return 2;
    }
    const torch::Device device(device_name);
    auto ckpt = vidcls::load_checkpoint(model_path);
    auto model = ckpt.model;
    model->to(device);
    model->eval();
    const auto &spec = ckpt.info.clip;
    const auto &labels = ckpt.info.labels;
    std::map<std::string, int64_t> label_index;
    for (size_t i = 0; i < labels.size(); ++i) label_index[labels[i]] = static_cast<int64_t>(i);

    const bool from_cache = train::is_clip_cache(data);
    std::vector<std::string> dataset_classes;
    std::vector<EvalVideo> videos;
    std::vector<size_t> cache_items;
    train::ClipCache cache;
    std::string used_split;
    json skipped = json::array();
    if (from_cache) {
      cache = train::ClipCache::open(data);
      used_split = cache.split();
      if (!split.empty() && split != used_split)
        throw std::invalid_argument("the cache holds split '" + used_split + "', not '" + split +
                                    "'");
      dataset_classes = cache.classes();
      for (const char *s : {"train", "test"}) {
        if (side != "all" && side != s) continue;
        for (size_t i : cache.indices(s)) {
          cache_items.push_back(i);
          videos.push_back({cache.item(i).path, cache.item(i).label_name});
        }
      }
      for (const auto &s : cache.skipped()) skipped.push_back({{"path", s.path}, {"reason", s.reason}});
    } else {
      const auto ds = train::read_dataset(data, split);
      used_split = ds.split;
      dataset_classes = ds.classes;
      for (const auto *list : {&ds.train, &ds.test}) {
        if (side == "train" && list != &ds.train) continue;
        if (side == "test" && list != &ds.test) continue;
        for (const auto &v : *list) videos.push_back({v.path, v.label_name});
      }
    }
    for (const auto &c : dataset_classes) {
      if (!label_index.count(c))
        throw vidcls::MismatchError("the dataset's class '" + c + "' is not one of the model's " +
                                    std::to_string(labels.size()) + " labels");
    }

    train::ClassificationMetrics metrics(labels);
    json per_video = json::array();
    torch::NoGradGuard no_grad;
    for (size_t vi = 0; vi < videos.size(); ++vi) {
      const auto &v = videos[vi];
      torch::Tensor frames;
      std::vector<int64_t> sampled;
      if (from_cache) {
        const size_t i = cache_items[vi];
        frames = cache.frames(i);
        sampled = train::sampled_frame_indices(cache.timestamps_ns(i), spec, cache.item(i).fps);
      } else {
        try {
          auto dv = train::decode_video(v.path);
          frames = dv.frames;
          sampled = train::sampled_frame_indices(dv.pts_ns.data(),
                                                 static_cast<int64_t>(dv.pts_ns.size()), spec,
                                                 dv.fps);
        } catch (const vidcls::FormatError &e) {
          std::printf("skipped %s: %s\n", v.path.c_str(), e.what());
          skipped.push_back({{"path", v.path}, {"reason", e.what()}});
          continue;
        }
      }
      if (sampled.empty()) continue;
      const auto windows = train::eval_windows(static_cast<int64_t>(sampled.size()), spec, temporal);
      std::vector<torch::Tensor> clips;
      for (const auto &w : windows) {
        const auto idx = torch::tensor(train::window_frame_indices(sampled, w, spec.frames),
                                       torch::kInt64);
        for (auto &c : train::eval_crops(frames.index_select(0, idx), spec, spatial))
          clips.push_back(c);
      }
      const auto logits = model->forward(torch::stack(clips).to(device)).to(torch::kCPU);
      const auto probs = torch::softmax(logits, 1);
      const auto mean = probs.mean(0, true);
      const int64_t y = label_index.at(v.label_name);
      metrics.add(mean.clamp_min(1e-12).log(), torch::tensor({y}, torch::kInt64));
      const int64_t pred = mean.argmax(1).item<int64_t>();
      json clip_scores = json::array();
      const int64_t per_window = spatial;
      for (size_t k = 0; k < windows.size(); ++k) {
        const auto row = probs.narrow(0, static_cast<int64_t>(k) * per_window, 1).squeeze(0);
        const int64_t p = row.argmax().item<int64_t>();
        clip_scores.push_back({{"first_sample", windows[k].first_sample},
                               {"partial", windows[k].partial},
                               {"label", labels[p]},
                               {"score", row[p].item<double>()},
                               {"logits", std::vector<float>(
                                              logits[static_cast<int64_t>(k) * per_window]
                                                  .data_ptr<float>(),
                                              logits[static_cast<int64_t>(k) * per_window]
                                                      .data_ptr<float>() +
                                                  logits.size(1))}});
      }
      per_video.push_back({{"path", v.path}, {"label", v.label_name}, {"predicted", labels[pred]},
                           {"score", mean[0][pred].item<double>()}, {"clips", clip_scores}});
      if (!quiet) {
        std::printf("%4zu/%zu %-40s %-14s -> %-14s %.3f\n", vi + 1, videos.size(),
                    fs::path(v.path).filename().c_str(), v.label_name.c_str(),
                    labels[pred].c_str(), mean[0][pred].item<double>());
      }
    }

    std::printf("%s on %s (%s, split %s, %s side, views %dx%d): %lld videos, top-1 %.1f%%, "
                "top-%d %.1f%%\n",
                model_path.c_str(), data.c_str(), from_cache ? "clip cache" : "decoded",
                used_split.c_str(), side.c_str(), temporal, spatial,
                static_cast<long long>(metrics.count()), 100 * metrics.top1(),
                static_cast<int>(std::min<size_t>(5, labels.size())), 100 * metrics.top5());
    const auto acc = metrics.per_class();
    for (size_t i = 0; i < labels.size(); ++i) {
      std::printf("  %-16s %5.1f%%  ", labels[i].c_str(), 100 * acc[i]);
      for (auto c : metrics.confusion()[i]) std::printf(" %3lld", static_cast<long long>(c));
      std::printf("\n");
    }
    if (!skipped.empty()) std::printf("%zu videos skipped\n", skipped.size());

    if (!json_path.empty()) {
      auto j = metrics.to_json();
      j["model"] = model_path;
      j["data"] = data;
      j["source"] = from_cache ? "cache" : "decode";
      j["split"] = used_split;
      j["side"] = side;
      j["views"] = {{"temporal", temporal}, {"spatial", spatial}};
      j["skipped"] = skipped;
      j["videos"] = per_video;
      const fs::path jp(json_path);
      if (jp.has_parent_path()) fs::create_directories(jp.parent_path());
      std::ofstream(jp) << j.dump(2) << "\n";
      const auto png = (jp.has_parent_path() ? jp.parent_path() : fs::path(".")) / "confusion.png";
      train::write_confusion_png(png.string(), metrics);
      std::printf("wrote %s and %s\n", json_path.c_str(), png.c_str());
    }
    return 0;
  } catch (const c10::Error &e) {
    std::fprintf(stderr, "vidcls-eval: %s\n", e.what_without_backtrace());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "vidcls-eval: %s\n", e.what());
  }
  return 1;
}
