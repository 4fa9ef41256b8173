// Reading the model configs stored in checkpoints (private to libvidcls's sources).
#pragma once

#include <nlohmann/json.hpp>

namespace vidcls {

// `out` = j[key] when the key is there; else `out` keeps its default, so a checkpoint written
// before a field existed still reads.
template <typename T>
void get_opt(const nlohmann::json &j, const char *key, T &out) {
  auto it = j.find(key);
  if (it != j.end()) it->get_to(out);
}

}  // namespace vidcls
