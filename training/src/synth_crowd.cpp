// Several people per synthetic video, labelled per person in AVA's format with MOTChallenge
// tracks: the data per-object clips are trained and evaluated on (see synth.h, kAva).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <opencv2/core.hpp>

#include "synth_draw.h"
#include "vidcls/train/synth.h"
#include "vidcls/train/video_writer.h"

namespace fs = std::filesystem;

namespace vidcls::train {

namespace {

using detail::Rng;
using detail::splitmix64;

// A person's straight walk across the frame: the card's top-left corner at progress u.
struct Walk {
  double x0, y0, x1, y1;
  cv::Point at(double u) const {
    return {static_cast<int>(std::lround(x0 + (x1 - x0) * u)),
            static_cast<int>(std::lround(y0 + (y1 - y0) * u))};
  }
};

// The walk of the person in `lane` (0 .. lanes - 1, top to bottom): from the left third to the
// right third of the frame or back, neighbouring lanes in opposite directions (so paths cross),
// at the lane's height give or take a twentieth of the room.
Walk walk_of(Rng &rng, int lane, int lanes, bool flip, int span_x, int span_y) {
  const bool from_left = (lane % 2 == 0) != flip;
  const double a = rng.uniform(0, 0.3) * span_x, b = rng.uniform(0.7, 1.0) * span_x;
  const double centre = lanes > 1 ? static_cast<double>(lane) / (lanes - 1) : 0.5;
  const double y0 = std::clamp(centre + rng.uniform(-0.05, 0.05), 0.0, 1.0) * span_y;
  const double y1 = std::clamp(y0 + rng.uniform(-0.05, 0.05) * span_y, 0.0, double(span_y));
  return from_left ? Walk{a, y0, b, y1} : Walk{b, y0, a, y1};
}

}  // namespace

SynthCrowdVideo render_synth_crowd(const SynthCrowdScene &scene) {
  const int n = scene.frames, w = scene.width, h = scene.height;
  const int card = std::max(8, static_cast<int>(0.4 * h));
  TORCH_CHECK(!scene.motions.empty(), "synth crowd: at least one person is needed");
  TORCH_CHECK(n >= 1 && h >= 16 && w >= card, "synth crowd: need frames of at least 16 px in ",
              "height and as wide as a card (", card, " px)");
  Rng rng(splitmix64(scene.seed ^ 0x43524F5744ull));
  const cv::Mat background = detail::make_background(rng, w, h);
  const bool flip = rng.uniform() < 0.5;
  const size_t people = scene.motions.size();
  std::vector<int> lanes(people);  // person k walks in lane lanes[k]
  for (size_t k = 0; k < people; ++k) lanes[k] = static_cast<int>(k);
  for (size_t k = people - 1; k > 0; --k) std::swap(lanes[k], lanes[rng.integer(0, int(k))]);
  std::vector<Walk> walks;
  std::vector<torch::Tensor> cards;
  SynthCrowdVideo out;
  for (size_t k = 0; k < people; ++k) {
    walks.push_back(walk_of(rng, lanes[k], static_cast<int>(people), flip, w - card, h - card));
    SynthScene own;
    own.motion = scene.motions[k];
    own.seed = splitmix64(scene.seed + 0x1000 + k);
    own.frames = n;
    own.width = own.height = card;
    own.camera = SynthCamera::kStill;
    cards.push_back(render_synth_video(own).frames);
    SynthPerson p;
    p.id = static_cast<int64_t>(k) + 1;
    p.motion = scene.motions[k];
    out.people.push_back(std::move(p));
  }

  out.frames = torch::empty({n, h, w, 3}, torch::kUInt8);
  cv::Mat owner(h, w, CV_32SC1);
  for (int t = 0; t < n; ++t) {
    const double u = n > 1 ? static_cast<double>(t) / (n - 1) : 0.0;
    std::vector<std::pair<cv::Point, size_t>> order;
    for (size_t k = 0; k < people; ++k) order.emplace_back(walks[k].at(u), k);
    // far (higher up) first: a nearer card covers it
    std::sort(order.begin(), order.end(), [](const auto &a, const auto &b) {
      return std::make_pair(a.first.y, a.second) < std::make_pair(b.first.y, b.second);
    });
    cv::Mat frame(h, w, CV_8UC3, out.frames[t].data_ptr<uint8_t>());
    background.copyTo(frame);
    owner.setTo(-1);
    for (const auto &[at, k] : order) {
      const cv::Rect rect(at.x, at.y, card, card);
      cv::Mat(card, card, CV_8UC3, cards[k][t].data_ptr<uint8_t>()).copyTo(frame(rect));
      owner(rect).setTo(static_cast<int>(k));
    }
    for (const auto &[at, k] : order) {
      const cv::Rect rect(at.x, at.y, card, card);
      const int own = cv::countNonZero(owner(rect) == static_cast<int>(k));
      out.people[k].boxes.push_back(Box{double(at.x), double(at.y), double(card), double(card)});
      out.people[k].visible.push_back(static_cast<float>(own) / (card * card));
    }
  }
  return out;
}

namespace {

// The people of the dataset (each class o.videos_per_class times, shuffled) dealt into videos
// of 2-4.
std::vector<std::vector<int>> deal_people(const SynthOptions &o) {
  Rng rng(splitmix64(o.seed ^ 0x415641ull));
  std::vector<int> people;
  for (int c = 0; c < o.classes; ++c) people.insert(people.end(), o.videos_per_class, c);
  for (size_t i = people.size() - 1; i > 0; --i) {
    std::swap(people[i], people[rng.integer(0, static_cast<int>(i))]);
  }
  std::vector<std::vector<int>> videos;
  for (size_t i = 0; i < people.size();) {
    const size_t left = people.size() - i;
    size_t k = static_cast<size_t>(rng.integer(2, 4));
    k = left <= 4 ? left : std::min(k, left - 2);  // never one person left over
    videos.emplace_back(people.begin() + i, people.begin() + i + k);
    i += k;
  }
  return videos;
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

// AVA rows (keyframes at 0 s, 1 s, 2 s, ...) and the MOT ground truth of one video.
void annotate(const SynthCrowdVideo &v, const std::string &id, const SynthOptions &o,
              std::string &ava, std::string &mot) {
  const int n = static_cast<int>(v.frames.size(0));
  const double w = static_cast<double>(v.frames.size(2)), h = static_cast<double>(v.frames.size(1));
  std::ostringstream a, m;
  for (int s = 0; s * o.fps <= n - 1; ++s) {
    for (const auto &p : v.people) {
      const Box &b = p.boxes[s * o.fps];
      a << id << ',' << s << ',' << fixed(b.x / w, 4) << ',' << fixed(b.y / h, 4) << ','
        << fixed(std::min(1.0, (b.x + b.w) / w), 4) << ','
        << fixed(std::min(1.0, (b.y + b.h) / h), 4) << ',' << p.motion + 1 << ',' << p.id << '\n';
    }
  }
  for (int t = 0; t < n; ++t) {
    for (const auto &p : v.people) {
      const Box &b = p.boxes[t];
      m << t + 1 << ',' << p.id << ',' << b.x << ',' << b.y << ',' << b.w << ',' << b.h << ",1,1,"
        << fixed(p.visible[t], 3) << '\n';
    }
  }
  ava = a.str();
  mot = m.str();
}

void write_text(const fs::path &path, const std::string &text) {
  std::ofstream f(path);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

std::vector<SynthItem> detail::write_synth_crowd(const SynthOptions &o,
                                                 const std::function<void(int, int)> &progress) {
  const auto videos = deal_people(o);
  const fs::path out(o.out);
  fs::create_directories(out / "videos");
  fs::create_directories(out / "tracks");
  std::vector<SynthItem> items(videos.size());
  std::vector<std::string> rows(videos.size());
  const int total = static_cast<int>(videos.size());
  for (int v = 0; v < total; ++v) {
    char name[64];
    std::snprintf(name, sizeof(name), "videos/crowd_%04d.webm", v);
    items[v].file = name;
    items[v].label = -1;
    items[v].split = v % 5 == 4 || (total < 5 && total >= 2 && v == total - 1) ? "val" : "train";
  }
  detail::for_each_in_parallel(
      total, o.jobs,
      [&](int v) {
        SynthCrowdScene scene;
        scene.motions = videos[v];
        scene.seed = splitmix64(splitmix64(o.seed) + static_cast<uint64_t>(v));
        scene.frames = o.frames;
        scene.width = o.frame_width();
        scene.height = o.size;
        const auto video = render_synth_crowd(scene);
        const std::string id = fs::path(items[v].file).stem().string();
        std::string mot;
        annotate(video, id, o, rows[v], mot);
        write_text(out / "tracks" / (id + ".txt"), mot);
        VideoWriter writer((out / items[v].file).string(), VideoCodec::kVp8Webm, scene.width,
                           scene.height, o.fps);
        for (int t = 0; t < o.frames; ++t) writer.write(video.frames[t]);
        writer.finish();
      },
      progress);
  for (const char *split : {"train", "val"}) {
    std::string csv;
    for (int v = 0; v < total; ++v) {
      if (items[v].split == split) csv += rows[v];
    }
    write_text(out / (std::string(split) + ".csv"), csv);
  }
  return items;
}

}  // namespace vidcls::train
