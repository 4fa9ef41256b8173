#include "vidcls/runtime.h"

#include <sched.h>

#include <cstdlib>
#include <mutex>
#include <thread>

#include <ATen/Parallel.h>

namespace vidcls {

namespace {

int env_threads(const char *name) {
  const char *value = std::getenv(name);
  if (value == nullptr || *value == '\0') return 0;
  char *end = nullptr;
  long n = std::strtol(value, &end, 10);
  return (*end == '\0' && n > 0 && n < 4096) ? static_cast<int>(n) : 0;
}

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace

int configure_threads() {
  static std::once_flag once;
  std::call_once(once, [] {
    int n = env_threads("VIDCLS_NUM_THREADS");
    if (n == 0) n = env_threads("OMP_NUM_THREADS");
    if (n == 0) n = available_cores();
    at::set_num_threads(n);
  });
  return at::get_num_threads();
}

}  // namespace vidcls
