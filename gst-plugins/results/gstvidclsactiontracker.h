/* The decisions of vidclsaction without GStreamer's plumbing: classified clips in, action starts
 * and ends out. No pads, no bus, no LibTorch, so the rules are tested on made-up score sequences
 * as well as on real pipelines. gstvidclsaction.cpp documents the rules as a user reads them.
 */
#pragma once

#include <gst/gst.h>

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gstvidclsevents.h"

namespace vidcls {
namespace gst {

enum class Smoothing { kMovingAverage, kExponential };

/* vidclsaction's properties, as one value the streaming thread takes per clip. */
struct ActionSettings
{
  double on_threshold = 0.6;
  double off_threshold = 0.4;
  guint window = 3;                             /* clips */
  Smoothing smoothing = Smoothing::kMovingAverage;
  GstClockTime min_duration = 0;                /* ns */
  GstClockTime max_gap = GST_SECOND;            /* ns; 0: a gap never ends an action */
  std::vector<std::string> actions;             /* labels that count; empty: every label */

  bool counts (const std::string &label) const;
};

/* "a, b,c" -> {"a", "b", "c"}: entries trimmed, empty ones dropped. */
std::vector<std::string> parse_action_list (const char *list);

/* The running time of `pts` in the segment of `stream_id`; GST_CLOCK_TIME_NONE when unknown. */
using RunningTimeFn = std::function<GstClockTime (const std::string &stream_id, GstClockTime pts)>;

/* Follows the clips of every (stream-id, object-id) apart and decides, per label, when an action
 * starts and ends. Used from one thread (the streaming thread). */
class ActionTracker
{
public:
  explicit ActionTracker (RunningTimeFn running_time = {});

  /* The decisions one classified clip leads to, in order: ends before starts. Clips without
   * timestamps (untimed_clips) and clips that end before they start (reversed_clips: cut across
   * two streams of a concat, whose timestamps restart) are counted and decide nothing. */
  std::vector<ActionEvent> push (const ClipResult &clip, const ActionSettings &s);
  /* Ends every open action (end of stream, flush) and forgets every track. */
  std::vector<ActionEvent> finish (EndReason reason, const ActionSettings &s);

  /* Every label a clip has named since the tracker was made. */
  const std::set<std::string> &labels_seen () const { return labels_seen_; }
  guint64 clips_used () const { return clips_used_; }
  guint64 untimed_clips () const { return untimed_clips_; }
  guint64 reversed_clips () const { return reversed_clips_; }
  /* Results of a second model for a clip already counted (several inference elements). */
  guint64 duplicate_clips () const { return duplicate_clips_; }

  /* The history a track keeps for placing starts: at least this many clips, or `window`. */
  static constexpr size_t kMinHistory = 64;

private:
  struct Clip
  {
    GstClockTime start = GST_CLOCK_TIME_NONE;
    GstClockTime end = GST_CLOCK_TIME_NONE;
    GstClockTime mid = GST_CLOCK_TIME_NONE;
    std::map<std::string, std::pair<float, gint>> scores;       /* label -> score, class id */
    float score (const std::string &label) const;
  };

  /* An action from its first clip on; announced (start posted) once it has lasted
   * min-duration. Its statistics cover its clips up to the last one whose raw score is at least
   * off-threshold; the clips after that (the tail) join them only if the label comes back. */
  struct Open
  {
    GstClockTime start = GST_CLOCK_TIME_NONE;
    gint class_id = -1;
    std::string model;
    bool announced = false;
    guint64 id = 0;
    float peak = 0.f;
    double sum = 0.0;
    guint n = 0;
    float tail_peak = 0.f;
    double tail_sum = 0.0;
    guint tail_n = 0;
    GstClockTime last_on_mid = GST_CLOCK_TIME_NONE;     /* last clip with raw >= off */
    GstClockTime last_on_end = GST_CLOCK_TIME_NONE;
    GstClockTime before_mid = GST_CLOCK_TIME_NONE;      /* the clip before that one */
    GstClockTime after_mid = GST_CLOCK_TIME_NONE;       /* the clip after it, once there is one */
  };

  struct Label
  {
    double ema = 0.0;
    GstClockTime last_end = GST_CLOCK_TIME_NONE;        /* end of its last action */
    std::optional<Open> open;
  };

  struct Track
  {
    std::string stream_id;
    gint64 object_id = -1;
    std::deque<Clip> history;
    guint64 clips = 0;          /* since the last reset */
    std::map<std::string, Label> labels;
    GstClockTime last_start = GST_CLOCK_TIME_NONE;
    GstClockTime last_end = GST_CLOCK_TIME_NONE;
    GstClockTime last_end_rt = GST_CLOCK_TIME_NONE;
    std::string model;          /* of its newest clip */
  };

  using Key = std::pair<std::string, gint64>;

  std::vector<ActionEvent> end_idle_tracks (const ClipResult &clip, const ActionSettings &s);
  bool discontinuous (const Track &t, const ClipResult &clip, const ActionSettings &s) const;
  void add_clip (Track &t, const ClipResult &clip, const ActionSettings &s);
  double smoothed (const Track &t, const std::string &label, const ActionSettings &s) const;
  void decide (Track &t, const ActionSettings &s, std::vector<ActionEvent> &ends,
      std::vector<ActionEvent> &starts);
  void follow (Track &t, const std::string &label, Label &l, const ActionSettings &s,
      std::vector<ActionEvent> &ends, std::vector<ActionEvent> &starts);
  Open open_action (const Track &t, const std::string &label, const Label &l,
      const ActionSettings &s) const;
  void close_track (Track &t, EndReason reason, const ActionSettings &s,
      std::vector<ActionEvent> &out);
  void end_action (Track &t, const std::string &label, Label &l, EndReason reason,
      const ActionSettings &s, std::vector<ActionEvent> &out);
  ActionEvent event_of (const Track &t, const std::string &label, const Open &o,
      GstVidclsActionPhase phase) const;
  void announce (const Track &t, const std::string &label, Open &o,
      std::vector<ActionEvent> &out);
  GstClockTime running_time (const std::string &stream_id, GstClockTime pts) const;

  RunningTimeFn running_time_;
  std::map<Key, Track> tracks_;
  std::set<std::string> labels_seen_;
  guint64 next_id_ = 0;
  guint64 clips_used_ = 0;
  guint64 untimed_clips_ = 0;
  guint64 reversed_clips_ = 0;
  guint64 duplicate_clips_ = 0;
};

}  // namespace gst
}  // namespace vidcls
