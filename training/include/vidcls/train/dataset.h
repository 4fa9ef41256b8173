// Video classification datasets on disk: which layout a folder holds, and its train / test
// split. Readers only look at names (and Kinetics' CSVs); decoding happens in the clip cache.
//
// Layouts:
//   msr          MSR DailyActivity3D: files aXX_sYY_eZZ_rgb.avi (action, subject, environment)
//                anywhere under DIR. Class names from DIR/labels.txt when present (line i names
//                action i + 1, as vidcls-synth writes it), otherwise the dataset's 16 names;
//                the classes are the actions present, in action order.
//   kinetics400  DIR/train.csv and/or DIR/val.csv (also read: validate.csv, test.csv) with the
//                header label,youtube_id,time_start,time_end,split (extra columns ignored); a
//                row goes to train or test by its split column; its video is
//                {youtube_id}_{time_start:06d}_{time_end:06d}.mp4, looked for in DIR/videos/,
//                DIR/, DIR/<split>/ and DIR/<split>/<label>/ (in that order; <split> is the
//                row's split column, and "val" rows also in DIR/validate/; <label> as written
//                or with spaces as '_'). Classes: the sorted labels of the rows read.
//   folder       DIR/<class>/... video files, one subfolder per class (classes sorted by name);
//                or DIR/train/<class>/ with DIR/val/<class>/ or DIR/test/<class>/ for a split
//                given by the folders.
//   ava          per-person labels in AVA's format: DIR/train.csv and DIR/val.csv (no header:
//                video id, keyframe time in s, x1, y1, x2, y2 in [0, 1], action id, person id);
//                the video {id}.<any video extension> in DIR/videos/ or DIR/. One item per
//                person of a video: its clips are the crops of the person's boxes (between
//                keyframes by vidcls::box_at, at most kAvaMaxGap s apart), its label the
//                action its keyframes name most often (the first of several at a keyframe; a
//                single-label classifier). Class names from DIR/labels.txt (line i names action
//                id i + 1), else "action_<id>" for the ids present; the classes are the action
//                ids present, in id order. train.csv rows train, val.csv rows test.
//
// Every list is sorted by path, so a split never depends on the order a file system lists.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vidcls/tracks.h"

namespace vidcls::train {

// ava: keyframes further apart than this (seconds) are not interpolated between (AVA's are 1 s).
constexpr double kAvaMaxGap = 1.5;

struct VideoItem {
  std::string path;        // the file, DIR joined with its place inside DIR
  int label = -1;          // index into DatasetSplit::classes
  std::string label_name;  // classes[label]
  int subject = -1;        // MSR: the performer (sYY); ava: the video's number from 1 (a
                           // video's people stay on one side of the validation split); else -1
  std::string id;          // file name without extension (Kinetics: id_start_end; ava:
                           // video#person)
  int64_t object_id = -1;  // ava: the person (AVA's person id); -1: the whole video
  Track track;             // ava: the person's keyframe boxes, in fractions of the frame

  // What identifies the item in a clip cache: the path, and the person when there is one.
  std::string key() const {
    return object_id < 0 ? path : path + "#" + std::to_string(object_id);
  }
};

struct DatasetSplit {
  std::vector<std::string> classes;
  // test: the split's held-out side, reported and never used to choose a model. val: carved
  // from the training side (carve_validation) to choose one; train: what is left.
  std::vector<VideoItem> train, val, test;
  std::string layout;  // "msr", "kinetics400", "folder", "ava"
  std::string split;   // the split used, never empty
  // Videos the dataset names but that are not on disk (Kinetics rows without a file), one
  // line each ("val.csv:12: -abc_000010_000020.mp4 not found"). Not fatal.
  std::vector<std::string> missing;
};

// The MSR DailyActivity3D action names, action 1 first.
const std::vector<std::string> &msr_action_names();

// The layout of the dataset in `dir`: "msr", "kinetics400", "folder" or "ava". Throws
// vidcls::FormatError saying what was looked for when it is none of them.
std::string detect_layout(const std::string &dir);

// The splits a layout knows, its default first:
//   msr:         "cross-subject" (odd subjects train, even subjects test), "random80"
//   kinetics400: "val" (train rows vs val rows), "test" (train rows vs test rows)
//   folder:      "random80", or "folders" (the default when DIR/train/ and DIR/val/ or
//                DIR/test/ hold the classes)
//   ava:         "val" (train.csv rows vs val.csv rows)
// "random80" is the study's 80 / 20 split with seed 42, made reproducible: the videos sorted
// by path, shuffled by Fisher-Yates driven by std::mt19937(42) (for i = n-1 down to 1, swap
// i with j = mt() % (i + 1)), the first floor(0.8 n) train, the rest test. It is not
// stratified by class, like the study's. Python reproduces it with numpy's
// RandomState(42).randint(0, 2**32, dtype=np.uint64), which yields the same 32-bit stream.
std::vector<std::string> dataset_splits(const std::string &layout);

// The share of the training side that becomes the validation side by default.
constexpr double kDefaultValFraction = 0.1;

// Moves `fraction` (0 to < 1) of the training side to the validation side, reproducibly (sorted
// lists shuffled by std::mt19937(42), as random80):
//   - MSR cross-subject and ava: whole subjects (ava: videos), round(fraction x the training
//     subjects), at least one when there are two or more, so no subject has videos on two
//     sides (ava: no video has people on two sides);
//   - otherwise per class: round(fraction x the class's training videos), at least one of a
//     class with two or more, so every class is validated.
void carve_validation(DatasetSplit &split, double fraction);

// Reads the dataset in `dir` (layout detected), splits it and carves the validation side;
// `split` empty means the layout's default. Throws vidcls::FormatError for an unknown layout, a
// malformed CSV or labels.txt, an unknown split, or a dataset without videos.
DatasetSplit read_dataset(const std::string &dir, const std::string &split = "",
                          double val_fraction = kDefaultValFraction);

// True for the file name extensions read as videos in the folder layout (.avi, .mp4, .mkv,
// .mov, .webm, .m4v, .mpg, .mpeg, .ogv, .flv, .wmv, .ts), in any case.
bool is_video_file_name(const std::string &name);

}  // namespace vidcls::train
