#include "vidcls/train/clip_cache.h"

#include <filesystem>

#include "cache_format.h"
#include "vidcls/errors.h"

namespace fs = std::filesystem;

namespace vidcls::train {

// ---- ClipCache -------------------------------------------------------------------------------

struct ClipCache::State {
  cache::Index index;
  std::string cache_dir;
  std::string dataset_dir;
  std::shared_ptr<const MappedFile> mapping;
};

bool is_clip_cache(const std::string &dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / cache::kIndexName, ec);
}

ClipCache ClipCache::open(const std::string &cache_dir) {
  const fs::path dir = cache::absolute_dir(cache_dir);
  const fs::path index_path = dir / cache::kIndexName;
  std::error_code ec;
  if (!fs::is_regular_file(index_path, ec))
    throw FormatError(cache_dir + " is not a clip cache (no " + cache::kIndexName +
                      "; vidcls-prep --data DATASET --out " + cache_dir + " makes one)");
  auto state = std::make_shared<State>();
  state->index = cache::parse_index(index_path);
  state->cache_dir = dir.string();
  try {
    state->mapping = cache::map_read_only((dir / state->index.data_file).string());
  } catch (const FormatError &) {
    // A build may have replaced the index and removed the frames file between our two reads.
    cache::Index again = cache::parse_index(index_path);
    if (again.data_file == state->index.data_file) throw;
    state->index = std::move(again);
    state->mapping = cache::map_read_only((dir / state->index.data_file).string());
  }
  state->dataset_dir = state->index.dataset_dir.string();
  const std::string data_path = (dir / state->index.data_file).string();
  if (static_cast<int64_t>(state->mapping->size()) != state->index.data_size)
    throw FormatError(data_path + " has " + std::to_string(state->mapping->size()) +
                      " bytes, the index says " + std::to_string(state->index.data_size));
  for (const auto &v : state->index.videos) cache::check_video(v, state->index, index_path.string());
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
      const_cast<uint8_t *>(keep->data() + v.offset), {v.frames, v.height, v.width, 3},
      [keep](void *) {}, torch::TensorOptions().dtype(torch::kUInt8));
}

torch::Tensor ClipCache::timestamps_ns(size_t i) const {
  const CachedVideo &v = item(i);
  auto keep = state_->mapping;
  return torch::from_blob(
      const_cast<uint8_t *>(keep->data() + v.timestamps_offset), {v.frames}, [keep](void *) {},
      torch::TensorOptions().dtype(torch::kInt64));
}

torch::Tensor ClipCache::durations_ns(size_t i) const {
  const CachedVideo &v = item(i);
  auto keep = state_->mapping;
  return torch::from_blob(
      const_cast<uint8_t *>(keep->data() + v.timestamps_offset + 8 * v.frames), {v.frames},
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
int ClipCache::eval_short_side() const { return state_ ? state_->index.eval_short_side : 0; }
double ClipCache::val_fraction() const { return state_ ? state_->index.val_fraction : 0; }
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
const uint8_t *ClipCache::data() const { return state_ ? state_->mapping->data() : nullptr; }
size_t ClipCache::data_size() const { return state_ ? state_->mapping->size() : 0; }


}  // namespace vidcls::train
