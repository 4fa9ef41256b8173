// Object tracks from annotation files (tracks.h): MOTChallenge and AVA read as they are written,
// every malformed line refused with its file and line, and the one rule for an object's box
// between keys (linear within max_gap, the last box held for max_gap, none beyond).
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "vidcls/errors.h"
#include "vidcls/tracks.h"

namespace {

namespace fs = std::filesystem;
using vidcls::Box;

// A scratch folder of this process, removed when it ends.
struct Scratch {
  fs::path dir = fs::temp_directory_path() / ("vidcls-tracks-test-" + std::to_string(::getpid()));
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::string write_file(const std::string &name, const std::string &text) {
  static const Scratch scratch;
  const auto &dir = scratch.dir;
  fs::create_directories(dir);
  const auto path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

void expect_box(const std::optional<Box> &b, double x, double y, double w, double h) {
  ASSERT_TRUE(b.has_value());
  EXPECT_DOUBLE_EQ(b->x, x);
  EXPECT_DOUBLE_EQ(b->y, y);
  EXPECT_DOUBLE_EQ(b->w, w);
  EXPECT_DOUBLE_EQ(b->h, h);
}

TEST(Tracks, MotChallengeLinesBecomeKeysOfTheirIdsInFrameOrder) {
  const auto path = write_file("gt.txt",
                               "3,7,10,20,30,60,1,1,1.0\n"
                               "1,7,0,20,30,60,1,1,0.5\n"
                               "\n"
                               "1, 9, 100.5, 50, 20, 40, 1, 2, 1\n"
                               "2,9,0,0,5,5,0,1,1\n"  // conf 0: not to be evaluated
                               "2,7,5,20,30,60\n");
  const auto t = vidcls::read_mot(path);
  EXPECT_FALSE(t.normalised);
  EXPECT_TRUE(t.in_frames);
  ASSERT_EQ(t.by_id.size(), 2u);
  const auto &a = t.by_id.at(7);
  ASSERT_EQ(a.keys.size(), 3u);
  EXPECT_EQ(a.keys[0].t, 0.0);
  EXPECT_EQ(a.keys[1].t, 1.0);
  EXPECT_EQ(a.keys[2].t, 2.0);
  EXPECT_EQ(a.keys[2].box.x, 10.0);
  const auto &b = t.by_id.at(9);
  ASSERT_EQ(b.keys.size(), 1u) << "the conf 0 line is left out";
  EXPECT_EQ(b.keys[0].box.x, 100.5);
  EXPECT_EQ(b.object_class, 2);
}

TEST(Tracks, AvaLinesBecomeOneKeyPerPersonAndTimestampWithItsActions) {
  const auto path = write_file("ava.csv",
                               "vid-a,902,0.1,0.2,0.3,0.6,12,0\n"
                               "vid-a,902,0.1,0.2,0.3,0.6,80,0\n"
                               "vid-a,903,0.2,0.2,0.4,0.6,12,0\n"
                               "-x_y,902.5,0.5,0.5,1.0,1.0,1,3\n");
  const auto videos = vidcls::read_ava(path);
  ASSERT_EQ(videos.size(), 2u) << "ids may begin with '-'";
  const auto &a = videos.at("vid-a");
  EXPECT_TRUE(a.normalised);
  EXPECT_FALSE(a.in_frames);
  const auto &p = a.by_id.at(0);
  ASSERT_EQ(p.keys.size(), 2u);
  EXPECT_EQ(p.keys[0].actions, (std::vector<int>{12, 80}));
  EXPECT_NEAR(p.keys[0].box.w, 0.2, 1e-12);
  const auto px = vidcls::box_in_pixels(p.keys[0].box, 320, 240);
  EXPECT_NEAR(px.x, 32.0, 1e-9);
  EXPECT_NEAR(px.h, 96.0, 1e-9);
  EXPECT_EQ(videos.at("-x_y").by_id.at(3).keys[0].t, 902.5);
}

TEST(Tracks, AMalformedLineIsRefusedWithItsFileAndLine) {
  const std::vector<std::pair<std::string, std::string>> mot = {
      {"1,7,10,20,30\n", "5 fields"},
      {"1,7,10,20,abc,60\n", "width 'abc'"},
      {"1,7,10,20,nan,60\n", "width 'nan'"},
      {"0,7,10,20,30,60\n", "frames count from 1"},
      {"1.5,7,10,20,30,60\n", "frame '1.5' is not a whole number"},
      {"1,7,10,20,0,60\n", "a box of 0 x 60"},
      {"1,7,10,20,30,60\n1,7,11,20,30,60\n", "a second box of id 7 in frame 1"},
  };
  for (const auto &[text, why] : mot) {
    const auto path = write_file("bad.txt", "2,1,0,0,5,5\n" + text);
    try {
      vidcls::read_mot(path);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const vidcls::FormatError &e) {
      // the bad line is the text's last, after the good first line
      const auto line = 1 + std::count(text.begin(), text.end(), '\n');
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path + ":" + std::to_string(line) + ": "), std::string::npos) << msg;
      EXPECT_NE(msg.find(why), std::string::npos) << msg;
    }
  }
  const std::vector<std::pair<std::string, std::string>> ava = {
      {"v,1,0.1,0.2,0.3,0.6,12\n", "7 fields"},
      {"v,1,0.1,0.2,1.3,0.6,12,0\n", "x2 1.3 is outside [0, 1]"},
      {"v,1,0.3,0.2,0.1,0.6,12,0\n", "without area"},
      {"v,1,0.1,0.2,0.3,0.6,12,0\nv,1,0.1,0.2,0.4,0.6,13,0\n", "another box"},
      {",1,0.1,0.2,0.3,0.6,12,0\n", "no video id"},
  };
  for (const auto &[text, why] : ava) {
    const auto path = write_file("bad.csv", text);
    try {
      vidcls::read_ava(path);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const vidcls::FormatError &e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(vidcls::read_mot("/nonexistent/gt.txt"), vidcls::FormatError);
}

TEST(Tracks, BetweenKeysTheBoxIsLinearWithinTheGapAndHeldAfterTheLast) {
  vidcls::Track track;
  track.keys = {{0, {0, 0, 10, 10}, {}}, {4, {40, 0, 10, 30}, {}}, {20, {100, 100, 10, 10}, {}}};
  expect_box(vidcls::box_at(track, 0, 5), 0, 0, 10, 10);
  expect_box(vidcls::box_at(track, 1, 5), 10, 0, 10, 15);  // a quarter of the way
  expect_box(vidcls::box_at(track, 4, 5), 40, 0, 10, 30);
  // 4 -> 20 is more than max_gap apart: the box of 4 is held for 5, then there is none.
  expect_box(vidcls::box_at(track, 9, 5), 40, 0, 10, 30);
  EXPECT_FALSE(vidcls::box_at(track, 9.5, 5).has_value());
  expect_box(vidcls::box_at(track, 20, 5), 100, 100, 10, 10);
  expect_box(vidcls::box_at(track, 25, 5), 100, 100, 10, 10);
  EXPECT_FALSE(vidcls::box_at(track, 25.1, 5).has_value());
  EXPECT_FALSE(vidcls::box_at(track, -0.1, 5).has_value()) << "nothing before the first key";
  EXPECT_FALSE(vidcls::box_at(track, std::nan(""), 5).has_value());
  // With a gap of 16 the two keys are interpolated instead.
  expect_box(vidcls::box_at(track, 12, 16), 70, 50, 10, 20);
  EXPECT_FALSE(vidcls::box_at(vidcls::Track{}, 0, 5).has_value());
}

// Boxes go on the stream as region-of-interest metas can carry them: whole pixels, cut to the
// frame; training cuts from the same boxes.
TEST(Tracks, BoxOnFrameIsCutToTheFrameInWholePixels) {
  const auto b = vidcls::box_on_frame({10.4, 20.5, 30.2, 40.49}, 100, 80);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->x, 10.0);
  EXPECT_EQ(b->y, 21.0);         // halves away from zero
  EXPECT_EQ(b->w, 41.0 - 10.0);  // right edge 40.6 -> 41
  EXPECT_EQ(b->h, 61.0 - 21.0);  // bottom edge 60.99 -> 61
  const auto cut = vidcls::box_on_frame({-5, 70, 20, 30}, 100, 80);
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(cut->x, 0.0);
  EXPECT_EQ(cut->w, 15.0);
  EXPECT_EQ(cut->h, 10.0);
  EXPECT_FALSE(vidcls::box_on_frame({120, 10, 5, 5}, 100, 80).has_value());
  EXPECT_FALSE(vidcls::box_on_frame({10, 10, 0.2, 5}, 100, 80).has_value());
  EXPECT_FALSE(vidcls::box_on_frame({NAN, 10, 5, 5}, 100, 80).has_value());
}

}  // namespace
