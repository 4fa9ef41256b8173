// build_cache: decodes what a dataset's clip cache does not hold yet, reuses what it does, and
// commits a new index atomically (clip_cache.h describes the rules).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "cache_format.h"
#include "vidcls/clip_spec.h"
#include "vidcls/errors.h"
#include "vidcls/object_crop.h"
#include "vidcls/train/clip_cache.h"
#include "vidcls/train/dataset.h"
#include "vidcls/train/video_reader.h"

namespace vidcls::train {

using namespace cache;

namespace {

// Frames resized at a time: bounds the float32 copy of a long, large video.
constexpr int64_t kResizeChunk = 16;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The short side a video is stored at on its side of the split.
int wanted_short_side(const std::string &side, const CacheOptions &o) {
  return side == "train" ? o.short_side : o.eval_short_side;
}

// The size a video of source_h x source_w is stored at with `short_side`.
std::pair<int64_t, int64_t> stored_size(int64_t source_h, int64_t source_w, int short_side) {
  if (short_side == 0 || std::min(source_h, source_w) == short_side) return {source_h, source_w};
  return short_side_size(source_h, source_w, short_side);
}

uint64_t fnv1a(const std::string &text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return h;
}

// The side of a person's square crops on a side of the split stored at `short_side`.
int object_side(int short_side) {
  return short_side > 0 ? short_side : CacheOptions::kDefaultObjectSide;
}

// What a person's stored crops depend on besides the video: their boxes and the crop rule.
std::string object_digest(const VideoItem &item, const CacheOptions &o) {
  if (item.object_id < 0) return "";
  std::string text = std::to_string(o.object.margin) + (o.object.square ? "s" : "r");
  for (const auto &k : item.track.keys) {
    text += ";" + std::to_string(k.t) + "," + std::to_string(k.box.x) + "," +
            std::to_string(k.box.y) + "," + std::to_string(k.box.w) + "," + std::to_string(k.box.h);
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(fnv1a(text)));
  return hex;
}

// What the previous cache in the folder holds that a new build may reuse.
struct Previous {
  ClipCache cache;
  std::string text;  // its index as written
  bool usable = false;
  std::map<std::string, const CachedVideo *> videos;
  std::map<std::string, const SkippedVideo *> skipped;
  std::map<const CachedVideo *, size_t> position;
};

void read_previous(const fs::path &dir, const CacheOptions &options, Previous &prev) {
  if (!is_clip_cache(dir.string())) return;
  try {
    prev.cache = ClipCache::open(dir.string());
    prev.text = read_text(dir / kIndexName);
  } catch (const FormatError &) {
    prev.cache = ClipCache();  // unreadable or another version: rebuilt from scratch
    return;
  }
  const ClipCache &old = prev.cache;
  prev.usable = old.size() + old.skipped().size() > 0 && old.max_frames() == options.max_frames;
  if (!prev.usable) return;
  for (size_t i = 0; i < old.size(); ++i) {
    prev.videos[old.item(i).key()] = &old.item(i);
    prev.position[&old.item(i)] = i;
  }
  for (const auto &s : old.skipped()) prev.skipped[s.path] = &s;
}

struct Planned {
  VideoItem item;
  std::string side;
  SourceStat stat;
  enum class Action { kDecode, kReuse, kSkipAgain, kUnreadable } action = Action::kDecode;
  const CachedVideo *old = nullptr;
  std::string reason;
};

Planned plan_video(const VideoItem &item, const std::string &side, const Previous &prev,
                   const CacheOptions &options) {
  Planned p;
  p.item = item;
  p.side = side;
  if (const int err = stat_source(item.path, p.stat); err != 0) {
    p.action = Planned::Action::kUnreadable;
    p.reason = std::string("cannot read: ") + std::strerror(err);
    return p;
  }
  auto unchanged = [&p](int64_t size, int64_t mtime_ns) {
    return size == p.stat.size && mtime_ns == p.stat.mtime_ns;
  };
  if (auto it = prev.videos.find(item.key());
      it != prev.videos.end() && unchanged(it->second->source_size, it->second->source_mtime_ns)) {
    const CachedVideo &v = *it->second;
    const int side_px = object_side(wanted_short_side(side, options));
    const auto want = item.object_id < 0
                          ? stored_size(v.source_height, v.source_width,
                                        wanted_short_side(side, options))
                          : std::pair<int64_t, int64_t>(side_px, side_px);
    if (want == std::make_pair(v.height, v.width) &&
        v.object_digest == object_digest(item, options)) {
      p.action = Planned::Action::kReuse;
      p.old = &v;
    }
  } else if (auto s = prev.skipped.find(item.key());
             s != prev.skipped.end() &&
             unchanged(s->second->source_size, s->second->source_mtime_ns)) {
    p.action = Planned::Action::kSkipAgain;
    p.reason = s->second->reason;
  }
  return p;
}

std::vector<Planned> make_plan(const DatasetSplit &ds, const Previous &prev,
                               const CacheOptions &options) {
  std::vector<Planned> plan;
  for (const auto &[side, items] :
       {std::pair{"train", &ds.train}, std::pair{"val", &ds.val}, std::pair{"test", &ds.test}}) {
    for (const auto &item : *items) plan.push_back(plan_video(item, side, prev, options));
  }
  std::sort(plan.begin(), plan.end(), [](const Planned &a, const Planned &b) {
    return std::make_pair(a.item.path, a.item.object_id) <
           std::make_pair(b.item.path, b.item.object_id);
  });
  return plan;
}

// Every old video reused, in the same order, nothing to decode: the frames file stays.
bool frames_file_unchanged(const std::vector<Planned> &plan, const Previous &prev) {
  if (!prev.usable) return false;
  size_t in_order = 0;
  for (const auto &p : plan) {
    if (p.action == Planned::Action::kDecode) return false;
    if (p.action == Planned::Action::kReuse && prev.position.at(p.old) == in_order) ++in_order;
  }
  return in_order == prev.cache.size();
}

// The reason without a backtrace, and without the path the report names anyway.
std::string short_reason(const std::exception &e, const std::string &path) {
  std::string text = error_message(e);
  if (starts_with(text, path + ": ")) text.erase(0, path.size() + 2);
  return text;
}

// Decodes `path` frame by frame, resizing to `short_side` and writing a chunk at a time, so a
// long video never sits in memory whole. Fills the shape, offsets and fps of `v`; throws on any
// failure (the caller rolls the writer back).
void decode_into(const std::string &path, int short_side, int max_frames, FramesWriter &writer,
                 CachedVideo &v) {
  VideoReader reader(path);
  std::vector<torch::Tensor> pending;
  std::vector<int64_t> pts, durations;
  auto flush = [&] {
    if (pending.empty()) return;
    const auto resized = resize_short_side(torch::stack(pending), short_side);
    pending.clear();
    if (v.frames == 0) {
      v.offset = writer.begin_block();
      v.height = resized.size(1);
      v.width = resized.size(2);
    }
    writer.append(resized.data_ptr<uint8_t>(), static_cast<size_t>(resized.numel()));
    v.frames += resized.size(0);
  };
  while (max_frames <= 0 || static_cast<int64_t>(pts.size()) < max_frames) {
    auto frame = reader.next();
    if (!frame) break;
    if (pts.empty()) {
      v.source_height = frame->rgb.size(0);
      v.source_width = frame->rgb.size(1);
    }
    pending.push_back(std::move(frame->rgb));
    pts.push_back(frame->pts_ns);
    durations.push_back(frame->duration_ns);
    if (static_cast<int64_t>(pending.size()) == kResizeChunk) flush();
  }
  flush();
  if (v.frames == 0) throw FormatError("the video stream has no frames");
  v.fps = reader.fps();
  pts.insert(pts.end(), durations.begin(), durations.end());
  v.timestamps_offset = writer.write_block(pts.data(), pts.size() * sizeof(int64_t));
}

// A person's crops (see clip_cache.h): the frames of the item's video that have a box of the
// person, each one's region resized to `side` on its short side and cut to side x side in the
// middle. Fills `v` as decode_into does; throws when no frame has a box.
void decode_person_into(const VideoItem &item, int side, const CacheOptions &o,
                        FramesWriter &writer, CachedVideo &v) {
  VideoReader reader(item.path);
  std::vector<torch::Tensor> pending;
  std::vector<int64_t> pts, durations;
  auto flush = [&] {
    if (pending.empty()) return;
    const auto block = torch::stack(pending);
    pending.clear();
    if (v.frames == 0) {
      v.offset = writer.begin_block();
      v.height = v.width = side;
    }
    writer.append(block.data_ptr<uint8_t>(), static_cast<size_t>(block.numel()));
    v.frames += block.size(0);
  };
  for (int64_t decoded = 0; o.max_frames <= 0 || decoded < o.max_frames; ++decoded) {
    auto frame = reader.next();
    if (!frame) break;
    const int64_t H = frame->rgb.size(0), W = frame->rgb.size(1);
    if (decoded == 0) {
      v.source_height = H;
      v.source_width = W;
    }
    const auto box = box_at(item.track, static_cast<double>(frame->pts_ns) / 1e9, kAvaMaxGap);
    if (!box) continue;
    const auto whole = box_on_frame(box_in_pixels(*box, W, H), W, H);
    const auto r = whole ? object_region(*whole, H, W, o.object) : std::nullopt;
    if (!r) continue;
    const auto region =
        frame->rgb.narrow(0, r->top, r->height).narrow(1, r->left, r->width).unsqueeze(0);
    const auto resized = resize_short_side(region, side)[0];
    const int64_t top = (resized.size(0) - side) / 2, left = (resized.size(1) - side) / 2;
    pending.push_back(resized.narrow(0, top, side).narrow(1, left, side).contiguous());
    pts.push_back(frame->pts_ns);
    durations.push_back(frame->duration_ns);
    if (static_cast<int64_t>(pending.size()) == kResizeChunk) flush();
  }
  flush();
  if (v.frames == 0)
    throw FormatError("no frame of the video has a box of person " +
                      std::to_string(item.object_id));
  v.fps = reader.fps();
  pts.insert(pts.end(), durations.begin(), durations.end());
  v.timestamps_offset = writer.write_block(pts.data(), pts.size() * sizeof(int64_t));
}

// Carries out a plan into a new index (and a new frames file, unless the old one stays).
class Builder {
 public:
  Builder(const fs::path &dir, const CacheOptions &options, const Previous &prev, Index &ix,
          CacheReport &report)
      : dir_(dir), options_(options), prev_(prev), ix_(ix), report_(report) {}

  void run(const std::vector<Planned> &plan) {
    if (frames_file_unchanged(plan, prev_)) {
      ix_.data_file = fs::path(prev_.cache.data_file()).filename().string();
      ix_.data_size = static_cast<int64_t>(prev_.cache.data_size());
    } else {
      ix_.data_file = "frames-" + unique_token() + ".u8";
      tmp_path_ = (dir_ / ("." + ix_.data_file + ".tmp")).string();
      writer_ = std::make_unique<FramesWriter>(tmp_path_);
    }
    for (size_t i = 0; i < plan.size(); ++i) {
      const Planned &p = plan[i];
      switch (p.action) {
        case Planned::Action::kUnreadable:
        case Planned::Action::kSkipAgain:
          skip(i, plan.size(), p, p.reason);
          break;
        case Planned::Action::kReuse:
          reuse(i, plan.size(), p);
          break;
        case Planned::Action::kDecode:
          decode(i, plan.size(), p);
          break;
      }
    }
    if (writer_) {
      writer_->finish();
      ix_.data_size = writer_->size();
      writer_.reset();
      if (::rename(tmp_path_.c_str(), (dir_ / ix_.data_file).c_str()) != 0)
        throw std::runtime_error(system_error("cannot rename", tmp_path_));
    }
  }

 private:
  static CachedVideo describe(const Planned &p, const CacheOptions &options) {
    CachedVideo v;
    v.path = p.item.path;
    v.id = p.item.id;
    v.label = p.item.label;
    v.label_name = p.item.label_name;
    v.subject = p.item.subject;
    v.side = p.side;
    v.source_size = p.stat.size;
    v.source_mtime_ns = p.stat.mtime_ns;
    v.object_id = p.item.object_id;
    v.object_digest = object_digest(p.item, options);
    return v;
  }

  void emit(size_t i, size_t total, const Planned &p, const char *action, int64_t frames,
            double secs, const std::string &reason) {
    if (!options_.progress) return;
    CacheOptions::Event e;
    e.index = i;
    e.total = total;
    e.path = p.item.key();
    e.action = action;
    e.reason = reason;
    e.frames = frames;
    e.seconds = secs;
    options_.progress(e);
  }

  void skip(size_t i, size_t total, const Planned &p, const std::string &reason) {
    ix_.skipped.push_back({p.item.key(), reason, p.stat.size, p.stat.mtime_ns});
    report_.skipped.push_back(ix_.skipped.back());
    emit(i, total, p, "skipped", 0, 0, reason);
  }

  void reuse(size_t i, size_t total, const Planned &p) {
    CachedVideo v = describe(p, options_);
    const CachedVideo &old = *p.old;
    v.frames = old.frames;
    v.height = old.height;
    v.width = old.width;
    v.fps = old.fps;
    v.source_height = old.source_height;
    v.source_width = old.source_width;
    v.offset = old.offset;
    v.timestamps_offset = old.timestamps_offset;
    if (writer_) {
      const auto *data = prev_.cache.data();
      v.offset = writer_->write_block(data + old.offset,
                                      static_cast<size_t>(v.frames * v.height * v.width * 3));
      v.timestamps_offset =
          writer_->write_block(data + old.timestamps_offset, static_cast<size_t>(16 * v.frames));
    }
    ++report_.reused;
    ix_.videos.push_back(v);
    emit(i, total, p, "reused", v.frames, 0, "");
  }

  void decode(size_t i, size_t total, const Planned &p) {
    const auto t = std::chrono::steady_clock::now();
    const int64_t mark = writer_->size();
    CachedVideo v = describe(p, options_);
    try {
      if (p.item.object_id < 0) {
        decode_into(p.item.path, wanted_short_side(p.side, options_), options_.max_frames,
                    *writer_, v);
      } else {
        decode_person_into(p.item, object_side(wanted_short_side(p.side, options_)), options_,
                           *writer_, v);
      }
    } catch (const std::exception &e) {
      writer_->rollback(mark);
      skip(i, total, p, short_reason(e, p.item.path));
      return;
    }
    ++report_.decoded;
    ix_.videos.push_back(v);
    emit(i, total, p, "decoded", v.frames, seconds_since(t), "");
  }

  const fs::path &dir_;
  const CacheOptions &options_;
  const Previous &prev_;
  Index &ix_;
  CacheReport &report_;
  std::unique_ptr<FramesWriter> writer_;
  std::string tmp_path_;
};

// Writes the index when it changed, and removes frames files no index names any more (a
// reader that still maps one keeps it until it unmaps).
bool commit(const fs::path &dir, const Index &ix, const std::string &old_text) {
  const std::string text = index_text(ix);
  if (text == old_text) return false;
  write_file_atomically(dir / kIndexName, text);
  sync_dir(dir);
  std::error_code ec;
  for (const auto &e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (starts_with(name, "frames-") && ends_with(name, ".u8") && name != ix.data_file)
      fs::remove(e.path(), ec);
  }
  return true;
}

// Leftovers of a build that was killed: never referenced by an index.
void remove_leftovers(const fs::path &dir) {
  std::error_code ec;
  for (const auto &e : fs::directory_iterator(dir, ec)) {
    if (ends_with(e.path().filename().string(), ".tmp")) fs::remove(e.path(), ec);
  }
}

}  // namespace

int short_side_for_crop(int crop) {
  TORCH_CHECK(crop > 0, "crop must be > 0, got ", crop);
  return static_cast<int>(std::lround(crop * 8.0 / 7.0));
}

torch::Tensor resize_short_side(const torch::Tensor &frames, int short_side) {
  TORCH_CHECK(frames.dim() == 4 && frames.size(3) == 3 && frames.scalar_type() == torch::kUInt8,
              "expected RGB uint8 frames [N, H, W, 3], got ", frames.sizes(), " ",
              frames.scalar_type());
  TORCH_CHECK(short_side >= 0, "short_side must be >= 0, got ", short_side);
  const int64_t n = frames.size(0), h = frames.size(1), w = frames.size(2);
  if (short_side == 0 || std::min(h, w) == short_side) return frames.contiguous();
  const auto [nh, nw] = short_side_size(h, w, short_side);
  auto out = torch::empty({n, nh, nw, 3}, torch::kUInt8);
  for (int64_t s = 0; s < n; s += kResizeChunk) {
    const int64_t c = std::min(kResizeChunk, n - s);
    auto y = resize_frames(frames.narrow(0, s, c), nh, nw).round_().clamp_(0, 255);
    out.narrow(0, s, c).copy_(y.permute({0, 2, 3, 1}));
  }
  return out;
}

CacheOptions cache_options_for(const ClipSpec &spec) {
  CacheOptions o;
  o.short_side = short_side_for_crop(std::max(spec.width, spec.height));
  o.eval_short_side = spec.resize == ResizeMode::kCrop ? spec.crop_short_side() : 0;
  o.object = spec.object;
  return o;
}

std::string default_cache_dir(const std::string &dataset_dir, const CacheOptions &o) {
  fs::path root;
  if (const char *v = std::getenv("VIDCLS_CACHE_DIR"); v != nullptr && *v != '\0') {
    root = v;
  } else if (const char *x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0') {
    root = fs::path(x) / "vidcls" / "clip-caches";
  } else {
    const char *home = std::getenv("HOME");
    root = fs::path(home != nullptr && *home != '\0' ? home : "/tmp") / ".cache" / "vidcls" /
           "clip-caches";
  }
  const fs::path data = absolute_dir(dataset_dir);
  char key[96];
  std::snprintf(key, sizeof key, "-%016llx-s%d-e%d-m%d",
                static_cast<unsigned long long>(fnv1a(data.string())), o.short_side,
                o.eval_short_side, o.max_frames);
  return (root / (data.filename().string() + key)).string();
}

CacheReport build_cache(const std::string &dataset_dir, const std::string &cache_dir,
                        const CacheOptions &options) {
  const auto t0 = std::chrono::steady_clock::now();
  TORCH_CHECK(options.short_side >= 0 && options.eval_short_side >= 0,
              "short sides must be >= 0, got ", options.short_side, " and ",
              options.eval_short_side);
  TORCH_CHECK(options.max_frames >= 0, "max_frames must be >= 0, got ", options.max_frames);
  const fs::path dir = absolute_dir(cache_dir);
  fs::create_directories(dir);
  DirLock lock(dir);
  remove_leftovers(dir);

  const DatasetSplit ds = read_dataset(dataset_dir, options.split, options.val_fraction);
  Index ix;
  ix.dataset_dir = absolute_dir(dataset_dir);
  ix.layout = ds.layout;
  ix.split = ds.split;
  ix.val_fraction = options.val_fraction;
  ix.classes = ds.classes;
  ix.short_side = options.short_side;
  ix.eval_short_side = options.eval_short_side;
  ix.max_frames = options.max_frames;
  ix.missing = ds.missing;

  Previous prev;
  read_previous(dir, options, prev);
  const auto plan = make_plan(ds, prev, options);

  CacheReport report;
  report.cache_dir = dir.string();
  report.missing = ds.missing;
  {
    std::set<std::string> paths;
    for (const auto &p : plan) paths.insert(p.item.key());
    for (size_t i = 0; i < prev.cache.size(); ++i)
      report.removed += paths.count(prev.cache.item(i).key()) == 0;
  }
  Builder(dir, options, prev, ix, report).run(plan);
  report.written = commit(dir, ix, prev.text);
  report.videos = ix.videos.size();
  for (const auto &v : ix.videos) report.frames += v.frames;
  report.bytes = ix.data_size;
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace vidcls::train
