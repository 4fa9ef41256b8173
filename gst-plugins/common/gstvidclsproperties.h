/* The GObject property patterns every vidcls element shares, written once: enum types
 * registered on first use and marked as plugin API, the `silent` switch with the read-only
 * counters it announces (videorate's pattern: notify only when asked, so nobody pays a signal
 * per buffer), and a read-only `stats` structure for statistics that a user reads rather than
 * sets (rtpjitterbuffer's and srtsink's pattern).
 */
#pragma once

#include <gst/gst.h>

#include <initializer_list>

namespace vidcls {
namespace gst {

/* The GType of an enum of element properties: registered once (thread-safe; `type` is the
 * caller's static, 0 at first) and marked as plugin API so that gst-inspect-1.0 documents it. */
GType enum_type_once (GType *type, const gchar *name, const GEnumValue *values);

/* The `silent` property, TRUE by default: the counters named in `counters` (for the blurb, e.g.
 * "notify::frames-in, ...") are announced only when it is FALSE. */
GParamSpec *silent_param_spec (const gchar *counters);

/* A read-only guint64 counter. */
GParamSpec *counter_param_spec (const gchar *name, const gchar *nick, const gchar *blurb);

/* A read-only GstStructure property (a copy of the statistics each time it is read), "stats"
 * unless named otherwise. */
GParamSpec *stats_param_spec (const gchar *blurb, const gchar *name = "stats");

/* Emits notify:: for each of `changed` unless `silent`. Call it outside the element's locks: a
 * handler may read the properties. */
void notify_counters (GObject *object, gboolean silent,
    std::initializer_list<GParamSpec *> changed);

}  // namespace gst
}  // namespace vidcls
