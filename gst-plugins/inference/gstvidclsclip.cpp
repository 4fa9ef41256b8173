#include "gstvidclsclip.h"

#include <nlohmann/json.hpp>

static gboolean
clip_meta_init (GstMeta * meta, gpointer params, GstBuffer * buffer)
{
  GstVidclsClipMeta *m = (GstVidclsClipMeta *) meta;
  m->clip = nullptr;
  m->record = nullptr;
  return TRUE;
}

static void
clip_meta_free (GstMeta * meta, GstBuffer * buffer)
{
  GstVidclsClipMeta *m = (GstVidclsClipMeta *) meta;
  delete m->clip;
  delete m->record;
  m->clip = nullptr;
  m->record = nullptr;
}

static gboolean
clip_meta_transform (GstBuffer * dest, GstMeta * meta, GstBuffer * buffer, GQuark type,
    gpointer data)
{
  GstVidclsClipMeta *m = (GstVidclsClipMeta *) meta;
  /* The clip is the same whatever is done to the frame's pixels: share the tensor on copies. */
  if (GST_META_TRANSFORM_IS_COPY (type) && m->clip != nullptr && m->record != nullptr)
    vidcls::gst::add_clip_meta (dest, *m->clip, *m->record);
  return TRUE;
}

GType
gst_vidcls_clip_meta_api_get_type (void)
{
  static GType type = 0;
  static const gchar *tags[] = { nullptr };
  if (g_once_init_enter (&type)) {
    GType t = gst_meta_api_type_register ("GstVidclsClipMetaAPI", tags);
    g_once_init_leave (&type, t);
  }
  return type;
}

const GstMetaInfo *
gst_vidcls_clip_meta_get_info (void)
{
  static const GstMetaInfo *info = nullptr;
  if (g_once_init_enter (&info)) {
    const GstMetaInfo *mi = gst_meta_register (GST_VIDCLS_CLIP_META_API_TYPE,
        "GstVidclsClipMeta", sizeof (GstVidclsClipMeta), clip_meta_init, clip_meta_free,
        clip_meta_transform);
    g_once_init_leave (&info, mi);
  }
  return info;
}

namespace vidcls {
namespace gst {

namespace {
constexpr const char *kQueryName = "vidcls-clip-spec";
constexpr const char *kEventName = "vidcls-eos-clip";
}  // namespace

GstVidclsClipMeta *
add_clip_meta (GstBuffer *buffer, const torch::Tensor &clip, const ClipRecord &record)
{
  auto *m = (GstVidclsClipMeta *) gst_buffer_add_meta (buffer, gst_vidcls_clip_meta_get_info (),
      nullptr);
  m->clip = new torch::Tensor (clip);
  m->record = new ClipRecord (record);
  return m;
}

GstVidclsClipMeta *
get_clip_meta (GstBuffer *buffer)
{
  return (GstVidclsClipMeta *) gst_buffer_get_meta (buffer, GST_VIDCLS_CLIP_META_API_TYPE);
}

std::vector<GstVidclsClipMeta *>
clip_metas (GstBuffer *buffer)
{
  std::vector<GstVidclsClipMeta *> out;
  gpointer state = nullptr;
  while (GstMeta *m = gst_buffer_iterate_meta_filtered (buffer, &state,
          GST_VIDCLS_CLIP_META_API_TYPE))
    out.push_back ((GstVidclsClipMeta *) m);
  return out;
}

GstQuery *
clip_spec_query_new ()
{
  return gst_query_new_custom (GST_QUERY_CUSTOM, gst_structure_new_empty (kQueryName));
}

bool
is_clip_spec_query (GstQuery *query)
{
  if (GST_QUERY_TYPE (query) != GST_QUERY_CUSTOM)
    return false;
  const GstStructure *s = gst_query_get_structure (query);
  return s != nullptr && gst_structure_has_name (s, kQueryName);
}

void
clip_spec_query_answer (GstQuery *query, const ClipSpec &spec, const std::string &device,
    const std::string &model_name)
{
  GstStructure *s = gst_query_writable_structure (query);
  const std::string json = nlohmann::json (spec).dump ();
  gst_structure_set (s, "clip", G_TYPE_STRING, json.c_str (), "device", G_TYPE_STRING,
      device.c_str (), "model", G_TYPE_STRING, model_name.c_str (), nullptr);
}

bool
clip_spec_query_parse (GstQuery *query, ClipSpec &spec, std::string &device,
    std::string &model_name)
{
  const GstStructure *s = gst_query_get_structure (query);
  const gchar *json = s ? gst_structure_get_string (s, "clip") : nullptr;
  if (json == nullptr)
    return false;
  try {
    spec = nlohmann::json::parse (json).get<ClipSpec> ();
  } catch (const std::exception &) {
    return false;
  }
  const gchar *dev = gst_structure_get_string (s, "device");
  device = dev ? dev : "cpu";
  const gchar *name = gst_structure_get_string (s, "model");
  model_name = name ? name : "";
  return true;
}

GstEvent *
eos_clip_event_new (GstBuffer *carrier)
{
  GstStructure *s = gst_structure_new (kEventName, "carrier", GST_TYPE_BUFFER, carrier, nullptr);
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM, s);
}

GstEvent *
clip_spec_changed_event_new ()
{
  return gst_event_new_custom (GST_EVENT_CUSTOM_UPSTREAM,
      gst_structure_new_empty ("vidcls-clip-spec-changed"));
}

bool
is_clip_spec_changed_event (GstEvent *event)
{
  if (GST_EVENT_TYPE (event) != GST_EVENT_CUSTOM_UPSTREAM)
    return false;
  const GstStructure *s = gst_event_get_structure (event);
  return s != nullptr && gst_structure_has_name (s, "vidcls-clip-spec-changed");
}

GstBuffer *
eos_clip_event_parse (GstEvent *event)
{
  if (GST_EVENT_TYPE (event) != GST_EVENT_CUSTOM_DOWNSTREAM)
    return nullptr;
  const GstStructure *s = gst_event_get_structure (event);
  if (s == nullptr || !gst_structure_has_name (s, kEventName))
    return nullptr;
  const GValue *v = gst_structure_get_value (s, "carrier");
  return v ? gst_value_get_buffer (v) : nullptr;
}

}  // namespace gst
}  // namespace vidcls
