// Dataset layouts and splits: what a user's folder is read as, and which videos train and test.
// The readers only look at names, so the videos here are empty files.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vidcls/errors.h"
#include "vidcls/train/dataset.h"

namespace fs = std::filesystem;
namespace vt = vidcls::train;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vidcls-dataset-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path &path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

void write(const fs::path &file, const std::string &text = "") {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

std::string msr_name(int action, int subject, int environment) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "a%02d_s%02d_e%02d_rgb.avi", action, subject, environment);
  return buf;
}

std::vector<std::string> ids(const std::vector<vt::VideoItem> &items) {
  std::vector<std::string> out;
  for (const auto &i : items) out.push_back(i.id);
  return out;
}

bool sorted_by_path(const std::vector<vt::VideoItem> &items) {
  return std::is_sorted(items.begin(), items.end(),
                        [](const auto &a, const auto &b) { return a.path < b.path; });
}

// The full MSR DailyActivity3D naming: `actions` x 10 subjects x 2 environments, written in
// the order given.
void write_msr(const fs::path &dir, const std::vector<std::string> &names) {
  for (const auto &n : names) write(dir / n);
}

std::vector<std::string> msr_names(int actions, int subjects) {
  std::vector<std::string> names;
  for (int a = 1; a <= actions; ++a)
    for (int s = 1; s <= subjects; ++s)
      for (int e = 1; e <= 2; ++e) names.push_back(msr_name(a, s, e));
  return names;
}

const char *kKineticsHeader = "label,youtube_id,time_start,time_end,split\n";

}  // namespace

// ---- layout detection ------------------------------------------------------------------------

TEST(DetectLayout, MsrFilesAnywhereBelow) {
  TempDir d;
  write(d.path() / "rgb" / msr_name(1, 1, 1));
  write(d.path() / "depth" / "a01_s01_e01_depth.bin");
  EXPECT_EQ(vt::detect_layout(d.str()), "msr");
}

TEST(DetectLayout, KineticsCsvWithVideosFolder) {
  TempDir d;
  write(d.path() / "train.csv", std::string(kKineticsHeader) + "abseiling,abc,0,10,train\n");
  write(d.path() / "videos" / "abc_000000_000010.mp4");
  EXPECT_EQ(vt::detect_layout(d.str()), "kinetics400");
}

TEST(DetectLayout, OfficialCsvWithExtraColumn) {
  TempDir d;
  write(d.path() / "val.csv", "label,youtube_id,time_start,time_end,split,is_cc\n");
  EXPECT_EQ(vt::detect_layout(d.str()), "kinetics400");
}

TEST(DetectLayout, FolderPerClass) {
  TempDir d;
  write(d.path() / "jump" / "x.mp4");
  write(d.path() / "run" / "y.AVI");
  write(d.path() / "notes.txt");
  EXPECT_EQ(vt::detect_layout(d.str()), "folder");
}

TEST(DetectLayout, AnythingElseIsAnErrorThatSaysWhatWasExpected) {
  TempDir d;
  write(d.path() / "readme.txt");
  write(d.path() / "train.csv", "path,class\n");
  write(d.path() / "docs" / "notes.txt");
  try {
    vt::detect_layout(d.str());
    FAIL() << "expected vidcls::FormatError";
  } catch (const vidcls::FormatError &e) {
    EXPECT_THAT(e.what(), HasSubstr("aXX_sYY_eZZ_rgb.avi"));
    EXPECT_THAT(e.what(), HasSubstr("label,youtube_id,time_start,time_end,split"));
    EXPECT_THAT(e.what(), HasSubstr("train.csv without the header"));
  }
  EXPECT_THROW(vt::detect_layout((d.path() / "nowhere").string()), vidcls::FormatError);
  EXPECT_THROW(vt::detect_layout((d.path() / "readme.txt").string()), vidcls::FormatError);
}

// ---- MSR DailyActivity3D ---------------------------------------------------------------------

TEST(MsrDataset, CrossSubjectPutsOddSubjectsInTrainAndNoSubjectOnBothSides) {
  TempDir d;
  write_msr(d.path(), msr_names(16, 10));
  write(d.path() / "a01_s01_e01_depth.bin");  // other modalities are not videos of the set
  const auto ds = vt::read_dataset(d.str(), "", 0);
  EXPECT_EQ(ds.layout, "msr");
  EXPECT_EQ(ds.split, "cross-subject");
  EXPECT_EQ(ds.classes, vt::msr_action_names());
  EXPECT_EQ(ds.classes.size(), 16u);
  ASSERT_EQ(ds.train.size(), 160u);
  ASSERT_EQ(ds.test.size(), 160u);
  std::set<int> train_subjects, test_subjects;
  for (const auto &v : ds.train) train_subjects.insert(v.subject);
  for (const auto &v : ds.test) test_subjects.insert(v.subject);
  EXPECT_EQ(train_subjects, (std::set<int>{1, 3, 5, 7, 9}));
  EXPECT_EQ(test_subjects, (std::set<int>{2, 4, 6, 8, 10}));
  EXPECT_TRUE(sorted_by_path(ds.train));
  EXPECT_TRUE(sorted_by_path(ds.test));
  const auto &first = ds.train.front();
  EXPECT_EQ(first.id, "a01_s01_e01_rgb");
  EXPECT_EQ(first.label, 0);
  EXPECT_EQ(first.label_name, "drink");
  EXPECT_EQ(fs::path(first.path), d.path() / "a01_s01_e01_rgb.avi");
  EXPECT_EQ(ds.train.back().label_name, "sit down");
}

// The validation side is carved from the training side, by whole subjects: best.safetensors is
// chosen on people the test side never sees and training never saw.
TEST(MsrDataset, ValidationTakesWholeTrainingSubjectsNeverATestSubject) {
  TempDir d;
  write_msr(d.path(), msr_names(16, 10));
  const auto ds = vt::read_dataset(d.str());  // the default fraction
  std::set<int> train_subjects, val_subjects, test_subjects;
  for (const auto &v : ds.train) train_subjects.insert(v.subject);
  for (const auto &v : ds.val) val_subjects.insert(v.subject);
  for (const auto &v : ds.test) test_subjects.insert(v.subject);
  EXPECT_EQ(val_subjects.size(), 1u) << "round(0.1 x 5 subjects), at least one";
  EXPECT_EQ(ds.val.size(), 32u) << "every video of the validation subject (16 x 2 settings)";
  EXPECT_EQ(ds.train.size() + ds.val.size(), 160u);
  EXPECT_EQ(ds.test.size(), 160u);
  std::set<int> all_train = train_subjects;
  all_train.insert(val_subjects.begin(), val_subjects.end());
  EXPECT_EQ(all_train, (std::set<int>{1, 3, 5, 7, 9}));
  for (int s : val_subjects) {
    EXPECT_EQ(train_subjects.count(s), 0u) << "subject " << s << " on two sides";
    EXPECT_EQ(test_subjects.count(s), 0u) << "subject " << s << " in validation and test";
  }
  EXPECT_TRUE(sorted_by_path(ds.val));
  // Reproducible, and a larger fraction takes more subjects.
  const auto again = vt::read_dataset(d.str());
  ASSERT_EQ(again.val.size(), ds.val.size());
  EXPECT_EQ(again.val.front().path, ds.val.front().path);
  std::set<int> more;
  for (const auto &v : vt::read_dataset(d.str(), "", 0.4).val) more.insert(v.subject);
  EXPECT_EQ(more.size(), 2u);
  EXPECT_THROW(vt::read_dataset(d.str(), "", 1.0), std::invalid_argument);
}

// Elsewhere a seeded slice of every class, so every class is validated.
TEST(MsrDataset, Random80ValidationIsASlicePerClass) {
  TempDir d;
  write_msr(d.path(), msr_names(4, 10));
  const auto base = vt::read_dataset(d.str(), "random80", 0);
  const auto ds = vt::read_dataset(d.str(), "random80", 0.25);
  EXPECT_EQ(ds.test.size(), base.test.size());
  EXPECT_EQ(ds.train.size() + ds.val.size(), base.train.size());
  std::map<int, int> per_class_train, per_class_val;
  for (const auto &v : base.train) per_class_train[v.label]++;
  for (const auto &v : ds.val) per_class_val[v.label]++;
  for (const auto &[label, n] : per_class_train) {
    EXPECT_EQ(per_class_val[label], std::max<int>(1, static_cast<int>(std::lround(0.25 * n))))
        << "class " << label;
  }
  std::set<std::string> val_paths;
  for (const auto &v : ds.val) val_paths.insert(v.path);
  for (const auto &v : ds.train) EXPECT_EQ(val_paths.count(v.path), 0u);
}

TEST(MsrDataset, ClassesAreTheActionsPresentNamedByLabelsTxt) {
  TempDir d;
  write(d.path() / "labels.txt", "slide left\nslide right\r\ngrow\nshrink\n\n");
  for (int s = 1; s <= 2; ++s) {
    write(d.path() / msr_name(2, s, 1));
    write(d.path() / msr_name(4, s, 1));
  }
  const auto ds = vt::read_dataset(d.str(), "", 0);
  EXPECT_THAT(ds.classes, ElementsAre("slide right", "shrink"));
  ASSERT_EQ(ds.train.size(), 2u);
  EXPECT_EQ(ds.train[0].label, 0);
  EXPECT_EQ(ds.train[0].label_name, "slide right");
  EXPECT_EQ(ds.train[1].label, 1);
  EXPECT_EQ(ds.train[1].label_name, "shrink");

  write(d.path() / msr_name(5, 1, 1));  // labels.txt names four actions
  EXPECT_THROW(vt::read_dataset(d.str(), "", 0), vidcls::FormatError);
}

TEST(MsrDataset, WithoutLabelsTxtTheDatasetNamesAreUsed) {
  TempDir d;
  write(d.path() / msr_name(3, 1, 1));
  write(d.path() / msr_name(14, 2, 1));
  EXPECT_THAT(vt::read_dataset(d.str(), "", 0).classes, ElementsAre("read book", "play guitar"));
}

TEST(MsrDataset, Random80IsReproducibleAndIndependentOfListingOrder) {
  TempDir a, b;
  auto names = msr_names(16, 10);  // 320 videos, as MSR DailyActivity3D
  write_msr(a.path(), names);
  std::reverse(names.begin(), names.end());
  std::rotate(names.begin(), names.begin() + 77, names.end());
  write_msr(b.path() / "nested", names);  // other order, other place

  const auto first = vt::read_dataset(a.str(), "random80", 0);
  const auto again = vt::read_dataset(a.str(), "random80", 0);
  const auto other = vt::read_dataset(b.str(), "random80", 0);
  EXPECT_EQ(first.split, "random80");
  ASSERT_EQ(first.train.size(), 256u);
  ASSERT_EQ(first.test.size(), 64u);  // the study's 64 test clips
  EXPECT_EQ(ids(first.train), ids(again.train));
  EXPECT_EQ(ids(first.test), ids(again.test));
  EXPECT_EQ(ids(first.train), ids(other.train));
  EXPECT_EQ(ids(first.test), ids(other.test));
  EXPECT_TRUE(sorted_by_path(first.train));
  EXPECT_TRUE(sorted_by_path(first.test));
  const auto train_ids = ids(first.train);
  std::set<std::string> all(train_ids.begin(), train_ids.end());
  for (const auto &id : ids(first.test)) EXPECT_TRUE(all.insert(id).second) << id;
  EXPECT_EQ(all.size(), 320u);
}

TEST(MsrDataset, Random80FollowsTheDocumentedShuffle) {
  // Sorted names, Fisher-Yates with std::mt19937(42) (swap i with mt() % (i + 1) for i = n-1
  // down to 1), first 80 % train. Written out so that a change of the rule shows here.
  TempDir d;
  std::vector<std::string> names;
  for (int a = 1; a <= 5; ++a) names.push_back(msr_name(a, 1, 1));
  write_msr(d.path(), names);
  const auto ds = vt::read_dataset(d.str(), "random80", 0);
  std::vector<std::string> order = names;
  std::mt19937 rng(42);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  ASSERT_EQ(ds.test.size(), 1u);
  EXPECT_EQ(ds.test[0].id + ".avi", order.back());
  // The value on every conforming library; numpy gives it too, with the same stream from
  // np.random.RandomState(42).randint(0, 2**32, dtype=np.uint64).
  EXPECT_EQ(ds.test[0].id, "a03_s01_e01_rgb");
}

TEST(MsrDataset, TwoFilesWithOneNameAreAnError) {
  TempDir d;
  write(d.path() / "x" / msr_name(1, 1, 1));
  write(d.path() / "y" / msr_name(1, 1, 1));
  EXPECT_THROW(vt::read_dataset(d.str(), "", 0), vidcls::FormatError);
}

TEST(MsrDataset, UnknownSplitNamesTheKnownOnes) {
  TempDir d;
  write(d.path() / msr_name(1, 1, 1));
  try {
    vt::read_dataset(d.str(), "val");
    FAIL() << "expected vidcls::FormatError";
  } catch (const vidcls::FormatError &e) {
    EXPECT_THAT(e.what(), HasSubstr("cross-subject, random80"));
  }
}

// ---- Kinetics-400 ----------------------------------------------------------------------------

TEST(KineticsDataset, SplitColumnDecidesAndMissingFilesAreReported) {
  TempDir d;
  write(d.path() / "train.csv", std::string(kKineticsHeader) +
                                    "abseiling,-2xK3aZ0Qqc,14,24,train\n"
                                    "\"passing American football (in game)\",--abc_DEF,0,10,train\n"
                                    "abseiling,notHere123,30,40,train\n"
                                    "\"zumba, with \"\"quotes\"\"\",zz_top-1,7,17,train\r\n");
  write(d.path() / "val.csv", std::string(kKineticsHeader) +
                                  "abseiling,-val0001,100,110,val\n"
                                  "zumba,valOnly,5,15,val\n");
  write(d.path() / "test.csv", "youtube_id,time_start,time_end,split\n");  // unlabelled, unused
  write(d.path() / "videos" / "-2xK3aZ0Qqc_000014_000024.mp4");
  write(d.path() / "videos" / "--abc_DEF_000000_000010.mp4");
  write(d.path() / "zz_top-1_000007_000017.mp4");                        // next to the CSVs
  write(d.path() / "val" / "abseiling" / "-val0001_000100_000110.mp4");  // split/label folders
  write(d.path() / "val" / "valOnly_000005_000015.mp4");                 // split folder

  const auto ds = vt::read_dataset(d.str(), "", 0);
  EXPECT_EQ(ds.layout, "kinetics400");
  EXPECT_EQ(ds.split, "val");
  EXPECT_THAT(ds.classes, ElementsAre("abseiling", "passing American football (in game)", "zumba",
                                      "zumba, with \"quotes\""));
  ASSERT_EQ(ds.train.size(), 3u);
  EXPECT_THAT(ids(ds.train), ElementsAre("--abc_DEF_000000_000010", "-2xK3aZ0Qqc_000014_000024",
                                         "zz_top-1_000007_000017"));
  EXPECT_EQ(ds.train[0].label_name, "passing American football (in game)");
  EXPECT_EQ(ds.train[0].label, 1);
  EXPECT_EQ(ds.train[2].label_name, "zumba, with \"quotes\"");
  EXPECT_TRUE(sorted_by_path(ds.train));
  ASSERT_EQ(ds.test.size(), 2u);
  EXPECT_THAT(ids(ds.test), ElementsAre("-val0001_000100_000110", "valOnly_000005_000015"));
  EXPECT_EQ(ds.test[0].label, 0);
  EXPECT_EQ(fs::path(ds.test[0].path),
            d.path() / "val" / "abseiling" / "-val0001_000100_000110.mp4");
  ASSERT_EQ(ds.missing.size(), 1u);
  EXPECT_THAT(ds.missing[0], HasSubstr("train.csv:4"));
  EXPECT_THAT(ds.missing[0], HasSubstr("notHere123_000030_000040.mp4 not found"));
}

TEST(KineticsDataset, MalformedRowsAreErrorsWithTheLine) {
  TempDir d;
  write(d.path() / "train.csv", std::string(kKineticsHeader) + "abseiling,abc,zero,10,train\n");
  try {
    vt::read_dataset(d.str(), "", 0);
    FAIL() << "expected vidcls::FormatError";
  } catch (const vidcls::FormatError &e) {
    EXPECT_THAT(e.what(), HasSubstr("train.csv:2"));
  }
}

// ---- folder per class ------------------------------------------------------------------------

TEST(FolderDataset, ClassesSortedAndRandom80ByDefault) {
  TempDir d;
  const std::vector<std::string> classes = {"walk", "clap", "jump"};
  for (const auto &c : classes)
    for (int i = 9; i >= 0; --i) write(d.path() / c / ("v" + std::to_string(i) + ".mp4"));
  write(d.path() / "empty" / "readme.txt");
  write(d.path() / ".hidden" / "x.mp4");
  const auto ds = vt::read_dataset(d.str(), "", 0);
  EXPECT_EQ(ds.layout, "folder");
  EXPECT_EQ(ds.split, "random80");
  EXPECT_THAT(ds.classes, ElementsAre("clap", "jump", "walk"));
  EXPECT_EQ(ds.train.size(), 24u);
  EXPECT_EQ(ds.test.size(), 6u);
  EXPECT_TRUE(sorted_by_path(ds.train));
  EXPECT_TRUE(sorted_by_path(ds.test));
  for (const auto &v : ds.train) {
    EXPECT_EQ(ds.classes[v.label], v.label_name);
    EXPECT_EQ(fs::path(v.path).parent_path().filename(), v.label_name);
  }
  const auto again = vt::read_dataset(d.str(), "random80", 0);
  EXPECT_EQ(ids(ds.test), ids(again.test));
}

TEST(FolderDataset, TrainAndValFoldersGiveTheSplit) {
  TempDir d;
  write(d.path() / "train" / "a" / "1.avi");
  write(d.path() / "train" / "b" / "2.avi");
  write(d.path() / "val" / "a" / "3.avi");
  write(d.path() / "val" / "c" / "4.avi");
  const auto ds = vt::read_dataset(d.str(), "", 0);
  EXPECT_EQ(ds.split, "folders");
  EXPECT_THAT(ds.classes, ElementsAre("a", "b", "c"));
  EXPECT_THAT(ids(ds.train), ElementsAre("1", "2"));
  EXPECT_THAT(ids(ds.test), ElementsAre("3", "4"));
  EXPECT_EQ(ds.test[1].label, 2);
}

// ---- AVA (per-person labels) -----------------------------------------------------------------

// Per-person items: one per person and video, labelled by the action its keyframes name most
// often, class names from labels.txt by action id; val.csv is the test side; the people of one
// video stay on one side of the validation split; a video without a file is reported missing.
TEST(AvaDataset, OneItemPerPersonWithTheirBoxesAndTheirVideoOnOneSide) {
  TempDir d;
  write(d.path() / "labels.txt", "wave\nrun\njump\n");
  std::string train;
  for (int v = 0; v < 10; ++v) {
    const std::string id = "clip" + std::to_string(v);
    write(d.path() / "videos" / (id + ".webm"));
    for (int t = 0; t < 3; ++t) {
      train += id + "," + std::to_string(t) + ",0.1,0.1,0.4,0.5,1,1\n";
      // person 2 runs, and at one keyframe also waves (listed first: the first action counts)
      train += id + "," + std::to_string(t) + ",0.5,0.2,0.9,0.8," + (t == 1 ? "1" : "2") + ",2\n";
      if (t == 1) train += id + ",1,0.5,0.2,0.9,0.8,2,2\n";
    }
  }
  write(d.path() / "train.csv", train);
  write(d.path() / "val.csv", "test0,0,0.2,0.2,0.6,0.9,3,7\nnofile,0,0.2,0.2,0.6,0.9,3,1\n");
  write(d.path() / "videos" / "test0.mp4");
  EXPECT_EQ(vt::detect_layout(d.str()), "ava");
  const auto ds = vt::read_dataset(d.str(), "", 0.2);
  EXPECT_EQ(ds.layout, "ava");
  EXPECT_EQ(ds.split, "val");
  EXPECT_THAT(ds.classes, ElementsAre("wave", "run", "jump"));
  EXPECT_EQ(ds.train.size() + ds.val.size(), 20u);
  ASSERT_EQ(ds.test.size(), 1u);
  EXPECT_EQ(ds.test[0].id, "test0#7");
  EXPECT_EQ(ds.test[0].object_id, 7);
  EXPECT_EQ(ds.test[0].label_name, "jump");
  EXPECT_EQ(ds.test[0].key(), ds.test[0].path + "#7");
  EXPECT_THAT(ds.missing, ElementsAre(HasSubstr("nofile")));
  std::map<std::string, std::set<std::string>> sides;  // video -> sides its people are on
  for (const auto *side : {&ds.train, &ds.val}) {
    for (const auto &item : *side) {
      sides[item.path].insert(side == &ds.train ? "train" : "val");
      EXPECT_EQ(item.label_name, item.object_id == 1 ? "wave" : "run") << item.id;
      EXPECT_EQ(item.track.keys.size(), 3u);
      EXPECT_NEAR(item.track.keys[0].box.w, item.object_id == 1 ? 0.3 : 0.4, 1e-9);
    }
  }
  EXPECT_EQ(ds.val.size(), 4u) << "two videos of ten (0.2), two people each";
  for (const auto &[video, s] : sides) EXPECT_EQ(s.size(), 1u) << video;
}
