#include "vidcls/tracks.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string_view>

#include "vidcls/errors.h"

namespace vidcls {

namespace {

// The comma-separated fields of a line, spaces around them dropped.
std::vector<std::string> fields_of(const std::string &line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = line.find(',', start);
    std::string f =
        line.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto first = f.find_first_not_of(" \t\r");
    const auto last = f.find_last_not_of(" \t\r");
    out.push_back(first == std::string::npos ? "" : f.substr(first, last - first + 1));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

// Reads the file line by line; `on_line` gets the fields of every line that is not blank and a
// function that throws FormatError naming the file and the line.
template <typename OnLine>
void read_lines(const std::string &path, const char *format, OnLine on_line) {
  std::ifstream in(path);
  if (!in) throw FormatError(path + ": cannot open the " + format + " file");
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto fail = [&](const std::string &what) {
      throw FormatError(path + ":" + std::to_string(n) + ": " + what + " (a " + format +
                        " line is expected)");
    };
    on_line(fields_of(line), fail);
  }
}

template <typename Fail>
double number(const std::string &f, const char *what, Fail fail) {
  errno = 0;
  char *end = nullptr;
  const double v = std::strtod(f.c_str(), &end);
  if (f.empty() || end != f.c_str() + f.size() || errno == ERANGE || !std::isfinite(v))
    fail(std::string(what) + " '" + f + "' is not a finite number");
  return v;
}

template <typename Fail>
int64_t whole(const std::string &f, const char *what, Fail fail) {
  const double v = number(f, what, fail);
  if (v != std::floor(v) || std::abs(v) > 9.0e15)
    fail(std::string(what) + " '" + f + "' is not a whole number");
  return static_cast<int64_t>(v);
}

// Adds a key, keeping the keys sorted; a second key at the same time is the caller's to judge.
TrackKey *insert_key(Track &track, double t) {
  auto it = std::lower_bound(track.keys.begin(), track.keys.end(), t,
                             [](const TrackKey &k, double v) { return k.t < v; });
  if (it != track.keys.end() && it->t == t) return &*it;
  TrackKey k;
  k.t = t;
  return &*track.keys.insert(it, k);
}

}  // namespace

Tracks read_mot(const std::string &path) {
  Tracks tracks;
  tracks.normalised = false;
  tracks.in_frames = true;
  read_lines(path, "MOTChallenge", [&](const std::vector<std::string> &f, auto fail) {
    if (f.size() < 6) fail("" + std::to_string(f.size()) + " fields, at least 6");
    const int64_t frame = whole(f[0], "frame", fail);
    const int64_t id = whole(f[1], "id", fail);
    if (frame < 1) fail("frame " + f[0] + " (frames count from 1)");
    const Box box{number(f[2], "left", fail), number(f[3], "top", fail),
                  number(f[4], "width", fail), number(f[5], "height", fail)};
    if (!(box.w > 0 && box.h > 0)) fail("a box of " + f[4] + " x " + f[5] + " pixels");
    if (f.size() > 6 && number(f[6], "conf", fail) == 0) return;  // ground truth to ignore
    Track &track = tracks.by_id[id];
    track.id = id;
    if (f.size() > 7) track.object_class = static_cast<int>(whole(f[7], "class", fail));
    const double t = static_cast<double>(frame - 1);
    const size_t before = track.keys.size();
    TrackKey *k = insert_key(track, t);
    if (track.keys.size() == before) fail("a second box of id " + f[1] + " in frame " + f[0]);
    k->box = box;
  });
  return tracks;
}

std::map<std::string, Tracks> read_ava(const std::string &path) {
  std::map<std::string, Tracks> videos;
  read_lines(path, "AVA", [&](const std::vector<std::string> &f, auto fail) {
    if (f.size() != 8) fail(std::to_string(f.size()) + " fields, not 8");
    if (f[0].empty()) fail("no video id");
    const double t = number(f[1], "timestamp", fail);
    double c[4];
    const char *names[4] = {"x1", "y1", "x2", "y2"};
    for (int i = 0; i < 4; ++i) {
      c[i] = number(f[2 + i], names[i], fail);
      if (c[i] < 0 || c[i] > 1) fail(std::string(names[i]) + " " + f[2 + i] + " is outside [0, 1]");
    }
    if (!(c[2] > c[0] && c[3] > c[1])) fail("a box without area (x2 <= x1 or y2 <= y1)");
    const int action = static_cast<int>(whole(f[6], "action id", fail));
    const int64_t id = whole(f[7], "person id", fail);
    Tracks &tracks = videos[f[0]];
    tracks.normalised = true;
    tracks.in_frames = false;
    Track &track = tracks.by_id[id];
    track.id = id;
    const Box box{c[0], c[1], c[2] - c[0], c[3] - c[1]};
    const size_t before = track.keys.size();
    TrackKey *k = insert_key(track, t);
    if (track.keys.size() == before) {
      constexpr double kSame = 1e-6;
      if (std::abs(k->box.x - box.x) > kSame || std::abs(k->box.y - box.y) > kSame ||
          std::abs(k->box.w - box.w) > kSame || std::abs(k->box.h - box.h) > kSame)
        fail("person " + f[7] + " at " + f[1] + " s has another box on an earlier line");
    }
    k->box = box;
    if (std::find(k->actions.begin(), k->actions.end(), action) == k->actions.end())
      k->actions.push_back(action);
  });
  return videos;
}

std::optional<Box> box_at(const Track &track, double t, double max_gap) {
  const auto &keys = track.keys;
  if (keys.empty() || !std::isfinite(t) || t < keys.front().t) return std::nullopt;
  // The last key at or before t.
  auto after = std::upper_bound(keys.begin(), keys.end(), t,
                                [](double v, const TrackKey &k) { return v < k.t; });
  const TrackKey &a = *std::prev(after);
  if (a.t == t) return a.box;
  if (after != keys.end() && after->t - a.t <= max_gap) {
    const TrackKey &b = *after;
    const double s = (t - a.t) / (b.t - a.t);
    const auto mix = [s](double x, double y) { return x + (y - x) * s; };
    return Box{mix(a.box.x, b.box.x), mix(a.box.y, b.box.y), mix(a.box.w, b.box.w),
               mix(a.box.h, b.box.h)};
  }
  if (t - a.t <= max_gap) return a.box;
  return std::nullopt;
}

Box box_in_pixels(const Box &b, int64_t W, int64_t H) {
  return {b.x * static_cast<double>(W), b.y * static_cast<double>(H), b.w * static_cast<double>(W),
          b.h * static_cast<double>(H)};
}

std::optional<Box> box_on_frame(const Box &b, int64_t W, int64_t H) {
  if (!std::isfinite(b.x) || !std::isfinite(b.y) || !std::isfinite(b.w) || !std::isfinite(b.h))
    return std::nullopt;
  const double w = static_cast<double>(W), h = static_cast<double>(H);
  const double left = std::round(std::clamp(b.x, 0.0, w));
  const double top = std::round(std::clamp(b.y, 0.0, h));
  const double right = std::round(std::clamp(b.x + b.w, 0.0, w));
  const double bottom = std::round(std::clamp(b.y + b.h, 0.0, h));
  if (right <= left || bottom <= top) return std::nullopt;
  return Box{left, top, right - left, bottom - top};
}

}  // namespace vidcls
