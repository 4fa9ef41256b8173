// vidcls-classify: classifies every clip of one or more video files with a vidcls checkpoint.
//
//   vidcls-classify --model m.safetensors video.mp4 [more.mp4 ...] [--json] [--batch-size N]
//
// runs, per file,  filesrc ! decodebin ! videoconvert ! vidclsclipper ! <infer> ! fakesink
// where <infer> is vividinfer or resnetvitinfer, chosen from the checkpoint's architecture, with
// model=... mode=sync model-instance-id=vidcls-classify batch-size=N, and prints one line per
// "vidcls-classification" element message on the bus:
//
//   0.000-1.067  slide_left  0.934
//
// (start-end in seconds, top-1 label and score; "(partial)" after clips completed at end of
// stream from fewer frames), or with --json the whole message as one JSON object per line.
//
// Several files play at once, one pipeline each, so a file that cannot be read fails alone; their
// inference elements share one model instance, whose worker classifies the clips of all files
// together in batches of up to N (default: the number of files). Lines are then prefixed with the
// file ("a.mp4  0.000-1.067  slide_left  0.934"), JSON objects get a "file" field, and a last
// line on stderr says how many clips the model ran in how many batches.
//
// It does not link LibTorch: the architecture is read from the safetensors header here, and the
// model runs inside the plugin.

#include <gst/gst.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "plugin_path.h"

namespace {

constexpr const char *kMessageName = "vidcls-classification";
// The model instance all the files of a run share, and the most clips one forward pass can take
// (the inference elements' batch-size maximum).
constexpr const char *kInstanceId = "vidcls-classify";
constexpr unsigned kMaxBatchSize = 64;
// The safetensors format caps its JSON header at 100 MB; a bigger length means another format.
constexpr std::uint64_t kMaxHeaderSize = 100u * 1000u * 1000u;

// ---------------------------------------------------------------- checkpoint

// The "vidcls.architecture" of a checkpoint, or nullopt with `error` set.
std::optional<std::string> read_architecture(const std::string &path, std::string &error) {
  if (g_file_test(path.c_str(), G_FILE_TEST_EXISTS) &&
      !g_file_test(path.c_str(), G_FILE_TEST_IS_REGULAR)) {
    error = "the model '" + path + "' is not a regular file";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot open the model '" + path + "': " + g_strerror(errno);
    return std::nullopt;
  }
  in.seekg(0, std::ios::end);
  const std::streamoff file_size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (!in || file_size < 0) {
    error = "cannot read the model '" + path + "' (is it a regular file?)";
    return std::nullopt;
  }

  unsigned char len_bytes[8];
  if (file_size < 8 || !in.read(reinterpret_cast<char *>(len_bytes), sizeof len_bytes)) {
    error = "the model '" + path + "' is too short to be a safetensors file";
    return std::nullopt;
  }
  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; i--) header_size = (header_size << 8) | len_bytes[i];
  if (header_size > kMaxHeaderSize || header_size > static_cast<std::uint64_t>(file_size) - 8) {
    error = "the model '" + path + "' is not a safetensors file (header length " +
            std::to_string(header_size) + " does not fit its " + std::to_string(file_size) +
            " bytes)";
    return std::nullopt;
  }
  std::string header(header_size, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(header_size))) {
    error = "cannot read the header of the model '" + path + "'";
    return std::nullopt;
  }

  const nlohmann::json j = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    error = "the model '" + path + "' has no valid safetensors JSON header";
    return std::nullopt;
  }
  const auto meta = j.find("__metadata__");
  if (meta == j.end() || !meta->is_object()) {
    error = "the model '" + path +
            "' is a safetensors file without __metadata__: a bare "
            "weight file, not a vidcls checkpoint";
    return std::nullopt;
  }
  const auto arch = meta->find("vidcls.architecture");
  if (arch == meta->end() || !arch->is_string()) {
    error = "the model '" + path +
            "' is not a vidcls checkpoint (no 'vidcls.architecture' in "
            "its __metadata__)";
    return std::nullopt;
  }
  return arch->get<std::string>();
}

// The inference element for an architecture, or nullptr.
const char *infer_element_for(const std::string &architecture) {
  if (architecture == "vivit" || architecture == "mini-vivit") return "vividinfer";
  if (architecture == "resnet-tvit") return "resnetvitinfer";
  return nullptr;
}

// ---------------------------------------------------------------- results

std::string seconds(guint64 ns) {
  if (ns == GST_CLOCK_TIME_NONE) return "?";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ns) / GST_SECOND);
  return buf;
}

// `prefix` goes before the line: "" for one file, "FILE  " for several.
void print_text(const GstStructure *s, const std::string &prefix) {
  guint64 start = GST_CLOCK_TIME_NONE, end = GST_CLOCK_TIME_NONE;
  gst_structure_get_uint64(s, "start", &start);
  gst_structure_get_uint64(s, "end", &end);
  const gchar *label = gst_structure_get_string(s, "label");
  gdouble score = 0.0;
  const bool has_score = gst_structure_get_double(s, "score", &score);
  gboolean partial = FALSE;
  gst_structure_get_boolean(s, "partial", &partial);

  std::string line = prefix + seconds(start) + "-" + seconds(end) + "  ";
  if (label && *label && has_score) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", score);
    line += std::string(label) + "  " + buf;
  } else {
    line += "(no label above the threshold)";
  }
  if (partial) line += "  (partial)";
  std::cout << line << std::endl;
}

nlohmann::json to_json(const GValue *v) {
  const GType t = G_VALUE_TYPE(v);
  if (t == G_TYPE_STRING) {
    const gchar *str = g_value_get_string(v);
    return str ? nlohmann::json(str) : nlohmann::json();
  }
  if (t == G_TYPE_BOOLEAN) return static_cast<bool>(g_value_get_boolean(v));
  if (t == G_TYPE_INT) return g_value_get_int(v);
  if (t == G_TYPE_UINT) return g_value_get_uint(v);
  if (t == G_TYPE_INT64) return g_value_get_int64(v);
  if (t == G_TYPE_UINT64) {
    // GStreamer's "none" for times and counts.
    const guint64 u = g_value_get_uint64(v);
    return u == GST_CLOCK_TIME_NONE ? nlohmann::json() : nlohmann::json(u);
  }
  if (t == G_TYPE_DOUBLE || t == G_TYPE_FLOAT) {
    const double d = t == G_TYPE_DOUBLE ? g_value_get_double(v) : g_value_get_float(v);
    return std::isfinite(d) ? nlohmann::json(d) : nlohmann::json();
  }
  if (t == GST_TYPE_ARRAY || t == GST_TYPE_LIST) {
    nlohmann::json a = nlohmann::json::array();
    const guint n = t == GST_TYPE_ARRAY ? gst_value_array_get_size(v) : gst_value_list_get_size(v);
    for (guint i = 0; i < n; i++) {
      a.push_back(to_json(t == GST_TYPE_ARRAY ? gst_value_array_get_value(v, i)
                                              : gst_value_list_get_value(v, i)));
    }
    return a;
  }
  gchar *str = gst_value_serialize(v);
  nlohmann::json out = str ? nlohmann::json(str) : nlohmann::json();
  g_free(str);
  return out;
}

// `file`, when not null, is added as the "file" field.
void print_json(const GstStructure *s, const char *file) {
  nlohmann::json obj = nlohmann::json::object();
  gst_structure_foreach(
      s,
      [](GQuark field, const GValue *value, gpointer data) -> gboolean {
        (*static_cast<nlohmann::json *>(data))[g_quark_to_string(field)] = to_json(value);
        return TRUE;
      },
      &obj);
  if (file) obj["file"] = file;
  // Labels are user data: never let a bad byte abort the run.
  std::cout << obj.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

// ---------------------------------------------------------------- pipeline

struct Decoding {
  GstElement *convert = nullptr;  // where decodebin's video pad goes
  std::atomic<bool> linked{false};
};

void on_pad_added(GstElement *, GstPad *pad, gpointer data) {
  auto *d = static_cast<Decoding *>(data);
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  const bool video =
      caps && !gst_caps_is_empty(caps) &&
      g_str_has_prefix(gst_structure_get_name(gst_caps_get_structure(caps, 0)), "video/");
  gst_clear_caps(&caps);
  if (!video || d->linked) return;  // audio, subtitles, or a second video stream
  GstPad *sink = gst_element_get_static_pad(d->convert, "sink");
  if (gst_pad_link(pad, sink) == GST_PAD_LINK_OK) d->linked = true;
  gst_object_unref(sink);
}

void on_no_more_pads(GstElement *decodebin, gpointer data) {
  auto *d = static_cast<Decoding *>(data);
  if (d->linked) return;
  GError *err = g_error_new_literal(GST_STREAM_ERROR, GST_STREAM_ERROR_WRONG_TYPE,
                                    "The file has no video stream");
  gst_element_post_message(decodebin, gst_message_new_error(GST_OBJECT(decodebin), err, nullptr));
  g_error_free(err);
}

bool have_element(const char *factory) {
  GstElementFactory *f = gst_element_factory_find(factory);
  if (!f) return false;
  gst_object_unref(f);
  return true;
}

GstElement *make(const char *factory) {
  GstElement *e = gst_element_factory_make(factory, nullptr);
  if (!e) std::cerr << "vidcls-classify: cannot create the element '" << factory << "'\n";
  return e;
}

volatile std::sig_atomic_t interrupts = 0;

void on_sigint(int) { interrupts = interrupts + 1; }

// --verbose: where the plugins come from, folder and file of each element this run uses.
void say_plugins(const vidcls::tools::PluginPath &own, const char *infer_name) {
  if (own.dir.empty())
    std::cerr << "vidcls-classify: no plugin folder of its own found; GStreamer's search path "
                 "only\n";
  else
    std::cerr << "vidcls-classify: plugin folder " << own.dir << " (" << own.where << ")\n";
  const char *path = g_getenv("GST_PLUGIN_PATH");
  std::cerr << "vidcls-classify: GST_PLUGIN_PATH=" << (path ? path : "") << "\n";
  for (const char *name : {"vidclsclipper", infer_name}) {
    GstElementFactory *f = gst_element_factory_find(name);
    GstPlugin *plugin = f ? gst_plugin_feature_get_plugin(GST_PLUGIN_FEATURE(f)) : nullptr;
    const gchar *file = plugin ? gst_plugin_get_filename(plugin) : nullptr;
    std::cerr << "vidcls-classify: " << name << " from " << (file ? file : "(not found)") << "\n";
    if (plugin) gst_object_unref(plugin);
    if (f) gst_object_unref(f);
  }
}

// True when every element the pipeline needs is there; says what to install when not.
bool elements_available(const char *infer_name) {
  for (const char *f : {"vidclsclipper", infer_name}) {
    if (!have_element(f)) {
      std::cerr << "vidcls-classify: the GStreamer element '" << f << "' was not found.\n"
                << "  The tool looks for its plugins in the build tree it runs from, or "
                   "beside its installed self\n"
                << "  (--verbose says where); GST_PLUGIN_PATH adds folders. "
                   "`gst-inspect-1.0 vidcls` says why a plugin does not load.\n";
      return false;
    }
  }
  for (const char *f : {"filesrc", "decodebin", "videoconvert", "fakesink"}) {
    if (!have_element(f)) {
      std::cerr << "vidcls-classify: the GStreamer element '" << f << "' was not found "
                << "(install gstreamer1.0-plugins-base)\n";
      return false;
    }
  }
  return true;
}


// One file of the run: its pipeline, played and ended on its own.
struct Stream {
  std::string video;
  GstElement *pipeline = nullptr;
  GstElement *infer = nullptr;  // owned by the pipeline
  GstBus *bus = nullptr;
  Decoding decoding;
  bool running = false;  // playing, until its end of stream or an error
  bool failed = false;

  ~Stream() {
    if (bus) gst_object_unref(bus);
    if (pipeline) gst_object_unref(pipeline);
  }
};

// How results are printed: as text or JSON, with the file named when there are several.
struct Output {
  bool json = false;
  bool name_files = false;
};

// The counters of the shared model instance, read from one of its elements.
struct InstanceCounters {
  guint64 clips = 0, batches = 0;
  gdouble mean_batch = 0.0;
};

// filesrc ! decodebin ! videoconvert ! vidclsclipper ! INFER ! fakesink for `stream.video`, with
// INFER model=M mode=sync model-instance-id=vidcls-classify batch-size=N; false with the reason
// printed.
bool build_pipeline(Stream &stream, const std::string &model, const char *infer_name,
                    unsigned batch_size) {
  GstElement *pipeline = gst_pipeline_new("vidcls-classify");
  GstElement *src = make("filesrc"), *decode = make("decodebin"), *convert = make("videoconvert"),
             *clipper = make("vidclsclipper"), *infer = make(infer_name), *sink = make("fakesink");
  if (!src || !decode || !convert || !clipper || !infer || !sink) return false;

  // Set as properties, not through a launch line, so any path works (spaces, quotes, '!').
  g_object_set(src, "location", stream.video.c_str(), nullptr);
  g_object_set(infer, "model", model.c_str(), nullptr);
  // Every clip, in order: back-pressure instead of dropping (the default for files anyway).
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(infer), "mode"))
    gst_util_set_object_arg(G_OBJECT(infer), "mode", "sync");
  // One model for all the files, its worker batching their clips: each file holds one clip at a
  // time (sync), so a batch of one clip per file fills at once.
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(infer), "model-instance-id"))
    g_object_set(infer, "model-instance-id", kInstanceId, "batch-size", batch_size, nullptr);

  gst_bin_add_many(GST_BIN(pipeline), src, decode, convert, clipper, infer, sink, nullptr);
  if (!gst_element_link(src, decode) ||
      !gst_element_link_many(convert, clipper, infer, sink, nullptr)) {
    std::cerr << "vidcls-classify: cannot link the pipeline\n";
    gst_object_unref(pipeline);
    return false;
  }
  stream.decoding.convert = convert;
  g_signal_connect(decode, "pad-added", G_CALLBACK(on_pad_added), &stream.decoding);
  g_signal_connect(decode, "no-more-pads", G_CALLBACK(on_no_more_pads), &stream.decoding);
  stream.pipeline = pipeline;
  stream.infer = infer;
  stream.bus = gst_element_get_bus(pipeline);
  return true;
}

// "vidcls-classify: " and, with several files, the file the message is about.
std::string error_prefix(const Stream &stream, const Output &out) {
  return out.name_files ? "vidcls-classify: " + stream.video + ": " : "vidcls-classify: ";
}

// Prints a result, an error or a warning; true when the stream is over (error or EOS), with
// `stream.failed` set on an error.
bool handle_message(GstMessage *msg, Stream &stream, const Output &out) {
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ELEMENT:
      if (gst_message_has_name(msg, kMessageName)) {
        const GstStructure *s = gst_message_get_structure(msg);
        if (out.json)
          print_json(s, out.name_files ? stream.video.c_str() : nullptr);
        else
          print_text(s, out.name_files ? stream.video + "  " : std::string());
      }
      return false;
    case GST_MESSAGE_ERROR: {
      GError *err = nullptr;
      gchar *debug = nullptr;
      gst_message_parse_error(msg, &err, &debug);
      std::cerr << error_prefix(stream, out) << "error from "
                << GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)) << ": " << err->message << "\n";
      if (debug) std::cerr << debug << "\n";
      g_free(debug);
      g_error_free(err);
      stream.failed = true;
      return true;
    }
    case GST_MESSAGE_WARNING: {
      GError *err = nullptr;
      gst_message_parse_warning(msg, &err, nullptr);
      std::cerr << error_prefix(stream, out) << "warning from "
                << GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)) << ": " << err->message << "\n";
      g_error_free(err);
      return false;
    }
    case GST_MESSAGE_EOS:
      return true;
    default:
      return false;
  }
}

// Stops a stream, first reading the instance counters from its element: they read 0 once the
// last element of the instance has stopped, so the last stream to end has the totals.
void finish(Stream &stream, InstanceCounters &counters) {
  guint streams = 0;
  InstanceCounters now;
  GstStructure *stats = nullptr;
  g_object_get(stream.infer, "stats", &stats, nullptr);
  gst_structure_get_uint(stats, "instance-streams", &streams);
  gst_structure_get_uint64(stats, "instance-clips", &now.clips);
  gst_structure_get_uint64(stats, "instance-batches", &now.batches);
  gst_structure_get_double(stats, "instance-mean-batch", &now.mean_batch);
  gst_structure_free(stats);
  if (streams > 0 && now.batches >= counters.batches) counters = now;
  gst_element_set_state(stream.pipeline, GST_STATE_NULL);
  stream.running = false;
}

// Sets every pipeline playing. All are paused first: each inference element joins the shared
// model instance there, before any file has sent a clip, so the first batches are full too.
void start_all(std::vector<std::unique_ptr<Stream>> &streams, const Output &out) {
  for (auto &s : streams) s->running = true;
  for (GstState target : {GST_STATE_PAUSED, GST_STATE_PLAYING}) {
    for (auto &s : streams) {
      if (!s->running) continue;
      if (gst_element_set_state(s->pipeline, target) == GST_STATE_CHANGE_FAILURE &&
          !gst_bus_have_pending(s->bus)) {
        std::cerr << error_prefix(*s, out) << "the pipeline could not start\n";
        s->failed = true;
        s->running = false;
        gst_element_set_state(s->pipeline, GST_STATE_NULL);
      }
    }
  }
}

// Handles every message waiting on the stream's bus; true when there was one.
bool poll(Stream &stream, const Output &out, InstanceCounters &counters) {
  const auto types = static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_EOS |
                                                 GST_MESSAGE_ELEMENT | GST_MESSAGE_WARNING);
  bool any = false;
  while (stream.running) {
    GstMessage *msg = gst_bus_pop_filtered(stream.bus, types);
    if (!msg) break;
    any = true;
    const bool done = handle_message(msg, stream, out);
    gst_message_unref(msg);
    if (done) finish(stream, counters);
  }
  return any;
}

// Plays every file to its end (or an error, or a second Ctrl-C); 130 after a second Ctrl-C.
int run(std::vector<std::unique_ptr<Stream>> &streams, const Output &out,
        InstanceCounters &counters) {
  start_all(streams, out);
  bool eos_sent = false;
  for (;;) {
    bool running = false, any = false;
    for (auto &s : streams) {
      any = poll(*s, out, counters) || any;
      running = running || s->running;
    }
    if (!running) return 0;
    if (interrupts > 0 && !eos_sent) {
      // Finish cleanly: clips already complete are still reported.
      std::cerr << "vidcls-classify: interrupted, finishing (again to quit now)\n";
      for (auto &s : streams)
        if (s->running) gst_element_send_event(s->pipeline, gst_event_new_eos());
      eos_sent = true;
    } else if (interrupts > 1) {
      for (auto &s : streams)
        if (s->running) finish(*s, counters);
      return 130;
    }
    if (!any) g_usleep(10 * 1000);
  }
}

// The model's inference element, or nullptr with the reason printed.
const char *infer_element_of(const std::string &model) {
  std::string error;
  const std::optional<std::string> architecture = read_architecture(model, error);
  if (!architecture) {
    std::cerr << "vidcls-classify: " << error << "\n";
    return nullptr;
  }
  const char *infer_name = infer_element_for(*architecture);
  if (!infer_name) {
    std::cerr << "vidcls-classify: the model '" << model << "' has architecture '" << *architecture
              << "', which no vidcls element runs (vivit, mini-vivit, "
              << "resnet-tvit)\n";
  }
  return infer_name;
}

}  // namespace

int main(int argc, char **argv) {
  std::string model;
  std::vector<std::string> videos;
  bool json = false;
  unsigned batch_size = 0;
  bool verbose = false;

  CLI::App cli{
      "Classifies every clip of one or more video files with a vidcls checkpoint and prints one "
      "line per clip: start-end (s), top label, score. Several files play at once and share "
      "one model, which classifies their clips together in batches.",
      "vidcls-classify"};
  cli.footer(
      "\nThe inference element (vividinfer or resnetvitinfer) follows the checkpoint's "
      "architecture.\nText output, one line per clip:  0.000-1.067  slide_left  0.934\n"
      "With several files each line starts with its file (a.mp4  0.000-1.067  slide_left  "
      "0.934),\nJSON objects get a \"file\" field, and a last line on stderr counts the clips "
      "and batches.\nA file that cannot be read fails alone: the others are still classified.\n"
      "The vidcls plugins are those of the build tree when the tool runs from it, else those "
      "installed with it\n(GST_PLUGIN_PATH adds others; --verbose says which are used). Exit "
      "status: 0 when every "
      "file reached its end, 1 on an error in any file, 2 on a usage error.");
  cli.add_option("--model,-m", model, "vidcls checkpoint (.safetensors)")
      ->required()
      ->option_text("CKPT");
  cli.add_option("video", videos, "video files (any format decodebin can read)")
      ->required()
      ->option_text("VIDEO...");
  cli.add_flag("--json", json,
               "one JSON object per clip with every field of the vidcls-classification "
               "message (times in ns)");
  cli.add_option("--batch-size", batch_size,
                 "most clips in one forward pass of the model, of all files together "
                 "(default: the number of files, at most 64)")
      ->check(CLI::Range(1u, kMaxBatchSize))
      ->option_text("N");
  cli.add_flag("--verbose,-v", verbose,
               "say on stderr which plugin folder the tool uses and which file each vidcls "
               "element comes from");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    // --help is a ParseError with exit code 0; usage errors exit 2, as getopt tools do.
    return cli.exit(e) == 0 ? 0 : 2;
  }
  if (batch_size == 0)
    batch_size = static_cast<unsigned>(std::min<std::size_t>(videos.size(), kMaxBatchSize));

  const char *infer_name = infer_element_of(model);
  if (!infer_name) return 1;
  const auto own = vidcls::tools::use_own_plugins();
  gst_init(nullptr, nullptr);
  if (verbose) say_plugins(own, infer_name);
  if (!elements_available(infer_name)) return 1;

  std::vector<std::unique_ptr<Stream>> streams;
  for (const std::string &video : videos) {
    streams.push_back(std::make_unique<Stream>());
    streams.back()->video = video;
    if (!build_pipeline(*streams.back(), model, infer_name, batch_size)) return 1;
  }
  const Output out{json, videos.size() > 1};
  std::signal(SIGINT, on_sigint);
  InstanceCounters counters;
  const int interrupted = run(streams, out, counters);
  if (out.name_files) {
    char mean[32];
    std::snprintf(mean, sizeof mean, "%.2f", counters.mean_batch);
    std::cerr << "vidcls-classify: " << videos.size() << " streams, " << counters.clips
              << " clips in " << counters.batches << " batches (mean batch " << mean << ")\n";
  }
  if (interrupted) return interrupted;
  for (const auto &s : streams)
    if (s->failed) return 1;
  return 0;
}
