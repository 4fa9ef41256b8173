#include "vidcls/train/evaluation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "vidcls/errors.h"
#include "vidcls/object_crop.h"
#include "vidcls/tracks.h"
#include "vidcls/train/dataset.h"
#include "vidcls/train/transforms.h"
#include "vidcls/train/video_reader.h"

using nlohmann::json;

namespace {
std::string fs_stem(const std::string &path) { return std::filesystem::path(path).stem().string(); }
}  // namespace

namespace vidcls::train {

Views parse_views(const std::string &text) {
  Views v;
  char rest = 0;
  if (std::sscanf(text.c_str(), "%dx%d%c", &v.temporal, &v.spatial, &rest) != 2 || v.temporal < 0 ||
      (v.spatial != 1 && v.spatial != 3))
    throw std::invalid_argument("--views must be TxS with T >= 0 and S 1 or 3, got " + text);
  return v;
}

VideoFrames decoded_frames(const std::string &path, const ClipSpec &spec) {
  auto dv = decode_video(path);
  VideoFrames v;
  v.frames = dv.frames;
  v.sampled =
      sampled_frame_indices(dv.pts_ns.data(), static_cast<int64_t>(dv.pts_ns.size()), spec, dv.fps);
  return v;
}

VideoFrames decoded_person_frames(const VideoItem &item, const ClipSpec &spec) {
  const auto dv = decode_video(item.path);
  const int64_t H = dv.frames.size(1), W = dv.frames.size(2);
  // The stream's sampled frames, as the clipper samples them, then those with a box of the person
  // (the clipper cuts an object's clips from the sampled frames it is seen on).
  const auto sampled =
      sampled_frame_indices(dv.pts_ns.data(), static_cast<int64_t>(dv.pts_ns.size()), spec, dv.fps);
  std::vector<torch::Tensor> crops;
  std::vector<int64_t> pts;
  for (int64_t i : sampled) {
    const auto box = box_at(item.track, static_cast<double>(dv.pts_ns[i]) / 1e9, kAvaMaxGap);
    if (!box) continue;
    const auto whole = box_on_frame(box_in_pixels(*box, W, H), W, H);
    const auto r = whole ? object_region(*whole, H, W, spec.object) : std::nullopt;
    if (!r) continue;
    auto out = torch::empty({3, spec.height, spec.width}, torch::kFloat32);
    preprocess_region_into(dv.frames[i], *r, spec, out);
    crops.push_back(out);
    pts.push_back(dv.pts_ns[i]);
  }
  if (crops.empty())
    throw FormatError(item.path + ": no sampled frame has a box of person " +
                      std::to_string(item.object_id));
  VideoFrames v;
  v.frames = torch::stack(crops);
  for (int64_t k = 0; k < v.frames.size(0); ++k) v.sampled.push_back(k);
  v.prepared = true;
  v.pts_ns = std::move(pts);
  return v;
}

VideoFrames cached_frames(const ClipCache &cache, size_t item, const ClipSpec &spec) {
  VideoFrames v;
  v.frames = cache.frames(item);
  v.sampled = sampled_frame_indices(cache.timestamps_ns(item), spec, cache.item(item).fps);
  return v;
}

VideoViews video_views(const VideoFrames &video, const ClipSpec &spec, Views views) {
  VideoViews out;
  if (video.prepared && views.spatial != 1)
    throw std::invalid_argument("a person's crops have one spatial view (--views Tx1)");
  out.spatial = views.spatial;
  out.windows = eval_windows(static_cast<int64_t>(video.sampled.size()), spec, views.temporal);
  std::vector<torch::Tensor> clips;
  for (const auto &w : out.windows) {
    const auto idx =
        torch::tensor(window_frame_indices(video.sampled, w, spec.frames), torch::kInt64);
    if (video.prepared) {
      clips.push_back(video.frames.index_select(0, idx));
      continue;
    }
    for (auto &c : eval_crops(video.frames.index_select(0, idx), spec, views.spatial))
      clips.push_back(c);
  }
  out.clips = torch::stack(clips);
  return out;
}

EvalSet eval_set(const std::string &data, const std::string &split, const std::string &side) {
  EvalSet set;
  const std::vector<std::string> sides = side == "all"
                                             ? std::vector<std::string>{"train", "val", "test"}
                                             : std::vector<std::string>{side};
  set.skipped = json::array();
  if (is_clip_cache(data)) {
    set.cache = ClipCache::open(data);
    set.split = set.cache->split();
    if (!split.empty() && split != set.split)
      throw std::invalid_argument("the cache holds split '" + set.split + "', not '" + split + "'");
    set.classes = set.cache->classes();
    for (const auto &s : sides) {
      for (size_t i : set.cache->indices(s))
        set.videos.push_back(
            {set.cache->item(i).key(), set.cache->item(i).label_name, i, std::nullopt});
    }
    for (const auto &s : set.cache->skipped())
      set.skipped.push_back({{"path", s.path}, {"reason", s.reason}});
    return set;
  }
  const auto ds = read_dataset(data, split);
  set.split = ds.split;
  set.classes = ds.classes;
  for (const auto &s : sides) {
    const auto &list = s == "train" ? ds.train : s == "val" ? ds.val : ds.test;
    for (const auto &v : list) {
      if (v.object_id >= 0) {
        set.videos.push_back({v.key(), v.label_name, std::nullopt, v});
      } else {
        set.videos.push_back({v.path, v.label_name, std::nullopt, std::nullopt});
      }
    }
  }
  return set;
}

int64_t keyframe_clip(const VideoFrames &frames, const std::vector<ClipRecord> &windows,
                      int64_t clip_frames, double t_ns) {
  // The sampled frame nearest the keyframe (ties: the earlier); the clips holding it may score
  // it, so a keyframe between two consecutive clips' samples is not lost to rounded timestamps.
  int64_t nearest = -1;
  for (int64_t j : frames.sampled) {
    if (nearest < 0 || std::abs(static_cast<double>(frames.pts_ns[j]) - t_ns) <
                           std::abs(static_cast<double>(frames.pts_ns[nearest]) - t_ns))
      nearest = j;
  }
  if (nearest < 0) return -1;  // nothing sampled
  int64_t best = -1;
  double best_distance = 0;
  for (size_t k = 0; k < windows.size(); ++k) {
    const auto idx = window_frame_indices(frames.sampled, windows[k], clip_frames);
    if (std::find(idx.begin(), idx.end(), nearest) == idx.end()) continue;
    const double first = static_cast<double>(frames.pts_ns[idx.front()]);
    const double last = static_cast<double>(frames.pts_ns[idx.back()]);
    const double distance = std::abs((first + last) / 2 - t_ns);
    if (best < 0 || distance < best_distance)
      best = static_cast<int64_t>(k), best_distance = distance;
  }
  return best;
}

namespace {

// A person's keyframes as detections scored by the clip nearest each (see EvalReport), and as
// truth.
void add_keyframes(const EvalVideo &v, const VideoFrames &frames, const VideoViews &views,
                   const ClipSpec &spec, const torch::Tensor &probs, int64_t label,
                   std::vector<FrameDetection> &dets, std::vector<FrameTruth> &truth) {
  const std::string video = fs_stem(v.person->path);
  for (const auto &key : v.person->track.keys) {
    truth.push_back({video, key.t, key.box, static_cast<int>(label)});
    const int64_t best = keyframe_clip(frames, views.windows, spec.frames, key.t * 1e9);
    if (best < 0) continue;  // no clip holds it: not detected
    const auto row = probs[best * views.spatial].contiguous();
    dets.push_back(
        {video, key.t, key.box,
         std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel())});
  }
}

json clip_scores(const VideoViews &views, const torch::Tensor &logits, const torch::Tensor &probs,
                 const std::vector<std::string> &labels) {
  json out = json::array();
  for (size_t k = 0; k < views.windows.size(); ++k) {
    const int64_t row_index = static_cast<int64_t>(k) * views.spatial;
    const auto row = probs[row_index];
    const int64_t p = row.argmax().item<int64_t>();
    const auto l = logits[row_index].contiguous();
    out.push_back(
        {{"first_sample", views.windows[k].first_sample},
         {"partial", views.windows[k].partial},
         {"label", labels[p]},
         {"score", row[p].item<double>()},
         {"logits", std::vector<float>(l.data_ptr<float>(), l.data_ptr<float>() + l.numel())}});
  }
  return out;
}

}  // namespace

torch::Tensor view_logits(VideoClassifierImpl &model, const VideoFrames &video,
                          const VideoViews &views, const torch::Device &device, int64_t *computed) {
  TokenSequenceModel *net = model.token_sequence();
  const int64_t rows = views.clips.size(0), T = views.clips.size(1);
  const int64_t n = net ? net->tokens_per_clip(T) : 0;
  // Token j of a view: (crop, first and last frame of its window) -> its index among the windows
  std::map<std::tuple<int64_t, int64_t, int64_t>, int64_t> index;
  std::vector<int64_t> picks;  // per view, per token: the window's index
  std::vector<torch::Tensor> windows;
  if (net != nullptr && net->token_reuse_blocker().empty()) {
    for (int64_t r = 0; r < rows; ++r) {
      const auto frames = window_frame_indices(video.sampled, views.windows[r / views.spatial], T);
      for (int64_t j = 0; j < n; ++j) {
        const int64_t a = j * net->token_stride(), b = a + net->token_window() - 1;
        const auto key = std::make_tuple(r % views.spatial, frames[a], frames[b]);
        auto it = index.emplace(key, static_cast<int64_t>(windows.size())).first;
        if (it->second == static_cast<int64_t>(windows.size()))
          windows.push_back(views.clips[r].narrow(0, a, net->token_window()));
        picks.push_back(it->second);
      }
    }
  }
  if (windows.empty() || static_cast<int64_t>(windows.size()) == rows * n) {
    if (computed) *computed = rows * n;  // nothing shared: the views' plain forward
    return model.forward(views.clips.to(device)).to(torch::kCPU);
  }
  if (computed) *computed = static_cast<int64_t>(windows.size());
  std::vector<torch::Tensor> tokens;
  for (size_t i = 0; i < windows.size(); i += 64) {
    const auto part = std::vector<torch::Tensor>(
        windows.begin() + i, windows.begin() + std::min(windows.size(), i + 64));
    tokens.push_back(net->window_tokens(torch::stack(part).to(device)));
  }
  const auto all = torch::cat(tokens);
  const auto seq = all.index_select(0, torch::tensor(picks).to(all.device())).view({rows, n, -1});
  std::vector<torch::Tensor> logits;
  for (int64_t r = 0; r < rows; r += 64)
    logits.push_back(net->classify_tokens(seq.narrow(0, r, std::min<int64_t>(64, rows - r))));
  return torch::cat(logits).to(torch::kCPU);
}

EvalReport evaluate_set(VideoClassifierImpl &model, const std::vector<std::string> &labels,
                        const ClipSpec &spec, const EvalSet &set, Views views,
                        const torch::Device &device,
                        const std::function<void(size_t, size_t, const json &)> &progress) {
  std::map<std::string, int64_t> label_index;
  for (size_t i = 0; i < labels.size(); ++i) label_index[labels[i]] = static_cast<int64_t>(i);
  for (const auto &c : set.classes) {
    if (!label_index.count(c))
      throw MismatchError("the dataset's class '" + c + "' is not one of the model's " +
                          std::to_string(labels.size()) + " labels");
  }
  EvalReport report{ClassificationMetrics(labels), std::nullopt, json::array(), set.skipped};
  std::vector<FrameDetection> detections;
  std::vector<FrameTruth> truth;
  torch::NoGradGuard no_grad;
  for (size_t vi = 0; vi < set.videos.size(); ++vi) {
    const auto &v = set.videos[vi];
    VideoFrames frames;
    try {
      frames = v.cache_item ? cached_frames(*set.cache, *v.cache_item, spec)
               : v.person   ? decoded_person_frames(*v.person, spec)
                            : decoded_frames(v.path, spec);
    } catch (const FormatError &e) {
      report.skipped.push_back({{"path", v.path}, {"reason", e.what()}});
      continue;
    }
    if (frames.sampled.empty()) continue;
    const auto views_of = video_views(frames, spec, views);
    const auto logits = view_logits(model, frames, views_of, device);
    const auto probs = torch::softmax(logits, 1);
    const auto mean = probs.mean(0, true);
    report.metrics.add(mean.clamp_min(1e-12).log(),
                       torch::tensor({label_index.at(v.label)}, torch::kInt64));
    if (v.person && frames.prepared)
      add_keyframes(v, frames, views_of, spec, probs, label_index.at(v.label), detections, truth);
    const int64_t pred = mean.argmax(1).item<int64_t>();
    report.videos.push_back({{"path", v.path},
                             {"label", v.label},
                             {"predicted", labels[pred]},
                             {"score", mean[0][pred].item<double>()},
                             {"clips", clip_scores(views_of, logits, probs, labels)}});
    if (progress) progress(vi, set.videos.size(), report.videos.back());
  }
  if (!truth.empty())
    report.frame_map = frame_map(detections, truth, static_cast<int>(labels.size()));
  return report;
}

}  // namespace vidcls::train
