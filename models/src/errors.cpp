#include "vidcls/errors.h"

#include <cstdio>

#include <c10/util/Exception.h>

namespace vidcls {

std::string error_message(const std::exception &e) {
  if (const auto *c10_error = dynamic_cast<const c10::Error *>(&e))
    return c10_error->what_without_backtrace();
  return e.what();
}

int run_tool(const char *tool, const std::function<int()> &body) {
  try {
    return body();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "%s: %s\n", tool, error_message(e).c_str());
  }
  return 1;
}

}  // namespace vidcls
