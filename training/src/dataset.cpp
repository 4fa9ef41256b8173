#include "vidcls/train/dataset.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

#include "vidcls/errors.h"

namespace fs = std::filesystem;

namespace vidcls::train {

namespace {

constexpr const char *kKineticsHeader = "label,youtube_id,time_start,time_end,split";
constexpr const char *kKineticsCsvs[] = {"train.csv", "val.csv", "validate.csv", "test.csv"};

// Datasets are often links to another disk; a folder we may not read is left out, not fatal.
constexpr auto kWalk =
    fs::directory_options::follow_directory_symlink | fs::directory_options::skip_permission_denied;

fs::path dataset_root(const std::string &dir) {
  fs::path root = fs::absolute(fs::path(dir)).lexically_normal();
  if (root.filename().empty()) root = root.parent_path();  // "data/" -> "data"
  std::error_code ec;
  if (!fs::exists(root, ec)) throw FormatError("dataset folder " + dir + " does not exist");
  if (!fs::is_directory(root, ec)) throw FormatError("dataset path " + dir + " is not a folder");
  return root;
}

bool hidden(const fs::path &p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string &s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

void sort_by_path(std::vector<VideoItem> &items) {
  std::sort(items.begin(), items.end(), [](const VideoItem &a, const VideoItem &b) {
    return std::tie(a.path, a.object_id) < std::tie(b.path, b.object_id);
  });
}

// ---- MSR DailyActivity3D ---------------------------------------------------------------------

struct MsrName {
  int action, subject, environment;
};

// aXX_sYY_eZZ_rgb.avi, exactly two digits each, as the dataset names its colour videos.
std::optional<MsrName> parse_msr_name(const std::string &name) {
  if (name.size() != 19 || name.compare(11, 8, "_rgb.avi") != 0) return std::nullopt;
  auto two = [&name](size_t at, char tag) -> int {
    if (name[at] != tag || !std::isdigit(static_cast<unsigned char>(name[at + 1])) ||
        !std::isdigit(static_cast<unsigned char>(name[at + 2])))
      return -1;
    return (name[at + 1] - '0') * 10 + (name[at + 2] - '0');
  };
  const int a = two(0, 'a'), s = two(4, 's'), e = two(8, 'e');
  if (a < 0 || s < 0 || e < 0 || name[3] != '_' || name[7] != '_') return std::nullopt;
  return MsrName{a, s, e};
}

struct MsrFile {
  fs::path path;
  MsrName name;
};

std::vector<MsrFile> find_msr_files(const fs::path &root, bool stop_at_first) {
  std::vector<MsrFile> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, kWalk, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    if (auto n = parse_msr_name(it->path().filename().string())) {
      out.push_back({it->path(), *n});
      if (stop_at_first) break;
    }
  }
  return out;
}

std::vector<std::string> read_labels_txt(const fs::path &file) {
  std::ifstream in(file);
  if (!in) throw FormatError("cannot read " + file.string());
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) names.push_back(trim(line));
  while (!names.empty() && names.back().empty()) names.pop_back();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty())
      throw FormatError(file.string() + ":" + std::to_string(i + 1) +
                        ": empty class name (line i names action i)");
  }
  return names;
}

// ---- Kinetics-400 ----------------------------------------------------------------------------

// One CSV record; quoted fields may hold commas and doubled quotes.
std::vector<std::string> split_csv_line(const std::string &line) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(field);
      field.clear();
    } else if (c != '\r') {
      field += c;
    }
  }
  fields.push_back(field);
  return fields;
}

std::string first_line(const fs::path &file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  if (line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // UTF-8 byte order mark
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// The official CSVs of 2017 carry a sixth column (is_cc); the first five are what we need.
bool is_kinetics_csv(const fs::path &file) {
  const std::string header = first_line(file);
  const std::string want = kKineticsHeader;
  return header.compare(0, want.size(), want) == 0 &&
         (header.size() == want.size() || header[want.size()] == ',');
}

int parse_seconds(const std::string &text, const std::string &where) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception &) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v) || v < 0 || v != std::floor(v))
    throw FormatError(where + ": '" + text + "' is not a whole number of seconds");
  return static_cast<int>(v);
}

std::string kinetics_name(const std::string &id, int start, int end) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "_%06d_%06d", start, end);
  return id + buf;
}

// The folder a split's videos may sit in: its own name, and "validate" as an alias of "val"
// (the 2017 release calls the split "validate").
std::vector<std::string> split_folders(const std::string &split) {
  if (split == "val" || split == "validate") return {"val", "validate"};
  return {split};
}

std::optional<fs::path> find_kinetics_video(const fs::path &root, const std::string &file,
                                            const std::string &split, const std::string &label) {
  std::vector<fs::path> candidates = {root / "videos" / file, root / file};
  for (const auto &folder : split_folders(split)) {
    candidates.push_back(root / folder / file);
    candidates.push_back(root / folder / label / file);
    std::string underscored = label;
    std::replace(underscored.begin(), underscored.end(), ' ', '_');
    if (underscored != label) candidates.push_back(root / folder / underscored / file);
  }
  std::error_code ec;
  for (const auto &c : candidates) {
    if (fs::is_regular_file(c, ec)) return c;
  }
  return std::nullopt;
}

DatasetSplit read_kinetics(const fs::path &root, const std::string &split) {
  DatasetSplit out;
  out.layout = "kinetics400";
  out.split = split;
  const std::set<std::string> test_splits =
      split == "val" ? std::set<std::string>{"val", "validate"} : std::set<std::string>{"test"};
  std::set<std::string> labels;
  struct Row {
    std::string label, name, where;
    bool train;
    fs::path file;
  };
  std::vector<Row> rows;
  std::set<std::string> seen;
  for (const char *csv : kKineticsCsvs) {
    const fs::path file = root / csv;
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) continue;
    const std::string file_split = fs::path(csv).stem().string();
    if (!is_kinetics_csv(file)) {
      // Some releases ship a test.csv without labels; only a file the split needs must parse.
      const bool needed = file_split == "train" || (split == "val" && file_split != "test") ||
                          (split == "test" && file_split == "test");
      if (!needed) continue;
      throw FormatError(file.string() + ": expected the header " + kKineticsHeader + ", got '" +
                        first_line(file) + "'");
    }
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    for (int n = 2; std::getline(in, line); ++n) {
      if (trim(line).empty()) continue;
      const std::string where = std::string(csv) + ":" + std::to_string(n);
      const auto f = split_csv_line(line);
      if (f.size() < 5)
        throw FormatError(file.string() + ":" + std::to_string(n) + ": expected 5 fields, got " +
                          std::to_string(f.size()));
      const std::string label = trim(f[0]), id = f[1];
      const std::string row_split = trim(f[4]).empty() ? file_split : trim(f[4]);
      if (id.empty())
        throw FormatError(file.string() + ":" + std::to_string(n) + ": no youtube_id");
      const int start = parse_seconds(trim(f[2]), file.string() + ":" + std::to_string(n));
      const int end = parse_seconds(trim(f[3]), file.string() + ":" + std::to_string(n));
      if (!label.empty()) labels.insert(label);
      const bool train = row_split == "train";
      if (!train && test_splits.count(row_split) == 0) continue;
      const std::string name = kinetics_name(id, start, end);
      if (!seen.insert((train ? "train/" : "test/") + name).second) continue;  // repeated row
      if (label.empty()) {
        out.missing.push_back(where + ": " + name + " has no label, left out");
        continue;
      }
      auto video = find_kinetics_video(root, name + ".mp4", row_split, label);
      if (!video) {
        out.missing.push_back(where + ": " + name + ".mp4 not found");
        continue;
      }
      rows.push_back({label, name, where, train, *video});
    }
  }
  out.classes.assign(labels.begin(), labels.end());
  for (const auto &r : rows) {
    VideoItem item;
    item.path = r.file.string();
    item.label = static_cast<int>(
        std::lower_bound(out.classes.begin(), out.classes.end(), r.label) - out.classes.begin());
    item.label_name = r.label;
    item.id = r.name;
    (r.train ? out.train : out.test).push_back(std::move(item));
  }
  return out;
}

// ---- folder per class ------------------------------------------------------------------------

// The subfolders of `dir` that hold at least one video (anywhere below them), sorted, with
// their videos sorted.
std::map<std::string, std::vector<fs::path>> class_folders(const fs::path &dir) {
  std::map<std::string, std::vector<fs::path>> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, kWalk, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (hidden(it->path()) || !it->is_directory(ec)) continue;
    std::vector<fs::path> videos;
    std::error_code ec2;
    for (auto v = fs::recursive_directory_iterator(it->path(), kWalk, ec2);
         !ec2 && v != fs::recursive_directory_iterator(); v.increment(ec2)) {
      if (hidden(v->path())) {
        if (v->is_directory(ec2)) v.disable_recursion_pending();
        continue;
      }
      if (v->is_regular_file(ec2) && is_video_file_name(v->path().filename().string()))
        videos.push_back(v->path());
    }
    if (videos.empty()) continue;
    std::sort(videos.begin(), videos.end());
    out.emplace(it->path().filename().string(), std::move(videos));
  }
  return out;
}

// DIR/train/<class>/ plus DIR/val/<class>/ (or DIR/test/<class>/): the test-side folder, or
// empty when the dataset is not split by folders.
std::string split_folder_name(const fs::path &root) {
  std::error_code ec;
  if (!fs::is_directory(root / "train", ec) || class_folders(root / "train").empty()) return "";
  for (const char *name : {"val", "test"}) {
    if (fs::is_directory(root / name, ec) && !class_folders(root / name).empty()) return name;
  }
  return "";
}

// ---- splits ----------------------------------------------------------------------------------

// The study's shuffle: Fisher-Yates driven by std::mt19937(42).
template <typename T>
void shuffle42(std::vector<T> &items) {
  std::mt19937 rng(42);
  for (size_t i = items.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);
    std::swap(items[i - 1], items[j]);
  }
}

// How many of n go to validation: round(fraction n), at least one when n >= 2, never all.
size_t val_count(size_t n, double fraction) {
  if (n < 2 || !(fraction > 0)) return 0;
  const auto k = static_cast<size_t>(std::lround(fraction * static_cast<double>(n)));
  return std::min(std::max<size_t>(k, 1), n - 1);
}

void split_random80(std::vector<VideoItem> all, DatasetSplit &out) {
  sort_by_path(all);
  shuffle42(all);
  const size_t n_train = all.size() * 4 / 5;
  out.train.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n_train));
  out.test.assign(all.begin() + static_cast<std::ptrdiff_t>(n_train), all.end());
}

void check_split(const std::string &layout, const std::string &split) {
  const auto known = dataset_splits(layout);
  if (std::find(known.begin(), known.end(), split) != known.end()) return;
  std::string list;
  for (const auto &s : known) list += (list.empty() ? "" : ", ") + s;
  throw FormatError("unknown split '" + split + "' for a " + layout + " dataset (known: " + list +
                    ")");
}

DatasetSplit read_msr(const fs::path &root, const std::string &split) {
  DatasetSplit out;
  out.layout = "msr";
  out.split = split.empty() ? "cross-subject" : split;
  check_split(out.layout, out.split);

  std::vector<std::string> names = msr_action_names();
  std::error_code ec;
  if (fs::is_regular_file(root / "labels.txt", ec)) names = read_labels_txt(root / "labels.txt");

  auto files = find_msr_files(root, false);
  std::map<std::string, fs::path> by_name;
  std::set<int> actions;
  for (const auto &f : files) {
    const std::string name = f.path.filename().string();
    auto [it, fresh] = by_name.emplace(name, f.path);
    if (!fresh)
      throw FormatError("two files named " + name + " in " + root.string() + ": " +
                        it->second.string() + " and " + f.path.string());
    if (f.name.action < 1 || f.name.action > static_cast<int>(names.size()))
      throw FormatError(f.path.string() + ": action " + std::to_string(f.name.action) +
                        " has no class name (" + std::to_string(names.size()) + " known" +
                        (fs::exists(root / "labels.txt", ec) ? ", from labels.txt)" : ")"));
    actions.insert(f.name.action);
  }
  const std::vector<int> action_list(actions.begin(), actions.end());
  for (int a : action_list) out.classes.push_back(names[a - 1]);

  std::vector<VideoItem> all;
  for (const auto &f : files) {
    VideoItem item;
    item.path = f.path.string();
    item.label =
        static_cast<int>(std::lower_bound(action_list.begin(), action_list.end(), f.name.action) -
                         action_list.begin());
    item.label_name = out.classes[item.label];
    item.subject = f.name.subject;
    item.id = f.path.stem().string();
    all.push_back(std::move(item));
  }
  if (out.split == "cross-subject") {
    for (auto &item : all) (item.subject % 2 == 1 ? out.train : out.test).push_back(item);
  } else {
    split_random80(std::move(all), out);
  }
  return out;
}

DatasetSplit read_folder(const fs::path &root, const std::string &split) {
  DatasetSplit out;
  out.layout = "folder";
  const std::string test_folder = split_folder_name(root);
  out.split = split.empty() ? (test_folder.empty() ? "random80" : "folders") : split;
  check_split(out.layout, out.split);
  if (out.split == "folders" && test_folder.empty())
    throw FormatError("split 'folders' needs " + (root / "train").string() + " and " +
                      (root / "val").string() + " (or test/) with a folder per class");

  // Per side: class -> videos. Without split folders everything is one pool.
  std::vector<std::pair<bool, std::map<std::string, std::vector<fs::path>>>> sides;
  if (test_folder.empty()) {
    sides.push_back({true, class_folders(root)});
  } else {
    sides.push_back({true, class_folders(root / "train")});
    sides.push_back({false, class_folders(root / test_folder)});
  }
  std::set<std::string> names;
  for (const auto &side : sides) {
    for (const auto &kv : side.second) names.insert(kv.first);
  }
  out.classes.assign(names.begin(), names.end());

  std::vector<VideoItem> all;
  for (const auto &[is_train, classes] : sides) {
    for (const auto &[name, videos] : classes) {
      const int label = static_cast<int>(
          std::lower_bound(out.classes.begin(), out.classes.end(), name) - out.classes.begin());
      for (const auto &v : videos) {
        VideoItem item;
        item.path = v.string();
        item.label = label;
        item.label_name = name;
        item.id = v.stem().string();
        if (out.split == "folders") {
          (is_train ? out.train : out.test).push_back(std::move(item));
        } else {
          all.push_back(std::move(item));
        }
      }
    }
  }
  if (out.split == "random80") split_random80(std::move(all), out);
  return out;
}

// ---- AVA (per-person labels) -----------------------------------------------------------------

constexpr const char *kAvaCsvs[] = {"train.csv", "val.csv"};

// A first line of eight fields whose second to sixth are numbers: an AVA CSV (no header).
bool is_ava_csv(const fs::path &file) {
  const auto fields = split_csv_line(first_line(file));
  if (fields.size() != 8) return false;
  for (size_t i = 1; i < 6; ++i) {
    char *end = nullptr;
    std::strtod(fields[i].c_str(), &end);
    if (end == fields[i].c_str() || *end != '\0') return false;
  }
  return true;
}

std::optional<fs::path> find_ava_video(const fs::path &root, const std::string &id) {
  for (const fs::path &dir : {root / "videos", root}) {
    std::error_code ec;
    for (const auto &e : fs::directory_iterator(dir, kWalk, ec)) {
      if (e.path().stem() == id && is_video_file_name(e.path().filename().string()))
        return e.path();
    }
  }
  return std::nullopt;
}

// The action a person's keyframes name most often (the first of each keyframe's), the lowest id
// on a tie.
int person_action(const Track &track) {
  std::map<int, int> votes;
  for (const auto &key : track.keys) {
    if (!key.actions.empty()) ++votes[key.actions.front()];
  }
  int best = -1, count = 0;
  for (const auto &[action, n] : votes) {
    if (n > count) best = action, count = n;
  }
  return best;
}

DatasetSplit read_ava_dataset(const fs::path &root, const std::string &split) {
  DatasetSplit out;
  out.layout = "ava";
  out.split = split.empty() ? "val" : split;
  check_split(out.layout, out.split);
  std::vector<std::string> names;
  if (fs::exists(root / "labels.txt")) names = read_labels_txt(root / "labels.txt");
  std::map<std::string, int> video_numbers;
  std::vector<std::pair<bool, VideoItem>> people;
  std::set<int> actions;
  for (const char *csv : kAvaCsvs) {
    if (!fs::exists(root / csv)) continue;
    const bool train = std::string(csv) == "train.csv";
    for (auto &[video, tracks] : read_ava((root / csv).string())) {
      const auto file = find_ava_video(root, video);
      if (!file) {
        out.missing.push_back(std::string(csv) + ": " + video + " not found");
        continue;
      }
      video_numbers.emplace(video, static_cast<int>(video_numbers.size()) + 1);
      for (auto &[person, track] : tracks.by_id) {
        VideoItem item;
        item.path = file->string();
        item.id = video + "#" + std::to_string(person);
        item.object_id = person;
        item.subject = video_numbers[video];
        item.label = person_action(track);  // an action id until the classes are known
        item.track = std::move(track);
        if (item.label < 0) continue;
        actions.insert(item.label);
        people.emplace_back(train, std::move(item));
      }
    }
  }
  for (int a : actions) {
    if (a >= 1 && static_cast<size_t>(a) <= names.size()) {
      out.classes.push_back(names[a - 1]);
    } else {
      out.classes.push_back("action_" + std::to_string(a));
    }
  }
  for (auto &[train, item] : people) {
    const int action = item.label;
    item.label = static_cast<int>(std::distance(actions.begin(), actions.find(action)));
    item.label_name = out.classes[item.label];
    (train ? out.train : out.test).push_back(std::move(item));
  }
  return out;
}

}  // namespace

const std::vector<std::string> &msr_action_names() {
  static const std::vector<std::string> names = {"drink",
                                                 "eat",
                                                 "read book",
                                                 "call cellphone",
                                                 "write on a paper",
                                                 "use laptop",
                                                 "use vacuum cleaner",
                                                 "cheer up",
                                                 "sit still",
                                                 "toss paper",
                                                 "play game",
                                                 "lie down on sofa",
                                                 "walk",
                                                 "play guitar",
                                                 "stand up",
                                                 "sit down"};
  return names;
}

bool is_video_file_name(const std::string &name) {
  static const std::set<std::string> extensions = {".avi", ".mp4",  ".mkv", ".mov", ".webm", ".m4v",
                                                   ".mpg", ".mpeg", ".ogv", ".flv", ".wmv",  ".ts"};
  return extensions.count(lower(fs::path(name).extension().string())) != 0;
}

std::vector<std::string> dataset_splits(const std::string &layout) {
  if (layout == "msr") return {"cross-subject", "random80"};
  if (layout == "kinetics400") return {"val", "test"};
  if (layout == "folder") return {"random80", "folders"};
  if (layout == "ava") return {"val"};
  throw FormatError("unknown dataset layout '" + layout +
                    "' (known: msr, kinetics400, folder, ava)");
}

std::string detect_layout(const std::string &dir) {
  const fs::path root = dataset_root(dir);
  std::error_code ec;
  std::string csv_note;
  for (const char *csv : kKineticsCsvs) {
    if (!fs::is_regular_file(root / csv, ec)) continue;
    if (is_kinetics_csv(root / csv)) return "kinetics400";
    if (is_ava_csv(root / csv)) return "ava";
    csv_note = ", " + std::string(csv) + " without the header " + kKineticsHeader;
  }
  if (!find_msr_files(root, true).empty()) return "msr";
  if (!class_folders(root).empty()) return "folder";
  throw FormatError(dir +
                    " holds no dataset vidcls can read: expected train.csv / val.csv with the "
                    "header " +
                    kKineticsHeader +
                    " (Kinetics-400), or rows of AVA's format without a header (per-person "
                    "actions), files named aXX_sYY_eZZ_rgb.avi (MSR DailyActivity3D), or "
                    "one subfolder of video files per class" +
                    (csv_note.empty() ? "" : " (found" + csv_note + ")"));
}

void carve_validation(DatasetSplit &out, double fraction) {
  if (!(fraction >= 0 && fraction < 1))
    throw std::invalid_argument("the validation fraction must be in [0, 1), got " +
                                std::to_string(fraction));
  std::vector<VideoItem> train = std::move(out.train);
  out.train.clear();
  sort_by_path(train);
  // Groups that go to one side whole: subjects (MSR cross-subject) or single videos per class.
  const bool by_subject =
      (out.layout == "msr" && out.split == "cross-subject") || out.layout == "ava";
  std::map<int, std::vector<int>> pools;  // class (or -1 for subjects) -> group keys
  std::map<int, std::vector<size_t>> members;
  for (size_t i = 0; i < train.size(); ++i) {
    const int key = by_subject ? train[i].subject : static_cast<int>(i);
    if (members[key].empty()) pools[by_subject ? -1 : train[i].label].push_back(key);
    members[key].push_back(i);
  }
  std::set<int> val_groups;
  for (auto &[pool, keys] : pools) {
    std::sort(keys.begin(), keys.end());
    shuffle42(keys);
    keys.resize(val_count(keys.size(), fraction));
    val_groups.insert(keys.begin(), keys.end());
  }
  for (const auto &[key, idx] : members) {
    for (size_t i : idx) (val_groups.count(key) ? out.val : out.train).push_back(train[i]);
  }
  sort_by_path(out.train);
  sort_by_path(out.val);
}

DatasetSplit read_dataset(const std::string &dir, const std::string &split,
                          double val_fraction) {
  const fs::path root = dataset_root(dir);
  const std::string layout = detect_layout(dir);
  DatasetSplit out;
  if (layout == "msr") {
    out = read_msr(root, split);
  } else if (layout == "kinetics400") {
    const std::string s = split.empty() ? "val" : split;
    check_split(layout, s);
    out = read_kinetics(root, s);
  } else if (layout == "ava") {
    out = read_ava_dataset(root, split);
  } else {
    out = read_folder(root, split);
  }
  sort_by_path(out.train);
  sort_by_path(out.test);
  carve_validation(out, val_fraction);
  if (out.train.empty() && out.test.empty())
    throw FormatError(dir + ": no videos found for the " + layout + " layout" +
                      (out.missing.empty() ? ""
                                           : " (" + std::to_string(out.missing.size()) +
                                                 " listed in the CSVs are missing, first: " +
                                                 out.missing.front() + ")"));
  return out;
}

}  // namespace vidcls::train
