// Test frames for the pipeline benchmarks, rendered into memory up front so that the source's
// cost is not counted: `videotestsrc pattern=ball num-buffers=N ! caps`.
#pragma once

#include <gst/gst.h>

#include <string>
#include <vector>

namespace vidcls_bench {

inline std::vector<GstBuffer *> render(const std::string &caps, int frames) {
  const std::string desc = "videotestsrc pattern=ball num-buffers=" + std::to_string(frames) +
                           " ! " + caps + " ! appsink name=out sync=false";
  GstElement *pipeline = gst_parse_launch(desc.c_str(), nullptr);
  std::vector<GstBuffer *> out;
  if (pipeline == nullptr) return out;
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  for (;;) {
    GstSample *sample = nullptr;
    g_signal_emit_by_name(sink, "pull-sample", &sample);
    if (sample == nullptr) break;
    out.push_back(gst_buffer_ref(gst_sample_get_buffer(sample)));
    gst_sample_unref(sample);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  return out;
}

}  // namespace vidcls_bench
