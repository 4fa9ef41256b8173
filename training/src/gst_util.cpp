#include "gst_util.h"

#include <mutex>

namespace vidcls::train::detail {

void ensure_gst_initialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!gst_is_initialized()) gst_init(nullptr, nullptr);
  });
}

bool have_element(const char *factory) {
  GstElementFactory *f = gst_element_factory_find(factory);
  if (f == nullptr) return false;
  gst_object_unref(f);
  return true;
}

std::string error_text(GstMessage *error) {
  GError *err = nullptr;
  gchar *debug = nullptr;
  gst_message_parse_error(error, &err, &debug);
  std::string text = err != nullptr ? err->message : "unknown error";
  if (GST_MESSAGE_SRC(error) != nullptr) {
    text += std::string(" (") + GST_OBJECT_NAME(GST_MESSAGE_SRC(error)) + ")";
  }
  g_clear_error(&err);
  g_free(debug);
  return text;
}

void release_pipeline(GstElement *&pipeline, GstBus *&bus) {
  if (pipeline != nullptr) {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
    pipeline = nullptr;
  }
  if (bus != nullptr) {
    gst_object_unref(bus);
    bus = nullptr;
  }
}

std::string pop_error(GstBus *bus, GstClockTime timeout) {
  GstMessage *msg = gst_bus_timed_pop_filtered(bus, timeout, GST_MESSAGE_ERROR);
  if (msg == nullptr) return "";
  std::string text = error_text(msg);
  gst_message_unref(msg);
  return text;
}

}  // namespace vidcls::train::detail
