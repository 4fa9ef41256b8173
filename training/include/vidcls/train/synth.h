// Synthetic motion videos: the class is decided by how one object moves (direction of travel,
// sense of rotation, growing or shrinking, sense of an orbit) while its shape, colours, size,
// position, the background, static distractors and a slow camera drift are random. One frame
// says nothing about the class; a model has to compare frames. Optionally the background is
// cluttered with object-sized shapes (some of them moving slowly on their own) and the camera
// pans or shakes instead of drifting.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "vidcls/clip_record.h"  // Box

namespace vidcls::train {

// The motion classes in label order; a dataset of N classes uses the first N:
// slide_left, slide_right, slide_up, slide_down, rotate_cw, rotate_ccw, grow, shrink,
// orbit_cw, orbit_ccw.
const std::vector<std::string> &synth_motion_names();

// How the camera moves; the whole frame content moves the opposite way.
enum class SynthCamera {
  kStill,  // no global motion
  kDrift,  // slow constant-velocity translation, 3-12 % of the short side over the video
  kPan,    // a pan that starts and stops smoothly, 20-40 % of the short side, mostly horizontal
  kShake,  // hand-held jitter: a few percent of the short side, changing every few frames
};

std::string to_string(SynthCamera camera);                      // "still", "drift", "pan", "shake"
SynthCamera synth_camera_from_string(const std::string &name);  // throws std::invalid_argument

// One video to draw.
struct SynthScene {
  int motion = 0;     // index into synth_motion_names()
  uint64_t seed = 0;  // everything random about the video comes from this
  int frames = 48;
  int width = 128;
  int height = 96;
  SynthCamera camera = SynthCamera::kDrift;
  // Object-sized textured shapes in the background, under the object; about half of them move
  // slowly (at most a fifth of the short side over the video) in their own directions. They and
  // the camera draw from their own random stream: with clutter = 0 and the drift camera a scene
  // renders the same pixels as before these options existed.
  int clutter = 0;
};

// The frames and the ground truth of the moving object, per frame, in frame pixels.
struct SynthVideo {
  torch::Tensor frames;            // uint8 [N, H, W, 3] RGB
  std::vector<float> x, y;         // object centre
  std::vector<float> radius;       // object size (radius of its circumscribed circle, roughly)
  std::vector<float> angle;        // orientation, degrees, increasing clockwise on screen
  float drift_x = 0, drift_y = 0;  // kDrift: displacement of the whole frame content per frame
  std::vector<float> camera_x, camera_y;  // displacement of the frame content at each frame
                                          // against frame 0, any camera
};

// Deterministic: the same scene gives the same pixels.
SynthVideo render_synth_video(const SynthScene &scene);

// Several people in one video, each doing their own action: every person is a card (a square
// patch, 40 % of the frame height) on which a motion video of its own class plays (rendered as
// render_synth_video renders one, still camera, no clutter), while the card walks slowly across
// the frame on a straight line in a lane of its own (lanes spread from the top to the bottom of
// the frame, in random order), neighbouring lanes in opposite directions, so paths cross. A card
// lower in the frame is drawn over one higher up (it is nearer): people occlude each other where
// their lanes overlap. The action is what the card shows, not where the card goes: a model that
// sees the whole frame mixes everyone's motion, one that sees a person's crop sees theirs.
struct SynthCrowdScene {
  std::vector<int> motions;  // one person each (2-4 in datasets), indices into synth_motion_names
  uint64_t seed = 0;
  int frames = 48;
  int width = 128;
  int height = 96;
};

struct SynthPerson {
  int64_t id = 0;              // track id, 1, 2, ... in the video
  int motion = 0;              // index into synth_motion_names()
  std::vector<Box> boxes;      // per frame: the card, whole pixels of the frame
  std::vector<float> visible;  // per frame: the share of the card not covered by nearer cards
};

struct SynthCrowdVideo {
  torch::Tensor frames;  // uint8 [N, H, W, 3] RGB
  std::vector<SynthPerson> people;
};

// Deterministic: the same scene gives the same pixels.
SynthCrowdVideo render_synth_crowd(const SynthCrowdScene &scene);

enum class SynthLayout {
  kMsr,          // DIR/aXX_sYY_eZZ_rgb.avi (MJPEG in AVI), as MSR DailyActivity3D
  kKinetics400,  // DIR/{train,val}.csv + DIR/videos/{id}_{start:06d}_{end:06d}.mp4 (MPEG-4)
  kFolder,       // DIR/<class>/<class>_NNNN.webm (VP8)
  // Several people per video (render_synth_crowd), labelled per person as AVA is:
  // DIR/videos/crowd_NNNN.webm (VP8); DIR/train.csv and DIR/val.csv in AVA's format (no header:
  // video id, keyframe time in s, x1, y1, x2, y2 in [0, 1], action id = motion + 1, person
  // id), one row per person and keyframe, keyframes at 0 s, 1 s, 2 s, ... of the video; and
  // DIR/tracks/crowd_NNNN.txt, every person's box on every frame in MOTChallenge's gt.txt format
  // (frame from 1, id, left, top, width, height, 1, 1, visibility). A fifth of the videos are
  // in val.csv. --videos-per-class counts people: each class is that many people, dealt into
  // videos of 2-4.
  kAva,
};

std::string to_string(SynthLayout layout);  // "msr", "kinetics400", "folder", "ava"
SynthLayout synth_layout_from_string(const std::string &name);  // throws std::invalid_argument

struct SynthOptions {
  SynthLayout layout = SynthLayout::kMsr;
  std::string out;  // created if missing; existing files of the same names are replaced
  int classes = 6;  // the first N of synth_motion_names()
  int videos_per_class = 20;
  int subjects = 10;  // msr: video v of a class is subject v % subjects + 1,
                      // environment/repetition v / subjects + 1
  int frames = 48;
  int size = 96;  // frame height
  int width = 0;  // 0: 4:3, size * 4 / 3 rounded to even
  int fps = 15;
  uint64_t seed = 0;
  SynthCamera camera = SynthCamera::kDrift;
  int clutter = 0;  // object-sized background shapes per video (see SynthScene)
  int corrupt = 0;  // extra undecodable files with valid names (see SynthItem)
  int jobs = 1;     // videos encoded in parallel

  // Throws std::invalid_argument naming the option that is out of range.
  void validate() const;
  int frame_width() const;
};

// One written file.
struct SynthItem {
  std::string file;      // relative to SynthOptions::out
  int label = 0;         // index into synth_motion_names()
  std::string split;     // kinetics400: "train" or "val"; otherwise empty
  int subject = 0;       // msr: 1-based subject; otherwise 0
  bool corrupt = false;  // header only, random bytes, or empty, in turn
};

// Writes the dataset and labels.txt (one class name per line, in label order) and returns the
// files, the good ones first (ava: one item per video, label -1; the people are in its CSV rows
// and tracks file). `progress(done, total)` is called after each file.
std::vector<SynthItem> write_synth_dataset(const SynthOptions &options,
                                           const std::function<void(int, int)> &progress = nullptr);

}  // namespace vidcls::train
