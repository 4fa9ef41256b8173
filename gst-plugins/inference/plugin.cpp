/* The vidcls GStreamer plugin: vidclsclipper, vidclsroireplay, vidclsinfer, vividinfer,
 * resnetvitinfer. */
#include <gst/gst.h>

#include "gstresnetvitinfer.h"
#include "gstvidclsclipper.h"
#include "gstvidclsgenericinfer.h"
#include "gstvidclsroireplay.h"
#include "gstvividinfer.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;
  ret |= GST_ELEMENT_REGISTER (vidclsclipper, plugin);
  ret |= GST_ELEMENT_REGISTER (vidclsroireplay, plugin);
  ret |= GST_ELEMENT_REGISTER (vidclsinfer, plugin);
  ret |= GST_ELEMENT_REGISTER (vividinfer, plugin);
  ret |= GST_ELEMENT_REGISTER (resnetvitinfer, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, vidcls,
    "Video classification with ViViT, Mini-ViViT, ResNet + Temporal ViT and published "
    "Kinetics-400 classifiers (LibTorch)",
    plugin_init, VIDCLS_VERSION, "LGPL", "vidcls", "https://example.invalid/vidcls")
