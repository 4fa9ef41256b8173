// Process-wide settings that every entry point of libvidcls applies once (the models' constructors
// call it, so every tool and element does).
#pragma once

namespace vidcls {

// - Threads: LibTorch on Debian starts with one intra-op thread. Sets it to the cores this process
//   may run on (sched affinity), unless OMP_NUM_THREADS or VIDCLS_NUM_THREADS says otherwise.
// - Memory: glibc's malloc hands freed memory back to the kernel eagerly (trim threshold 128 KiB,
//   raised only as large mmapped blocks are freed), and a forward pass frees its activations
//   every time, so every clip page-faults its working set back in: measured here, a vivit-xs
//   clip took 20 ms with 1,250 page faults and 9 ms of system time on the main thread, 4.5 ms
//   with none once freed memory was kept. Sets fixed thresholds (blocks up to 32 MiB from the
//   heap, trim only above 256 MiB free at the top), so memory stays at the peak working set.
//   Left alone when MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES is set, or
//   VIDCLS_MALLOC=system; has no effect when another allocator (jemalloc, tcmalloc) is preloaded.
// Safe to call many times; only the first call acts. Returns the thread count in force.
int configure_runtime();

// For processes that run models on threads of their own (the GStreamer elements' workers and
// streaming threads): every thread made after this call allocates from glibc's main arena. By
// default glibc gives a new thread an arena of its own, made of heaps of at most 64 MiB that are
// unmapped as soon as they empty, so the activations of a forward pass on such a thread are
// mapped and page-faulted in afresh for every clip whatever the thresholds above: measured here,
// a vivit-b16x2-fe clip took 5.9 s on a std::thread against 3.4 s on the main thread, 3.6 s on
// the thread with one arena. One arena means one lock for the allocations no thread cache
// serves; left alone when MALLOC_ARENA_MAX or GLIBC_TUNABLES is set, or VIDCLS_MALLOC=system.
// Safe to call many times.
void share_malloc_arena();

}  // namespace vidcls
