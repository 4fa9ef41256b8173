/* The vidcls result plugin: the elements after inference. No LibTorch here. */
#include <gst/gst.h>

#include "gstvidclsaction.h"
#include "gstvidclsoverlay.h"
#include "gstvidclspublish.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;
  ret |= GST_ELEMENT_REGISTER (vidclsaction, plugin);
  ret |= GST_ELEMENT_REGISTER (vidclsoverlay, plugin);
  ret |= GST_ELEMENT_REGISTER (vidclspublish, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, vidclsresults,
    "Results of video classification: action events, JSON lines and MQTT, overlays",
    plugin_init, VIDCLS_VERSION, "LGPL", "vidcls", "https://example.invalid/vidcls")
