#include "plugin_path.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstring>

namespace vidcls {
namespace tools {

namespace {

// Set by meson: the build tree, its plugin folder, and the installed plugin folder relative to
// the installed tools (absolute when meson's bindir or libdir is).
#ifndef VIDCLS_BUILD_ROOT
#error VIDCLS_BUILD_ROOT must be defined by the build
#endif

std::string real_path(const std::string &path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : std::string();
}

bool is_dir(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool in_path_list(const std::string &list, const std::string &dir) {
  size_t start = 0;
  while (start <= list.size()) {
    const size_t end = list.find(':', start);
    const std::string item = list.substr(start, end == std::string::npos ? end : end - start);
    if (!item.empty() && real_path(item) == dir) return true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return false;
}

}  // namespace

PluginPath use_own_plugins() {
  PluginPath out;
  const std::string exe = real_path("/proc/self/exe");
  if (exe.empty()) return out;
  const std::string build_root = real_path(VIDCLS_BUILD_ROOT);
  std::string dir;
  if (!build_root.empty() && exe.compare(0, build_root.size() + 1, build_root + "/") == 0) {
    dir = real_path(VIDCLS_BUILD_PLUGIN_DIR);
    out.where = "build tree";
  } else {
    const std::string rel = VIDCLS_PLUGIN_DIR_FROM_BINDIR;
    dir = real_path(rel[0] == '/' ? rel : exe.substr(0, exe.rfind('/') + 1) + rel);
    out.where = "installed";
  }
  if (dir.empty() || !is_dir(dir)) return out;
  out.dir = dir;
  const char *env = getenv("GST_PLUGIN_PATH");
  const std::string current = env != nullptr ? env : "";
  if (in_path_list(current, dir)) return out;
  std::string value;
  if (current.empty())
    value = dir;
  else if (out.where == "build tree")
    value = dir + ":" + current;
  else
    value = current + ":" + dir;
  setenv("GST_PLUGIN_PATH", value.c_str(), 1);
  return out;
}

}  // namespace tools
}  // namespace vidcls
