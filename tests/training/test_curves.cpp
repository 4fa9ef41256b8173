// curves.png of a training run: a PNG of the documented size, drawn on, with a series per side
// that was evaluated and none for a side that was not.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "vidcls/train/metrics.h"

namespace fs = std::filesystem;

namespace {

// Pixels of exactly this RGB colour (the series' colours in curves.cpp).
int count_colour(const cv::Mat &bgr, int r, int g, int b) {
  int n = 0;
  for (int y = 0; y < bgr.rows; ++y)
    for (int x = 0; x < bgr.cols; ++x) {
      const auto &p = bgr.at<cv::Vec3b>(y, x);
      n += p[2] == r && p[1] == g && p[0] == b;
    }
  return n;
}

std::vector<vidcls::train::CurvePoint> run_of(int epochs, bool val, bool test) {
  std::vector<vidcls::train::CurvePoint> points;
  for (int e = 1; e <= epochs; ++e) {
    vidcls::train::CurvePoint p;
    p.epoch = e;
    p.lr = 2e-4 * e / epochs;
    p.train_loss = 1.8 / e;
    p.train_acc = 1 - 0.8 / e;
    if (val) p.val_loss = 1.9 / e + 0.1, p.val_top1 = 0.7 - 0.5 / e;
    if (test) p.test_loss = 2.0 / e + 0.2, p.test_top1 = 0.6 - 0.4 / e;
    points.push_back(p);
  }
  return points;
}

class CurvesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vidcls-curves-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CurvesTest, ValidationAndTestAreSeparateSeries) {
  const std::string path = (dir_ / "curves.png").string();
  vidcls::train::write_curves_png(path, run_of(30, true, true));
  const cv::Mat img = cv::imread(path, cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty()) << "not a readable PNG";
  EXPECT_EQ(img.cols, vidcls::train::kCurvesWidth);
  EXPECT_EQ(img.rows, vidcls::train::kCurvesHeight);
  EXPECT_GT(count_colour(img, 31, 119, 180), 200) << "train";
  EXPECT_GT(count_colour(img, 255, 127, 14), 200) << "validation";
  EXPECT_GT(count_colour(img, 44, 160, 44), 200) << "test";
  const int white = count_colour(img, 255, 255, 255);
  EXPECT_LT(white, 0.98 * img.total()) << "blank";
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST_F(CurvesTest, ASideNeverEvaluatedIsLeftOut) {
  const std::string path = (dir_ / "curves.png").string();
  vidcls::train::write_curves_png(path, run_of(5, false, true));
  const cv::Mat img = cv::imread(path, cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty());
  EXPECT_GT(count_colour(img, 31, 119, 180), 100);
  EXPECT_EQ(count_colour(img, 255, 127, 14), 0) << "a validation series without validation";
  EXPECT_GT(count_colour(img, 44, 160, 44), 100);
  vidcls::train::write_curves_png(path, run_of(1, false, false));  // one epoch, train only
  const cv::Mat one = cv::imread(path, cv::IMREAD_COLOR);
  ASSERT_FALSE(one.empty());
  EXPECT_GT(count_colour(one, 31, 119, 180), 10);
  EXPECT_EQ(count_colour(one, 44, 160, 44), 0);
}

TEST_F(CurvesTest, UnwritablePathIsAnErrorNotAnExit) {
  try {
    vidcls::train::write_curves_png((dir_ / "no-such-folder" / "curves.png").string(),
                                    run_of(3, true, true));
    FAIL() << "no error";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find("no-such-folder"), std::string::npos) << e.what();
  }
  EXPECT_THROW(vidcls::train::write_curves_png((dir_ / "x.png").string(), {}),
               std::invalid_argument);
}

// Run by the 'curves-no-driver' test with PLPLOT_DRV_DIR pointing at an empty place, as on a
// machine without plplot-driver-cairo: an error that names the package, not an exit.
TEST_F(CurvesTest, MissingDriverNamesThePackage) {
  if (std::getenv("VIDCLS_TEST_NO_PLPLOT_DRIVER") == nullptr) GTEST_SKIP() << "run by curves-no-driver";
  try {
    vidcls::train::write_curves_png((dir_ / "curves.png").string(), run_of(3, true, true));
    FAIL() << "no error";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find("plplot-driver-cairo"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir_ / "curves.png"));
}

}  // namespace
