// vidcls-meta-reader: runs a pipeline and prints every classification result that reaches its
// sink, read from the GstVidclsClassificationMeta on the buffers (not from bus messages).
// It is the smallest complete example of an application using the public meta API:
//
//   vidcls-meta-reader filesrc location=v.mp4 ! decodebin ! videoconvert ! vidclsclipper !
//       vividinfer model=m.safetensors ! fakesink                          (one command line)
//
// prints, per result,
//
//   clip 3 [0:00:01.600000000 - 0:00:02.666666666] vivit-tiny: slide_left 0.934
//
// Build it against an installed vidcls with the meson.build beside it (pkg-config
// gstreamer-vidcls-meta-1.0), or by hand:
//
//   g++ -std=c++17 main.cpp $(pkg-config --cflags --libs gstreamer-vidcls-meta-1.0)

#include <gst/gst.h>

// The in-tree test build (pipelines/meson.build) has the header only under its source name;
// applications include it by its installed path.
#ifdef VIDCLS_META_READER_IN_TREE
#include "gstvidclsmeta.h"
#else
#include <gst/vidcls/gstvidclsmeta.h>
#endif

#ifdef G_OS_UNIX
#include <glib-unix.h>

#include <csignal>
#endif

namespace {

struct App {
  GMainLoop *loop = nullptr;
  GstElement *pipeline = nullptr;
  int exit_code = 0;
  bool interrupted = false;
};

void print_results(GstBuffer *buffer) {
  gpointer state = nullptr;
  GstMeta *meta;
  while ((meta = gst_buffer_iterate_meta_filtered(buffer, &state,
                                                  GST_VIDCLS_CLASSIFICATION_META_API_TYPE))) {
    auto *m = reinterpret_cast<GstVidclsClassificationMeta *>(meta);
    const GstVidclsClip &clip = m->clip;
    // Several consumers may print; one g_print per line keeps lines whole.
    if (m->n_results == 0) {
      g_print("clip %" G_GUINT64_FORMAT " [%" GST_TIME_FORMAT " - %" GST_TIME_FORMAT
              "] %s: (no label above the threshold)%s\n",
              clip.index, GST_TIME_ARGS(clip.start), GST_TIME_ARGS(clip.end), m->model,
              clip.partial ? " (partial clip)" : "");
    } else {
      g_print("clip %" G_GUINT64_FORMAT " [%" GST_TIME_FORMAT " - %" GST_TIME_FORMAT
              "] %s: %s %.3f%s\n",
              clip.index, GST_TIME_ARGS(clip.start), GST_TIME_ARGS(clip.end), m->model,
              m->labels[0], m->scores[0], clip.partial ? " (partial clip)" : "");
    }
  }
}

GstPadProbeReturn on_data(GstPad *, GstPadProbeInfo *info, gpointer) {
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    print_results(GST_PAD_PROBE_INFO_BUFFER(info));
  } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    const guint n = gst_buffer_list_length(list);
    for (guint i = 0; i < n; i++) print_results(gst_buffer_list_get(list, i));
  }
  return GST_PAD_PROBE_OK;
}

gboolean on_bus_message(GstBus *, GstMessage *msg, gpointer data) {
  auto *app = static_cast<App *>(data);
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR: {
      GError *err = nullptr;
      gchar *debug = nullptr;
      gst_message_parse_error(msg, &err, &debug);
      gchar *src = gst_object_get_path_string(GST_MESSAGE_SRC(msg));
      g_printerr("ERROR from %s: %s\n", src, err->message);
      if (debug) g_printerr("%s\n", debug);
      g_free(src);
      g_free(debug);
      g_error_free(err);
      app->exit_code = 1;
      g_main_loop_quit(app->loop);
      break;
    }
    case GST_MESSAGE_WARNING: {
      GError *err = nullptr;
      gchar *debug = nullptr;
      gst_message_parse_warning(msg, &err, &debug);
      g_printerr("WARNING: %s\n", err->message);
      g_free(debug);
      g_error_free(err);
      break;
    }
    case GST_MESSAGE_EOS:
      g_main_loop_quit(app->loop);
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

// First Ctrl-C: end the stream cleanly (results of pending clips still arrive); second: quit.
gboolean on_sigint(gpointer data) {
  auto *app = static_cast<App *>(data);
  if (app->interrupted) {
    app->exit_code = 130;
    g_main_loop_quit(app->loop);
    return G_SOURCE_REMOVE;
  }
  app->interrupted = true;
  g_printerr("Interrupt: sending end of stream (again to quit now)\n");
  gst_element_send_event(app->pipeline, gst_event_new_eos());
  return G_SOURCE_CONTINUE;
}

// The sink to watch: the one named --sink, or the pipeline's only sink.
GstElement *find_sink(GstElement *pipeline, const gchar *name) {
  if (name) {
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), name);
    if (!sink) g_printerr("No element named '%s' in the pipeline\n", name);
    return sink;
  }
  GstElement *found = nullptr;
  guint n = 0;
  GstIterator *it = gst_bin_iterate_sinks(GST_BIN(pipeline));
  GValue item = G_VALUE_INIT;
  gboolean done = FALSE;
  while (!done) {
    switch (gst_iterator_next(it, &item)) {
      case GST_ITERATOR_OK:
        if (n++ == 0) found = GST_ELEMENT(g_value_dup_object(&item));
        g_value_reset(&item);
        break;
      case GST_ITERATOR_RESYNC:
        gst_iterator_resync(it);
        gst_clear_object(&found);
        n = 0;
        break;
      default:
        done = TRUE;
        break;
    }
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  if (n != 1) {
    g_printerr(n == 0 ? "The pipeline has no sink\n"
                      : "The pipeline has %u sinks: name the one to watch with --sink NAME\n",
               n);
    gst_clear_object(&found);
  }
  return found;
}

}  // namespace

int main(int argc, char **argv) {
  gchar *sink_name = nullptr;
  const GOptionEntry entries[] = {
      {"sink", 's', 0, G_OPTION_ARG_STRING, &sink_name,
       "Sink element whose input to watch (default: the pipeline's only sink)", "NAME"},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext *ctx = g_option_context_new("PIPELINE-DESCRIPTION");
  g_option_context_set_summary(ctx,
                               "Runs a gst-launch-1.0 style pipeline and prints every vidcls "
                               "classification result (GstVidclsClassificationMeta) that reaches "
                               "its sink.");
  g_option_context_add_main_entries(ctx, entries, nullptr);
  g_option_context_add_group(ctx, gst_init_get_option_group());
  GError *err = nullptr;
  if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
    g_printerr("%s\n", err->message);
    g_clear_error(&err);
    g_option_context_free(ctx);
    return 2;
  }
  if (argc < 2) {
    gchar *help = g_option_context_get_help(ctx, TRUE, nullptr);
    g_printerr("%s", help);
    g_free(help);
    g_option_context_free(ctx);
    return 2;
  }
  g_option_context_free(ctx);

  // As gst-launch-1.0 does: the shell already split the description into words.
  GstElement *pipeline = gst_parse_launchv(const_cast<const gchar **>(argv + 1), &err);
  if (!pipeline) {
    g_printerr("Could not build the pipeline: %s\n", err ? err->message : "unknown error");
    g_clear_error(&err);
    return 1;
  }
  if (err) {  // e.g. an element that does not exist in a branch that could still be built
    g_printerr("Could not build the pipeline: %s\n", err->message);
    g_clear_error(&err);
    gst_object_unref(pipeline);
    return 1;
  }
  // A single element is returned as is; wrap it so it has a bus and a state to run.
  if (!GST_IS_PIPELINE(pipeline)) {
    GstElement *bin = gst_pipeline_new(nullptr);
    gst_bin_add(GST_BIN(bin), pipeline);
    pipeline = bin;
  }

  GstElement *sink = find_sink(pipeline, sink_name);
  g_free(sink_name);
  if (!sink) {
    gst_object_unref(pipeline);
    return 1;
  }
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  if (!pad) {
    g_printerr("%s has no 'sink' pad to watch\n", GST_ELEMENT_NAME(sink));
    gst_object_unref(sink);
    gst_object_unref(pipeline);
    return 1;
  }
  gst_pad_add_probe(
      pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
      on_data, nullptr, nullptr);
  gst_object_unref(pad);
  gst_object_unref(sink);

  App app;
  app.loop = g_main_loop_new(nullptr, FALSE);
  app.pipeline = pipeline;
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_add_watch(bus, on_bus_message, &app);
  gst_object_unref(bus);
#ifdef G_OS_UNIX
  g_unix_signal_add(SIGINT, on_sigint, &app);
#endif

  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    // An element that failed says why in an ERROR message on the bus.
    GstBus *b = gst_element_get_bus(pipeline);
    GstMessage *msg = gst_bus_pop_filtered(b, GST_MESSAGE_ERROR);
    if (msg) {
      on_bus_message(b, msg, &app);
      gst_message_unref(msg);
    } else {
      g_printerr("The pipeline could not start\n");
    }
    gst_object_unref(b);
    app.exit_code = 1;
  } else {
    g_main_loop_run(app.loop);
  }

  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  g_main_loop_unref(app.loop);
  return app.exit_code;
}
