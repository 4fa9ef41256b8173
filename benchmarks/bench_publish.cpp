// What vidclspublish costs and how fast it delivers. Buffers carrying one classification meta
// (top-5 labels) are pushed through the element in a GstHarness:
//  - the streaming thread's time per line: to a file (one write() per line), and to a local
//    mosquitto with qos 0 and qos 1 (formatting and queueing only: the broker is never waited
//    for);
//  - delivery: lines per second from the first push until the broker took the last one;
//  - an outage: --lines lines made while no broker listens (queued), then mosquitto starts on the
//    port: time from its start until the queue is empty (reconnect-delay 100 ms, max 200 ms).
// Debian's mosquitto (/usr/sbin/mosquitto) on a free 127.0.0.1 port, no persistence.
//
//   bench-publish --plugin-dir BUILD/gst-plugins [--lines 20000]
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "gstvidclsmeta.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int free_port() {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(s, reinterpret_cast<sockaddr *>(&a), sizeof a);
  getsockname(s, reinterpret_cast<sockaddr *>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

bool port_open(int port) {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(s, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
  close(s);
  return ok;
}

// mosquitto on 127.0.0.1:port until destroyed.
class Broker {
 public:
  Broker(const std::filesystem::path &dir, int port) : port_(port) {
    conf_ = (dir / ("mosquitto-" + std::to_string(port) + ".conf")).string();
    std::ofstream(conf_) << "listener " << port << " 127.0.0.1\nallow_anonymous true\n"
                         << "persistence false\nmax_queued_messages 0\n";
  }
  void start() {
    pid_ = fork();
    if (pid_ == 0) {
      freopen("/dev/null", "w", stderr);
      execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf_.c_str(), static_cast<char *>(nullptr));
      _exit(127);
    }
    const auto t0 = Clock::now();
    while (!port_open(port_)) {
      if (seconds_since(t0) > 10) {
        std::fprintf(stderr, "mosquitto did not start on port %d\n", port_);
        std::exit(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~Broker() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }

 private:
  int port_;
  pid_t pid_ = -1;
  std::string conf_;
};

GstBuffer *result_buffer(guint64 index) {
  static const char *const labels[] = {"slide_left", "slide_right", "rotate_cw",
                                       "rotate_ccw", "grow",        nullptr};
  const float scores[] = {0.41f, 0.22f, 0.17f, 0.12f, 0.08f};
  const gint ids[] = {0, 1, 4, 5, 6};
  GstBuffer *buf = gst_buffer_new();
  GstVidclsClip clip{const_cast<gchar *>("bench-stream"),
                     -1,
                     index,
                     index * GST_SECOND / 4,
                     index * GST_SECOND / 4 + GST_SECOND,
                     FALSE,
                     0,
                     0,
                     0,
                     0};
  gst_buffer_add_vidcls_classification_meta(buf, &clip, "m (vivit-xs)", 5, labels, scores, ids);
  GST_BUFFER_PTS(buf) = index * GST_SECOND / 30;
  return buf;
}

guint64 counter(GstHarness *h, const char *name) {
  GstElement *pub = gst_bin_get_by_name(GST_BIN(h->element), "pub");
  guint64 v = 0;
  g_object_get(pub, name, &v, nullptr);
  gst_object_unref(pub);
  return v;
}

// Pushes `lines` result buffers; returns the streaming thread's mean microseconds per line.
double push_lines(GstHarness *h, int lines) {
  double us = 0;
  for (int i = 0; i < lines; ++i) {
    GstBuffer *buf = result_buffer(static_cast<guint64>(i));
    const auto t0 = Clock::now();
    gst_harness_push(h, buf);
    us += seconds_since(t0) * 1e6;
    gst_buffer_unref(gst_harness_pull(h));
  }
  return us / lines;
}

// Waits until the broker took every line; returns false after 120 s.
bool wait_published(GstHarness *h, guint64 lines) {
  const auto t0 = Clock::now();
  while (counter(h, "messages-published") < lines) {
    if (seconds_since(t0) > 120) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

GstHarness *harness(const std::string &props) {
  GstHarness *h = gst_harness_new_parse(("vidclspublish name=pub " + props).c_str());
  gst_harness_set_src_caps_str(h, "application/x-vidcls-bench");
  return h;
}

void bench_file(const std::filesystem::path &dir, int lines) {
  const std::string path = (dir / "bench.jsonl").string();
  GstHarness *h = harness("file-path=" + path + " file-mode=truncate");
  const double us = push_lines(h, lines);
  gst_harness_teardown(h);
  std::printf("file      %6d lines  %7.2f us/line in the streaming thread (%.0f bytes/line)\n",
              lines, us, static_cast<double>(std::filesystem::file_size(path)) / lines);
}

void bench_broker(const std::filesystem::path &dir, int lines, int qos) {
  const int port = free_port();
  Broker broker(dir, port);
  broker.start();
  GstHarness *h = harness("address=127.0.0.1:" + std::to_string(port) +
                          " qos=" + std::to_string(qos) + " max-queued=" + std::to_string(lines));
  const auto t0 = Clock::now();
  const double us = push_lines(h, lines);
  const bool all = wait_published(h, static_cast<guint64>(lines));
  const double s = seconds_since(t0);
  std::printf(
      "mqtt qos%d %6d lines  %7.2f us/line in the streaming thread, delivered %s in "
      "%.2f s: %.0f lines/s\n",
      qos, lines, us, all ? "all" : "NOT all", s, lines / s);
  gst_harness_teardown(h);
}

void bench_outage(const std::filesystem::path &dir, int lines) {
  const int port = free_port();
  Broker broker(dir, port);
  GstHarness *h =
      harness("address=127.0.0.1:" + std::to_string(port) +
              " reconnect-delay=100 reconnect-delay-max=200 max-queued=" + std::to_string(lines));
  const double us = push_lines(h, lines);
  const guint64 queued = counter(h, "messages-queued");
  const auto t0 = Clock::now();
  broker.start();
  const bool all = wait_published(h, static_cast<guint64>(lines));
  const double s = seconds_since(t0);
  std::printf("outage    %6d lines  %7.2f us/line queued with no broker (%" G_GUINT64_FORMAT
              " queued); broker started: %s delivered %.2f s later (%.0f lines/s, "
              "reconnect wait included)\n",
              lines, us, queued, all ? "all" : "NOT all", s, lines / s);
  gst_harness_teardown(h);
}

}  // namespace

int main(int argc, char **argv) {
  std::string plugin_dir;
  int lines = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--plugin-dir") == 0) plugin_dir = argv[i + 1];
    if (std::strcmp(argv[i], "--lines") == 0) lines = std::atoi(argv[i + 1]);
  }
  if (plugin_dir.empty() || lines < 1) {
    std::fprintf(stderr, "usage: bench-publish --plugin-dir DIR [--lines N]\n");
    return 2;
  }
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("vidcls-bench-publish-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  setenv("GST_PLUGIN_PATH", plugin_dir.c_str(), 1);
  setenv("GST_REGISTRY", (dir / "registry.bin").c_str(), 1);
  gst_init(&argc, &argv);
  if (GstElementFactory *f = gst_element_factory_find("vidclspublish")) {
    gst_object_unref(f);
  } else {
    std::fprintf(stderr, "vidclspublish not found in %s\n", plugin_dir.c_str());
    return 1;
  }
  bench_file(dir, lines);
  bench_broker(dir, lines, 0);
  bench_broker(dir, lines, 1);
  bench_outage(dir, lines);
  std::filesystem::remove_all(dir);
  return 0;
}
