/**
 * SECTION:element-vidclspublish
 * @title: vidclspublish
 * @see_also: vividinfer, resnetvitinfer, vidclsaction
 *
 * Writes every classification (#GstVidclsClassificationMeta, or a "vidcls-classification" event
 * at end of stream) and every action start and end (#GstVidclsActionMeta, or the
 * "vidcls-action-start" / "vidcls-action-end" events) as one JSON object per line, to a file
 * (file-path; "-" is standard output) and/or an MQTT broker (address). The stream passes through
 * untouched, events included. Each line has a "type" ("classification", "action-start",
 * "action-end") and a "seq" that counts the element's lines from 0, so a consumer sees a line
 * that is missing or came twice; docs/vidcls-results.schema.json describes every field.
 *
 * A file gets each line with one write() as it is made, so a reader tailing it sees whole lines
 * at once. A file that cannot be opened, or a write that fails, is an error.
 *
 * The broker is never waited for: lines go into a queue of at most max-queued, and a thread of
 * the element publishes them, oldest first, keeping each until the broker acknowledged it
 * (qos=1: PUBACK) or it was written to the socket (qos=0). While the broker cannot be reached
 * (not there at start, or gone), the stream goes on, a warning says so, the queue fills (beyond
 * max-queued the oldest line not yet handed to the broker is dropped and counted in
 * messages-dropped) and the element tries to connect again after reconnect-delay, doubling the
 * wait up to reconnect-delay-max. When the broker is back, the queue is published in order. A
 * line the broker received but had not acknowledged when it went away is sent again: a broker
 * that died at that moment may have passed it on twice (same seq). At end of stream the element
 * waits up to flush-timeout for the queue to empty before passing EOS on, and warns about what
 * could not be delivered.
 *
 * With both file-path and address set, every line goes to both.
 *
 * A broker that asks for credentials gets username and a password read at start from
 * password-file or from the environment variable named by password-env: never from a property,
 * so no launch line, pipeline dump or log shows it. A broker that refuses them is an element
 * error (waiting would not help); the message names the user, never the password.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -e filesrc location=video.mp4 ! decodebin ! videoconvert ! vidclsclipper ! \
 *     vividinfer model=m.safetensors ! vidclspublish file-path=results.jsonl ! fakesink
 * ]| Classify a file, one JSON line per clip in results.jsonl.
 * |[
 * gst-launch-1.0 -e v4l2src ! videoconvert ! vidclsclipper ! vividinfer model=m.safetensors ! \
 *     vidclsaction ! vidclspublish address=localhost:1883 topic=cameras/door/results ! \
 *     fakesink sync=true
 * ]| Publish a camera's classifications and actions to a local MQTT broker (mosquitto_sub -v
 * -t 'cameras/#' shows them).
 */
#include "gstvidclspublish.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mosquitto.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "gstvidclsevents.h"
#include "gstvidclsproperties.h"
#include "gstvidclsmeta.h"
#include "engine/mqtt.h"

GST_DEBUG_CATEGORY_STATIC (gst_vidcls_publish_debug);
#define GST_CAT_DEFAULT gst_vidcls_publish_debug

#define DEFAULT_FILE_PATH nullptr
#define DEFAULT_FILE_MODE GST_VIDCLS_PUBLISH_FILE_APPEND
#define DEFAULT_ADDRESS nullptr
#define DEFAULT_TOPIC "vidcls/results"
#define DEFAULT_CLIENT_ID nullptr
#define DEFAULT_QOS 1
#define DEFAULT_KEEPALIVE 60
#define DEFAULT_TLS FALSE
#define DEFAULT_MAX_QUEUED 1000
#define DEFAULT_RECONNECT_DELAY 500
#define DEFAULT_RECONNECT_DELAY_MAX 30000
#define DEFAULT_FLUSH_TIMEOUT 5000
#define DEFAULT_SILENT TRUE

enum
{
  PROP_0,
  PROP_FILE_PATH,
  PROP_FILE_MODE,
  PROP_ADDRESS,
  PROP_TOPIC,
  PROP_CLIENT_ID,
  PROP_QOS,
  PROP_KEEPALIVE,
  PROP_TLS,
  PROP_TLS_CA_FILE,
  PROP_TLS_CERT_FILE,
  PROP_TLS_KEY_FILE,
  PROP_USERNAME,
  PROP_PASSWORD_FILE,
  PROP_PASSWORD_ENV,
  PROP_MAX_QUEUED,
  PROP_RECONNECT_DELAY,
  PROP_RECONNECT_DELAY_MAX,
  PROP_FLUSH_TIMEOUT,
  PROP_SILENT,
  PROP_MESSAGES_PUBLISHED,
  PROP_MESSAGES_QUEUED,
  PROP_MESSAGES_DROPPED,
  N_PROPERTIES
};

static GParamSpec *properties[N_PROPERTIES];

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

namespace {

using Json = nlohmann::ordered_json;
using vidcls::gst::ActionEvent;
using vidcls::gst::ClipResult;
using vidcls::engine::MqttCounters;
using vidcls::engine::MqttEvent;
using vidcls::engine::MqttPublisher;

struct Settings {
  std::string file_path;                /* "" = no file */
  GstVidclsPublishFileMode file_mode = DEFAULT_FILE_MODE;
  std::string address;                  /* "" = no broker */
  std::string topic = DEFAULT_TOPIC;
  std::string client_id;                /* "" = made up at start */
  guint qos = DEFAULT_QOS;
  guint keepalive = DEFAULT_KEEPALIVE;
  gboolean tls = DEFAULT_TLS;
  std::string tls_ca_file, tls_cert_file, tls_key_file;
  std::string username, password_file, password_env;
  guint max_queued = DEFAULT_MAX_QUEUED;
  guint reconnect_delay = DEFAULT_RECONNECT_DELAY;
  guint reconnect_delay_max = DEFAULT_RECONNECT_DELAY_MAX;
  guint flush_timeout = DEFAULT_FLUSH_TIMEOUT;
  gboolean silent = DEFAULT_SILENT;
};

/* What every line says about when and by whom it was made. */
struct Stamp {
  guint64 seq;
  std::string element;
  std::string wallclock;
};

}  // namespace

struct GstVidclsPublishPrivate {
  std::mutex lock;              /* guards settings, mqtt (the pointer) and final_counters */
  Settings settings;
  std::unique_ptr<MqttPublisher> mqtt;
  MqttCounters final_counters;  /* the broker's counters when the element stopped */
  bool to_broker = false;       /* an address was set at the last start */
  std::atomic<guint64> lines_written{0};

  /* The streaming thread's, and start() / stop()'s while it does not run. */
  Settings active;              /* the settings taken at start */
  int fd = -1;
  bool own_fd = false;
  guint64 seq = 0;
  std::string element_name;
  bool drained = false;         /* the queue had its flush-timeout at EOS */
};

struct _GstVidclsPublish
{
  GstBaseTransform parent;
  GstVidclsPublishPrivate *priv;
};

#define gst_vidcls_publish_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstVidclsPublish, gst_vidcls_publish, GST_TYPE_BASE_TRANSFORM,
    GST_DEBUG_CATEGORY_INIT (gst_vidcls_publish_debug, "vidclspublish", 0,
        "vidcls JSON lines to a file or MQTT"));
GST_ELEMENT_REGISTER_DEFINE (vidclspublish, "vidclspublish", GST_RANK_NONE,
    GST_TYPE_VIDCLS_PUBLISH);

GType
gst_vidcls_publish_file_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_VIDCLS_PUBLISH_FILE_APPEND, "Add lines after what the file holds", "append"},
    {GST_VIDCLS_PUBLISH_FILE_TRUNCATE, "Empty the file when the element starts", "truncate"},
    {0, nullptr, nullptr},
  };
  return vidcls::gst::enum_type_once (&type, "GstVidclsPublishFileMode", values);
}

static void gst_vidcls_publish_finalize (GObject * object);
static void gst_vidcls_publish_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_vidcls_publish_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static gboolean gst_vidcls_publish_start (GstBaseTransform * trans);
static gboolean gst_vidcls_publish_stop (GstBaseTransform * trans);
static gboolean gst_vidcls_publish_sink_event (GstBaseTransform * trans, GstEvent * event);
static GstFlowReturn gst_vidcls_publish_transform_ip (GstBaseTransform * trans,
    GstBuffer * buf);

static void
install_properties (GObjectClass * gobject_class)
{
  const auto rw = static_cast<GParamFlags> (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_READY);

  properties[PROP_FILE_PATH] = g_param_spec_string ("file-path", "File path",
      "File to write the JSON lines to, \"-\" for standard output; unset (the default) for no "
      "file. Set file-path, address or both", DEFAULT_FILE_PATH, rw);
  properties[PROP_FILE_MODE] = g_param_spec_enum ("file-mode", "File mode",
      "Whether lines are added to what file-path holds or the file is emptied at start",
      GST_TYPE_VIDCLS_PUBLISH_FILE_MODE, DEFAULT_FILE_MODE, rw);
  properties[PROP_ADDRESS] = g_param_spec_string ("address", "Broker address",
      "MQTT broker to publish to, host:port ([v6-address]:port), e.g. localhost:1883; unset "
      "(the default) for no broker", DEFAULT_ADDRESS, rw);
  properties[PROP_TOPIC] = g_param_spec_string ("topic", "Topic",
      "MQTT topic of the lines (no + or # wildcards)", DEFAULT_TOPIC, rw);
  properties[PROP_CLIENT_ID] = g_param_spec_string ("client-id", "Client id",
      "MQTT client id; unset (the default) makes up a unique one, vidcls- and 12 hex digits, "
      "at each start", DEFAULT_CLIENT_ID, rw);
  properties[PROP_QOS] = g_param_spec_uint ("qos", "QoS",
      "MQTT quality of service: 1 = a line leaves the queue when the broker acknowledged it "
      "(PUBACK); 0 = when it was written to the socket (a line in the socket when the "
      "connection breaks is lost)", 0, 1, DEFAULT_QOS, rw);
  properties[PROP_KEEPALIVE] = g_param_spec_uint ("keepalive", "Keepalive",
      "MQTT keepalive in seconds: with nothing to publish the element pings the broker this "
      "often and gives a broker that does not answer up (and reconnects); the broker gives "
      "the element up after 1.5 times this of silence", 5, 65535, DEFAULT_KEEPALIVE, rw);
  properties[PROP_TLS] = g_param_spec_boolean ("tls", "TLS",
      "Connect to the broker with TLS (also on when a tls-*-file is set); the broker's "
      "certificate is checked against tls-ca-file, or the system's CAs (/etc/ssl/certs)",
      DEFAULT_TLS, rw);
  properties[PROP_TLS_CA_FILE] = g_param_spec_string ("tls-ca-file", "TLS CA file",
      "PEM file of the CA certificates that sign the broker's certificate", nullptr, rw);
  properties[PROP_TLS_CERT_FILE] = g_param_spec_string ("tls-cert-file", "TLS certificate",
      "PEM file of the element's client certificate (with tls-key-file), for brokers that "
      "ask for one", nullptr, rw);
  properties[PROP_TLS_KEY_FILE] = g_param_spec_string ("tls-key-file", "TLS key",
      "PEM file of the client certificate's private key (unencrypted)", nullptr, rw);
  properties[PROP_USERNAME] = g_param_spec_string ("username", "User name",
      "MQTT user name for brokers that ask for one; the password comes from password-file or "
      "password-env, never from a property", nullptr, rw);
  properties[PROP_PASSWORD_FILE] = g_param_spec_string ("password-file", "Password file",
      "File whose content (a trailing newline removed) is the MQTT password of username; read "
      "at start, its content never logged", nullptr, rw);
  properties[PROP_PASSWORD_ENV] = g_param_spec_string ("password-env", "Password variable",
      "Name of the environment variable that holds the MQTT password of username (e.g. "
      "VIDCLS_MQTT_PASSWORD); read at start, its value never logged", nullptr, rw);
  properties[PROP_MAX_QUEUED] = g_param_spec_uint ("max-queued", "Max queued",
      "Lines kept for the broker until it acknowledged them; beyond this the oldest not yet "
      "sent is dropped (messages-dropped)", 1, G_MAXINT, DEFAULT_MAX_QUEUED, rw);
  properties[PROP_RECONNECT_DELAY] = g_param_spec_uint ("reconnect-delay", "Reconnect delay",
      "Milliseconds before connecting again after a failure; doubles with each failure up to "
      "reconnect-delay-max", 1, G_MAXINT, DEFAULT_RECONNECT_DELAY, rw);
  properties[PROP_RECONNECT_DELAY_MAX] = g_param_spec_uint ("reconnect-delay-max",
      "Reconnect delay max", "Longest wait between connection attempts, in milliseconds",
      1, G_MAXINT, DEFAULT_RECONNECT_DELAY_MAX, rw);
  properties[PROP_FLUSH_TIMEOUT] = g_param_spec_uint ("flush-timeout", "Flush timeout",
      "At end of stream (or stop without one), milliseconds to wait for the broker to take "
      "the queue before EOS goes on; lines left are reported and dropped",
      0, G_MAXINT, DEFAULT_FLUSH_TIMEOUT, rw);
  properties[PROP_SILENT] = vidcls::gst::silent_param_spec ("counters "
      "(notify::messages-published, ...)");
  properties[PROP_MESSAGES_PUBLISHED] = vidcls::gst::counter_param_spec ("messages-published",
      "Messages published", "Lines the broker took (acknowledged with qos=1, written to the "
      "socket with qos=0) since the element started; without a broker, lines written to the "
      "file");
  properties[PROP_MESSAGES_QUEUED] = vidcls::gst::counter_param_spec ("messages-queued",
      "Messages queued", "Lines waiting for the broker now");
  properties[PROP_MESSAGES_DROPPED] = vidcls::gst::counter_param_spec ("messages-dropped",
      "Messages dropped", "Lines dropped from a full queue (max-queued) since the element "
      "started");
  g_object_class_install_properties (gobject_class, N_PROPERTIES, properties);
}

static void
gst_vidcls_publish_class_init (GstVidclsPublishClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->finalize = gst_vidcls_publish_finalize;
  gobject_class->set_property = gst_vidcls_publish_set_property;
  gobject_class->get_property = gst_vidcls_publish_get_property;
  install_properties (gobject_class);

  gst_element_class_set_static_metadata (element_class, "Video classification publisher",
      "Filter/Analyzer/Video", "Writes classifications and action events as JSON lines to a "
      "file or an MQTT broker, queueing while the broker is away", "vidcls developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_vidcls_publish_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_vidcls_publish_stop);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_vidcls_publish_sink_event);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_vidcls_publish_transform_ip);
  /* Reads metas only: the buffer passes as it came. */
  trans_class->passthrough_on_same_caps = TRUE;
  trans_class->transform_ip_on_passthrough = TRUE;

}

static void
gst_vidcls_publish_init (GstVidclsPublish * self)
{
  self->priv = new GstVidclsPublishPrivate ();
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_vidcls_publish_finalize (GObject * object)
{
  GstVidclsPublish *self = GST_VIDCLS_PUBLISH (object);

  delete self->priv;            /* stops a publisher thread left running */
  self->priv = nullptr;

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
set_string (std::string & out, const GValue * value)
{
  const gchar *s = g_value_get_string (value);
  out = s != nullptr ? s : "";
}

static void
gst_vidcls_publish_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstVidclsPublishPrivate *priv = GST_VIDCLS_PUBLISH (object)->priv;
  std::lock_guard<std::mutex> guard (priv->lock);
  Settings & s = priv->settings;
  switch (prop_id) {
    case PROP_FILE_PATH:
      set_string (s.file_path, value);
      break;
    case PROP_FILE_MODE:
      s.file_mode = static_cast<GstVidclsPublishFileMode> (g_value_get_enum (value));
      break;
    case PROP_ADDRESS:
      set_string (s.address, value);
      break;
    case PROP_TOPIC:
      set_string (s.topic, value);
      break;
    case PROP_CLIENT_ID:
      set_string (s.client_id, value);
      break;
    case PROP_QOS:
      s.qos = g_value_get_uint (value);
      break;
    case PROP_KEEPALIVE:
      s.keepalive = g_value_get_uint (value);
      break;
    case PROP_TLS:
      s.tls = g_value_get_boolean (value);
      break;
    case PROP_TLS_CA_FILE:
      set_string (s.tls_ca_file, value);
      break;
    case PROP_TLS_CERT_FILE:
      set_string (s.tls_cert_file, value);
      break;
    case PROP_TLS_KEY_FILE:
      set_string (s.tls_key_file, value);
      break;
    case PROP_USERNAME:
      set_string (s.username, value);
      break;
    case PROP_PASSWORD_FILE:
      set_string (s.password_file, value);
      break;
    case PROP_PASSWORD_ENV:
      set_string (s.password_env, value);
      break;
    case PROP_MAX_QUEUED:
      s.max_queued = g_value_get_uint (value);
      break;
    case PROP_RECONNECT_DELAY:
      s.reconnect_delay = g_value_get_uint (value);
      break;
    case PROP_RECONNECT_DELAY_MAX:
      s.reconnect_delay_max = g_value_get_uint (value);
      break;
    case PROP_FLUSH_TIMEOUT:
      s.flush_timeout = g_value_get_uint (value);
      break;
    case PROP_SILENT:
      s.silent = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
set_nullable_string (GValue * value, const std::string & s)
{
  g_value_set_string (value, s.empty () ? nullptr : s.c_str ());
}

/* The counters of the broker (live, or as they were at stop), or the file's lines. */
static MqttCounters
current_counters (GstVidclsPublishPrivate * priv)
{
  if (priv->mqtt)
    return priv->mqtt->counters ();
  MqttCounters c = priv->final_counters;
  if (!priv->to_broker)
    c.published = priv->lines_written;
  return c;
}

static void
gst_vidcls_publish_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstVidclsPublishPrivate *priv = GST_VIDCLS_PUBLISH (object)->priv;
  std::lock_guard<std::mutex> guard (priv->lock);
  const Settings & s = priv->settings;
  switch (prop_id) {
    case PROP_FILE_PATH:
      set_nullable_string (value, s.file_path);
      break;
    case PROP_FILE_MODE:
      g_value_set_enum (value, s.file_mode);
      break;
    case PROP_ADDRESS:
      set_nullable_string (value, s.address);
      break;
    case PROP_TOPIC:
      g_value_set_string (value, s.topic.c_str ());
      break;
    case PROP_CLIENT_ID:
      set_nullable_string (value, s.client_id);
      break;
    case PROP_QOS:
      g_value_set_uint (value, s.qos);
      break;
    case PROP_KEEPALIVE:
      g_value_set_uint (value, s.keepalive);
      break;
    case PROP_TLS:
      g_value_set_boolean (value, s.tls);
      break;
    case PROP_TLS_CA_FILE:
      set_nullable_string (value, s.tls_ca_file);
      break;
    case PROP_TLS_CERT_FILE:
      set_nullable_string (value, s.tls_cert_file);
      break;
    case PROP_TLS_KEY_FILE:
      set_nullable_string (value, s.tls_key_file);
      break;
    case PROP_USERNAME:
      set_nullable_string (value, s.username);
      break;
    case PROP_PASSWORD_FILE:
      set_nullable_string (value, s.password_file);
      break;
    case PROP_PASSWORD_ENV:
      set_nullable_string (value, s.password_env);
      break;
    case PROP_MAX_QUEUED:
      g_value_set_uint (value, s.max_queued);
      break;
    case PROP_RECONNECT_DELAY:
      g_value_set_uint (value, s.reconnect_delay);
      break;
    case PROP_RECONNECT_DELAY_MAX:
      g_value_set_uint (value, s.reconnect_delay_max);
      break;
    case PROP_FLUSH_TIMEOUT:
      g_value_set_uint (value, s.flush_timeout);
      break;
    case PROP_SILENT:
      g_value_set_boolean (value, s.silent);
      break;
    case PROP_MESSAGES_PUBLISHED:
      g_value_set_uint64 (value, current_counters (priv).published);
      break;
    case PROP_MESSAGES_QUEUED:
      g_value_set_uint64 (value, current_counters (priv).queued);
      break;
    case PROP_MESSAGES_DROPPED:
      g_value_set_uint64 (value, current_counters (priv).dropped);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
notify_counters (GstVidclsPublish * self)
{
  gboolean silent;
  {
    std::lock_guard<std::mutex> guard (self->priv->lock);
    silent = self->priv->settings.silent;
  }
  vidcls::gst::notify_counters (G_OBJECT (self), silent, {properties[PROP_MESSAGES_PUBLISHED],
        properties[PROP_MESSAGES_QUEUED], properties[PROP_MESSAGES_DROPPED]});
}

/* ------------------------------------------------------------------ the lines */

static Json
time_value (GstClockTime t)
{
  return GST_CLOCK_TIME_IS_VALID (t) ? Json (static_cast<guint64> (t)) : Json (nullptr);
}

/* Scores are single floats: six decimals say all they know, without the digits a float
 * printed as a double makes up (0.3f is 0.30000001192092896). */
static double
score_value (float score)
{
  return std::round (static_cast<double> (score) * 1e6) / 1e6;
}

static GstClockTime
running_time (GstBaseTransform * trans, GstClockTime pts)
{
  if (!GST_CLOCK_TIME_IS_VALID (pts) || trans->segment.format != GST_FORMAT_TIME)
    return GST_CLOCK_TIME_NONE;
  return gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME, pts);
}

static Json
line_head (const char *type, const Stamp & stamp)
{
  Json j;
  j["type"] = type;
  j["seq"] = stamp.seq;
  j["element"] = stamp.element;
  j["wallclock"] = stamp.wallclock;
  return j;
}

static Json
classification_json (GstBaseTransform * trans, const ClipResult & r, const Stamp & stamp)
{
  Json j = line_head ("classification", stamp);
  j["stream-id"] = r.stream_id;
  j["object-id"] = r.object_id;
  j["clip-index"] = r.clip_index;
  j["start"] = time_value (r.start);
  j["end"] = time_value (r.end);
  j["start-running-time"] = time_value (running_time (trans, r.start));
  j["end-running-time"] = time_value (running_time (trans, r.end));
  j["partial"] = r.partial;
  j["model"] = r.model;
  j["labels"] = r.labels;
  Json scores = Json::array ();
  for (float s : r.scores)
    scores.push_back (score_value (s));
  j["scores"] = std::move (scores);
  j["class-ids"] = r.class_ids;
  j["inference-time"] = time_value (r.inference_time);
  if (r.has_box ())
    j["box"] = Json { {"x", r.box_x}, {"y", r.box_y}, {"width", r.box_width},
        {"height", r.box_height} };
  return j;
}

static Json
action_json (GstBaseTransform * trans, const ActionEvent & a, const Stamp & stamp)
{
  const bool end = a.phase == GST_VIDCLS_ACTION_PHASE_END;
  Json j = line_head (end ? "action-end" : "action-start", stamp);
  j["stream-id"] = a.stream_id;
  j["object-id"] = a.object_id;
  j["action-id"] = a.id;
  j["label"] = a.label;
  j["class-id"] = a.class_id;
  j["start"] = time_value (a.start);
  j["start-running-time"] = time_value (GST_CLOCK_TIME_IS_VALID (a.start_running_time)
      ? a.start_running_time : running_time (trans, a.start));
  if (end) {
    j["end"] = time_value (a.end);
    j["end-running-time"] = time_value (GST_CLOCK_TIME_IS_VALID (a.end_running_time)
        ? a.end_running_time : running_time (trans, a.end));
    /* The meta has no reason; the event and the bus message have. */
    j["reason"] = a.reason != vidcls::gst::EndReason::kNone
        ? Json (vidcls::gst::end_reason_name (a.reason)) : Json (nullptr);
  }
  j["peak-score"] = score_value (a.peak_score);
  j["mean-score"] = score_value (a.mean_score);
  j["clips"] = a.n_clips;
  j["model"] = a.model;
  return j;
}

static Stamp
next_stamp (GstVidclsPublishPrivate * priv)
{
  GDateTime *now = g_date_time_new_now_utc ();
  gchar *text = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");
  Stamp stamp{priv->seq++, priv->element_name, text != nullptr ? text : ""};
  g_free (text);
  g_date_time_unref (now);
  return stamp;
}

static bool
write_all (int fd, const std::string & data)
{
  size_t done = 0;
  while (done < data.size ()) {
    const ssize_t n = write (fd, data.data () + done, data.size () - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    done += static_cast<size_t> (n);
  }
  return true;
}

/* One line to the file and the broker's queue. False (error posted) when the file write
 * failed. */
static bool
publish (GstVidclsPublish * self, const Json & j)
{
  GstVidclsPublishPrivate *priv = self->priv;
  /* Labels come from checkpoints: a byte that is not UTF-8 becomes U+FFFD rather than an
   * exception. */
  std::string line = j.dump (-1, ' ', false, Json::error_handler_t::replace);
  GST_LOG_OBJECT (self, "%s", line.c_str ());
  if (priv->fd >= 0) {
    if (!write_all (priv->fd, line + "\n")) {
      const int err = errno;
      GST_ELEMENT_ERROR (self, RESOURCE, WRITE, ("Could not write to \"%s\": %s",
              priv->active.file_path.c_str (), g_strerror (err)),
          ("Line %" G_GUINT64_FORMAT " was not written; check the disk space and permissions "
              "of the file", j["seq"].get<guint64> ()));
      return false;
    }
    priv->lines_written++;
  }
  if (priv->mqtt)
    priv->mqtt->push (std::move (line));
  else
    notify_counters (self);
  return true;
}

/* ------------------------------------------------------------------ start and stop */

static bool
open_file (GstVidclsPublish * self, const Settings & s)
{
  GstVidclsPublishPrivate *priv = self->priv;
  if (s.file_path.empty ())
    return true;
  if (s.file_path == "-") {
    priv->fd = STDOUT_FILENO;
    priv->own_fd = false;
    return true;
  }
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC
      | (s.file_mode == GST_VIDCLS_PUBLISH_FILE_TRUNCATE ? O_TRUNC : O_APPEND);
  priv->fd = open (s.file_path.c_str (), flags, 0666);
  if (priv->fd < 0) {
    const int err = errno;
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE, ("Could not open \"%s\" for writing: %s",
            s.file_path.c_str (), g_strerror (err)),
        ("Set file-path to a file in a folder that exists and that you may write to"));
    return false;
  }
  priv->own_fd = true;
  return true;
}

static void
close_file (GstVidclsPublishPrivate * priv)
{
  if (priv->fd >= 0 && priv->own_fd)
    close (priv->fd);
  priv->fd = -1;
  priv->own_fd = false;
}

/* The password of `s.username`, from password-file or password-env, into `out`; false (error
 * posted, naming the file or variable and never the content) when it cannot be had. */
static bool
read_password (GstVidclsPublish * self, const Settings & s, std::string * out)
{
  if (s.password_file.empty () && s.password_env.empty ())
    return true;
  if (!s.password_file.empty () && !s.password_env.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("password-file and password-env are both "
            "set"), ("Set one of them"));
    return false;
  }
  if (s.username.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("A password without a user name"),
        ("MQTT sends a password only with a user name: set username"));
    return false;
  }
  if (!s.password_env.empty ()) {
    const gchar *value = g_getenv (s.password_env.c_str ());
    if (value == nullptr) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("The environment variable %s (password-env) "
              "is not set", s.password_env.c_str ()), ("Set it to the MQTT password of user "
              "\"%s\" in the process's environment", s.username.c_str ()));
      return false;
    }
    *out = value;
    return true;
  }
  gchar *content = nullptr;
  gsize length = 0;
  GError *error = nullptr;
  if (!g_file_get_contents (s.password_file.c_str (), &content, &length, &error)) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("Cannot read the password file \"%s\": %s",
            s.password_file.c_str (), error->message), (nullptr));
    g_error_free (error);
    return false;
  }
  std::string password (content, length);
  memset (content, 0, length);
  g_free (content);
  if (!password.empty () && password.back () == '\n')
    password.pop_back ();
  if (!password.empty () && password.back () == '\r')
    password.pop_back ();
  if (password.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("The password file \"%s\" is empty",
            s.password_file.c_str ()), ("Write the MQTT password of user \"%s\" in it",
            s.username.c_str ()));
    return false;
  }
  struct stat st;
  if (stat (s.password_file.c_str (), &st) == 0 && (st.st_mode & S_IROTH))
    GST_WARNING_OBJECT (self, "the password file %s can be read by every user",
        s.password_file.c_str ());
  *out = std::move (password);
  return true;
}

/* The broker settings, checked: false (error posted) when nothing could ever work. */
static bool
mqtt_settings (GstVidclsPublish * self, const Settings & s, vidcls::engine::MqttSettings * out)
{
  std::string problem;
  if (!MqttPublisher::parse_address (s.address, &out->host, &out->port, &problem)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("Invalid MQTT broker address \"%s\": %s",
            s.address.c_str (), problem.c_str ()), (nullptr));
    return false;
  }
  if (s.topic.empty () || mosquitto_pub_topic_check (s.topic.c_str ()) != MOSQ_ERR_SUCCESS) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("Invalid MQTT topic \"%s\"",
            s.topic.c_str ()), ("Set topic to a name without + and # wildcards, e.g. "
            "vidcls/results"));
    return false;
  }
  if (s.tls_cert_file.empty () != s.tls_key_file.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("tls-cert-file and tls-key-file go "
            "together"), ("Set both for a client certificate, or neither"));
    return false;
  }
  for (const std::string *f : {&s.tls_ca_file, &s.tls_cert_file, &s.tls_key_file}) {
    if (!f->empty () && access (f->c_str (), R_OK) != 0) {
      const int err = errno;
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("Cannot read the TLS file \"%s\": %s",
              f->c_str (), g_strerror (err)), (nullptr));
      return false;
    }
  }
  if (!read_password (self, s, &out->password))
    return false;
  out->username = s.username;
  out->topic = s.topic;
  out->client_id = s.client_id;
  if (out->client_id.empty ()) {
    gchar id[32];
    g_snprintf (id, sizeof id, "vidcls-%06x%06x", g_random_int () & 0xffffff,
        g_random_int () & 0xffffff);
    out->client_id = id;
  }
  out->qos = static_cast<int> (s.qos);
  out->keepalive_s = static_cast<int> (s.keepalive);
  out->tls = s.tls || !s.tls_ca_file.empty () || !s.tls_cert_file.empty ();
  out->ca_file = s.tls_ca_file;
  out->cert_file = s.tls_cert_file;
  out->key_file = s.tls_key_file;
  out->max_queued = s.max_queued;
  out->reconnect_delay = std::chrono::milliseconds (s.reconnect_delay);
  out->reconnect_delay_max = std::chrono::milliseconds (s.reconnect_delay_max);
  return true;
}

/* What the publisher's thread says, as bus messages. */
static void
on_mqtt_event (GstVidclsPublish * self, const Settings & s, MqttEvent event,
    const std::string & detail)
{
  const gchar *address = s.address.c_str ();
  switch (event) {
    case MqttEvent::kUnreachable:
      GST_ELEMENT_WARNING (self, RESOURCE, OPEN_WRITE, ("Cannot reach the MQTT broker at %s: "
              "%s", address, detail.c_str ()), ("The stream goes on: results are kept (up to "
              "max-queued=%u, the oldest dropped beyond) and published when the broker can be "
              "reached; trying again after %u ms, then up to every %u ms. Check the address, "
              "that the broker runs, and the TLS settings", s.max_queued, s.reconnect_delay,
              s.reconnect_delay_max));
      break;
    case MqttEvent::kLost:
      GST_ELEMENT_WARNING (self, RESOURCE, WRITE, ("Lost the connection to the MQTT broker at "
              "%s: %s", address, detail.c_str ()), ("The stream goes on: results are kept (up "
              "to max-queued=%u) and published when the broker is back", s.max_queued));
      break;
    case MqttEvent::kRefused:
      if (s.username.empty ())
        GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED, ("The MQTT broker at %s refused a "
                "connection without credentials: %s", address, detail.c_str ()), ("Set "
                "username, and password-file or password-env"));
      else
        GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED, ("The MQTT broker at %s refused "
                "user \"%s\": %s", address, s.username.c_str (), detail.c_str ()), ("Check "
                "username and the password in %s %s (not shown)", s.password_env.empty () ?
                "password-file" : "password-env", s.password_env.empty () ?
                s.password_file.c_str () : s.password_env.c_str ()));
      break;
    case MqttEvent::kConnected:
      GST_ELEMENT_INFO (self, RESOURCE, OPEN_WRITE, ("Connected to the MQTT broker at %s",
              address), ("Publishing the results kept meanwhile"));
      break;
    case MqttEvent::kCountersChanged:
      notify_counters (self);
      break;
  }
}

static gboolean
gst_vidcls_publish_start (GstBaseTransform * trans)
{
  GstVidclsPublish *self = GST_VIDCLS_PUBLISH (trans);
  GstVidclsPublishPrivate *priv = self->priv;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    priv->active = priv->settings;
    priv->final_counters = MqttCounters ();
    priv->to_broker = !priv->settings.address.empty ();
  }
  const Settings & s = priv->active;
  priv->seq = 0;
  priv->lines_written = 0;
  priv->drained = false;
  gchar *name = gst_object_get_name (GST_OBJECT (self));
  priv->element_name = name != nullptr ? name : "";
  g_free (name);

  if (s.file_path.empty () && s.address.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("Nothing to publish to"),
        ("Set file-path (a file, or - for standard output), address (an MQTT broker, "
            "host:port), or both"));
    return FALSE;
  }
  vidcls::engine::MqttSettings ms;
  if (!s.address.empty () && !mqtt_settings (self, s, &ms))
    return FALSE;
  if (!open_file (self, s))
    return FALSE;
  if (s.address.empty ())
    return TRUE;

  auto mqtt = std::make_unique<MqttPublisher> (ms,
      [self, s] (MqttEvent event, const std::string & detail) {
        on_mqtt_event (self, s, event, detail);
      });
  std::string error;
  if (!mqtt->start (&error)) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, ("Could not start publishing to %s: %s",
            s.address.c_str (), error.c_str ()), (nullptr));
    close_file (priv);
    return FALSE;
  }
  GST_INFO_OBJECT (self, "publishing to %s, topic %s, client id %s, qos %d",
      s.address.c_str (), ms.topic.c_str (), ms.client_id.c_str (), ms.qos);
  std::lock_guard<std::mutex> guard (priv->lock);
  priv->mqtt = std::move (mqtt);
  return TRUE;
}

/* Gives the broker flush-timeout to take the queue; warns about what it did not take. */
static void
drain_queue (GstVidclsPublish * self)
{
  GstVidclsPublishPrivate *priv = self->priv;
  if (!priv->mqtt || priv->drained)
    return;
  priv->drained = true;
  const guint timeout = priv->active.flush_timeout;
  const guint64 left = priv->mqtt->drain (std::chrono::milliseconds (timeout));
  if (left > 0) {
    GST_ELEMENT_WARNING (self, RESOURCE, WRITE, ("%" G_GUINT64_FORMAT " results were not "
            "delivered to the MQTT broker at %s", left, priv->active.address.c_str ()),
        ("The broker did not take them within flush-timeout (%u ms); they are dropped when "
            "the element stops. Check the broker, or raise flush-timeout", timeout));
  }
}

static gboolean
gst_vidcls_publish_stop (GstBaseTransform * trans)
{
  GstVidclsPublish *self = GST_VIDCLS_PUBLISH (trans);
  GstVidclsPublishPrivate *priv = self->priv;
  drain_queue (self);
  std::unique_ptr<MqttPublisher> mqtt;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    if (priv->mqtt)
      priv->final_counters = priv->mqtt->counters ();
    mqtt = std::move (priv->mqtt);
  }
  if (mqtt) {
    mqtt->stop ();
    std::lock_guard<std::mutex> guard (priv->lock);
    priv->final_counters = mqtt->counters ();   /* after the last acknowledgement */
  }
  close_file (priv);
  return TRUE;
}

/* ------------------------------------------------------------------ streaming */

static gboolean
gst_vidcls_publish_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstVidclsPublish *self = GST_VIDCLS_PUBLISH (trans);
  if (const GstStructure *s = vidcls::gst::result_event_structure (event)) {
    ClipResult r;
    ActionEvent a;
    if (vidcls::gst::clip_result_from_structure (s, &r))
      publish (self, classification_json (trans, r, next_stamp (self->priv)));
    else if (vidcls::gst::action_from_structure (s, &a))
      publish (self, action_json (trans, a, next_stamp (self->priv)));
    else
      GST_WARNING_OBJECT (self, "result event without its fields: %" GST_PTR_FORMAT, s);
  } else if (GST_EVENT_TYPE (event) == GST_EVENT_EOS) {
    drain_queue (self);
  } else if (GST_EVENT_TYPE (event) == GST_EVENT_STREAM_START) {
    self->priv->drained = false;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

static GstFlowReturn
gst_vidcls_publish_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstVidclsPublish *self = GST_VIDCLS_PUBLISH (trans);
  /* In the order the metas were attached: an action follows the classification it was
   * decided on. */
  gpointer state = nullptr;
  while (GstMeta *meta = gst_buffer_iterate_meta (buf, &state)) {
    bool ok = true;
    if (meta->info->api == GST_VIDCLS_CLASSIFICATION_META_API_TYPE) {
      const ClipResult r = vidcls::gst::clip_result_from_meta (
          reinterpret_cast<GstVidclsClassificationMeta *> (meta));
      ok = publish (self, classification_json (trans, r, next_stamp (self->priv)));
    } else if (meta->info->api == GST_VIDCLS_ACTION_META_API_TYPE) {
      const ActionEvent a = vidcls::gst::action_from_meta (
          reinterpret_cast<GstVidclsActionMeta *> (meta));
      ok = publish (self, action_json (trans, a, next_stamp (self->priv)));
    }
    if (!ok)
      return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}
