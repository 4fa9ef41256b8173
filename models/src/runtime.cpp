#include "vidcls/runtime.h"

#include <sched.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <cstdlib>
#include <string>
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

bool env_set(const char *name) {
  const char *value = std::getenv(name);
  return value != nullptr && *value != '\0';
}

void keep_freed_memory() {
#ifdef __GLIBC__
  if (env_set("MALLOC_TRIM_THRESHOLD_") || env_set("MALLOC_MMAP_THRESHOLD_") ||
      env_set("GLIBC_TUNABLES"))
    return;
  if (const char *v = std::getenv("VIDCLS_MALLOC"); v != nullptr && std::string(v) == "system")
    return;
  // Setting either threshold also stops glibc's dynamic adjustment of both.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc takes on 64-bit
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

}  // namespace

int configure_runtime() {
  static std::once_flag once;
  std::call_once(once, [] {
    keep_freed_memory();
    int n = env_threads("VIDCLS_NUM_THREADS");
    if (n == 0) n = env_threads("OMP_NUM_THREADS");
    if (n == 0) n = available_cores();
    at::set_num_threads(n);
  });
  return at::get_num_threads();
}

void share_malloc_arena() {
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef __GLIBC__
    if (env_set("MALLOC_ARENA_MAX") || env_set("GLIBC_TUNABLES")) return;
    if (const char *v = std::getenv("VIDCLS_MALLOC"); v != nullptr && std::string(v) == "system")
      return;
    mallopt(M_ARENA_MAX, 1);
#endif
  });
}

}  // namespace vidcls
