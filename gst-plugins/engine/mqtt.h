/* The MQTT side of vidclspublish: a bounded queue of lines and one thread that owns a
 * libmosquitto client, connects, publishes the queue in order, reconnects with backoff and
 * publishes the queue again when the broker returns.
 *
 * One thread does everything that touches the client (connect, publish, read, write, keepalive),
 * with its own poll() on the client's socket and a wake-up pipe. A line leaves the queue only when
 * the broker acknowledged it (PUBACK, qos 1) or it was written to the socket (qos 0). When the
 * connection is lost, the client is thrown away with whatever libmosquitto still held, and the
 * lines not acknowledged are published again, oldest first, on the next connection: libmosquitto's
 * own resending of in-flight messages, and its own queue while disconnected, never come into play,
 * so nothing is sent twice by two queues and nothing overtakes an older line.
 * (libmosquitto's thread, mosquitto_loop_start, calls on_connect before it resends its in-flight
 * messages, so lines published from on_connect would overtake them; publishing from the
 * streaming thread would race with a disconnection.)
 *
 * What is guaranteed: every line still in the queue (at most max-queued; the oldest not yet
 * handed to the broker is dropped beyond that, and counted) reaches the broker, in order, once it
 * can be reached. A line the broker received but did not acknowledge before it went away is sent
 * again, so a broker that died at that moment may have passed it on twice; the line's "seq" lets
 * a consumer see it.
 *
 * A host name is resolved at the start of each round of attempts and its addresses are tried in
 * turn: the next at once when one fails, the backoff only when all have (libmosquitto, given the
 * name, would take the first address whose connect() is pending and never try another). TLS
 * runs on an OpenSSL context of our own, so the certificate is checked against the host name
 * (and the handshake names it, SNI) whichever address the connection goes to.
 *
 * No GStreamer here: the element gives the functions that report what happens.
 */
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct mosquitto;
struct ssl_ctx_st;

namespace vidcls {
namespace engine {

struct MqttSettings
{
  std::string host;
  int port = 1883;
  std::string topic;
  std::string client_id;
  int qos = 1;                          /* 0 or 1 */
  int keepalive_s = 60;
  bool tls = false;
  std::string ca_file;                  /* empty: the system's CA folder, /etc/ssl/certs */
  std::string cert_file, key_file;      /* both or neither */
  /* Credentials; empty username: none. The password is kept here and given to libmosquitto
   * only, never reported. */
  std::string username, password;
  size_t max_queued = 1000;
  std::chrono::milliseconds reconnect_delay{500};
  std::chrono::milliseconds reconnect_delay_max{30000};
  /* A connection that gets no CONNACK in this time is given up and tried again. */
  std::chrono::milliseconds connect_timeout{10000};
  /* Lines handed to the broker and not yet acknowledged, at most (libmosquitto's default
   * "receive maximum" of the broker side is 20). */
  size_t max_in_flight = 20;
};

/* What the thread reports. */
enum class MqttEvent
{
  kUnreachable,         /* a connection attempt failed, first time since the last success */
  kLost,                /* an established connection was lost */
  kConnected,           /* connected (again) after kUnreachable, kLost or kRefused */
  kRefused,             /* the broker refused the credentials (or their absence): CONNACK
                         * "bad user name or password" or "not authorised" */
  kCountersChanged,     /* published, queued or dropped changed */
};

struct MqttCounters
{
  uint64_t published = 0;       /* acknowledged (qos 1) or written to the socket (qos 0) */
  uint64_t dropped = 0;         /* dropped from a full queue */
  uint64_t queued = 0;          /* in the queue now, not yet acknowledged */
};

class MqttPublisher
{
public:
  /* Called on the publisher's thread (kCountersChanged also in push (), on the caller's),
   * never with a lock of the publisher held; `detail` says why. */
  using Report = std::function<void (MqttEvent, const std::string &detail)>;

  MqttPublisher (MqttSettings settings, Report report);
  ~MqttPublisher ();                    /* stop () */
  MqttPublisher (const MqttPublisher &) = delete;
  MqttPublisher & operator= (const MqttPublisher &) = delete;

  /* Starts the thread (which connects at once). False with `error` if it cannot start. */
  bool start (std::string *error);
  /* Queues one line (never waits for the network). */
  void push (std::string line);
  /* Waits until the queue is empty or `timeout` has passed; returns the lines left. */
  uint64_t drain (std::chrono::milliseconds timeout);
  /* Ends the thread at once (lines still queued are not delivered) and closes the client. */
  void stop ();

  MqttCounters counters () const;

  /* "host:port", "[v6-address]:port"; false with `error` saying what is wrong. */
  static bool parse_address (const std::string & address, std::string *host, int *port,
      std::string *error);

private:
  struct Line
  {
    std::string payload;
    int mid = -1;               /* libmosquitto's message id once handed over */
    bool handed = false;        /* given to the current client; not acknowledged yet */
    bool acked = false;
  };

  void run ();
  bool make_tls_context (std::string *error);
  bool resolve (std::string *error);
  void wait_for_attempt ();
  void connect ();
  void connection_failed (const std::string & why, bool credentials = false);
  void serve ();
  bool publish_pending ();
  void acknowledge (int mid);
  void close_client ();
  void wake ();
  void report (MqttEvent event, const std::string & detail);

  static void on_connect (struct mosquitto *mosq, void *obj, int rc);
  static void on_publish (struct mosquitto *mosq, void *obj, int mid);
  static void on_log (struct mosquitto *mosq, void *obj, int level, const char *text);

  MqttSettings settings_;
  Report report_;

  mutable std::mutex lock_;             /* guards the queue, counters and flags below */
  std::condition_variable changed_;     /* the queue shrank or the thread ended */
  std::deque<Line> queue_;
  MqttCounters counters_;
  bool quit_ = false;
  bool running_ = false;
  bool connected_ = false;              /* CONNACK accepted on the current client */

  /* TLS: made at start, lent to each client (libmosquitto takes a reference). */
  struct ssl_ctx_st *tls_ = nullptr;

  /* The thread's own. */
  std::thread thread_;
  /* The host's addresses, resolved at the start of each round of attempts and tried in turn:
   * the next one at once when one fails, the backoff only once every one has. */
  std::vector<std::string> addresses_;
  size_t address_index_ = 0;
  std::string round_failures_;          /* what each address of this round said */
  int wake_fds_[2] = {-1, -1};
  struct mosquitto *mosq_ = nullptr;
  bool refused_ = false;                /* the broker answered CONNACK with an error */
  bool refused_credentials_ = false;    /* ... and the error is about the credentials */
  std::string refusal_;
  std::string last_log_error_;          /* libmosquitto's last error line (TLS says why here) */
  bool publishing_ = false;             /* inside mosquitto_publish */
  std::vector<int> early_acks_;         /* qos 0 lines acknowledged inside mosquitto_publish */
  std::chrono::steady_clock::time_point next_attempt_;
  std::chrono::steady_clock::time_point connect_deadline_;
  std::chrono::milliseconds backoff_{0};
  bool outage_reported_ = false;        /* kUnreachable or kLost since the last connection */
  bool refusal_reported_ = false;       /* kRefused since the last connection */
};

}  // namespace engine
}  // namespace vidcls
