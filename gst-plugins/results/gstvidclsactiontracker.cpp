#include "gstvidclsactiontracker.h"

#include <algorithm>
#include <cstring>

namespace vidcls {
namespace gst {

namespace {

bool
valid (GstClockTime t)
{
  return GST_CLOCK_TIME_IS_VALID (t);
}

GstClockTime
midpoint (GstClockTime a, GstClockTime b)
{
  return a <= b ? a + (b - a) / 2 : b + (a - b) / 2;
}

/* b - a, 0 when b is not after a */
GstClockTime
span (GstClockTime a, GstClockTime b)
{
  return b > a ? b - a : 0;
}

}  // namespace

bool
ActionSettings::counts (const std::string &label) const
{
  return actions.empty () || std::find (actions.begin (), actions.end (), label) != actions.end ();
}

std::vector<std::string>
parse_action_list (const char *list)
{
  std::vector<std::string> out;
  if (list == nullptr)
    return out;
  gchar **parts = g_strsplit (list, ",", -1);
  for (gchar **p = parts; *p != nullptr; ++p) {
    g_strstrip (*p);
    if (**p != '\0' && std::find (out.begin (), out.end (), *p) == out.end ())
      out.emplace_back (*p);
  }
  g_strfreev (parts);
  return out;
}

float
ActionTracker::Clip::score (const std::string &label) const
{
  auto it = scores.find (label);
  return it != scores.end () ? it->second.first : 0.f;     /* outside the clip's top-k */
}

ActionTracker::ActionTracker (RunningTimeFn running_time)
  : running_time_ (std::move (running_time))
{
}

GstClockTime
ActionTracker::running_time (const std::string &stream_id, GstClockTime pts) const
{
  if (!running_time_ || !valid (pts))
    return GST_CLOCK_TIME_NONE;
  return running_time_ (stream_id, pts);
}

std::vector<ActionEvent>
ActionTracker::push (const ClipResult &clip, const ActionSettings &s)
{
  std::vector<ActionEvent> ends, starts;
  if (!valid (clip.start) || !valid (clip.end)) {
    ++untimed_clips_;
    return ends;
  }
  if (clip.end < clip.start) {
    ++reversed_clips_;
    return ends;
  }
  labels_seen_.insert (clip.labels.begin (), clip.labels.end ());
  ends = end_idle_tracks (clip, s);

  const Key key {clip.stream_id, clip.object_id};
  auto it = tracks_.find (key);
  if (it == tracks_.end ()) {
    it = tracks_.emplace (key, Track ()).first;
    it->second.stream_id = clip.stream_id;
    it->second.object_id = clip.object_id;
  }
  Track &t = it->second;
  if (t.clips > 0 && clip.start == t.last_start) {
    ++duplicate_clips_;
    return ends;
  }
  if (t.clips > 0 && discontinuous (t, clip, s))
    close_track (t, EndReason::kGap, s, ends);
  add_clip (t, clip, s);
  ++clips_used_;
  decide (t, s, ends, starts);
  ends.insert (ends.end (), starts.begin (), starts.end ());
  return ends;
}

std::vector<ActionEvent>
ActionTracker::finish (EndReason reason, const ActionSettings &s)
{
  std::vector<ActionEvent> out;
  for (auto &entry : tracks_)
    close_track (entry.second, reason, s, out);
  tracks_.clear ();
  return out;
}

/* A track that has had no clip for max-gap of running time while `clip` came: its object left,
 * or its stream was followed by another (concat, a playlist). */
std::vector<ActionEvent>
ActionTracker::end_idle_tracks (const ClipResult &clip, const ActionSettings &s)
{
  std::vector<ActionEvent> out;
  if (s.max_gap == 0)
    return out;
  const GstClockTime now_rt = running_time (clip.stream_id, clip.start);
  for (auto it = tracks_.begin (); it != tracks_.end ();) {
    Track &t = it->second;
    bool idle = false;
    if (t.stream_id == clip.stream_id && t.object_id == clip.object_id)
      idle = false;
    else if (valid (now_rt) && valid (t.last_end_rt))
      idle = now_rt > t.last_end_rt + s.max_gap;
    else if (t.stream_id == clip.stream_id)
      idle = clip.start > t.last_end + s.max_gap;
    if (!idle) {
      ++it;
      continue;
    }
    close_track (t, t.stream_id != clip.stream_id ? EndReason::kStreamChange : EndReason::kGap,
        s, out);
    it = tracks_.erase (it);
  }
  return out;
}

/* A gap of more than max-gap between the track's last clip and this one, or a clip that starts
 * before the last one did (a non-flushing seek back, a looped file). */
bool
ActionTracker::discontinuous (const Track &t, const ClipResult &clip,
    const ActionSettings &s) const
{
  if (clip.start < t.last_start)
    return true;
  return s.max_gap > 0 && clip.start > t.last_end && clip.start - t.last_end > s.max_gap;
}

void
ActionTracker::add_clip (Track &t, const ClipResult &clip, const ActionSettings &s)
{
  Clip c;
  c.start = clip.start;
  c.end = clip.end;
  c.mid = midpoint (clip.start, clip.end);
  for (size_t i = 0; i < clip.labels.size () && i < clip.scores.size (); ++i) {
    const gint id = i < clip.class_ids.size () ? clip.class_ids[i] : -1;
    c.scores.emplace (clip.labels[i], std::make_pair (clip.scores[i], id));
    if (s.counts (clip.labels[i]))
      t.labels.try_emplace (clip.labels[i]);    /* its earlier clips scored 0 */
  }
  t.history.push_back (std::move (c));
  while (t.history.size () > std::max<size_t> (kMinHistory, s.window))
    t.history.pop_front ();
  ++t.clips;
  t.last_start = clip.start;
  t.last_end = clip.end;
  t.last_end_rt = running_time (t.stream_id, clip.end);
  t.model = clip.model;

  /* alpha = 2 / (N + 1): the exponential average whose centre of mass is that of an N-clip
   * moving average, the usual way to relate the two */
  const double alpha = 2.0 / (s.window + 1.0);
  const Clip &now = t.history.back ();
  for (auto &entry : t.labels) {
    const double raw = now.score (entry.first);
    entry.second.ema = t.clips == 1 ? raw : alpha * raw + (1.0 - alpha) * entry.second.ema;
  }
}

double
ActionTracker::smoothed (const Track &t, const std::string &label, const ActionSettings &s) const
{
  if (s.smoothing == Smoothing::kExponential)
    return t.labels.at (label).ema;
  const size_t n = std::min<size_t> (std::max<guint> (s.window, 1), t.history.size ());
  double sum = 0.0;
  for (size_t i = t.history.size () - n; i < t.history.size (); ++i)
    sum += t.history[i].score (label);
  return n > 0 ? sum / n : 0.0;
}

void
ActionTracker::decide (Track &t, const ActionSettings &s, std::vector<ActionEvent> &ends,
    std::vector<ActionEvent> &starts)
{
  for (auto &entry : t.labels)
    follow (t, entry.first, entry.second, s, ends, starts);
}

/* One label at the track's newest clip: the smoothed score decides whether an action starts or
 * ends, the raw scores of the clips where. */
void
ActionTracker::follow (Track &t, const std::string &label, Label &l, const ActionSettings &s,
    std::vector<ActionEvent> &ends, std::vector<ActionEvent> &starts)
{
  const Clip &c = t.history.back ();
  const double sm = smoothed (t, label, s);
  if (!l.open) {
    if (!s.counts (label) || sm < s.on_threshold)
      return;
    l.open = open_action (t, label, l, s);
  } else {
    Open &o = *l.open;
    const float raw = c.score (label);
    if (raw >= s.off_threshold) {
      o.sum += o.tail_sum + raw;
      o.n += o.tail_n + 1;
      o.peak = std::max ({o.peak, o.tail_peak, raw});
      o.tail_sum = 0.0;
      o.tail_n = 0;
      o.tail_peak = 0.f;
      const size_t n = t.history.size ();
      o.before_mid = n >= 2 ? t.history[n - 2].mid : GST_CLOCK_TIME_NONE;
      o.last_on_mid = c.mid;
      o.last_on_end = c.end;
      o.after_mid = GST_CLOCK_TIME_NONE;
    } else {
      o.tail_sum += raw;
      o.tail_n++;
      o.tail_peak = std::max (o.tail_peak, raw);
      if (!valid (o.after_mid))
        o.after_mid = c.mid;
    }
    if (sm < s.off_threshold) {
      end_action (t, label, l, EndReason::kScore, s, ends);
      return;
    }
  }
  Open &o = *l.open;
  /* Every end lies at or after the last clip with a raw score >= off-threshold: an action that
   * has lasted min-duration up to there is sure to last it. */
  if (!o.announced && span (o.start, o.last_on_mid) >= s.min_duration)
    announce (t, label, o, starts);
}

/* The smoothed score crossed on-threshold at the newest clip. The action started where the raw
 * score last rose to off-threshold: walk back from the latest clip at or above it over the run of
 * such clips; the start is halfway between the middle of the run's first clip and the middle of
 * the clip before. */
ActionTracker::Open
ActionTracker::open_action (const Track &t, const std::string &label, const Label &l,
    const ActionSettings &s) const
{
  const auto &h = t.history;
  auto usable = [&](std::ptrdiff_t i) {
    return !valid (l.last_end) || h[i].mid > l.last_end;    /* not in its previous action */
  };
  auto on = [&](std::ptrdiff_t i) { return h[i].score (label) >= s.off_threshold; };
  const std::ptrdiff_t last = static_cast<std::ptrdiff_t> (h.size ()) - 1;
  std::ptrdiff_t e = last;
  while (e >= 0 && usable (e) && !on (e))
    --e;
  if (e < 0 || !usable (e))
    e = last;                   /* an exponential average of clips the history no longer has */
  std::ptrdiff_t f = e;
  while (f > 0 && usable (f - 1) && on (f - 1))
    --f;

  Open o;
  /* A run that reaches the oldest clip kept starts with it (the stream's first clip, unless the
   * run is longer than the history). */
  o.start = f > 0 ? midpoint (h[f - 1].mid, h[f].mid) : h[f].start;
  o.model = t.model;
  for (std::ptrdiff_t i = f; i <= last; ++i) {
    const float raw = h[i].score (label);
    auto it = h[i].scores.find (label);
    if (it != h[i].scores.end () && o.class_id < 0)
      o.class_id = it->second.second;
    if (i <= e) {
      o.sum += raw;
      o.n++;
      o.peak = std::max (o.peak, raw);
    } else {
      o.tail_sum += raw;
      o.tail_n++;
      o.tail_peak = std::max (o.tail_peak, raw);
    }
  }
  o.last_on_mid = h[e].mid;
  o.last_on_end = h[e].end;
  o.before_mid = e > 0 ? h[e - 1].mid : GST_CLOCK_TIME_NONE;
  o.after_mid = e < last ? h[e + 1].mid : GST_CLOCK_TIME_NONE;
  return o;
}

/* Where an action ends: halfway between the middle of its last clip with a raw score >=
 * off-threshold and the middle of the clip after it. When the smoothed score falls on that clip
 * itself, half a hop after its middle; at end of stream, a flush or a gap, the end of the last
 * clip. An action not announced yet is announced now if it lasted min-duration, else dropped. */
void
ActionTracker::end_action (Track &t, const std::string &label, Label &l, EndReason reason,
    const ActionSettings &s, std::vector<ActionEvent> &out)
{
  Open &o = *l.open;
  GstClockTime end;
  if (valid (o.after_mid))
    end = midpoint (o.last_on_mid, o.after_mid);
  else if (reason == EndReason::kScore && valid (o.before_mid))
    end = o.last_on_mid + span (o.before_mid, o.last_on_mid) / 2;
  else
    end = o.last_on_end;
  l.last_end = end;
  if (!o.announced) {
    if (span (o.start, end) < s.min_duration) {
      l.open.reset ();          /* a flicker: neither start nor end */
      return;
    }
    announce (t, label, o, out);
  }
  ActionEvent e = event_of (t, label, o, GST_VIDCLS_ACTION_PHASE_END);
  e.end = end;
  e.end_running_time = running_time (t.stream_id, end);
  e.reason = reason;
  out.push_back (std::move (e));
  l.open.reset ();
}

void
ActionTracker::close_track (Track &t, EndReason reason, const ActionSettings &s,
    std::vector<ActionEvent> &out)
{
  for (auto &entry : t.labels) {
    if (entry.second.open)
      end_action (t, entry.first, entry.second, reason, s, out);
  }
  t.history.clear ();
  t.labels.clear ();
  t.clips = 0;
  t.last_start = t.last_end = t.last_end_rt = GST_CLOCK_TIME_NONE;
}

ActionEvent
ActionTracker::event_of (const Track &t, const std::string &label, const Open &o,
    GstVidclsActionPhase phase) const
{
  ActionEvent e;
  e.phase = phase;
  e.stream_id = t.stream_id;
  e.object_id = t.object_id;
  e.id = o.id;
  e.label = label;
  e.class_id = o.class_id;
  e.start = o.start;
  e.start_running_time = running_time (t.stream_id, o.start);
  e.peak_score = o.peak;
  e.mean_score = o.n > 0 ? static_cast<float> (o.sum / o.n) : 0.f;
  e.n_clips = o.n;
  e.model = o.model;
  return e;
}

void
ActionTracker::announce (const Track &t, const std::string &label, Open &o,
    std::vector<ActionEvent> &out)
{
  o.announced = true;
  o.id = next_id_++;
  out.push_back (event_of (t, label, o, GST_VIDCLS_ACTION_PHASE_START));
}

}  // namespace gst
}  // namespace vidcls
