// vidcls-synth: real encoded videos in the three dataset layouts, whose class is in the motion.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "vidcls/errors.h"
#include "vidcls/tracks.h"
#include "vidcls/train/synth.h"
#include "vidcls/train/video_reader.h"

namespace fs = std::filesystem;

namespace {

class SynthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("vidcls-synth-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs vidcls-synth with `args` writing to DIR/out (`env`: assignments put before the
  // command); returns its exit status.
  int synth(const std::string &out, const std::string &args, const std::string &env = "") const {
    const char *tool = std::getenv("VIDCLS_SYNTH");
    if (tool == nullptr) {
      ADD_FAILURE() << "VIDCLS_SYNTH is not set (run through meson test)";
      return -1;
    }
    const std::string cmd = env + " '" + tool + "' --out '" + (dir_ / out).string() + "' --quiet " +
                            args + " > '" + (dir_ / "log.txt").string() + "' 2>&1";
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string log() const {
    std::ifstream f(dir_ / "log.txt");
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

  fs::path dir_;
};

std::vector<std::string> lines(const fs::path &file) {
  std::ifstream f(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) out.push_back(line);
  return out;
}

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string field; std::getline(in, field, sep);) out.push_back(field);
  return out;
}

// Files under `dir`, relative, sorted, without labels.txt and the CSVs.
std::vector<std::string> videos_under(const fs::path &dir) {
  std::vector<std::string> out;
  for (const auto &e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (name == "labels.txt" || name == "train.csv" || name == "val.csv") continue;
    out.push_back(fs::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> first_names(int n) {
  const auto &all = vidcls::train::synth_motion_names();
  return {all.begin(), all.begin() + n};
}

bool decodes(const fs::path &file) {
  try {
    vidcls::train::decode_video(file.string());
    return true;
  } catch (const vidcls::FormatError &) {
    return false;
  }
}

TEST(SynthClasses, AtLeastEightMotionsWithTheDocumentedNames) {
  const auto &names = vidcls::train::synth_motion_names();
  ASSERT_GE(names.size(), 8u);
  const std::vector<std::string> first8 = {"slide_left", "slide_right", "slide_up", "slide_down",
                                           "rotate_cw",  "rotate_ccw",  "grow",     "shrink"};
  EXPECT_EQ(first_names(8), first8);
}

TEST_F(SynthTest, MsrLayout) {
  ASSERT_EQ(synth("msr",
                  "--layout msr --classes 3 --videos-per-class 4 --subjects 2 --frames 12 "
                  "--size 32 --seed 7"),
            0)
      << log();
  EXPECT_EQ(lines(dir_ / "msr/labels.txt"), first_names(3));
  const auto files = videos_under(dir_ / "msr");
  const std::regex name(R"(a(\d\d)_s(\d\d)_e(\d\d)_rgb\.avi)");
  std::set<std::string> seen;
  for (const auto &f : files) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(f, m, name)) << f;
    const int action = std::stoi(m[1]), subject = std::stoi(m[2]), env = std::stoi(m[3]);
    EXPECT_TRUE(action >= 1 && action <= 3 && subject >= 1 && subject <= 2 && env >= 1 && env <= 2)
        << f;
    seen.insert(f);
  }
  EXPECT_EQ(files.size(), 12u);
  EXPECT_EQ(seen.size(), 12u);  // every action x subject x repetition once

  const auto video = vidcls::train::decode_video((dir_ / "msr/a02_s01_e02_rgb.avi").string());
  EXPECT_EQ(video.frames.sizes(), (std::vector<int64_t>{12, 32, 42, 3}));  // 4:3 of 32, even
  EXPECT_DOUBLE_EQ(video.fps, 15.0);
}

TEST_F(SynthTest, Kinetics400Layout) {
  ASSERT_EQ(synth("k400",
                  "--layout kinetics400 --classes 2 --videos-per-class 6 --frames 10 "
                  "--size 32 --fps 10"),
            0)
      << log();
  const fs::path root = dir_ / "k400";
  EXPECT_EQ(lines(root / "labels.txt"), first_names(2));
  const std::regex id(R"([A-Za-z0-9_-]{11})");
  std::set<std::string> listed;
  int dash_ids = 0;
  std::map<std::string, int> per_split;
  for (const std::string split_name : {"train", "val"}) {
    const auto rows = lines(root / (split_name + ".csv"));
    ASSERT_FALSE(rows.empty());
    EXPECT_EQ(rows[0], "label,youtube_id,time_start,time_end,split");
    for (size_t i = 1; i < rows.size(); ++i) {
      const auto f = split(rows[i], ',');
      ASSERT_EQ(f.size(), 5u) << rows[i];
      EXPECT_TRUE(f[0] == "slide_left" || f[0] == "slide_right") << rows[i];
      EXPECT_TRUE(std::regex_match(f[1], id)) << rows[i];
      EXPECT_EQ(f[4], split_name);
      const int start = std::stoi(f[2]), end = std::stoi(f[3]);
      EXPECT_GT(end, start);
      char file[64];
      std::snprintf(file, sizeof(file), "_%06d_%06d.mp4", start, end);
      const std::string rel = "videos/" + f[1] + file;
      EXPECT_TRUE(fs::is_regular_file(root / rel)) << rel;
      listed.insert(rel);
      dash_ids += f[1][0] == '-';
      ++per_split[split_name];
    }
  }
  EXPECT_EQ(per_split["train"], 10);
  EXPECT_EQ(per_split["val"], 2);
  EXPECT_GE(dash_ids, 1) << "some YouTube ids must start with '-'";
  const auto files = videos_under(root);
  EXPECT_EQ(std::set<std::string>(files.begin(), files.end()), listed);

  const auto video = vidcls::train::decode_video((root / *listed.begin()).string());
  EXPECT_EQ(video.frames.sizes(), (std::vector<int64_t>{10, 32, 42, 3}));
  for (size_t t = 1; t < video.pts_ns.size(); ++t) {
    EXPECT_GT(video.pts_ns[t], video.pts_ns[t - 1]);
  }
}

TEST_F(SynthTest, FolderLayout) {
  ASSERT_EQ(synth("folder",
                  "--layout folder --classes 2 --videos-per-class 3 --frames 8 "
                  "--size 32 --width 48"),
            0)
      << log();
  const fs::path root = dir_ / "folder";
  EXPECT_EQ(lines(root / "labels.txt"), first_names(2));
  const auto files = videos_under(root);
  EXPECT_EQ(files.size(), 6u);
  const std::regex name(R"((slide_left|slide_right)/(\w+)_\d{4}\.webm)");
  for (const auto &f : files) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(f, m, name)) << f;
    EXPECT_EQ(m[1], m[2]) << f;
  }
  const auto video = vidcls::train::decode_video((root / files.back()).string());
  EXPECT_EQ(video.frames.sizes(), (std::vector<int64_t>{8, 32, 48, 3}));
}

TEST_F(SynthTest, SameSeedSameVideosOtherSeedOtherVideos) {
  const std::string args =
      "--layout kinetics400 --classes 1 --videos-per-class 2 --frames 6 "
      "--size 32 --seed ";
  ASSERT_EQ(synth("a", args + "3"), 0) << log();
  ASSERT_EQ(synth("b", args + "3"), 0) << log();
  ASSERT_EQ(synth("c", args + "4"), 0) << log();
  EXPECT_EQ(lines(dir_ / "a/train.csv"), lines(dir_ / "b/train.csv"));
  EXPECT_NE(lines(dir_ / "a/train.csv"), lines(dir_ / "c/train.csv"));
  const auto a = videos_under(dir_ / "a"), b = videos_under(dir_ / "b"),
             c = videos_under(dir_ / "c");
  ASSERT_EQ(a, b);
  for (size_t i = 0; i < a.size(); ++i) {
    const auto fa = vidcls::train::decode_video((dir_ / "a" / a[i]).string(), 1).frames;
    const auto fb = vidcls::train::decode_video((dir_ / "b" / b[i]).string(), 1).frames;
    const auto fc = vidcls::train::decode_video((dir_ / "c" / c[i]).string(), 1).frames;
    EXPECT_TRUE(torch::equal(fa, fb)) << a[i];
    EXPECT_FALSE(torch::equal(fa, fc)) << a[i];
  }
}

std::string bytes_of(const fs::path &file) {
  std::ifstream f(file, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The same seed gives the same files, byte for byte, whatever the heap held before: the two runs
// fill new heap memory with different bytes (glibc's MALLOC_PERTURB_), and the frames are 42 px
// wide, so the last 8x8 blocks that jpegenc encodes reach into the rows' alignment padding
// (once left as allocated: the last block column differed from run to run).
TEST_F(SynthTest, SameSeedSameFilesWhateverTheHeapHeld) {
  const std::string args =
      "--layout msr --classes 1 --videos-per-class 1 --subjects 1 "
      "--frames 6 --size 32 --seed 3";
  ASSERT_EQ(synth("a", args, "MALLOC_PERTURB_=17"), 0) << log();
  ASSERT_EQ(synth("b", args, "MALLOC_PERTURB_=170"), 0) << log();
  const auto a = videos_under(dir_ / "a"), b = videos_under(dir_ / "b");
  ASSERT_EQ(a, b);
  ASSERT_FALSE(a.empty());
  for (const auto &name : a) {
    const auto frames = vidcls::train::decode_video((dir_ / "a" / name).string(), 1).frames;
    ASSERT_NE(frames.size(2) % 8, 0) << "the frames should end in a partial block";
    EXPECT_TRUE(bytes_of(dir_ / "a" / name) == bytes_of(dir_ / "b" / name)) << name;
  }
}

TEST_F(SynthTest, CorruptFilesHaveValidNamesAndDoNotDecode) {
  ASSERT_EQ(synth("msr",
                  "--layout msr --classes 2 --videos-per-class 2 --subjects 2 --frames 6 "
                  "--size 32 --corrupt 3"),
            0)
      << log();
  const std::regex msr_name(R"(a\d\d_s\d\d_e\d\d_rgb\.avi)");
  int good = 0, bad = 0;
  for (const auto &f : videos_under(dir_ / "msr")) {
    EXPECT_TRUE(std::regex_match(f, msr_name)) << f;
    (decodes(dir_ / "msr" / f) ? good : bad)++;
  }
  EXPECT_EQ(good, 4);
  EXPECT_EQ(bad, 3);

  ASSERT_EQ(synth("k400",
                  "--layout kinetics400 --classes 2 --videos-per-class 2 --frames 6 "
                  "--size 32 --corrupt 2"),
            0)
      << log();
  const auto rows = lines(dir_ / "k400/train.csv");
  good = bad = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto f = split(rows[i], ',');
    char file[64];
    std::snprintf(file, sizeof(file), "_%06d_%06d.mp4", std::stoi(f[2]), std::stoi(f[3]));
    (decodes(dir_ / "k400/videos" / (f[1] + file)) ? good : bad)++;
  }
  EXPECT_EQ(good, 2);  // one train video per class, the other in val.csv
  EXPECT_EQ(bad, 2);   // listed in train.csv, so a reader meets them
}

TEST_F(SynthTest, RejectsOptionsOutOfRange) {
  const int max = static_cast<int>(vidcls::train::synth_motion_names().size());
  EXPECT_NE(synth("x", "--classes " + std::to_string(max + 1)), 0);
  EXPECT_NE(log().find("--classes"), std::string::npos) << log();
  EXPECT_NE(synth("x", "--layout ucf101"), 0);
  EXPECT_NE(synth("x", "--frames 1"), 0);
  EXPECT_NE(synth("x", "--clutter 65"), 0);
  EXPECT_NE(log().find("--clutter"), std::string::npos) << log();
  EXPECT_NE(synth("x", "--camera zoom"), 0);
  EXPECT_NE(log().find("--camera"), std::string::npos) << log();
  EXPECT_NE(synth("x", "--camera pan --no-drift"), 0) << "two answers to how the camera moves";
}

// Ground truth of the renderer: each class moves as its name says, drift or not, and the camera
// drift is small next to the object's own motion.
TEST(SynthRender, EachClassMovesAsItsNameSays) {
  const auto &names = vidcls::train::synth_motion_names();
  for (int motion = 0; motion < static_cast<int>(names.size()); ++motion) {
    for (uint64_t seed = 0; seed < 5; ++seed) {
      SCOPED_TRACE(names[motion] + " seed " + std::to_string(seed));
      vidcls::train::SynthScene scene;
      scene.motion = motion;
      scene.seed = seed;
      scene.frames = 16;
      scene.width = 64;
      scene.height = 48;
      const auto v = vidcls::train::render_synth_video(scene);
      ASSERT_EQ(v.frames.sizes(), (std::vector<int64_t>{16, 48, 64, 3}));
      const int n = 16;
      // The object relative to the scene: what a model has to see through the drift.
      const float dx = v.x[n - 1] - v.x[0] - v.drift_x * (n - 1);
      const float dy = v.y[n - 1] - v.y[0] - v.drift_y * (n - 1);
      const float turn = v.angle[n - 1] - v.angle[0];
      const float scale = v.radius[n - 1] / v.radius[0];
      const float drift = std::hypot(v.drift_x, v.drift_y) * (n - 1);
      const std::string &name = names[motion];
      if (name == "slide_left") {
        EXPECT_LT(dx, -8);
      }
      if (name == "slide_right") {
        EXPECT_GT(dx, 8);
      }
      if (name == "slide_up") {
        EXPECT_LT(dy, -8);
      }
      if (name == "slide_down") {
        EXPECT_GT(dy, 8);
      }
      if (name.rfind("slide", 0) == 0) {
        EXPECT_LT(drift, 0.5f * std::hypot(dx, dy));
        EXPECT_FLOAT_EQ(turn, 0);
      }
      if (name == "rotate_cw") {
        EXPECT_GE(turn, 100);
      }
      if (name == "rotate_ccw") {
        EXPECT_LE(turn, -100);
      }
      if (name == "grow") {
        EXPECT_GE(scale, 1.7f);
      }
      if (name == "shrink") {
        EXPECT_LE(scale, 1 / 1.7f);
      }
      if (name.rfind("orbit", 0) == 0) {
        // Turning sense of the path: cross products of successive steps, positive when
        // clockwise on screen (y points down).
        double cross = 0;
        for (int t = 2; t < n; ++t) {
          const double ax = v.x[t - 1] - v.x[t - 2], ay = v.y[t - 1] - v.y[t - 2];
          const double bx = v.x[t] - v.x[t - 1], by = v.y[t] - v.y[t - 1];
          cross += ax * by - ay * bx;
        }
        EXPECT_GT(name == "orbit_cw" ? cross : -cross, 0);
      }
      for (int t = 0; t < n; ++t) {  // the object stays in the frame
        EXPECT_TRUE(v.x[t] > 0 && v.x[t] < 64 && v.y[t] > 0 && v.y[t] < 48) << "frame " << t;
      }
    }
  }
}

TEST(SynthRender, DeterministicPerSeed) {
  vidcls::train::SynthScene scene;
  scene.motion = 4;
  scene.seed = 11;
  scene.frames = 4;
  const auto a = vidcls::train::render_synth_video(scene);
  const auto b = vidcls::train::render_synth_video(scene);
  EXPECT_TRUE(torch::equal(a.frames, b.frames));
  scene.seed = 12;
  EXPECT_FALSE(torch::equal(a.frames, vidcls::train::render_synth_video(scene).frames));
}

vidcls::train::SynthVideo render(int motion, uint64_t seed, vidcls::train::SynthCamera camera,
                                 int clutter, int frames = 24) {
  vidcls::train::SynthScene scene;
  scene.motion = motion;
  scene.seed = seed;
  scene.frames = frames;
  scene.width = 96;
  scene.height = 72;
  scene.camera = camera;
  scene.clutter = clutter;
  return vidcls::train::render_synth_video(scene);
}

// The camera paths: still is still; a pan covers 20-40 % of the short side and starts and stops
// smoothly; a shake stays within a few percent and goes back and forth; the drift is the one it
// always was (its per-frame step times the frame index).
TEST(SynthRender, CameraMovesAsAsked) {
  using vidcls::train::SynthCamera;
  const int n = 24;
  const float s = 72;
  for (uint64_t seed = 0; seed < 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto still = render(0, seed, SynthCamera::kStill, 0, n);
    ASSERT_EQ(still.camera_x.size(), static_cast<size_t>(n));
    for (int t = 0; t < n; ++t) EXPECT_TRUE(still.camera_x[t] == 0 && still.camera_y[t] == 0);

    const auto drift = render(0, seed, SynthCamera::kDrift, 0, n);
    for (int t = 0; t < n; ++t) EXPECT_FLOAT_EQ(drift.camera_x[t], drift.drift_x * t);

    const auto pan = render(0, seed, SynthCamera::kPan, 0, n);
    const float total = std::hypot(pan.camera_x[n - 1], pan.camera_y[n - 1]);
    EXPECT_GE(total, 0.2f * s - 0.01f);
    EXPECT_LE(total, 0.4f * s + 0.01f);
    EXPECT_GT(std::abs(pan.camera_x[n - 1]), std::abs(pan.camera_y[n - 1])) << "mostly horizontal";
    const float first = std::hypot(pan.camera_x[1], pan.camera_y[1]);
    const float middle = std::hypot(pan.camera_x[n / 2 + 1] - pan.camera_x[n / 2],
                                    pan.camera_y[n / 2 + 1] - pan.camera_y[n / 2]);
    EXPECT_LT(first, 0.2f * middle) << "eases in";

    const auto shake = render(0, seed, SynthCamera::kShake, 0, n);
    float reach = 0;
    int turns = 0;
    for (int t = 0; t < n; ++t) reach = std::max(reach, std::abs(shake.camera_x[t]));
    for (int t = 2; t < n; ++t) {
      turns += (shake.camera_x[t] - shake.camera_x[t - 1]) *
                   (shake.camera_x[t - 1] - shake.camera_x[t - 2]) <
               0;
    }
    EXPECT_GT(reach, 0.005f * s);
    EXPECT_LE(reach, 0.09f * s);
    EXPECT_GE(turns, 2) << "back and forth";
  }
}

// Clutter is drawn into the background and draws from its own random stream: the object (and
// so the class) is the same with or without it, the pixels are not; about half the clutter
// moves, so a still camera sees more change with clutter than without.
TEST(SynthRender, ClutterLeavesTheObjectAlone) {
  using vidcls::train::SynthCamera;
  int64_t changed_plain = 0, changed_cluttered = 0;
  for (uint64_t seed = 0; seed < 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto plain = render(1, seed, SynthCamera::kStill, 0);
    const auto cluttered = render(1, seed, SynthCamera::kStill, 8);
    EXPECT_EQ(plain.x, cluttered.x);
    EXPECT_EQ(plain.y, cluttered.y);
    EXPECT_EQ(plain.radius, cluttered.radius);
    EXPECT_FALSE(torch::equal(plain.frames, cluttered.frames));
    auto changed = [](const vidcls::train::SynthVideo &v) {
      const auto d = (v.frames[-1].to(torch::kInt16) - v.frames[0].to(torch::kInt16)).abs().amax(2);
      return (d > 40).sum().item<int64_t>();
    };
    changed_plain += changed(plain);
    changed_cluttered += changed(cluttered);
  }
  EXPECT_GT(changed_cluttered, changed_plain + 200) << "no clutter moved";
}

// Through a pan and clutter, the object still moves as its class says relative to the scene.
TEST(SynthRender, SlidesSurviveAPanAndClutter) {
  using vidcls::train::SynthCamera;
  const int n = 24;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    const auto v = render(0, seed, SynthCamera::kPan, 6, n);  // slide_left
    const float dx = v.x[n - 1] - v.x[0] - (v.camera_x[n - 1] - v.camera_x[0]);
    EXPECT_LT(dx, -8) << "seed " << seed;
    const auto r = render(1, seed, SynthCamera::kShake, 6, n);  // slide_right
    EXPECT_GT(r.x[n - 1] - r.x[0] - (r.camera_x[n - 1] - r.camera_x[0]), 8) << "seed " << seed;
  }
}

// Centroid of the pixels that differ from the per-pixel temporal median (the static scene).
std::pair<double, double> moving_centroid(const torch::Tensor &frames, int t,
                                          const torch::Tensor &background) {
  const auto diff = (frames[t].to(torch::kInt16) - background).abs().amax(2);
  const auto mask = (diff > 40).to(torch::kFloat64);
  const double area = mask.sum().item<double>();
  if (area == 0) return {NAN, NAN};
  const auto h = frames.size(1), w = frames.size(2);
  const auto xs = torch::arange(w, torch::kFloat64).view({1, w});
  const auto ys = torch::arange(h, torch::kFloat64).view({h, 1});
  return {(mask * xs).sum().item<double>() / area, (mask * ys).sum().item<double>() / area};
}

// The class survives encoding and decoding: with the camera still, the moving pixels of a
// decoded slide_* video travel the way the name says.
TEST_F(SynthTest, DecodedSlidesMoveTheWayTheirNameSays) {
  ASSERT_EQ(synth("msr",
                  "--layout msr --classes 4 --videos-per-class 3 --subjects 3 --frames 16 "
                  "--size 48 --no-drift --seed 5"),
            0)
      << log();
  const std::regex name(R"(a(\d\d)_s\d\d_e\d\d_rgb\.avi)");
  int checked = 0;
  for (const auto &f : videos_under(dir_ / "msr")) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(f, m, name)) << f;
    const int action = std::stoi(m[1]);
    const auto frames = vidcls::train::decode_video((dir_ / "msr" / f).string()).frames;
    const auto background = std::get<0>(frames.to(torch::kInt16).median(0));
    const auto [x0, y0] = moving_centroid(frames, 0, background);
    const auto [x1, y1] = moving_centroid(frames, 15, background);
    ASSERT_FALSE(std::isnan(x0) || std::isnan(x1)) << f << ": no moving pixels";
    switch (action) {
      case 1:
        EXPECT_LT(x1, x0 - 4) << f;
        break;  // slide_left
      case 2:
        EXPECT_GT(x1, x0 + 4) << f;
        break;  // slide_right
      case 3:
        EXPECT_LT(y1, y0 - 4) << f;
        break;  // slide_up
      case 4:
        EXPECT_GT(y1, y0 + 4) << f;
        break;  // slide_down
    }
    ++checked;
  }
  EXPECT_EQ(checked, 12);
}

// ------------------------------------------------------------------ several people per video

TEST(SynthCrowd, PeopleWalkAcrossCrossAndTheNearerCoversTheFarther) {
  int overlapping_frames = 0;
  for (uint64_t seed = 0; seed < 6; ++seed) {
    vidcls::train::SynthCrowdScene scene;
    scene.motions = {0, 1, 4, 6};
    scene.seed = seed;
    scene.frames = 24;
    scene.width = 96;
    scene.height = 64;
    const auto v = vidcls::train::render_synth_crowd(scene);
    ASSERT_EQ(v.frames.sizes(), (std::vector<int64_t>{24, 64, 96, 3}));
    ASSERT_EQ(v.people.size(), 4u);
    for (size_t k = 0; k < 4; ++k) {
      const auto &p = v.people[k];
      EXPECT_EQ(p.id, static_cast<int64_t>(k) + 1);
      EXPECT_EQ(p.motion, scene.motions[k]);
      ASSERT_EQ(p.boxes.size(), 24u);
      for (const auto &b : p.boxes) {
        EXPECT_EQ(b.w, 25.0);  // 40 % of the height
        EXPECT_GE(b.x, 0.0);
        EXPECT_LE(b.x + b.w, 96.0);
        EXPECT_GE(b.y, 0.0);
        EXPECT_LE(b.y + b.h, 64.0);
      }
      // they walk across: from one third of the frame to the other
      EXPECT_GT(std::abs(p.boxes.back().x - p.boxes.front().x), 0.4 * (96 - 25)) << k;
    }
    for (int t = 0; t < 24; ++t) {
      for (size_t a = 0; a < 4; ++a) {
        for (size_t b = a + 1; b < 4; ++b) {
          const auto &A = v.people[a].boxes[t], &B = v.people[b].boxes[t];
          const double ix = std::min(A.x + A.w, B.x + B.w) - std::max(A.x, B.x);
          const double iy = std::min(A.y + A.h, B.y + B.h) - std::max(A.y, B.y);
          if (ix <= 0 || iy <= 0) continue;
          ++overlapping_frames;
          // the card lower in the frame (nearer) covers the other one
          const size_t far = A.y < B.y ? a : b;
          EXPECT_LT(v.people[far].visible[t], 1.0f) << "seed " << seed << " frame " << t;
        }
      }
      for (const auto &p : v.people) {
        EXPECT_GE(p.visible[t], 0.0f);
        EXPECT_LE(p.visible[t], 1.0f);
      }
    }
    // the same scene, the same pixels
    EXPECT_TRUE(torch::equal(v.frames, vidcls::train::render_synth_crowd(scene).frames));
  }
  EXPECT_GT(overlapping_frames, 20) << "paths that never cross";
}

TEST_F(SynthTest, AvaLayoutLabelsEachPersonAndTracksEveryFrame) {
  ASSERT_EQ(synth("ava",
                  "--layout ava --classes 3 --videos-per-class 4 --frames 32 --fps 10 "
                  "--size 48 --width 64"),
            0)
      << log();
  const fs::path root = dir_ / "ava";
  EXPECT_EQ(lines(root / "labels.txt"), first_names(3));
  std::map<std::string, vidcls::Tracks> labels;
  size_t val_videos = 0;
  for (const char *split : {"train", "val"}) {
    for (auto &kv : vidcls::read_ava((root / (std::string(split) + ".csv")).string())) {
      val_videos += std::string(split) == "val";
      EXPECT_TRUE(labels.emplace(kv.first, std::move(kv.second)).second) << "in both: " << kv.first;
    }
  }
  EXPECT_GE(val_videos, 1u);
  std::map<int, int> people_per_class;
  for (const auto &[id, tracks] : labels) {
    SCOPED_TRACE(id);
    ASSERT_GE(tracks.by_id.size(), 2u);
    ASSERT_LE(tracks.by_id.size(), 4u);
    const auto video = vidcls::train::decode_video((root / "videos" / (id + ".webm")).string());
    EXPECT_EQ(video.frames.sizes(), (std::vector<int64_t>{32, 48, 64, 3}));
    const auto mot = vidcls::read_mot((root / "tracks" / (id + ".txt")).string());
    ASSERT_EQ(mot.by_id.size(), tracks.by_id.size());
    for (const auto &[person, track] : tracks.by_id) {
      ASSERT_EQ(track.keys.size(), 4u) << "keyframes at 0, 1, 2 and 3 s of 3.2 s";
      const int action = track.keys[0].actions.at(0);
      ++people_per_class[action];
      const auto &mt = mot.by_id.at(person);
      EXPECT_EQ(mt.keys.size(), 32u) << "a box on every frame";
      for (const auto &key : track.keys) {
        EXPECT_EQ(key.actions, std::vector<int>{action}) << "one action per person";
        // the keyframe's box is the track's box on that frame
        const auto px = vidcls::box_in_pixels(key.box, 64, 48);
        const auto b = vidcls::box_at(mt, key.t * 10, 0);
        ASSERT_TRUE(b.has_value());
        EXPECT_NEAR(px.x, b->x, 0.01);
        EXPECT_NEAR(px.y, b->y, 0.01);
        EXPECT_NEAR(px.w, b->w, 0.01);
        EXPECT_NEAR(px.h, b->h, 0.01);
      }
    }
  }
  EXPECT_EQ(people_per_class, (std::map<int, int>{{1, 4}, {2, 4}, {3, 4}}))
      << "action ids 1.. (AVA's), each class as many people as asked";
}

}  // namespace
