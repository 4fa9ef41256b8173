// The clip cache on disk (the layout is described in clip_cache.h): the index and its JSON, the
// frames file, and the file operations a build needs to replace both atomically. Shared by the
// reader (clip_cache.cpp) and the builder (cache_build.cpp); not installed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vidcls/mapped_file.h"
#include "vidcls/train/clip_cache.h"

namespace vidcls::train::cache {

namespace fs = std::filesystem;

constexpr const char *kFormat = "vidcls-clip-cache";
// 2: a validation side, and the evaluation sides stored at their own short side.
constexpr int kVersion = 2;
constexpr const char *kIndexName = "index.json";
constexpr int64_t kAlign = 64;

inline int64_t align_up(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
std::string system_error(const std::string &what, const std::string &path);
fs::path absolute_dir(const std::string &dir);
bool starts_with(const std::string &s, const std::string &prefix);
bool ends_with(const std::string &s, const std::string &suffix);

// ---- files -----------------------------------------------------------------------------------

// The frames file, mapped read-only, unmapped when the last holder (tensors included) lets go;
// FormatError naming the file when it cannot be.
std::shared_ptr<const MappedFile> map_read_only(const std::string &path);

struct SourceStat {
  int64_t size = -1, mtime_ns = 0;
};
// 0, or the errno of a failed stat.
int stat_source(const std::string &path, SourceStat &out);

// Sequential writer of the frames file, with the offsets the index records.
class FramesWriter {
 public:
  explicit FramesWriter(std::string path);
  ~FramesWriter();
  FramesWriter(const FramesWriter &) = delete;
  FramesWriter &operator=(const FramesWriter &) = delete;

  // Starts a block at the next aligned position and returns that position.
  int64_t begin_block();
  void append(const void *data, size_t n);
  int64_t write_block(const void *data, size_t n);
  // Forgets everything after `pos` (a video that failed half way).
  void rollback(int64_t pos);
  int64_t size() const { return pos_; }
  void finish();  // fsync and close

 private:
  std::string path_;
  int fd_ = -1;
  int64_t pos_ = 0;
};

void write_file_atomically(const fs::path &path, const std::string &text);
void sync_dir(const fs::path &dir);

// One build at a time per cache folder; a second waits.
class DirLock {
 public:
  explicit DirLock(const fs::path &dir);
  ~DirLock();
  DirLock(const DirLock &) = delete;
  DirLock &operator=(const DirLock &) = delete;

 private:
  int fd_ = -1;
};

// A name no other build of this machine uses (time and process id).
std::string unique_token();

// ---- index -----------------------------------------------------------------------------------

struct Index {
  std::string data_file;
  int64_t data_size = 0;
  fs::path dataset_dir;
  std::string layout, split;
  double val_fraction = 0;
  std::vector<std::string> classes;
  int short_side = 0, eval_short_side = 0, max_frames = 0;
  std::vector<CachedVideo> videos;
  std::vector<SkippedVideo> skipped;
  std::vector<std::string> missing;
};

// The index as written: keys in the order a person reads them, one build's text equal to the
// next's when nothing changed.
std::string index_text(const Index &ix);
std::string read_text(const fs::path &path);
Index parse_index(const fs::path &path);  // FormatError naming the file and the problem
// Checks a video's entry against the index and the frames file's size.
void check_video(const CachedVideo &v, const Index &ix, const std::string &index_path);

}  // namespace vidcls::train::cache
