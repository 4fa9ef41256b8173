// Process-wide LibTorch settings that every entry point of libvidcls applies once.
#pragma once

namespace vidcls {

// LibTorch on Debian starts with one intra-op thread. Sets it to the cores this process may
// run on (sched affinity), unless OMP_NUM_THREADS or VIDCLS_NUM_THREADS says otherwise.
// Safe to call many times; only the first call acts. Returns the thread count in force.
int configure_threads();

}  // namespace vidcls
