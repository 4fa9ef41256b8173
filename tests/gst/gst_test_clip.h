// The clip meta in element tests (pulls LibTorch's tensor types in through gstvidclsclip.h).
#pragma once

#include <gst/gst.h>

#include <vector>

#include "gst_test_env.h"
#include "gstvidclsclip.h"

namespace vidcls_test {

// The clip meta of the plugin's own registration: tests do not link the plugin's sources, they
// load the plugin, so the meta API type is looked up by name.
inline GstVidclsClipMeta *find_clip_meta(GstBuffer *buf) {
  static GType api = 0;
  if (api == 0) api = g_type_from_name("GstVidclsClipMetaAPI");
  return api ? reinterpret_cast<GstVidclsClipMeta *>(gst_buffer_get_meta(buf, api)) : nullptr;
}

// Every clip meta of the buffer (per-object clips: one per object that completed a clip).
inline std::vector<GstVidclsClipMeta *> find_clip_metas(GstBuffer *buf) {
  std::vector<GstVidclsClipMeta *> out;
  static GType api = 0;
  if (api == 0) api = g_type_from_name("GstVidclsClipMetaAPI");
  gpointer state = nullptr;
  while (GstMeta *m = api ? gst_buffer_iterate_meta_filtered(buf, &state, api) : nullptr)
    out.push_back(reinterpret_cast<GstVidclsClipMeta *>(m));
  return out;
}

}  // namespace vidcls_test
