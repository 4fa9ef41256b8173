// The identity of one clip: which stream, which object, which clip of the stream and which stretch
// of it. One value, made where a clip is cut (vidclsclipper, training's evaluation windows) and
// carried unchanged through the clip meta, the inference worker, the result meta, the bus message
// and every JSON line. pytorchvideo's ClipInfo is the model.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

namespace vidcls {

// "No timestamp": the same value as GST_CLOCK_TIME_NONE.
constexpr uint64_t kNoTimestamp = std::numeric_limits<uint64_t>::max();
// The object id of a clip cut from whole frames.
constexpr int64_t kWholeFrame = -1;

// An axis-aligned box in pixels of the frame: top-left corner and size.
struct Box {
  double x = 0, y = 0, w = 0, h = 0;
};

struct ClipRecord {
  std::string stream;               // GStreamer stream-id of the source stream; "" if unknown
  int64_t object_id = kWholeFrame;  // tracked object the clip follows; kWholeFrame: whole frames
  uint64_t epoch = 0;               // changes when the clipper restarts (flush, seek, caps)
  uint64_t index = 0;               // 0, 1, ... within the epoch
  uint64_t first_sample = 0;        // index of its first sampled frame within the epoch
  uint64_t n_frames = 0;            // sampled frames of the stream it holds (< T: end of stream)
  bool partial = false;             // completed at end of stream from the frames left over
  uint64_t start = kNoTimestamp;    // ns: PTS of its first frame
  uint64_t end = kNoTimestamp;      // ns: PTS + duration of its last frame
  Box box;                          // an object's clip: its box on the last frame; else zero
};

inline bool operator==(const ClipRecord &a, const ClipRecord &b) {
  return a.stream == b.stream && a.object_id == b.object_id && a.epoch == b.epoch &&
         a.index == b.index && a.first_sample == b.first_sample && a.n_frames == b.n_frames &&
         a.partial == b.partial && a.start == b.start && a.end == b.end && a.box.x == b.box.x &&
         a.box.y == b.box.y && a.box.w == b.box.w && a.box.h == b.box.h;
}
inline bool operator!=(const ClipRecord &a, const ClipRecord &b) { return !(a == b); }

}  // namespace vidcls
