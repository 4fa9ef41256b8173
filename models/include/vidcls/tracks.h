// Object tracks from annotation files: each tracked object's boxes over time as the
// MOTChallenge (gt.txt, det.txt) and AVA (CSV) formats write them, and the one rule that gives an
// object's box at any time between its keys. Per-object clips are cut from these boxes, in
// training (AVA labels) and when annotations are replayed onto a stream, so both must read a file
// the same way; a malformed line is an error that names the file and the line.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vidcls/object_crop.h"

namespace vidcls {

// An object's box at one time. MOT boxes are in pixels, AVA boxes in fractions of the frame
// ([0, 1]; Tracks::normalised says which).
struct TrackKey {
  double t = 0;  // frames from 0 (MOT) or seconds of the video (AVA)
  Box box;
  std::vector<int> actions;  // AVA action ids at this key (a person may do several); MOT: none
};

struct Track {
  int64_t id = 0;
  int object_class = -1;       // MOT class id when the file gives one
  std::vector<TrackKey> keys;  // sorted by t, one key per t
};

struct Tracks {
  bool normalised = false;  // boxes in fractions of the frame (AVA)
  bool in_frames = true;    // t counts frames (MOT), else seconds (AVA)
  std::map<int64_t, Track> by_id;
};

// MOTChallenge, one box a line: frame (from 1), id, left, top, width, height[, conf, class,
// visibility, ...]. Keys are at t = frame - 1. Lines with conf 0 (MOT ground truth: not to be
// evaluated) are left out. Throws FormatError naming the file and line of a malformed line, of a
// box without area, and of a second box of one id in one frame.
Tracks read_mot(const std::string &path);

// AVA (no header): video id, timestamp in seconds, x1, y1, x2, y2 in [0, 1], action id, person
// id; several lines of one person at one timestamp are one key with several actions (their boxes
// must agree). One Tracks per video id. Throws FormatError as read_mot does, also for
// coordinates outside [0, 1] or x2 <= x1.
std::map<std::string, Tracks> read_ava(const std::string &path);

// The box of `track` at time t, by one rule for every reader: a key's own box at its time;
// between two keys at most `max_gap` apart, linear between them (a detector that runs every Nth
// frame; AVA's one key a second); after a key that no key follows within `max_gap`, that key's
// box for up to `max_gap` (a tracker that lost the object keeps its last box a while); none
// before the first key and none later.
std::optional<Box> box_at(const Track &track, double t, double max_gap);

// A box of a normalised Tracks in pixels of a W x H frame.
Box box_in_pixels(const Box &normalised, int64_t W, int64_t H);

// A box in pixels as a region-of-interest meta can carry it: cut to the W x H frame, its edges
// rounded to whole pixels (halves away from zero); none when nothing of it is left, or when a
// value is not finite. Replayed boxes go on the stream this way (vidclsroireplay), so training
// cuts its crops from the same whole-pixel boxes.
std::optional<Box> box_on_frame(const Box &pixels, int64_t W, int64_t H);

}  // namespace vidcls
