#include "vidcls/train/clip_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <torch/nn/functional/upsampling.h>
#include <nlohmann/json.hpp>

#include "vidcls/errors.h"
#include "vidcls/train/dataset.h"
#include "vidcls/train/video_reader.h"

namespace fs = std::filesystem;
namespace F = torch::nn::functional;
using nlohmann::json;

namespace vidcls::train {

namespace {

constexpr const char *kFormat = "vidcls-clip-cache";
constexpr int kVersion = 1;
constexpr const char *kIndexName = "index.json";
constexpr int64_t kAlign = 64;
// Frames resized at a time: bounds the float32 copy of a long, large video.
constexpr int64_t kResizeChunk = 16;

int64_t align_up(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

std::string system_error(const std::string &what, const std::string &path) {
  return what + " " + path + ": " + std::strerror(errno);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

fs::path absolute_dir(const std::string &dir) {
  fs::path p = fs::absolute(fs::path(dir)).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p;
}

// ---- files -----------------------------------------------------------------------------------

struct Mapping {
  const uint8_t *data = nullptr;
  size_t size = 0;
  Mapping() = default;
  Mapping(const Mapping &) = delete;
  Mapping &operator=(const Mapping &) = delete;
  ~Mapping() {
    if (data != nullptr) ::munmap(const_cast<uint8_t *>(data), size);
  }
};

std::shared_ptr<Mapping> map_read_only(const std::string &path) {
  auto m = std::make_shared<Mapping>();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FormatError(system_error("cannot open clip cache file", path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string msg = system_error("cannot read", path);
    ::close(fd);
    throw FormatError(msg);
  }
  m->size = static_cast<size_t>(st.st_size);
  if (m->size > 0) {
    void *p = ::mmap(nullptr, m->size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      const std::string msg = system_error("cannot map", path);
      ::close(fd);
      throw FormatError(msg);
    }
    m->data = static_cast<const uint8_t *>(p);
  }
  ::close(fd);  // the mapping keeps the file
  return m;
}

struct SourceStat {
  int64_t size = -1, mtime_ns = 0;
};

// 0, or the errno of a failed stat.
int stat_source(const std::string &path, SourceStat &out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno;
  out.size = static_cast<int64_t>(st.st_size);
  out.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return 0;
}

// Sequential writer of the frames file, with the offsets the index records.
class FramesWriter {
 public:
  explicit FramesWriter(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(system_error("cannot create", path_));
  }
  ~FramesWriter() {
    if (fd_ >= 0) ::close(fd_);
  }
  FramesWriter(const FramesWriter &) = delete;
  FramesWriter &operator=(const FramesWriter &) = delete;

  // Starts a block at the next aligned position and returns that position.
  int64_t begin_block() {
    static const char zeros[kAlign] = {};
    const int64_t at = align_up(pos_);
    append(zeros, static_cast<size_t>(at - pos_));
    return at;
  }
  void append(const void *data, size_t n) {
    const char *p = static_cast<const char *>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) throw std::runtime_error(system_error("cannot write", path_));
      p += w;
      n -= static_cast<size_t>(w);
      pos_ += w;
    }
  }
  int64_t write_block(const void *data, size_t n) {
    const int64_t at = begin_block();
    append(data, n);
    return at;
  }
  // Forgets everything after `pos` (a video that failed half way).
  void rollback(int64_t pos) {
    if (::ftruncate(fd_, pos) != 0 || ::lseek(fd_, pos, SEEK_SET) != pos)
      throw std::runtime_error(system_error("cannot truncate", path_));
    pos_ = pos;
  }
  int64_t size() const { return pos_; }
  void finish() {
    if (::fsync(fd_) != 0) throw std::runtime_error(system_error("cannot sync", path_));
    if (::close(fd_) != 0) {
      fd_ = -1;
      throw std::runtime_error(system_error("cannot close", path_));
    }
    fd_ = -1;
  }

 private:
  std::string path_;
  int fd_ = -1;
  int64_t pos_ = 0;
};

void write_file_atomically(const fs::path &path, const std::string &text) {
  const std::string tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(system_error("cannot create", tmp));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      const std::string msg = system_error("cannot write", tmp);
      ::close(fd);
      throw std::runtime_error(msg);
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0)
    throw std::runtime_error(system_error("cannot write", tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error(system_error("cannot replace", path.string()));
}

void sync_dir(const fs::path &dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// One build at a time per cache folder; a second waits.
class DirLock {
 public:
  explicit DirLock(const fs::path &dir) {
    const std::string path = (dir / ".lock").string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(system_error("cannot create", path));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) throw std::runtime_error(system_error("cannot lock", path));
    }
  }
  ~DirLock() { ::close(fd_); }
  DirLock(const DirLock &) = delete;
  DirLock &operator=(const DirLock &) = delete;

 private:
  int fd_ = -1;
};

std::string unique_token() {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  std::ostringstream s;
  s << std::hex << ns << "-" << std::dec << ::getpid();
  return s.str();
}

bool starts_with(const std::string &s, const std::string &prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---- index -----------------------------------------------------------------------------------

std::string relative_to(const std::string &path, const fs::path &root) {
  const fs::path rel = fs::path(path).lexically_relative(root);
  return rel.empty() ? path : rel.string();
}

nlohmann::ordered_json video_to_json(const CachedVideo &v, const fs::path &root) {
  return {{"path", relative_to(v.path, root)},
          {"id", v.id},
          {"label", v.label},
          {"label_name", v.label_name},
          {"subject", v.subject},
          {"split", v.side},
          {"frames", v.frames},
          {"height", v.height},
          {"width", v.width},
          {"offset", v.offset},
          {"timestamps_offset", v.timestamps_offset},
          {"fps", v.fps},
          {"source",
           {{"height", v.source_height},
            {"width", v.source_width},
            {"size", v.source_size},
            {"mtime_ns", v.source_mtime_ns}}}};
}

CachedVideo video_from_json(const json &j, const fs::path &root) {
  CachedVideo v;
  v.path = (root / j.at("path").get<std::string>()).string();
  j.at("id").get_to(v.id);
  j.at("label").get_to(v.label);
  j.at("label_name").get_to(v.label_name);
  j.at("subject").get_to(v.subject);
  j.at("split").get_to(v.side);
  j.at("frames").get_to(v.frames);
  j.at("height").get_to(v.height);
  j.at("width").get_to(v.width);
  j.at("offset").get_to(v.offset);
  j.at("timestamps_offset").get_to(v.timestamps_offset);
  j.at("fps").get_to(v.fps);
  const json &s = j.at("source");
  s.at("height").get_to(v.source_height);
  s.at("width").get_to(v.source_width);
  s.at("size").get_to(v.source_size);
  s.at("mtime_ns").get_to(v.source_mtime_ns);
  return v;
}

struct Index {
  std::string data_file;
  int64_t data_size = 0;
  fs::path dataset_dir;
  std::string layout, split;
  std::vector<std::string> classes;
  int short_side = 0, max_frames = 0;
  std::vector<CachedVideo> videos;
  std::vector<SkippedVideo> skipped;
  std::vector<std::string> missing;
};

// Keys in the order a person reads them (ordered_json), one build's text equal to the next's
// when nothing changed.
std::string index_text(const Index &ix) {
  using ojson = nlohmann::ordered_json;
  ojson videos = ojson::array(), skipped = ojson::array();
  for (const auto &v : ix.videos) videos.push_back(video_to_json(v, ix.dataset_dir));
  for (const auto &s : ix.skipped) {
    skipped.push_back({{"path", relative_to(s.path, ix.dataset_dir)},
                       {"reason", s.reason},
                       {"source", {{"size", s.source_size}, {"mtime_ns", s.source_mtime_ns}}}});
  }
  const ojson j = {{"format", kFormat},
                   {"version", kVersion},
                   {"byte_order", "little"},
                   {"data_file", ix.data_file},
                   {"data_size", ix.data_size},
                   {"frame_layout", "NHWC uint8 RGB, then int64 pts_ns[N] and duration_ns[N]"},
                   {"resize",
                    {{"short_side", ix.short_side},
                     {"method",
                      "torch bilinear, align_corners false, antialiased when shrinking, "
                      "rounded half to even"}}},
                   {"max_frames", ix.max_frames},
                   {"dataset",
                    {{"dir", ix.dataset_dir.string()},
                     {"layout", ix.layout},
                     {"split", ix.split},
                     {"classes", ix.classes}}},
                   {"videos", videos},
                   {"skipped", skipped},
                   {"missing", ix.missing}};
  return j.dump(1) + "\n";
}

std::string read_text(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError("cannot read clip cache index " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Index parse_index(const fs::path &path) {
  const std::string text = read_text(path);
  Index ix;
  try {
    const json j = json::parse(text);
    if (j.value("format", "") != kFormat)
      throw FormatError(path.string() + " is not a vidcls clip cache index");
    if (j.at("version").get<int>() != kVersion)
      throw FormatError(path.string() + ": clip cache version " +
                        std::to_string(j.at("version").get<int>()) + ", this build reads " +
                        std::to_string(kVersion) + " (run vidcls-prep again)");
    if (j.at("byte_order").get<std::string>() != "little")
      throw FormatError(path.string() + ": clip cache written on a big-endian machine");
    j.at("data_file").get_to(ix.data_file);
    j.at("data_size").get_to(ix.data_size);
    j.at("resize").at("short_side").get_to(ix.short_side);
    j.at("max_frames").get_to(ix.max_frames);
    const json &d = j.at("dataset");
    ix.dataset_dir = d.at("dir").get<std::string>();
    d.at("layout").get_to(ix.layout);
    d.at("split").get_to(ix.split);
    d.at("classes").get_to(ix.classes);
    for (const auto &v : j.at("videos")) ix.videos.push_back(video_from_json(v, ix.dataset_dir));
    for (const auto &s : j.at("skipped")) {
      SkippedVideo sv;
      sv.path = (ix.dataset_dir / s.at("path").get<std::string>()).string();
      s.at("reason").get_to(sv.reason);
      s.at("source").at("size").get_to(sv.source_size);
      s.at("source").at("mtime_ns").get_to(sv.source_mtime_ns);
      ix.skipped.push_back(std::move(sv));
    }
    j.at("missing").get_to(ix.missing);
  } catch (const json::exception &e) {
    throw FormatError(path.string() + ": malformed clip cache index: " + e.what());
  }
  if (ix.data_file.empty() || ix.data_file.find('/') != std::string::npos ||
      starts_with(ix.data_file, "."))
    throw FormatError(path.string() + ": bad data_file '" + ix.data_file + "'");
  return ix;
}

void check_video(const CachedVideo &v, const Index &ix, const std::string &index_path) {
  auto fail = [&](const std::string &what) {
    throw FormatError(index_path + ": video " + v.path + ": " + what);
  };
  if (v.frames < 1 || v.height < 1 || v.width < 1) fail("empty frame shape");
  if (v.label < 0 || v.label >= static_cast<int>(ix.classes.size())) fail("label out of range");
  if (v.offset < 0 || v.offset % kAlign != 0 || v.timestamps_offset < 0 ||
      v.timestamps_offset % kAlign != 0)
    fail("misaligned offsets");
  const int64_t bytes = v.frames * v.height * v.width * 3;
  if (v.offset > ix.data_size - bytes || v.timestamps_offset > ix.data_size - 16 * v.frames)
    fail("lies beyond the end of " + ix.data_file);
}

// ---- building --------------------------------------------------------------------------------

struct Planned {
  VideoItem item;
  std::string side;
  SourceStat stat;
  enum class Action { kDecode, kReuse, kSkipAgain, kUnreadable } action = Action::kDecode;
  const CachedVideo *old = nullptr;
  std::string reason;
};

// The reason without a backtrace, and without the path the report names anyway.
std::string short_reason(const std::exception &e, const std::string &path) {
  const auto *c = dynamic_cast<const c10::Error *>(&e);
  std::string text = c != nullptr ? c->what_without_backtrace() : e.what();
  if (starts_with(text, path + ": ")) text.erase(0, path.size() + 2);
  return text;
}

// Decodes `path` frame by frame, resizing and writing a chunk at a time, so a long video never
// sits in memory whole. Fills the shape, offsets and fps of `v`; throws on any failure (the
// caller rolls the writer back).
void decode_into(const std::string &path, const CacheOptions &options, FramesWriter &writer,
                 CachedVideo &v) {
  VideoReader reader(path);
  std::vector<torch::Tensor> pending;
  std::vector<int64_t> pts, durations;
  auto flush = [&] {
    if (pending.empty()) return;
    const auto resized = resize_short_side(torch::stack(pending), options.short_side);
    pending.clear();
    if (v.frames == 0) {
      v.offset = writer.begin_block();
      v.height = resized.size(1);
      v.width = resized.size(2);
    }
    writer.append(resized.data_ptr<uint8_t>(), static_cast<size_t>(resized.numel()));
    v.frames += resized.size(0);
  };
  while (options.max_frames <= 0 || static_cast<int64_t>(pts.size()) < options.max_frames) {
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
  const double scale = static_cast<double>(short_side) / static_cast<double>(std::min(h, w));
  auto scaled = [scale](int64_t x) {
    return std::max<int64_t>(1, static_cast<int64_t>(std::lround(x * scale)));
  };
  const int64_t nh = h <= w ? short_side : scaled(h);
  const int64_t nw = h <= w ? scaled(w) : short_side;
  const bool shrink = nh < h || nw < w;
  const auto options = F::InterpolateFuncOptions()
                           .size(std::vector<int64_t>{nh, nw})
                           .mode(torch::kBilinear)
                           .align_corners(false)
                           .antialias(shrink);
  auto out = torch::empty({n, nh, nw, 3}, torch::kUInt8);
  for (int64_t s = 0; s < n; s += kResizeChunk) {
    const int64_t c = std::min(kResizeChunk, n - s);
    auto x = frames.narrow(0, s, c).permute({0, 3, 1, 2}).to(torch::kFloat32).contiguous();
    auto y = F::interpolate(x, options).round_().clamp_(0, 255);
    out.narrow(0, s, c).copy_(y.permute({0, 2, 3, 1}));
  }
  return out;
}

// ---- ClipCache -------------------------------------------------------------------------------

struct ClipCache::State {
  Index index;
  std::string cache_dir;
  std::string dataset_dir;
  std::shared_ptr<Mapping> mapping;
};

bool is_clip_cache(const std::string &dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / kIndexName, ec);
}

ClipCache ClipCache::open(const std::string &cache_dir) {
  const fs::path dir = absolute_dir(cache_dir);
  const fs::path index_path = dir / kIndexName;
  std::error_code ec;
  if (!fs::is_regular_file(index_path, ec))
    throw FormatError(cache_dir + " is not a clip cache (no " + kIndexName +
                      "; vidcls-prep --data DATASET --out " + cache_dir + " makes one)");
  auto state = std::make_shared<State>();
  state->index = parse_index(index_path);
  state->cache_dir = dir.string();
  try {
    state->mapping = map_read_only((dir / state->index.data_file).string());
  } catch (const FormatError &) {
    // A build may have replaced the index and removed the frames file between our two reads.
    Index again = parse_index(index_path);
    if (again.data_file == state->index.data_file) throw;
    state->index = std::move(again);
    state->mapping = map_read_only((dir / state->index.data_file).string());
  }
  state->dataset_dir = state->index.dataset_dir.string();
  const std::string data_path = (dir / state->index.data_file).string();
  if (static_cast<int64_t>(state->mapping->size) != state->index.data_size)
    throw FormatError(data_path + " has " + std::to_string(state->mapping->size) +
                      " bytes, the index says " + std::to_string(state->index.data_size));
  for (const auto &v : state->index.videos) check_video(v, state->index, index_path.string());
  ClipCache cache;
  cache.state_ = std::move(state);
  return cache;
}

size_t ClipCache::size() const { return state_ ? state_->index.videos.size() : 0; }

const CachedVideo &ClipCache::item(size_t i) const {
  TORCH_CHECK(i < size(), "clip cache video ", i, " out of range (", size(), " videos)");
  return state_->index.videos[i];
}

torch::Tensor ClipCache::frames(size_t i) const {
  const CachedVideo &v = item(i);
  // The deleter holds the mapping, so a view outliving this object stays valid.
  auto keep = state_->mapping;
  return torch::from_blob(
      const_cast<uint8_t *>(keep->data + v.offset), {v.frames, v.height, v.width, 3},
      [keep](void *) {}, torch::TensorOptions().dtype(torch::kUInt8));
}

torch::Tensor ClipCache::timestamps_ns(size_t i) const {
  const CachedVideo &v = item(i);
  auto keep = state_->mapping;
  return torch::from_blob(
      const_cast<uint8_t *>(keep->data + v.timestamps_offset), {v.frames}, [keep](void *) {},
      torch::TensorOptions().dtype(torch::kInt64));
}

torch::Tensor ClipCache::durations_ns(size_t i) const {
  const CachedVideo &v = item(i);
  auto keep = state_->mapping;
  return torch::from_blob(
      const_cast<uint8_t *>(keep->data + v.timestamps_offset + 8 * v.frames), {v.frames},
      [keep](void *) {}, torch::TensorOptions().dtype(torch::kInt64));
}

std::vector<size_t> ClipCache::indices(const std::string &side) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < size(); ++i) {
    if (state_->index.videos[i].side == side) out.push_back(i);
  }
  return out;
}

namespace {
const std::vector<std::string> kNoStrings;
const std::vector<SkippedVideo> kNoSkipped;
const std::string kEmpty;
}  // namespace

const std::vector<std::string> &ClipCache::classes() const {
  return state_ ? state_->index.classes : kNoStrings;
}
const std::string &ClipCache::layout() const { return state_ ? state_->index.layout : kEmpty; }
const std::string &ClipCache::split() const { return state_ ? state_->index.split : kEmpty; }
const std::string &ClipCache::dataset_dir() const { return state_ ? state_->dataset_dir : kEmpty; }
const std::string &ClipCache::cache_dir() const { return state_ ? state_->cache_dir : kEmpty; }
int ClipCache::short_side() const { return state_ ? state_->index.short_side : 0; }
int ClipCache::max_frames() const { return state_ ? state_->index.max_frames : 0; }
const std::vector<SkippedVideo> &ClipCache::skipped() const {
  return state_ ? state_->index.skipped : kNoSkipped;
}
const std::vector<std::string> &ClipCache::missing() const {
  return state_ ? state_->index.missing : kNoStrings;
}
std::string ClipCache::data_file() const {
  return state_ ? (fs::path(state_->cache_dir) / state_->index.data_file).string() : "";
}
const uint8_t *ClipCache::data() const { return state_ ? state_->mapping->data : nullptr; }
size_t ClipCache::data_size() const { return state_ ? state_->mapping->size : 0; }

// ---- build_cache -----------------------------------------------------------------------------

CacheReport build_cache(const std::string &dataset_dir, const std::string &cache_dir,
                        const CacheOptions &options) {
  const auto t0 = std::chrono::steady_clock::now();
  TORCH_CHECK(options.short_side >= 0, "short_side must be >= 0, got ", options.short_side);
  TORCH_CHECK(options.max_frames >= 0, "max_frames must be >= 0, got ", options.max_frames);
  const fs::path dir = absolute_dir(cache_dir);
  fs::create_directories(dir);
  DirLock lock(dir);

  // Leftovers of a build that was killed: never referenced by an index.
  std::error_code ec;
  for (const auto &e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (ends_with(name, ".tmp")) fs::remove(e.path(), ec);
  }

  DatasetSplit ds = read_dataset(dataset_dir, options.split);
  Index ix;
  ix.dataset_dir = absolute_dir(dataset_dir);
  ix.layout = ds.layout;
  ix.split = ds.split;
  ix.classes = ds.classes;
  ix.short_side = options.short_side;
  ix.max_frames = options.max_frames;
  ix.missing = ds.missing;

  // What the previous cache holds that is still valid: same settings, same file.
  ClipCache old;
  std::string old_text;
  if (is_clip_cache(dir.string())) {
    try {
      old = ClipCache::open(dir.string());
      old_text = read_text(dir / kIndexName);
    } catch (const FormatError &) {
      old = ClipCache();  // unreadable: rebuilt from scratch
    }
  }
  const bool settings_match = old.size() + old.skipped().size() > 0 &&
                              old.short_side() == options.short_side &&
                              old.max_frames() == options.max_frames;
  std::map<std::string, const CachedVideo *> old_videos;
  std::map<std::string, const SkippedVideo *> old_skipped;
  std::map<const CachedVideo *, size_t> old_position;
  if (settings_match) {
    for (size_t i = 0; i < old.size(); ++i) {
      old_videos[old.item(i).path] = &old.item(i);
      old_position[&old.item(i)] = i;
    }
    for (const auto &s : old.skipped()) old_skipped[s.path] = &s;
  }

  std::vector<Planned> plan;
  for (const auto *side : {&ds.train, &ds.test}) {
    for (const auto &item : *side) {
      Planned p;
      p.item = item;
      p.side = side == &ds.train ? "train" : "test";
      if (const int err = stat_source(item.path, p.stat); err != 0) {
        p.action = Planned::Action::kUnreadable;
        p.reason = std::string("cannot read: ") + std::strerror(err);
      } else if (auto it = old_videos.find(item.path);
                 it != old_videos.end() && it->second->source_size == p.stat.size &&
                 it->second->source_mtime_ns == p.stat.mtime_ns) {
        p.action = Planned::Action::kReuse;
        p.old = it->second;
      } else if (auto s = old_skipped.find(item.path);
                 s != old_skipped.end() && s->second->source_size == p.stat.size &&
                 s->second->source_mtime_ns == p.stat.mtime_ns) {
        p.action = Planned::Action::kSkipAgain;
        p.reason = s->second->reason;
      }
      plan.push_back(std::move(p));
    }
  }
  std::sort(plan.begin(), plan.end(),
            [](const Planned &a, const Planned &b) { return a.item.path < b.item.path; });

  CacheReport report;
  report.cache_dir = dir.string();
  report.missing = ds.missing;
  size_t reused_in_order = 0;
  bool any_decode = false;
  for (const auto &p : plan) {
    if (p.action == Planned::Action::kDecode) any_decode = true;
    if (p.action == Planned::Action::kReuse && old_position[p.old] == reused_in_order)
      ++reused_in_order;
  }
  // Every old video reused, in the same order, nothing to decode: the frames file stays.
  const bool keep_frames_file = settings_match && !any_decode && reused_in_order == old.size();
  {
    std::set<std::string> paths;
    for (const auto &p : plan) paths.insert(p.item.path);
    for (size_t i = 0; i < old.size(); ++i) report.removed += paths.count(old.item(i).path) == 0;
  }

  auto emit = [&](size_t i, const Planned &p, const char *action, int64_t frames, double secs,
                  const std::string &reason) {
    if (!options.progress) return;
    CacheOptions::Event e;
    e.index = i;
    e.total = plan.size();
    e.path = p.item.path;
    e.action = action;
    e.reason = reason;
    e.frames = frames;
    e.seconds = secs;
    options.progress(e);
  };
  auto describe = [](const Planned &p) {
    CachedVideo v;
    v.path = p.item.path;
    v.id = p.item.id;
    v.label = p.item.label;
    v.label_name = p.item.label_name;
    v.subject = p.item.subject;
    v.side = p.side;
    v.source_size = p.stat.size;
    v.source_mtime_ns = p.stat.mtime_ns;
    return v;
  };
  auto skip = [&](size_t i, const Planned &p, const std::string &reason) {
    ix.skipped.push_back({p.item.path, reason, p.stat.size, p.stat.mtime_ns});
    emit(i, p, "skipped", 0, 0, reason);
  };

  std::unique_ptr<FramesWriter> writer;
  std::string tmp_path;
  if (keep_frames_file) {
    ix.data_file = fs::path(old.data_file()).filename().string();
    ix.data_size = static_cast<int64_t>(old.data_size());
  } else {
    ix.data_file = "frames-" + unique_token() + ".u8";
    tmp_path = (dir / ("." + ix.data_file + ".tmp")).string();
    writer = std::make_unique<FramesWriter>(tmp_path);
  }

  for (size_t i = 0; i < plan.size(); ++i) {
    const Planned &p = plan[i];
    switch (p.action) {
      case Planned::Action::kUnreadable:
      case Planned::Action::kSkipAgain:
        skip(i, p, p.reason);
        break;
      case Planned::Action::kReuse: {
        CachedVideo v = *p.old;
        v.label = p.item.label;
        v.label_name = p.item.label_name;
        v.side = p.side;
        v.id = p.item.id;
        v.subject = p.item.subject;
        if (writer) {
          const int64_t bytes = v.frames * v.height * v.width * 3;
          v.offset = writer->write_block(old.data() + p.old->offset, static_cast<size_t>(bytes));
          v.timestamps_offset = writer->write_block(old.data() + p.old->timestamps_offset,
                                                    static_cast<size_t>(16 * v.frames));
        }
        ++report.reused;
        ix.videos.push_back(v);
        emit(i, p, "reused", v.frames, 0, "");
        break;
      }
      case Planned::Action::kDecode: {
        const auto t = std::chrono::steady_clock::now();
        const int64_t mark = writer->size();
        CachedVideo v = describe(p);
        try {
          decode_into(p.item.path, options, *writer, v);
        } catch (const std::exception &e) {
          writer->rollback(mark);
          skip(i, p, short_reason(e, p.item.path));
          break;
        }
        ++report.decoded;
        ix.videos.push_back(v);
        emit(i, p, "decoded", v.frames, seconds_since(t), "");
        break;
      }
    }
  }
  for (const auto &s : ix.skipped) report.skipped.push_back(s);

  if (writer) {
    writer->finish();
    ix.data_size = writer->size();
    writer.reset();
    if (::rename(tmp_path.c_str(), (dir / ix.data_file).c_str()) != 0)
      throw std::runtime_error(system_error("cannot rename", tmp_path));
  }
  const std::string text = index_text(ix);
  if (text != old_text) {
    write_file_atomically(dir / kIndexName, text);
    sync_dir(dir);
    report.written = true;
    // Frames files no index names any more; a reader that still maps one keeps it until it
    // unmaps.
    for (const auto &e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (starts_with(name, "frames-") && ends_with(name, ".u8") && name != ix.data_file)
        fs::remove(e.path(), ec);
    }
  }

  report.videos = ix.videos.size();
  for (const auto &v : ix.videos) report.frames += v.frames;
  report.bytes = ix.data_size;
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace vidcls::train
