#include "vidcls/train/synth.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "synth_draw.h"
#include "vidcls/train/video_writer.h"

namespace fs = std::filesystem;

namespace vidcls::train {

namespace {

enum Motion {
  kSlideLeft,
  kSlideRight,
  kSlideUp,
  kSlideDown,
  kRotateCw,
  kRotateCcw,
  kGrow,
  kShrink,
  kOrbitCw,
  kOrbitCcw,
  kNumMotions
};

enum Shape { kCircle, kSquare, kTriangle, kEllipse, kNumShapes };

using detail::kPi;
using detail::make_background;
using detail::Rng;
using detail::splitmix64;

double colour_distance(const cv::Scalar &a, const cv::Scalar &b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                   (a[2] - b[2]) * (a[2] - b[2]));
}

cv::Scalar colour_away_from(Rng &rng, const cv::Scalar &other, double min_distance) {
  cv::Scalar c = rng.colour();
  for (int i = 0; i < 100 && colour_distance(c, other) < min_distance; ++i) c = rng.colour();
  return c;
}

// Outline of a shape of unit size around the origin.
std::vector<cv::Point2d> unit_outline(int shape) {
  std::vector<cv::Point2d> pts;
  auto ring = [&pts](int n, double rx, double ry) {
    for (int i = 0; i < n; ++i) {
      const double a = 2 * kPi * i / n;
      pts.emplace_back(rx * std::cos(a), ry * std::sin(a));
    }
  };
  switch (shape) {
    case kCircle:
      ring(40, 1.0, 1.0);
      break;
    case kSquare:
      pts = {{-0.85, -0.85}, {0.85, -0.85}, {0.85, 0.85}, {-0.85, 0.85}};
      break;
    case kTriangle:
      for (double deg : {-90.0, 30.0, 150.0}) {
        pts.emplace_back(1.1 * std::cos(deg * kPi / 180), 1.1 * std::sin(deg * kPi / 180));
      }
      break;
    default:
      ring(40, 1.15, 0.7);
      break;
  }
  return pts;
}

// Fills `outline` scaled by `radius`, turned by `angle_deg` (clockwise on screen, y points down)
// and centred on (cx, cy), antialiased at sub-pixel precision.
void fill_outline(cv::Mat &img, const std::vector<cv::Point2d> &outline, double cx, double cy,
                  double radius, double angle_deg, const cv::Scalar &colour) {
  constexpr int kShift = 4;
  const double c = std::cos(angle_deg * kPi / 180), s = std::sin(angle_deg * kPi / 180);
  std::vector<cv::Point> pts;
  pts.reserve(outline.size());
  for (const auto &p : outline) {
    const double x = cx + radius * (p.x * c - p.y * s), y = cy + radius * (p.x * s + p.y * c);
    pts.emplace_back(static_cast<int>(std::lround(x * (1 << kShift))),
                     static_cast<int>(std::lround(y * (1 << kShift))));
  }
  cv::fillConvexPoly(img, pts, colour, cv::LINE_AA, kShift);
}

// A shape with an off-centre marker, so that turning is visible whatever the shape.
struct Sprite {
  std::vector<cv::Point2d> body, marker, inner;  // inner: empty, or a smaller second shape
  cv::Scalar colour, marker_colour, inner_colour;

  void draw(cv::Mat &img, double cx, double cy, double radius, double angle_deg) const {
    fill_outline(img, body, cx, cy, radius, angle_deg, colour);
    if (!inner.empty()) fill_outline(img, inner, cx, cy, radius, angle_deg, inner_colour);
    fill_outline(img, marker, cx, cy, radius, angle_deg, marker_colour);
  }
};

Sprite make_sprite(int shape, const cv::Scalar &colour, const cv::Scalar &marker_colour) {
  Sprite s;
  s.body = unit_outline(shape);
  for (int i = 0; i < 16; ++i) {  // a disc towards the shape's top (a triangle's apex)
    const double a = 2 * kPi * i / 16;
    s.marker.emplace_back(0.22 * std::cos(a), -0.4 + 0.22 * std::sin(a));
  }
  s.colour = colour;
  s.marker_colour = marker_colour;
  return s;
}

// Where the object is at progress u in [0, 1] (frame pixels at t = 0).
struct Pose {
  double x, y, radius, angle;
};

// The path of motion `m` through a w x h frame (s: its short side), drawn from `rng`.
std::function<Pose(double)> motion_path(int m, Rng &rng, double s, int w, int h, double angle0) {
  const double pad = 0.04 * s;
  std::function<Pose(double)> pose;
  if (m <= kSlideDown) {
    const double r = rng.uniform(0.10, 0.16) * s;
    const bool horizontal = m == kSlideLeft || m == kSlideRight;
    const double along = horizontal ? w : h, across = horizontal ? h : w;
    const double lo = r + pad, usable = along - 2 * lo;
    const double distance = rng.uniform(0.5, 0.85) * usable;
    const double start = lo + rng.uniform(0, usable - distance);
    const double cross = rng.uniform(r + pad, across - r - pad);
    const double sign = (m == kSlideRight || m == kSlideDown) ? 1 : -1;
    const double from = sign > 0 ? start : start + distance;
    pose = [=](double u) {
      const double a = from + sign * distance * u;
      return horizontal ? Pose{a, cross, r, angle0} : Pose{cross, a, r, angle0};
    };
  } else if (m == kRotateCw || m == kRotateCcw) {
    const double r = rng.uniform(0.15, 0.22) * s;
    const double cx = rng.uniform(r + pad, w - r - pad), cy = rng.uniform(r + pad, h - r - pad);
    const double turn = rng.uniform(120, 240) * (m == kRotateCw ? 1 : -1);
    pose = [=](double u) { return Pose{cx, cy, r, angle0 + turn * u}; };
  } else if (m == kGrow || m == kShrink) {
    const double r0 = rng.uniform(0.07, 0.10) * s, factor = rng.uniform(1.8, 2.4);
    const double r1 = r0 * factor;
    const double cx = rng.uniform(r1 + pad, w - r1 - pad), cy = rng.uniform(r1 + pad, h - r1 - pad);
    const bool grow = m == kGrow;
    pose = [=](double u) {
      return Pose{cx, cy, (grow ? r0 : r1) * std::pow(factor, grow ? u : -u), angle0};
    };
  } else {
    const double r = rng.uniform(0.08, 0.11) * s, orbit = rng.uniform(0.16, 0.24) * s;
    const double reach = r + orbit + pad;
    const double cx = rng.uniform(reach, std::max(reach, w - reach));
    const double cy = rng.uniform(reach, std::max(reach, h - reach));
    const double phase = rng.uniform(0, 2 * kPi);
    const double arc = rng.uniform(180, 300) * kPi / 180 * (m == kOrbitCw ? 1 : -1);
    pose = [=](double u) {
      return Pose{cx + orbit * std::cos(phase + arc * u), cy + orbit * std::sin(phase + arc * u), r,
                  angle0};
    };
  }
  return pose;
}

// Content displacement (x, y) of every frame against frame 0, and the margin the canvas needs
// around the frame so the displaced window stays on it. `rng` is the scene's own stream: the drift
// is drawn from it whatever the camera, so that a drifting scene keeps its pixels; pan and shake
// draw from `extra`.
struct CameraPath {
  std::vector<double> x, y;
  double drift_x = 0, drift_y = 0;
  int margin = 0;
};

CameraPath camera_path(SynthCamera camera, Rng &rng, Rng &extra, double s, int n) {
  CameraPath path;
  path.x.assign(n, 0.0);
  path.y.assign(n, 0.0);
  const double drift_total = rng.uniform(0.03, 0.12) * s, drift_angle = rng.uniform(0, 2 * kPi);
  path.margin = static_cast<int>(std::ceil(0.12 * s)) + 2;
  if (n < 2) return path;
  if (camera == SynthCamera::kDrift) {
    path.drift_x = drift_total * std::cos(drift_angle) / (n - 1);
    path.drift_y = drift_total * std::sin(drift_angle) / (n - 1);
    for (int t = 0; t < n; ++t) {
      path.x[t] = path.drift_x * t;
      path.y[t] = path.drift_y * t;
    }
  } else if (camera == SynthCamera::kPan) {
    // Mostly horizontal, either way; eases in and out (zero speed at both ends).
    const double total = extra.uniform(0.20, 0.40) * s;
    const double angle = (extra.uniform() < 0.5 ? 0 : kPi) + extra.uniform(-0.35, 0.35);
    for (int t = 0; t < n; ++t) {
      const double u = static_cast<double>(t) / (n - 1);
      const double along = total * (u - std::sin(2 * kPi * u) / (2 * kPi));
      path.x[t] = along * std::cos(angle);
      path.y[t] = along * std::sin(angle);
    }
    path.margin = static_cast<int>(std::ceil(0.42 * s)) + 2;
  } else if (camera == SynthCamera::kShake) {
    // Per axis, three sinusoids of periods 3-12 frames: at most 0.09 s from frame 0.
    for (std::vector<double> *axis : {&path.x, &path.y}) {
      for (int k = 0; k < 3; ++k) {
        const double amplitude = extra.uniform(0.005, 0.015) * s;
        const double period = extra.uniform(3, 12), phase = extra.uniform(0, 2 * kPi);
        for (int t = 0; t < n; ++t) {
          (*axis)[t] += amplitude * (std::sin(2 * kPi * t / period + phase) - std::sin(phase));
        }
      }
    }
  }
  return path;
}

// An object-sized shape in the background: two colours, an inner shape and a marker; about half
// of them travel slowly in a straight line.
struct ClutterShape {
  Sprite sprite;
  double x = 0, y = 0, radius = 0, angle = 0;
  double vx = 0, vy = 0;  // canvas pixels per frame
};

std::vector<ClutterShape> make_clutter(Rng &extra, int count, double s, int canvas_w, int canvas_h,
                                       int n) {
  std::vector<ClutterShape> shapes;
  for (int i = 0; i < count; ++i) {
    ClutterShape c;
    const cv::Scalar colour = extra.colour();
    c.sprite =
        make_sprite(extra.integer(0, kNumShapes - 1), colour, colour_away_from(extra, colour, 60));
    const auto inner = unit_outline(extra.integer(0, kNumShapes - 1));
    for (const auto &p : inner) c.sprite.inner.emplace_back(0.5 * p.x, 0.5 * p.y + 0.15);
    c.sprite.inner_colour = colour_away_from(extra, colour, 60);
    c.x = extra.uniform(0, canvas_w);
    c.y = extra.uniform(0, canvas_h);
    c.radius = extra.uniform(0.08, 0.16) * s;
    c.angle = extra.uniform(0, 360);
    const double travel = extra.uniform(0.05, 0.20) * s, heading = extra.uniform(0, 2 * kPi);
    if (extra.uniform() < 0.5 && n > 1) {
      c.vx = travel * std::cos(heading) / (n - 1);
      c.vy = travel * std::sin(heading) / (n - 1);
    }
    shapes.push_back(std::move(c));
  }
  return shapes;
}

}  // namespace

// Random colour, then a smooth noise texture or a two-colour gradient, then fine grain.
cv::Mat detail::make_background(Rng &rng, int width, int height) {
  cv::Mat bg(height, width, CV_32FC3, rng.colour());
  if (rng.uniform() < 0.5) {
    const int gw = rng.integer(3, 10), gh = rng.integer(3, 10);
    cv::Mat coarse(gh, gw, CV_32FC3);
    const double amplitude = rng.uniform(20, 60);
    for (int y = 0; y < gh; ++y) {
      for (int x = 0; x < gw; ++x) {
        coarse.at<cv::Vec3f>(y, x) =
            cv::Vec3f(static_cast<float>(rng.uniform(-amplitude, amplitude)),
                      static_cast<float>(rng.uniform(-amplitude, amplitude)),
                      static_cast<float>(rng.uniform(-amplitude, amplitude)));
      }
    }
    cv::Mat smooth;
    cv::resize(coarse, smooth, bg.size(), 0, 0, cv::INTER_CUBIC);
    bg += smooth;
  } else {
    const cv::Scalar other = rng.colour();
    const double a = rng.uniform(0, 2 * kPi), ca = std::cos(a), sa = std::sin(a);
    const double extent = std::abs(ca) * width + std::abs(sa) * height;
    const double x0 = ca < 0 ? width : 0, y0 = sa < 0 ? height : 0;
    for (int y = 0; y < height; ++y) {
      auto *row = bg.ptr<cv::Vec3f>(y);
      for (int x = 0; x < width; ++x) {
        const double t = ((x - x0) * ca + (y - y0) * sa) / extent;
        for (int c = 0; c < 3; ++c)
          row[x][c] = static_cast<float>(row[x][c] * (1 - t) + other[c] * t);
      }
    }
  }
  cv::Mat grain(bg.size(), CV_32FC3);
  cv::RNG(rng.bits()).fill(grain, cv::RNG::NORMAL, 0, rng.uniform(0, 8));
  bg += grain;
  cv::Mat out;
  bg.convertTo(out, CV_8UC3);
  return out;
}

std::string to_string(SynthCamera camera) {
  switch (camera) {
    case SynthCamera::kStill:
      return "still";
    case SynthCamera::kDrift:
      return "drift";
    case SynthCamera::kPan:
      return "pan";
    case SynthCamera::kShake:
      return "shake";
  }
  return "drift";
}

SynthCamera synth_camera_from_string(const std::string &name) {
  for (auto c :
       {SynthCamera::kStill, SynthCamera::kDrift, SynthCamera::kPan, SynthCamera::kShake}) {
    if (name == to_string(c)) return c;
  }
  throw std::invalid_argument("unknown camera '" + name +
                              "' (expected still, drift, pan or shake)");
}

const std::vector<std::string> &synth_motion_names() {
  static const std::vector<std::string> names = {
      "slide_left", "slide_right", "slide_up", "slide_down", "rotate_cw",
      "rotate_ccw", "grow",        "shrink",   "orbit_cw",   "orbit_ccw"};
  return names;
}

SynthVideo render_synth_video(const SynthScene &scene) {
  TORCH_CHECK(scene.motion >= 0 && scene.motion < kNumMotions, "synth: motion index ", scene.motion,
              " out of range [0, ", static_cast<int>(kNumMotions), ")");
  TORCH_CHECK(scene.frames >= 1 && scene.width >= 8 && scene.height >= 8,
              "synth: need at least one frame of 8 x 8 pixels");
  TORCH_CHECK(scene.clutter >= 0, "synth: clutter must be >= 0, got ", scene.clutter);
  const int n = scene.frames, w = scene.width, h = scene.height;
  const double s = std::min(w, h);
  Rng rng(splitmix64(scene.seed));
  Rng extra(splitmix64(scene.seed ^ 0x636C757474657221ull));  // clutter, pan, shake

  // The camera: the drift is at most 12 % of the short side over the video, well below the
  // object's own motion; a pan is up to 40 %.
  const CameraPath camera = camera_path(scene.camera, rng, extra, s, n);
  const int margin = camera.margin;

  cv::Mat background = make_background(rng, w + 2 * margin, h + 2 * margin);
  const cv::Scalar bg_mean = cv::mean(background);
  const int distractors = rng.integer(0, 3);
  for (int i = 0; i < distractors; ++i) {
    const cv::Scalar c = rng.colour();
    Sprite d = make_sprite(rng.integer(0, kNumShapes - 1), c, colour_away_from(rng, c, 60));
    d.draw(background, rng.uniform(0, background.cols), rng.uniform(0, background.rows),
           rng.uniform(0.05, 0.12) * s, rng.uniform(0, 360));
  }
  const auto clutter = make_clutter(extra, scene.clutter, s, background.cols, background.rows, n);
  const cv::Scalar colour = colour_away_from(rng, bg_mean, 140);
  const Sprite object =
      make_sprite(rng.integer(0, kNumShapes - 1), colour, colour_away_from(rng, colour, 110));
  const double angle0 = rng.uniform(0, 360);

  const std::function<Pose(double)> pose = motion_path(scene.motion, rng, s, w, h, angle0);
  const double noise_sigma = rng.uniform(0, 4);
  cv::RNG noise_rng(rng.bits());

  SynthVideo out;
  out.frames = torch::empty({n, h, w, 3}, torch::kUInt8);
  out.drift_x = static_cast<float>(camera.drift_x);
  out.drift_y = static_cast<float>(camera.drift_y);
  cv::Mat canvas, noise(h, w, CV_32FC3);
  for (int t = 0; t < n; ++t) {
    const Pose p = pose(n > 1 ? static_cast<double>(t) / (n - 1) : 0.0);
    background.copyTo(canvas);
    for (const auto &c : clutter) {
      c.sprite.draw(canvas, c.x + c.vx * t, c.y + c.vy * t, c.radius, c.angle);
    }
    object.draw(canvas, p.x + margin, p.y + margin, p.radius, p.angle);
    // The frame is the canvas window that has moved by -(camera.x, camera.y)[t].
    const cv::Matx23d shift(1, 0, camera.x[t] - margin, 0, 1, camera.y[t] - margin);
    cv::Mat frame(h, w, CV_8UC3, out.frames[t].data_ptr<uint8_t>());
    cv::warpAffine(canvas, frame, shift, frame.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
    if (noise_sigma > 0.5) {
      noise_rng.fill(noise, cv::RNG::NORMAL, 0, noise_sigma);
      cv::add(frame, noise, frame, cv::noArray(), CV_8U);
    }
    out.x.push_back(static_cast<float>(p.x + camera.x[t]));
    out.y.push_back(static_cast<float>(p.y + camera.y[t]));
    out.radius.push_back(static_cast<float>(p.radius));
    out.angle.push_back(static_cast<float>(p.angle));
    out.camera_x.push_back(static_cast<float>(camera.x[t]));
    out.camera_y.push_back(static_cast<float>(camera.y[t]));
  }
  return out;
}

std::string to_string(SynthLayout layout) {
  switch (layout) {
    case SynthLayout::kMsr:
      return "msr";
    case SynthLayout::kKinetics400:
      return "kinetics400";
    case SynthLayout::kFolder:
      return "folder";
    case SynthLayout::kAva:
      return "ava";
  }
  return "msr";
}

SynthLayout synth_layout_from_string(const std::string &name) {
  for (auto l :
       {SynthLayout::kMsr, SynthLayout::kKinetics400, SynthLayout::kFolder, SynthLayout::kAva}) {
    if (name == to_string(l)) return l;
  }
  throw std::invalid_argument("unknown layout '" + name +
                              "' (expected msr, kinetics400 or folder)");
}

int SynthOptions::frame_width() const { return width > 0 ? width : (size * 4 / 3 + 1) / 2 * 2; }

void SynthOptions::validate() const {
  auto fail = [](const std::string &msg) { throw std::invalid_argument(msg); };
  const int max_classes = static_cast<int>(synth_motion_names().size());
  if (out.empty()) fail("--out: an output folder is needed");
  if (classes < 1 || classes > max_classes) {
    fail("--classes must be in [1, " + std::to_string(max_classes) + "], got " +
         std::to_string(classes));
  }
  if (videos_per_class < 1) fail("--videos-per-class must be >= 1");
  if (subjects < 1 || subjects > 99) fail("--subjects must be in [1, 99]");
  if (layout == SynthLayout::kMsr && (videos_per_class + subjects - 1) / subjects > 98) {
    fail("--videos-per-class / --subjects must be at most 98 for the msr layout (eZZ)");
  }
  if (frames < 2) fail("--frames must be >= 2: motion needs at least two frames");
  if (size < 16 || size > 4096) fail("--size must be in [16, 4096]");
  if (width != 0 && (width < 16 || width > 4096)) fail("--width must be in [16, 4096]");
  if (fps < 1 || fps > 240) fail("--fps must be in [1, 240]");
  if (clutter < 0 || clutter > 64) fail("--clutter must be in [0, 64]");
  if (corrupt < 0) fail("--corrupt must be >= 0");
  if (layout == SynthLayout::kAva && corrupt > 0) fail("--corrupt: not for the ava layout");
  if (layout == SynthLayout::kAva && classes * videos_per_class < 2) {
    fail("ava: --classes x --videos-per-class (people) must be >= 2");
  }
  if (jobs < 1) fail("--jobs must be >= 1");
}

namespace {

struct Job {
  SynthItem item;
  SynthScene scene;
  int corrupt_kind = -1;  // 0: header only, 1: random bytes, 2: empty
};

// 11 characters of YouTube's alphabet, the first a '-' when asked.
std::string youtube_id(Rng &rng, bool dash_first) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string id;
  for (int i = 0; i < 11; ++i) id += alphabet[rng.integer(0, 63)];
  if (dash_first) id[0] = '-';
  return id;
}

std::string format(const char *fmt, int a, int b = 0, int c = 0) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, a, b, c);
  return buf;
}

void write_csv(const fs::path &path, const std::vector<Job> &jobs, const std::string &split,
               const std::vector<std::string> &ids, const std::vector<std::pair<int, int>> &times) {
  std::ofstream csv(path);
  csv << "label,youtube_id,time_start,time_end,split\n";
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].item.split != split) continue;
    csv << synth_motion_names()[jobs[i].item.label] << ',' << ids[i] << ',' << times[i].first << ','
        << times[i].second << ',' << split << '\n';
  }
  if (!csv) throw std::runtime_error("cannot write " + path.string());
}

void write_corrupt(const Job &job, const fs::path &path, const SynthOptions &o, VideoCodec codec) {
  Rng rng(splitmix64(job.scene.seed ^ 0xC0FFEEull));
  if (job.corrupt_kind == 0) {
    // A real container header and nothing after it: the demuxer recognises the file and fails.
    {
      SynthScene tiny = job.scene;
      tiny.frames = 2;
      VideoWriter writer(path.string(), codec, o.frame_width(), o.size, o.fps);
      const auto video = render_synth_video(tiny);
      for (int t = 0; t < 2; ++t) writer.write(video.frames[t]);
      writer.finish();
    }
    fs::resize_file(path, 64);
    return;
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (job.corrupt_kind == 1) {
    for (int i = 0; i < 4096; ++i) f.put(static_cast<char>(rng.integer(0, 255)));
  }
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

// Every file of the dataset: name, label, subject or split, and the scene to render.
struct JobPlan {
  std::vector<Job> jobs;
  std::vector<std::string> ids;            // kinetics400, per job
  std::vector<std::pair<int, int>> times;  // kinetics400, per job
};

JobPlan plan_jobs(const SynthOptions &o) {
  const auto &names = synth_motion_names();
  const int seconds = std::max(1, (o.frames + o.fps - 1) / o.fps);
  const int val_per_class = o.videos_per_class >= 2 ? std::max(1, o.videos_per_class / 5) : 0;
  const int repetitions = (o.videos_per_class + o.subjects - 1) / o.subjects;

  JobPlan plan;
  auto &jobs = plan.jobs;
  auto &ids = plan.ids;
  auto &times = plan.times;
  std::set<std::string> used_ids;
  Rng id_rng(splitmix64(o.seed ^ 0x4B494E4554494353ull));
  const int total = o.classes * o.videos_per_class + o.corrupt;
  for (int index = 0; index < total; ++index) {
    Job job;
    const bool corrupt = index >= o.classes * o.videos_per_class;
    const int k = corrupt ? index - o.classes * o.videos_per_class : index;
    const int label = corrupt ? k % o.classes : index / o.videos_per_class;
    // Corrupt files take the slots after the good ones of their class.
    const int v = corrupt ? o.videos_per_class + k / o.classes : index % o.videos_per_class;
    job.item.label = label;
    job.item.corrupt = corrupt;
    job.corrupt_kind = corrupt ? k % 3 : -1;
    job.scene.motion = label;
    job.scene.seed = splitmix64(splitmix64(o.seed) + static_cast<uint64_t>(index));
    job.scene.frames = o.frames;
    job.scene.width = o.frame_width();
    job.scene.height = o.size;
    job.scene.camera = o.camera;
    job.scene.clutter = o.clutter;
    switch (o.layout) {
      case SynthLayout::kMsr: {
        const int subject = v % o.subjects + 1;
        const int env =
            corrupt ? repetitions + 1 + (v - o.videos_per_class) / o.subjects : v / o.subjects + 1;
        job.item.subject = subject;
        job.item.file = format("a%02d_s%02d_e%02d_rgb.avi", label + 1, subject, env);
        break;
      }
      case SynthLayout::kKinetics400: {
        std::string id;
        do {
          id = youtube_id(id_rng, index % 5 == 1);
        } while (!used_ids.insert(id).second);
        const int start = id_rng.integer(0, 290);
        ids.push_back(id);
        times.emplace_back(start, start + seconds);
        job.item.split = !corrupt && v >= o.videos_per_class - val_per_class ? "val" : "train";
        job.item.file = "videos/" + id + format("_%06d_%06d.mp4", start, start + seconds);
        break;
      }
      case SynthLayout::kFolder:
        job.item.file = names[label] + "/" + names[label] + format("_%04d.webm", v);
        break;
      case SynthLayout::kAva:  // write_synth_crowd
        break;
    }
    jobs.push_back(std::move(job));
  }

  return plan;
}

// Renders and encodes every job on o.jobs threads; rethrows the first failure.
void render_jobs(const std::vector<Job> &jobs, const SynthOptions &o, VideoCodec codec,
                 const std::function<void(int, int)> &progress) {
  const fs::path out(o.out);
  detail::for_each_in_parallel(
      static_cast<int>(jobs.size()), o.jobs,
      [&](int i) {
        const Job &job = jobs[i];
        const fs::path path = out / job.item.file;
        if (job.item.corrupt) {
          write_corrupt(job, path, o, codec);
          return;
        }
        const auto video = render_synth_video(job.scene);
        VideoWriter writer(path.string(), codec, job.scene.width, job.scene.height, o.fps);
        for (int t = 0; t < o.frames; ++t) writer.write(video.frames[t]);
        writer.finish();
      },
      progress);
}

}  // namespace

void detail::for_each_in_parallel(int total, int threads, const std::function<void(int)> &work,
                                  const std::function<void(int, int)> &progress) {
  std::atomic<int> next{0};
  std::mutex mutex;  // guards done, error and progress calls
  int done = 0;
  std::exception_ptr error;
  auto worker = [&] {
    for (int i = next++; i < total; i = next++) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (error) return;
      }
      try {
        work(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        return;
      }
      std::lock_guard<std::mutex> lock(mutex);
      ++done;
      if (progress) progress(done, total);
    }
  };
  std::vector<std::thread> pool;
  for (int j = 1; j < std::min(threads, total); ++j) pool.emplace_back(worker);
  worker();
  for (auto &t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

std::vector<SynthItem> write_synth_dataset(const SynthOptions &o,
                                           const std::function<void(int, int)> &progress) {
  o.validate();
  const auto &names = synth_motion_names();
  if (o.layout == SynthLayout::kAva) {
    fs::create_directories(o.out);
    std::ofstream labels(fs::path(o.out) / "labels.txt");
    for (int c = 0; c < o.classes; ++c) labels << names[c] << '\n';
    if (!labels) throw std::runtime_error("cannot write " + o.out + "/labels.txt");
    return detail::write_synth_crowd(o, progress);
  }
  const fs::path out(o.out);
  const VideoCodec codec = o.layout == SynthLayout::kMsr           ? VideoCodec::kMjpegAvi
                           : o.layout == SynthLayout::kKinetics400 ? VideoCodec::kMpeg4Mp4
                                                                   : VideoCodec::kVp8Webm;
  JobPlan plan = plan_jobs(o);
  fs::create_directories(out);
  for (const auto &job : plan.jobs) fs::create_directories((out / job.item.file).parent_path());
  {
    std::ofstream labels(out / "labels.txt");
    for (int c = 0; c < o.classes; ++c) labels << names[c] << '\n';
    if (!labels) throw std::runtime_error("cannot write " + (out / "labels.txt").string());
  }
  if (o.layout == SynthLayout::kKinetics400) {
    write_csv(out / "train.csv", plan.jobs, "train", plan.ids, plan.times);
    write_csv(out / "val.csv", plan.jobs, "val", plan.ids, plan.times);
  }
  render_jobs(plan.jobs, o, codec, progress);
  std::vector<SynthItem> items;
  for (auto &job : plan.jobs) items.push_back(std::move(job.item));
  return items;
}

}  // namespace vidcls::train
