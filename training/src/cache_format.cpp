#include "cache_format.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "vidcls/errors.h"

namespace vidcls::train::cache {

using nlohmann::json;

std::string system_error(const std::string &what, const std::string &path) {
  return what + " " + path + ": " + std::strerror(errno);
}

fs::path absolute_dir(const std::string &dir) {
  fs::path p = fs::absolute(fs::path(dir)).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p;
}

// ---- files -----------------------------------------------------------------------------------

std::shared_ptr<const MappedFile> map_read_only(const std::string &path) {
  return std::make_shared<const MappedFile>(path);
}

int stat_source(const std::string &path, SourceStat &out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno;
  out.size = static_cast<int64_t>(st.st_size);
  out.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return 0;
}

FramesWriter::FramesWriter(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(system_error("cannot create", path_));
}

FramesWriter::~FramesWriter() {
  if (fd_ >= 0) ::close(fd_);
}

int64_t FramesWriter::begin_block() {
  static const char zeros[kAlign] = {};
  const int64_t at = align_up(pos_);
  append(zeros, static_cast<size_t>(at - pos_));
  return at;
}

void FramesWriter::append(const void *data, size_t n) {
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

int64_t FramesWriter::write_block(const void *data, size_t n) {
  const int64_t at = begin_block();
  append(data, n);
  return at;
}

void FramesWriter::rollback(int64_t pos) {
  if (::ftruncate(fd_, pos) != 0 || ::lseek(fd_, pos, SEEK_SET) != pos)
    throw std::runtime_error(system_error("cannot truncate", path_));
  pos_ = pos;
}

void FramesWriter::finish() {
  if (::fsync(fd_) != 0) throw std::runtime_error(system_error("cannot sync", path_));
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw std::runtime_error(system_error("cannot close", path_));
  }
  fd_ = -1;
}

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

DirLock::DirLock(const fs::path &dir) {
  const std::string path = (dir / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(system_error("cannot create", path));
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) throw std::runtime_error(system_error("cannot lock", path));
  }
}

DirLock::~DirLock() { ::close(fd_); }

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

namespace {

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
            {"mtime_ns", v.source_mtime_ns}}},
          {"object", {{"id", v.object_id}, {"digest", v.object_digest}}}};
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
  if (j.contains("object")) {  // caches written before per-person items have none
    j.at("object").at("id").get_to(v.object_id);
    j.at("object").at("digest").get_to(v.object_digest);
  }
  return v;
}

}  // namespace

std::string index_text(const Index &ix) {
  using ojson = nlohmann::ordered_json;
  ojson videos = ojson::array(), skipped = ojson::array();
  for (const auto &v : ix.videos) videos.push_back(video_to_json(v, ix.dataset_dir));
  for (const auto &s : ix.skipped) {
    skipped.push_back({{"path", relative_to(s.path, ix.dataset_dir)},  // a person: path#id
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
                     {"eval_short_side", ix.eval_short_side},
                     {"method",
                      "torch bilinear, align_corners false, antialiased when shrinking, "
                      "rounded half to even"}}},
                   {"max_frames", ix.max_frames},
                   {"dataset",
                    {{"dir", ix.dataset_dir.string()},
                     {"layout", ix.layout},
                     {"split", ix.split},
                     {"val_fraction", ix.val_fraction},
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
    j.at("resize").at("eval_short_side").get_to(ix.eval_short_side);
    j.at("max_frames").get_to(ix.max_frames);
    const json &d = j.at("dataset");
    ix.dataset_dir = d.at("dir").get<std::string>();
    d.at("layout").get_to(ix.layout);
    d.at("split").get_to(ix.split);
    d.at("val_fraction").get_to(ix.val_fraction);
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
}  // namespace vidcls::train::cache
