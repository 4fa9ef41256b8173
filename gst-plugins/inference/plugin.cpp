/* The vidcls GStreamer plugin: vidclsclipper, vidclsroireplay, vividinfer, resnetvitinfer. */
#include <gst/gst.h>

#include "gstresnetvitinfer.h"
#include "gstvidclsclipper.h"
#include "gstvidclsroireplay.h"
#include "gstvividinfer.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;
  ret |= GST_ELEMENT_REGISTER (vidclsclipper, plugin);
  ret |= GST_ELEMENT_REGISTER (vidclsroireplay, plugin);
  ret |= GST_ELEMENT_REGISTER (vividinfer, plugin);
  ret |= GST_ELEMENT_REGISTER (resnetvitinfer, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, vidcls,
    "Video classification with ViViT, Mini-ViViT and ResNet + Temporal ViT (LibTorch)",
    plugin_init, VIDCLS_VERSION, "LGPL", "vidcls", "https://example.invalid/vidcls")
