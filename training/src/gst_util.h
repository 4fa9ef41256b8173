// Small GStreamer helpers shared by the video reader and writer.
#pragma once

#include <gst/gst.h>

#include <string>

namespace vidcls::train::detail {

// gst_init once per process, whoever calls first (an application may have done it already).
void ensure_gst_initialized();

// Whether the element factory exists in the registry.
bool have_element(const char *factory);

// "message (element)" of an ERROR message, for exception texts.
std::string error_text(GstMessage *error);

// Sets `pipeline` to NULL and drops it and `bus` (each may be null); both become null.
void release_pipeline(GstElement *&pipeline, GstBus *&bus);

// Pops the first ERROR message on `bus`, waiting up to `timeout`; the text, or "" if none.
std::string pop_error(GstBus *bus, GstClockTime timeout = 0);

}  // namespace vidcls::train::detail
