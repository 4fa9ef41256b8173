// Clips per tracked object: the per-object counterpart of ClipCutter and the clipper's ring. Told
// of each sampled frame and of the objects (track id, box) seen on it, it keeps one ring of
// clip frames per track, cut from the frame by the clip spec's object rule (object_crop.h), and
// returns every clip that frame completes, with the object's id in its record. Without
// GStreamer: vidclsclipper's per-object mode feeds it from the metas, tests feed it directly.
//
// The rules, stated once:
// - A track's clips are cut from the frames sampled while it is tracked, as a stream's are
//   (T frames, hop apart); its sampled frames count from 0 in the track's epoch.
// - A sampled frame without a box of a known track (occlusion, a detector that runs every Nth
//   frame) takes the track's last box if it was seen at most `hold` ns before; later frames add
//   nothing to it.
// - A track not seen for `timeout` ns is ended: its leftover frames become a clip by the EOS
//   policy, and the ring is freed.
// - At most `max_objects` tracks are kept: a new id beyond that ends the track seen longest ago
//   (its leftover clip by the policy), unless every track was seen on this very frame, when the
//   new id is the one left out (no track is ever ended by one it would then end in turn); the
//   two are counted in Stats::dropped and Stats::refused.
// - Boxes with no region in the frame (object_region says none) count as not seen.
// - Each track begun gets an epoch of its own (records are unique by stream, object, epoch and
//   index, also when an id comes back after its track ended). Frames without timestamps never
//   age a track: only max_objects ends them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "vidcls/clip_record.h"
#include "vidcls/clip_sampling.h"
#include "vidcls/clip_spec.h"
#include "vidcls/object_crop.h"

namespace vidcls {

struct ObjectSighting {
  int64_t id = 0;
  Box box;  // pixels of the frame
};

struct ObjectClip {
  ClipRecord record;   // object_id is the track id, box its box on the clip's last frame
  torch::Tensor clip;  // [n, 3, height, width] float32 on the clipper's device (n < T: partial)
};

class ObjectClipper {
 public:
  struct Settings {
    ClipSpec spec;
    EosPolicy eos = EosPolicy::kPad;
    uint64_t hold_ns = 1000000000;     // a box missing from a frame: the last one, this long
    uint64_t timeout_ns = 2000000000;  // a track not seen this long is ended
    size_t max_objects = 16;
    torch::Device device{torch::kCPU};
  };
  struct Stats {
    uint64_t tracks = 0;   // tracks now
    uint64_t started = 0;  // tracks begun since start
    uint64_t ended = 0;    // tracks ended because they were not seen for timeout_ns
    uint64_t dropped = 0;  // tracks ended to make room for a new id (max_objects)
    uint64_t refused = 0;  // sightings of a new id left out: no room on that frame
    uint64_t clips = 0;    // clips returned, leftover ones included
  };

  void configure(const Settings &settings, const std::string &stream);
  // The stream-id of the tracks begun from now (a new stream: reset() first).
  void set_stream(const std::string &stream) { stream_ = stream; }
  const Settings &settings() const { return settings_; }

  // One sampled frame, RGB uint8 [H, W, 3] on the device, its time span (ns) and the objects seen
  // on it (an id given twice: the first box counts). Returns the clips it completes and those of
  // the tracks it ends, in track order.
  std::vector<ObjectClip> add(const torch::Tensor &rgb_hwc_u8, uint64_t start_ns, uint64_t end_ns,
                              const std::vector<ObjectSighting> &seen);
  // End of stream: every track's leftover clip by `policy`; the tracks are kept (a flush or
  // reset clears them).
  std::vector<ObjectClip> finish(EosPolicy policy);
  // A flush, seek or caps change: every track is let go without clips; new epochs follow.
  void reset();

  Stats stats() const;

 private:
  struct Track {
    ClipCutter cutter;
    torch::Tensor ring;      // [T, 3, h, w]
    std::vector<Box> boxes;  // the box of each ring slot
    uint64_t last_seen = kNoTimestamp;
    Box last_box;
    uint64_t order = 0;  // when it was last seen, for max_objects
    uint64_t epoch = 0;  // a new one per track begun: a returning id starts anew
    int64_t id = 0;
  };

  Track *start_track(int64_t id, const std::map<int64_t, Box> &seen_now,
                     std::vector<ObjectClip> &out);
  void end_track(std::map<int64_t, Track>::iterator it, std::vector<ObjectClip> &out);
  ObjectClip clip_of(const Track &t, const ClipRecord &r) const;

  Settings settings_;
  std::string stream_;
  std::map<int64_t, Track> tracks_;
  uint64_t next_epoch_ = 0;
  uint64_t seen_counter_ = 0;
  Stats stats_;
};

}  // namespace vidcls
