#include "engine/mqtt.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <system_error>

namespace vidcls {
namespace engine {

namespace {

using Clock = std::chrono::steady_clock;

/* Debian's CA folder, used when TLS is on and no CA file is given. */
const char *const kSystemCaPath = "/etc/ssl/certs";

/* What a libmosquitto result means, for a person; `err` is errno just after the call. */
std::string
describe (int rc, int err)
{
  if (rc == MOSQ_ERR_ERRNO)
    return std::error_code (err, std::generic_category ()).message ();
  if (rc == MOSQ_ERR_EAI)
    return "the host name cannot be resolved";
  return mosquitto_strerror (rc);
}

/* Why a socket's connection failed, as its pending error says (it may have been taken already). */
std::string
socket_error (int sock)
{
  int so_error = 0;
  socklen_t len = sizeof so_error;
  if (getsockopt (sock, SOL_SOCKET, SO_ERROR, &so_error, &len) == 0 && so_error != 0)
    return describe (MOSQ_ERR_ERRNO, so_error);
  return "the connection was refused or closed before the broker answered";
}

bool
is_ip_literal (const std::string & host)
{
  unsigned char buf[sizeof (struct in6_addr)];
  return inet_pton (AF_INET, host.c_str (), buf) == 1
      || inet_pton (AF_INET6, host.c_str (), buf) == 1;
}

std::string
openssl_error ()
{
  const unsigned long e = ERR_get_error ();
  ERR_clear_error ();
  if (e == 0)
    return "unknown error";
  char buf[256];
  ERR_error_string_n (e, buf, sizeof buf);
  return buf;
}

/* libmosquitto names the server in the TLS handshake (SNI) by what it connects to, here a numeric
 * address; this names it by the host name again, before the ClientHello is written. */
void
name_server (const SSL * ssl, int where, int)
{
  if (!(where & SSL_CB_HANDSHAKE_START))
    return;
  const auto *host = static_cast<const std::string *> (
      SSL_CTX_get_app_data (SSL_get_SSL_CTX (ssl)));
  if (host != nullptr && !is_ip_literal (*host))
    SSL_set_tlsext_host_name (const_cast<SSL *> (ssl), host->c_str ());
}

int
millis_until (Clock::time_point t)
{
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds> (t - Clock::now ());
  return static_cast<int> (std::clamp<long long> (left.count (), 0, 1000));
}

}  // namespace

MqttPublisher::MqttPublisher (MqttSettings settings, Report report)
  : settings_ (std::move (settings)), report_ (std::move (report))
{
  settings_.max_queued = std::max<size_t> (settings_.max_queued, 1);
  settings_.max_in_flight = std::max<size_t> (settings_.max_in_flight, 1);
}

MqttPublisher::~MqttPublisher ()
{
  stop ();
  if (tls_ != nullptr)
    SSL_CTX_free (tls_);
}

/* The TLS context of every connection: the broker's certificate checked against the CA file
 * (or the system's CAs) and against the host name of the address setting (or its IP address),
 * whichever of the host's addresses the connection goes to; the client certificate when given. */
bool
MqttPublisher::make_tls_context (std::string *error)
{
  if (tls_ != nullptr)
    return true;
  SSL_CTX *ctx = SSL_CTX_new (TLS_client_method ());
  if (ctx == nullptr) {
    *error = "TLS set-up failed: " + openssl_error ();
    return false;
  }
  auto fail = [&] (const std::string & what) {
    *error = what + ": " + openssl_error ();
    SSL_CTX_free (ctx);
    return false;
  };
  SSL_CTX_set_min_proto_version (ctx, TLS1_2_VERSION);
  const bool own_ca = !settings_.ca_file.empty ();
  if (SSL_CTX_load_verify_locations (ctx, own_ca ? settings_.ca_file.c_str () : nullptr,
          own_ca ? nullptr : kSystemCaPath) != 1)
    return fail ("cannot load the CA certificates of " + (own_ca ? settings_.ca_file :
            std::string (kSystemCaPath)));
  SSL_CTX_set_verify (ctx, SSL_VERIFY_PEER, nullptr);
  X509_VERIFY_PARAM *param = SSL_CTX_get0_param (ctx);
  const bool ok = is_ip_literal (settings_.host)
      ? X509_VERIFY_PARAM_set1_ip_asc (param, settings_.host.c_str ()) == 1
      : X509_VERIFY_PARAM_set1_host (param, settings_.host.c_str (), 0) == 1;
  if (!ok)
    return fail ("cannot check certificates against " + settings_.host);
  if (!settings_.cert_file.empty ()) {
    if (SSL_CTX_use_certificate_chain_file (ctx, settings_.cert_file.c_str ()) != 1)
      return fail ("cannot load the client certificate " + settings_.cert_file);
    if (SSL_CTX_use_PrivateKey_file (ctx, settings_.key_file.c_str (), SSL_FILETYPE_PEM) != 1)
      return fail ("cannot load the client key " + settings_.key_file);
    if (SSL_CTX_check_private_key (ctx) != 1)
      return fail ("the client key does not belong to " + settings_.cert_file);
  }
  SSL_CTX_set_app_data (ctx, &settings_.host);
  SSL_CTX_set_info_callback (ctx, name_server);
  tls_ = ctx;
  return true;
}

/* The host's addresses, in getaddrinfo's order (RFC 6724), each once. */
bool
MqttPublisher::resolve (std::string *error)
{
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo *found = nullptr;
  const int rc = getaddrinfo (settings_.host.c_str (), nullptr, &hints, &found);
  if (rc != 0) {
    *error = "the host name cannot be resolved: " + std::string (gai_strerror (rc));
    return false;
  }
  addresses_.clear ();
  for (const struct addrinfo *a = found; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = "";
    const void *where = a->ai_family == AF_INET6
        ? static_cast<const void *> (&reinterpret_cast<const sockaddr_in6 *> (a->ai_addr)->sin6_addr)
        : static_cast<const void *> (&reinterpret_cast<const sockaddr_in *> (a->ai_addr)->sin_addr);
    if ((a->ai_family == AF_INET || a->ai_family == AF_INET6)
        && inet_ntop (a->ai_family, where, text, sizeof text) != nullptr
        && std::find (addresses_.begin (), addresses_.end (), text) == addresses_.end ())
      addresses_.push_back (text);
  }
  freeaddrinfo (found);
  if (addresses_.empty ()) {
    *error = "the host name has no IPv4 or IPv6 address";
    return false;
  }
  return true;
}

bool
MqttPublisher::parse_address (const std::string & address, std::string *host, int *port,
    std::string *error)
{
  std::string h, p;
  if (!address.empty () && address[0] == '[') {
    const size_t close = address.find (']');
    if (close == std::string::npos || close + 1 >= address.size () || address[close + 1] != ':') {
      *error = "an IPv6 address is written [address]:port";
      return false;
    }
    h = address.substr (1, close - 1);
    p = address.substr (close + 2);
  } else {
    const size_t colon = address.rfind (':');
    if (colon == std::string::npos) {
      *error = "no port: write host:port, e.g. localhost:1883";
      return false;
    }
    h = address.substr (0, colon);
    p = address.substr (colon + 1);
    if (h.find (':') != std::string::npos) {
      *error = "an IPv6 address is written [address]:port";
      return false;
    }
  }
  if (h.empty ()) {
    *error = "no host: write host:port, e.g. localhost:1883";
    return false;
  }
  if (p.empty () || p.size () > 5 || !std::all_of (p.begin (), p.end (),
          [] (unsigned char c) { return std::isdigit (c) != 0; })
      || std::stoi (p) < 1 || std::stoi (p) > 65535) {
    *error = "the port must be a number from 1 to 65535";
    return false;
  }
  *host = h;
  *port = std::stoi (p);
  return true;
}

bool
MqttPublisher::start (std::string *error)
{
  static const int lib_init = mosquitto_lib_init ();
  if (lib_init != MOSQ_ERR_SUCCESS) {
    *error = std::string ("libmosquitto could not be initialised: ")
        + mosquitto_strerror (lib_init);
    return false;
  }
  if (settings_.tls && !make_tls_context (error))
    return false;
  if (pipe2 (wake_fds_, O_NONBLOCK | O_CLOEXEC) != 0) {
    *error = "could not make a pipe: " + describe (MOSQ_ERR_ERRNO, errno);
    return false;
  }
  {
    std::lock_guard<std::mutex> guard (lock_);
    quit_ = false;
    running_ = true;
  }
  backoff_ = settings_.reconnect_delay;
  next_attempt_ = Clock::now ();
  thread_ = std::thread (&MqttPublisher::run, this);
  return true;
}

void
MqttPublisher::stop ()
{
  {
    std::lock_guard<std::mutex> guard (lock_);
    quit_ = true;
  }
  wake ();
  if (thread_.joinable ())
    thread_.join ();
  for (int &fd : wake_fds_) {
    if (fd >= 0)
      close (fd);
    fd = -1;
  }
}

void
MqttPublisher::wake ()
{
  const char byte = 1;
  if (wake_fds_[1] >= 0 && write (wake_fds_[1], &byte, 1) < 0) {
    /* EAGAIN: the pipe is full, so the thread wakes anyway */
  }
}

void
MqttPublisher::report (MqttEvent event, const std::string & detail)
{
  if (report_)
    report_ (event, detail);
}

void
MqttPublisher::push (std::string line)
{
  bool dropped = false;
  {
    std::lock_guard<std::mutex> guard (lock_);
    if (queue_.size () >= settings_.max_queued) {
      /* The oldest line the broker has not been given yet; when every line is with the broker
       * (max-queued <= the in-flight window), the oldest of them is forgotten (it may still
       * arrive). */
      auto victim = std::find_if (queue_.begin (), queue_.end (),
          [] (const Line & l) { return !l.handed && !l.acked; });
      queue_.erase (victim != queue_.end () ? victim : queue_.begin ());
      counters_.dropped++;
      dropped = true;
    }
    Line l;
    l.payload = std::move (line);
    queue_.push_back (std::move (l));
    counters_.queued = queue_.size ();
  }
  wake ();
  report (MqttEvent::kCountersChanged, dropped ? "dropped" : "queued");
}

uint64_t
MqttPublisher::drain (std::chrono::milliseconds timeout)
{
  std::unique_lock<std::mutex> guard (lock_);
  changed_.wait_for (guard, timeout, [this] { return queue_.empty () || !running_; });
  return queue_.size ();
}

MqttCounters
MqttPublisher::counters () const
{
  std::lock_guard<std::mutex> guard (lock_);
  return counters_;
}

void
MqttPublisher::run ()
{
  for (;;) {
    {
      std::lock_guard<std::mutex> guard (lock_);
      if (quit_)
        break;
    }
    if (mosq_ == nullptr) {
      if (Clock::now () >= next_attempt_)
        connect ();
      else
        wait_for_attempt ();
      continue;
    }
    serve ();
  }
  close_client ();
  {
    std::lock_guard<std::mutex> guard (lock_);
    running_ = false;
  }
  changed_.notify_all ();
}

/* Sleeps until the next connection attempt is due, or stop () wakes the thread. New lines
 * wake it too; it goes back to sleep. */
void
MqttPublisher::wait_for_attempt ()
{
  struct pollfd fd = {wake_fds_[0], POLLIN, 0};
  if (poll (&fd, 1, millis_until (next_attempt_)) > 0) {
    char buf[64];
    while (read (wake_fds_[0], buf, sizeof buf) > 0) {
    }
  }
}

void
MqttPublisher::connect ()
{
  mosq_ = mosquitto_new (settings_.client_id.empty () ? nullptr : settings_.client_id.c_str (),
      true, this);
  if (mosq_ == nullptr) {
    connection_failed ("could not make an MQTT client: " + describe (MOSQ_ERR_ERRNO, errno));
    return;
  }
  refused_ = false;
  refused_credentials_ = false;
  refusal_.clear ();
  last_log_error_.clear ();
  mosquitto_connect_callback_set (mosq_, &MqttPublisher::on_connect);
  mosquitto_publish_callback_set (mosq_, &MqttPublisher::on_publish);
  mosquitto_log_callback_set (mosq_, &MqttPublisher::on_log);
  mosquitto_int_option (mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_int_option (mosq_, MOSQ_OPT_SEND_MAXIMUM,
      static_cast<int> (std::min<size_t> (settings_.max_in_flight, 65535)));
  if (!settings_.username.empty ()) {
    const int rc = mosquitto_username_pw_set (mosq_, settings_.username.c_str (),
        settings_.password.empty () ? nullptr : settings_.password.c_str ());
    if (rc != MOSQ_ERR_SUCCESS) {
      connection_failed ("the credentials cannot be used: " + describe (rc, errno));
      return;
    }
  }
  if (tls_ != nullptr) {
    mosquitto_int_option (mosq_, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    mosquitto_void_option (mosq_, MOSQ_OPT_SSL_CTX, tls_);
  }
  if (address_index_ == 0) {
    std::string why;
    round_failures_.clear ();
    if (!resolve (&why)) {
      addresses_.clear ();
      connection_failed (why);
      return;
    }
  }
  const std::string & address = addresses_[address_index_];
  const int rc = mosquitto_connect_async (mosq_, address.c_str (), settings_.port,
      settings_.keepalive_s);
  const int err = errno;
  if (rc != MOSQ_ERR_SUCCESS) {
    connection_failed (describe (rc, err));
    return;
  }
  connect_deadline_ = Clock::now () + settings_.connect_timeout;
}

/* The client is given up: a connection attempt failed or an established connection ended.
 * Reported once per outage; the next attempt waits for the backoff, which doubles up to
 * reconnect-delay-max. */
void
MqttPublisher::connection_failed (const std::string & why, bool credentials)
{
  bool was_connected;
  {
    std::lock_guard<std::mutex> guard (lock_);
    was_connected = connected_;
  }
  std::string detail = why;
  if (!last_log_error_.empty () && last_log_error_ != why)
    detail += " (" + last_log_error_ + ")";
  close_client ();
  /* A host of several addresses: the next one at once, unless the broker itself answered (a
   * refusal) or a connection had been made. */
  if (!was_connected && addresses_.size () > 1 && address_index_ < addresses_.size ()) {
    round_failures_ += (round_failures_.empty () ? "" : "; ") + addresses_[address_index_]
        + ": " + detail;
    if (!refused_ && address_index_ + 1 < addresses_.size ()) {
      ++address_index_;
      next_attempt_ = Clock::now ();
      return;
    }
    if (!refused_)
      detail = "every address of " + settings_.host + " failed: " + round_failures_;
  }
  address_index_ = 0;
  if (was_connected) {
    backoff_ = settings_.reconnect_delay;
  }
  next_attempt_ = Clock::now () + backoff_;
  backoff_ = std::min (backoff_ * 2, std::max (settings_.reconnect_delay_max,
          settings_.reconnect_delay));
  /* A refusal of the credentials is reported even after an outage was: it will not pass by
   * itself. */
  if (credentials ? !refusal_reported_ : !outage_reported_) {
    outage_reported_ = true;
    refusal_reported_ = refusal_reported_ || credentials;
    report (credentials ? MqttEvent::kRefused : was_connected ? MqttEvent::kLost :
        MqttEvent::kUnreachable, detail);
  }
}

/* One turn with a client: publish what the window allows, wait for the socket (or new lines,
 * or the keepalive's second), then let libmosquitto read, write and ping. */
void
MqttPublisher::serve ()
{
  bool connected;
  {
    std::lock_guard<std::mutex> guard (lock_);
    connected = connected_;
  }
  /* Lines that could go at once (qos 0 answers inside mosquitto_publish and frees the window
   * there): poll without waiting, or a queue kept through an outage would go out one window per
   * poll timeout. */
  const bool more = connected && publish_pending ();
  const int sock = mosquitto_socket (mosq_);
  if (sock < 0) {
    connection_failed ("the connection was closed");
    return;
  }
  struct pollfd fds[2] = {
    {sock, static_cast<short> (POLLIN | (mosquitto_want_write (mosq_) ? POLLOUT : 0)), 0},
    {wake_fds_[0], POLLIN, 0},
  };
  const int timeout = more ? 0 : connected ? 1000 : millis_until (connect_deadline_);
  if (poll (fds, 2, timeout) < 0 && errno != EINTR) {
    connection_failed ("poll failed: " + describe (MOSQ_ERR_ERRNO, errno));
    return;
  }
  if (fds[1].revents != 0) {
    char buf[64];
    while (read (wake_fds_[0], buf, sizeof buf) > 0) {
    }
  }
  int rc = MOSQ_ERR_SUCCESS;
  int err = 0;
  if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
    rc = mosquitto_loop_read (mosq_, 1);
    err = errno;
  }
  if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket (mosq_) >= 0 && (fds[0].revents & POLLOUT)) {
    rc = mosquitto_loop_write (mosq_, 1);
    err = errno;
  }
  if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket (mosq_) >= 0) {
    rc = mosquitto_loop_misc (mosq_);
    err = errno;
  }
  bool connected_now;
  {
    std::lock_guard<std::mutex> guard (lock_);
    connected_now = connected_;
  }
  if (refused_)
    connection_failed ("the broker refused the connection: " + refusal_, refused_credentials_);
  else if (rc != MOSQ_ERR_SUCCESS)
    connection_failed (describe (rc, err));
  else if (mosquitto_socket (mosq_) < 0)
    connection_failed ("the connection was closed");
  else if (!connected_now && (fds[0].revents & (POLLERR | POLLHUP)))
    /* Refused or reset before the broker answered: libmosquitto's TLS handshake takes the
     * socket's error for "try again" and would wait for connect_timeout. */
    connection_failed (socket_error (sock));
  else if (!connected && Clock::now () >= connect_deadline_)
    connection_failed ("no answer to CONNECT within "
        + std::to_string (settings_.connect_timeout.count ()) + " ms");
}

/* Hands the oldest lines not yet with the broker to the client, up to max-in-flight unanswered
 * ones. The lock is held throughout: a qos 0 line is acknowledged (on_publish) inside
 * mosquitto_publish, before its message id is known here, so such early answers are kept in
 * early_acks_ and applied after. True when lines wait and the window has room again. */
bool
MqttPublisher::publish_pending ()
{
  std::unique_lock<std::mutex> guard (lock_);
  size_t in_flight = 0;
  for (const Line & l : queue_)
    in_flight += l.handed && !l.acked;
  bool refused = false;
  for (Line & l : queue_) {
    if (in_flight >= settings_.max_in_flight)
      break;
    if (l.handed || l.acked)
      continue;
    int mid = 0;
    publishing_ = true;
    const int rc = mosquitto_publish (mosq_, &mid, settings_.topic.c_str (),
        static_cast<int> (l.payload.size ()), l.payload.data (), settings_.qos, false);
    publishing_ = false;
    if (rc != MOSQ_ERR_SUCCESS) {
      refused = true;           /* the socket's trouble shows in the next read or write */
      break;
    }
    l.mid = mid;
    l.handed = true;
    ++in_flight;
  }
  std::vector<int> early;
  early.swap (early_acks_);
  guard.unlock ();
  for (int mid : early)
    acknowledge (mid);
  if (refused || early.empty ())
    return false;
  std::lock_guard<std::mutex> again (lock_);
  return std::any_of (queue_.begin (), queue_.end (),
      [] (const Line & l) { return !l.handed && !l.acked; });
}

void
MqttPublisher::acknowledge (int mid)
{
  {
    std::lock_guard<std::mutex> guard (lock_);
    auto it = std::find_if (queue_.begin (), queue_.end (),
        [mid] (const Line & l) { return l.handed && !l.acked && l.mid == mid; });
    if (it == queue_.end ())
      return;                   /* dropped from a full queue meanwhile */
    it->acked = true;
    counters_.published++;
    while (!queue_.empty () && queue_.front ().acked)
      queue_.pop_front ();
    counters_.queued = queue_.size ();
  }
  changed_.notify_all ();
  report (MqttEvent::kCountersChanged, "published");
}

/* Throws the client away with all it holds; lines it had and did not acknowledge go back to
 * waiting, to be handed to the next client first. */
void
MqttPublisher::close_client ()
{
  if (mosq_ != nullptr) {
    bool connected;
    {
      std::lock_guard<std::mutex> guard (lock_);
      connected = connected_;
    }
    if (connected && mosquitto_socket (mosq_) >= 0)
      mosquitto_disconnect (mosq_);
    mosquitto_destroy (mosq_);
    mosq_ = nullptr;
  }
  std::lock_guard<std::mutex> guard (lock_);
  connected_ = false;
  for (Line & l : queue_) {
    l.handed = false;
    l.mid = -1;
  }
  early_acks_.clear ();
}

void
MqttPublisher::on_connect (struct mosquitto *, void *obj, int rc)
{
  auto *self = static_cast<MqttPublisher *> (obj);
  if (rc != 0) {
    self->refused_ = true;
    /* MQTT 3.1.1 CONNACK return codes 4 and 5 */
    self->refused_credentials_ = rc == CONNACK_REFUSED_BAD_USERNAME_PASSWORD
        || rc == CONNACK_REFUSED_NOT_AUTHORIZED;
    self->refusal_ = mosquitto_connack_string (rc);
    return;
  }
  {
    std::lock_guard<std::mutex> guard (self->lock_);
    self->connected_ = true;
  }
  self->backoff_ = self->settings_.reconnect_delay;
  self->last_log_error_.clear ();
  self->refusal_reported_ = false;
  if (self->outage_reported_) {
    self->outage_reported_ = false;
    self->report (MqttEvent::kConnected, "");
  }
}

void
MqttPublisher::on_publish (struct mosquitto *, void *obj, int mid)
{
  auto *self = static_cast<MqttPublisher *> (obj);
  if (self->publishing_)
    self->early_acks_.push_back (mid);
  else
    self->acknowledge (mid);
}

void
MqttPublisher::on_log (struct mosquitto *, void *obj, int level, const char *text)
{
  auto *self = static_cast<MqttPublisher *> (obj);
  if ((level & MOSQ_LOG_ERR) && text != nullptr)
    self->last_log_error_ = text;
}

}  // namespace engine
}  // namespace vidcls
