// vidclsroireplay through GstHarness: the boxes of MOTChallenge and AVA files on the frames they
// annotate, with their track ids where vidcls and DL Streamer readers look for them; the box rule
// between keys; boxes cut to the frame; and files or settings it cannot use refused with a
// message that names the problem.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gst_test_env.h"

namespace {

namespace fs = std::filesystem;

const char *kCaps = "video/x-raw,format=GRAY8,width=320,height=240,framerate=10/1";

fs::path scratch() {
  static const fs::path dir =
      fs::temp_directory_path() / ("vidcls-roireplay-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

std::string write_file(const std::string &name, const std::string &text) {
  const auto path = (scratch() / name).string();
  std::ofstream(path) << text;
  return path;
}

struct Roi {
  guint x, y, w, h;
  gint id;
  gint param_id;
  std::string type;
};

// The ROI metas of a buffer, by id.
std::map<gint, Roi> rois_of(GstBuffer *buf) {
  std::map<gint, Roi> out;
  gpointer state = nullptr;
  while (GstMeta *meta = gst_buffer_iterate_meta_filtered(
             buf, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto *m = reinterpret_cast<GstVideoRegionOfInterestMeta *>(meta);
    Roi r{m->x, m->y, m->w, m->h, m->id, -1, g_quark_to_string(m->roi_type)};
    if (GstStructure *p = gst_video_region_of_interest_meta_get_param(m, "object_id"))
      gst_structure_get_int(p, "id", &r.param_id);
    out[m->id] = r;
  }
  return out;
}

// Pushes `frames` frames (PTS k / 10 s) through vidclsroireplay with `properties`; returns the
// ROI metas of each frame.
std::vector<std::map<gint, Roi>> replay(const std::string &properties, int frames) {
  GstHarness *h = gst_harness_new_parse(("vidclsroireplay " + properties).c_str());
  gst_harness_set_src_caps_str(h, kCaps);
  std::vector<std::map<gint, Roi>> out;
  for (int k = 0; k < frames; ++k) {
    GstBuffer *in = gst_harness_create_buffer(h, 320 * 240);
    GST_BUFFER_PTS(in) = k * GST_SECOND / 10;
    GST_BUFFER_DURATION(in) = GST_SECOND / 10;
    GstBuffer *buf = gst_harness_push_and_pull(h, in);
    EXPECT_NE(buf, nullptr) << "frame " << k;
    if (buf == nullptr) break;
    out.push_back(rois_of(buf));
    gst_buffer_unref(buf);
  }
  gst_harness_teardown(h);
  return out;
}

void expect_roi(const std::map<gint, Roi> &rois, gint id, guint x, guint y, guint w, guint h) {
  auto it = rois.find(id);
  ASSERT_NE(it, rois.end()) << "no box of id " << id;
  EXPECT_EQ(it->second.x, x);
  EXPECT_EQ(it->second.y, y);
  EXPECT_EQ(it->second.w, w);
  EXPECT_EQ(it->second.h, h);
  EXPECT_EQ(it->second.param_id, id) << "the object_id parameter DL Streamer's readers use";
}

TEST(RoiReplay, MotBoxesLandOnTheirFramesWithTheirTrackIds) {
  // Track 7 on frames 1 and 3 (1-based), linear in between; track 9 on frame 2 only, at the
  // right edge (cut to the frame); track 11 wholly outside the frame.
  const auto gt = write_file("gt.txt",
                             "1,7,10,20,30,60,1,1,1\n"
                             "3,7,50,20,30,60,1,1,1\n"
                             "2,9,300,100,40,40,1,1,1\n"
                             "2,11,400,100,40,40,1,1,1\n");
  const auto frames = replay("location=" + gt + " max-gap=200000000", 6);
  ASSERT_EQ(frames.size(), 6u);
  expect_roi(frames[0], 7, 10, 20, 30, 60);
  EXPECT_EQ(frames[0].at(7).type, "person");
  expect_roi(frames[1], 7, 30, 20, 30, 60);  // halfway between frames 1 and 3 (0.2 s apart)
  expect_roi(frames[1], 9, 300, 100, 20, 40);
  EXPECT_EQ(frames[1].count(11), 0u) << "nothing of it is inside the frame";
  expect_roi(frames[2], 7, 50, 20, 30, 60);
  // max-gap 0.2 s = two frames: frames 4 and 5 hold track 7's last box, frame 6 has none.
  expect_roi(frames[3], 7, 50, 20, 30, 60);
  expect_roi(frames[4], 7, 50, 20, 30, 60);
  EXPECT_TRUE(frames[5].empty());
  // With max-gap 0.1 s (one frame) the keys two frames apart are not interpolated: frame 2 holds
  // frame 1's box.
  const auto held = replay("location=" + gt + " max-gap=100000000", 2);
  ASSERT_EQ(held.size(), 2u);
  expect_roi(held[1], 7, 10, 20, 30, 60);
}

TEST(RoiReplay, AvaBoxesFollowTheTimestampsInFractionsOfTheFrame) {
  const auto csv = write_file("ava.csv",
                              "clip-a,900.0,0.1,0.2,0.3,0.6,12,0\n"
                              "clip-a,900.2,0.2,0.2,0.4,0.6,12,0\n"
                              "clip-b,900.0,0.5,0.5,0.6,0.6,1,4\n");
  const auto frames =
      replay("location=" + csv + " video-id=clip-a time-offset=900 roi-type=actor", 4);
  ASSERT_EQ(frames.size(), 4u);
  expect_roi(frames[0], 0, 32, 48, 64, 96);
  EXPECT_EQ(frames[0].at(0).type, "actor");
  EXPECT_EQ(frames[0].count(4), 0u) << "clip-b's person";
  expect_roi(frames[1], 0, 48, 48, 64, 96);  // 900.1 s: halfway
  expect_roi(frames[2], 0, 64, 48, 64, 96);
}

// Starts the element on its own; returns the ERROR's message and debug text ("" when none).
std::string start_error(const std::string &properties) {
  GstElement *pipeline = gst_parse_launch(
      ("videotestsrc num-buffers=3 ! video/x-raw,framerate=10/1 ! vidclsroireplay " + properties +
       " ! fakesink")
          .c_str(),
      nullptr);
  vidcls_test::RunResult run;
  vidcls_test::run_pipeline(pipeline, run, nullptr, 30);
  gst_object_unref(pipeline);
  return run.error.empty() ? "" : run.error + " | " + run.debug;
}

TEST(RoiReplay, AFileItCannotUseIsAnErrorThatSaysWhy) {
  const auto bad = write_file("bad.txt", "1,7,10,20,30,60\n1,7,10,twenty,30,60\n");
  const auto two = write_file("two.csv",
                              "a,1,0.1,0.1,0.2,0.2,1,0\n"
                              "b,1,0.1,0.1,0.2,0.2,1,0\n");
  struct Case {
    std::string properties, expected;
  };
  const std::vector<Case> cases = {
      {"", "No annotation file given"},
      {"location=" + (scratch() / "missing.txt").string(), "cannot open"},
      {"location=" + bad, "bad.txt:2: top 'twenty' is not a finite number"},
      {"location=" + two, "annotates several videos: set 'video-id' to one"},
      {"location=" + two + " video-id=c", "has no video 'c'"},
  };
  for (const auto &c : cases) {
    const std::string error = start_error(c.properties);
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.properties << " -> '" << error << "'";
  }
  // MOTChallenge counts frames: a stream without a frame rate cannot be matched to them.
  const auto gt = write_file("gt1.txt", "1,7,10,20,30,60\n");
  GstElement *pipeline = gst_parse_launch(
      ("videotestsrc num-buffers=3 ! video/x-raw,framerate=0/1 ! vidclsroireplay location=" + gt +
       " ! fakesink")
          .c_str(),
      nullptr);
  vidcls_test::RunResult run;
  vidcls_test::run_pipeline(pipeline, run, nullptr, 30);
  gst_object_unref(pipeline);
  EXPECT_NE(run.error.find("no frame rate"), std::string::npos) << run.error;
}

}  // namespace

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new vidcls_test::GstEnvironment({"vidclsroireplay"}));
  const int rc = RUN_ALL_TESTS();
  std::error_code ec;
  fs::remove_all(scratch(), ec);
  return rc;
}
