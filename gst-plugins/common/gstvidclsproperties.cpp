#include "gstvidclsproperties.h"

#include <string>

namespace vidcls {
namespace gst {

GType
enum_type_once (GType *type, const gchar *name, const GEnumValue *values)
{
  if (g_once_init_enter (type)) {
    GType t = g_enum_register_static (name, values);
    gst_type_mark_as_plugin_api (t, (GstPluginAPIFlags) 0);
    g_once_init_leave (type, t);
  }
  return *type;
}

GParamSpec *
silent_param_spec (const gchar *counters)
{
  const std::string blurb = std::string ("Do not announce changes of the read-only ")
      + counters + "; reading them works either way";
  /* GParamSpec keeps the blurb: intern it, as G_PARAM_STATIC_STRINGS needs static strings */
  return g_param_spec_boolean ("silent", "Silent", g_intern_string (blurb.c_str ()), TRUE,
      (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
}

GParamSpec *
counter_param_spec (const gchar *name, const gchar *nick, const gchar *blurb)
{
  return g_param_spec_uint64 (name, nick, blurb, 0, G_MAXUINT64, 0,
      (GParamFlags) (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
}

GParamSpec *
stats_param_spec (const gchar *blurb, const gchar *name)
{
  return g_param_spec_boxed (name, "Statistics", blurb, GST_TYPE_STRUCTURE,
      (GParamFlags) (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
}

void
notify_counters (GObject *object, gboolean silent, std::initializer_list<GParamSpec *> changed)
{
  if (silent)
    return;
  for (GParamSpec *pspec : changed) {
    if (pspec != nullptr)
      g_object_notify_by_pspec (object, pspec);
  }
}

}  // namespace gst
}  // namespace vidcls
