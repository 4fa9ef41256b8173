// vidclspublish's MQTT queue on its own, against Debian's mosquitto started here on a free
// loopback port (no pipeline): lines arrive in order; with no broker they are queued, bounded,
// and delivered once one starts; bad addresses are refused with what to write instead.
#include <gtest/gtest.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/mqtt.h"

namespace {

namespace fs = std::filesystem;
using vidcls::engine::MqttEvent;
using vidcls::engine::MqttPublisher;
using vidcls::engine::MqttSettings;
using namespace std::chrono_literals;

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
  socklen_t n = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr *>(&a), &n);
  close(fd);
  return ntohs(a.sin_port);
}

// Waits until something accepts connections on 127.0.0.1:port.
bool listening(int port, std::chrono::milliseconds within) {
  const auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const bool ok = connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// Debian's mosquitto on 127.0.0.1:port, anonymous clients allowed.
class Broker {
 public:
  explicit Broker(int port) : port_(port) {
    dir_ = fs::temp_directory_path() / ("vidcls-mqtt-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    const auto conf = dir_ / "mosquitto.conf";
    std::ofstream(conf) << "listener " << port << " 127.0.0.1\nallow_anonymous true\n"
                        << "log_dest file " << (dir_ / "mosquitto.log").string() << "\n";
    pid_ = fork();
    if (pid_ == 0) {
      execlp("mosquitto", "mosquitto", "-c", conf.c_str(), static_cast<char *>(nullptr));
      execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf.c_str(), static_cast<char *>(nullptr));
      _exit(127);
    }
    up_ = listening(port, 10s);
  }
  ~Broker() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  bool up() const { return up_; }

 private:
  int port_;
  pid_t pid_ = -1;
  bool up_ = false;
  fs::path dir_;
};

// A libmosquitto subscriber that is subscribed (SUBACK) before the test publishes.
class Subscriber {
 public:
  Subscriber(int port, const std::string &topic) {
    mosquitto_lib_init();
    mosq_ = mosquitto_new(nullptr, true, this);
    mosquitto_subscribe_callback_set(mosq_, [](mosquitto *, void *self, int, int, const int *) {
      auto *s = static_cast<Subscriber *>(self);
      std::lock_guard<std::mutex> l(s->lock_);
      s->subscribed_ = true;
      s->changed_.notify_all();
    });
    mosquitto_message_callback_set(mosq_, [](mosquitto *, void *self, const mosquitto_message *m) {
      auto *s = static_cast<Subscriber *>(self);
      std::lock_guard<std::mutex> l(s->lock_);
      s->lines_.emplace_back(static_cast<const char *>(m->payload), m->payloadlen);
      s->changed_.notify_all();
    });
    mosquitto_connect(mosq_, "127.0.0.1", port, 30);
    mosquitto_subscribe(mosq_, nullptr, topic.c_str(), 1);
    mosquitto_loop_start(mosq_);
  }
  ~Subscriber() {
    mosquitto_disconnect(mosq_);
    mosquitto_loop_stop(mosq_, true);
    mosquitto_destroy(mosq_);
  }
  bool wait_subscribed() {
    std::unique_lock<std::mutex> l(lock_);
    return changed_.wait_for(l, 10s, [this] { return subscribed_; });
  }
  std::vector<std::string> wait_lines(size_t n) {
    std::unique_lock<std::mutex> l(lock_);
    changed_.wait_for(l, 20s, [&] { return lines_.size() >= n; });
    return lines_;
  }

 private:
  mosquitto *mosq_ = nullptr;
  std::mutex lock_;
  std::condition_variable changed_;
  bool subscribed_ = false;
  std::vector<std::string> lines_;
};

// The events a publisher reported.
struct Events {
  std::mutex lock;
  std::vector<MqttEvent> seen;
  std::vector<std::string> details;
  MqttPublisher::Report report() {
    return [this](MqttEvent e, const std::string &detail) {
      if (e == MqttEvent::kCountersChanged) return;
      std::lock_guard<std::mutex> l(lock);
      seen.push_back(e);
      details.push_back(detail);
    };
  }
  bool has(MqttEvent e) {
    std::lock_guard<std::mutex> l(lock);
    for (auto x : seen)
      if (x == e) return true;
    return false;
  }
};

MqttSettings settings(int port) {
  MqttSettings s;
  s.host = "127.0.0.1";
  s.port = port;
  s.topic = "vidcls/test";
  s.client_id = "vidcls-engine-test";
  s.reconnect_delay = 50ms;
  s.reconnect_delay_max = 200ms;
  return s;
}

std::vector<std::string> numbered(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back("{\"seq\":" + std::to_string(i) + "}");
  return v;
}

TEST(MqttPublisher, EveryLineReachesASubscriberInOrder) {
  const int port = free_port();
  Broker broker(port);
  ASSERT_TRUE(broker.up()) << "mosquitto did not start (Debian package mosquitto)";
  Subscriber sub(port, "vidcls/test");
  ASSERT_TRUE(sub.wait_subscribed());
  Events ev;
  MqttPublisher pub(settings(port), ev.report());
  std::string error;
  ASSERT_TRUE(pub.start(&error)) << error;
  const auto lines = numbered(200);
  for (const auto &l : lines) pub.push(l);
  EXPECT_EQ(pub.drain(20s), 0u) << "the broker acknowledged every line";
  EXPECT_EQ(sub.wait_lines(lines.size()), lines);
  const auto c = pub.counters();
  EXPECT_EQ(c.published, lines.size());
  EXPECT_EQ(c.queued, 0u);
  EXPECT_EQ(c.dropped, 0u);
  pub.stop();
}

TEST(MqttPublisher, WithoutABrokerLinesWaitBoundedAndGoOutWhenOneStarts) {
  const int port = free_port();
  Events ev;
  auto s = settings(port);
  s.max_queued = 5;
  MqttPublisher pub(s, ev.report());
  std::string error;
  ASSERT_TRUE(pub.start(&error)) << error;
  for (const auto &l : numbered(12)) pub.push(l);
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (!ev.has(MqttEvent::kUnreachable) && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(ev.has(MqttEvent::kUnreachable));
  {
    std::lock_guard<std::mutex> l(ev.lock);
    EXPECT_NE(ev.details[0].find("refused"), std::string::npos)
        << "the report says why: " << ev.details[0];
  }
  auto c = pub.counters();
  EXPECT_EQ(c.queued, 5u) << "at most max-queued lines wait";
  EXPECT_EQ(c.dropped, 7u) << "the oldest are dropped and counted";
  EXPECT_EQ(c.published, 0u);
  Broker broker(port);
  ASSERT_TRUE(broker.up());
  EXPECT_EQ(pub.drain(20s), 0u) << "the queue goes out once the broker is there";
  EXPECT_TRUE(ev.has(MqttEvent::kConnected));
  c = pub.counters();
  EXPECT_EQ(c.published, 5u);
  EXPECT_EQ(c.queued, 0u);
  pub.stop();
}

TEST(MqttPublisher, AddressesAreHostColonPort) {
  std::string host, error;
  int port = 0;
  EXPECT_TRUE(MqttPublisher::parse_address("localhost:1883", &host, &port, &error));
  EXPECT_EQ(host, "localhost");
  EXPECT_EQ(port, 1883);
  EXPECT_TRUE(MqttPublisher::parse_address("[::1]:8883", &host, &port, &error));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 8883);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"localhost", "no port"},        {":1883", "no host"},     {"::1:1883", "[address]:port"},
      {"[::1]1883", "[address]:port"}, {"host:0", "1 to 65535"}, {"host:65536", "1 to 65535"},
      {"host:http", "1 to 65535"},
  };
  for (const auto &[address, why] : bad) {
    error.clear();
    EXPECT_FALSE(MqttPublisher::parse_address(address, &host, &port, &error)) << address;
    EXPECT_NE(error.find(why), std::string::npos) << address << ": " << error;
  }
}

}  // namespace
