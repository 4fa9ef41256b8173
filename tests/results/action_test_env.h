// Set-up shared by the vidclsaction tests: the build's plugins with a registry of the test's own
// (without LibTorch in the test binary), and reading element messages off a bus.
#pragma once

#include <gst/gst.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "../gst/gst_test_env.h"

namespace action_test {

// The build's plugins with a registry of the test's own (gst_test_env.h), vidclsaction found.
class GstEnvironment : public vidcls_test::GstEnvironment {
 public:
  GstEnvironment() : vidcls_test::GstEnvironment({"vidclsaction"}) {}
};

// What a bus said: element messages (copies), and the first error's and warnings' texts.
struct BusLog {
  std::vector<GstStructure *> messages;
  std::vector<std::string> warnings;  // message, then debug
  std::string error, error_debug;
  bool eos = false;
  BusLog() = default;
  BusLog(const BusLog &) = delete;
  BusLog &operator=(const BusLog &) = delete;
  ~BusLog() {
    for (auto *s : messages) gst_structure_free(s);
  }
  std::vector<const GstStructure *> named(const char *name) const {
    std::vector<const GstStructure *> out;
    for (auto *s : messages)
      if (gst_structure_has_name(s, name)) out.push_back(s);
    return out;
  }
  // Takes one message; true when it ends the run (EOS or ERROR).
  bool take(GstMessage *msg) {
    switch (GST_MESSAGE_TYPE(msg)) {
      case GST_MESSAGE_ELEMENT:
        if (const GstStructure *s = gst_message_get_structure(msg))
          messages.push_back(gst_structure_copy(s));
        return false;
      case GST_MESSAGE_WARNING:
      case GST_MESSAGE_ERROR: {
        GError *err = nullptr;
        gchar *dbg = nullptr;
        if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
          gst_message_parse_warning(msg, &err, &dbg);
          warnings.push_back(std::string(err->message) + "\n" + (dbg ? dbg : ""));
        } else {
          gst_message_parse_error(msg, &err, &dbg);
          error = err->message;
          error_debug = dbg ? dbg : "";
        }
        g_error_free(err);
        g_free(dbg);
        return GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR;
      }
      case GST_MESSAGE_EOS:
        eos = true;
        return true;
      default:
        return false;
    }
  }
  // Every message waiting on `bus` now.
  void drain(GstBus *bus) {
    while (GstMessage *msg = gst_bus_pop(bus)) {
      take(msg);
      gst_message_unref(msg);
    }
  }
};

// Runs `pipeline` to EOS or ERROR (or `timeout_s`), logging its bus; leaves it in NULL.
inline void run_pipeline(GstElement *pipeline, BusLog &log, double timeout_s = 90.0) {
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  const gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(timeout_s * 1e6);
  for (;;) {
    const gint64 left = deadline - g_get_monotonic_time();
    if (left <= 0) {
      log.error = "timed out";
      break;
    }
    GstMessage *msg = gst_bus_timed_pop(bus, left * GST_USECOND);
    if (msg == nullptr) continue;
    const bool done = log.take(msg);
    gst_message_unref(msg);
    if (done) break;
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
}

}  // namespace action_test
