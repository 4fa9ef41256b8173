#include "vidcls/object_clipper.h"

#include <algorithm>
#include <set>

namespace vidcls {

void ObjectClipper::configure(const Settings &settings, const std::string &stream) {
  settings.spec.validate();
  settings_ = settings;
  stream_ = stream;
  tracks_.clear();
  stats_ = Stats();
}

void ObjectClipper::reset() { tracks_.clear(); }

ObjectClipper::Stats ObjectClipper::stats() const {
  Stats s = stats_;
  s.tracks = tracks_.size();
  return s;
}

ObjectClip ObjectClipper::clip_of(const Track &t, const ClipRecord &r) const {
  const int64_t T = settings_.spec.frames;
  std::vector<int64_t> rows;
  for (uint64_t i = 0; i < r.n_frames; ++i) rows.push_back((r.first_sample + i) % T);
  ObjectClip c;
  c.record = r;
  c.record.object_id = t.id;
  c.record.epoch = t.epoch;
  c.clip = t.ring.index_select(0, torch::tensor(rows, torch::kLong).to(t.ring.device()));
  c.record.box = t.boxes[rows.back()];
  return c;
}

void ObjectClipper::end_track(std::map<int64_t, Track>::iterator it, std::vector<ObjectClip> &out) {
  ClipRecord r;
  if (it->second.cutter.finish(settings_.eos, r)) {
    out.push_back(clip_of(it->second, r));
    ++stats_.clips;
  }
  tracks_.erase(it);
}

ObjectClipper::Track *ObjectClipper::start_track(int64_t id, const std::map<int64_t, Box> &seen_now,
                                                 std::vector<ObjectClip> &out) {
  if (tracks_.size() >= std::max<size_t>(settings_.max_objects, 1)) {
    auto oldest = tracks_.end();
    for (auto it = tracks_.begin(); it != tracks_.end(); ++it) {
      if (seen_now.count(it->first)) continue;  // on this frame: kept
      if (oldest == tracks_.end() || it->second.order < oldest->second.order) oldest = it;
    }
    if (oldest == tracks_.end()) {
      ++stats_.refused;
      return nullptr;
    }
    end_track(oldest, out);
    ++stats_.dropped;
  }
  const ClipSpec &spec = settings_.spec;
  Track &t = tracks_[id];
  t.id = id;
  t.epoch = next_epoch_++;
  t.cutter.configure(spec.frames, spec.hop);
  t.cutter.set_stream(stream_);
  t.ring = torch::empty({spec.frames, 3, spec.height, spec.width},
                        torch::TensorOptions().dtype(torch::kFloat32).device(settings_.device));
  t.boxes.assign(spec.frames, Box());
  ++stats_.started;
  return &t;
}

std::vector<ObjectClip> ObjectClipper::add(const torch::Tensor &rgb, uint64_t start_ns,
                                           uint64_t end_ns,
                                           const std::vector<ObjectSighting> &seen) {
  TORCH_CHECK(rgb.dim() == 3 && rgb.size(2) == 3, "expected an RGB uint8 frame [H, W, 3], got ",
              rgb.sizes());
  const int64_t H = rgb.size(0), W = rgb.size(1);
  std::vector<ObjectClip> out;
  const uint64_t now = start_ns;
  // The boxes of this frame: the objects seen with a region in it, then the tracks held.
  std::map<int64_t, Box> boxes;
  for (const auto &s : seen) {
    if (boxes.count(s.id) || !object_region(s.box, H, W, settings_.spec.object)) continue;
    boxes.emplace(s.id, s.box);
  }
  const auto age = [now](uint64_t t) {
    return now == kNoTimestamp || t == kNoTimestamp || now < t ? 0 : now - t;
  };
  for (auto it = tracks_.begin(); it != tracks_.end();) {
    Track &t = it->second;
    if (!boxes.count(it->first) && age(t.last_seen) > settings_.timeout_ns) {
      end_track(it++, out);
      ++stats_.ended;
      continue;
    }
    ++it;
  }
  const std::map<int64_t, Box> seen_now = boxes;
  std::set<int64_t> held;
  for (auto &[id, t] : tracks_) {
    if (!boxes.count(id) && age(t.last_seen) <= settings_.hold_ns) {
      boxes.emplace(id, t.last_box);
      held.insert(id);
    }
  }
  for (const auto &[id, box] : boxes) {
    auto found = tracks_.find(id);
    if (found == tracks_.end() && held.count(id)) continue;  // ended for a new id meanwhile
    Track *track = found != tracks_.end() ? &found->second : start_track(id, seen_now, out);
    if (track == nullptr) continue;  // beyond max_objects
    Track &t = *track;
    if (!held.count(id)) {
      t.last_seen = now;
      t.last_box = box;
      t.order = ++seen_counter_;
    }
    const auto region = object_region(box, H, W, settings_.spec.object);
    if (!region) continue;  // a held box the frame (of another size now) does not hold
    const uint64_t sample = t.cutter.next_sample();
    const int64_t slot = static_cast<int64_t>(t.cutter.slot(sample));
    if (t.cutter.in_a_clip(sample)) {
      preprocess_region_into(rgb, *region, settings_.spec, t.ring[slot]);
      t.boxes[slot] = box;
    }
    ClipRecord r;
    if (t.cutter.add(start_ns, end_ns, r)) {
      out.push_back(clip_of(t, r));
      ++stats_.clips;
    }
  }
  return out;
}

std::vector<ObjectClip> ObjectClipper::finish(EosPolicy policy) {
  std::vector<ObjectClip> out;
  for (auto &[id, t] : tracks_) {
    ClipRecord r;
    if (t.cutter.finish(policy, r)) {
      out.push_back(clip_of(t, r));
      ++stats_.clips;
    }
  }
  return out;
}

}  // namespace vidcls
