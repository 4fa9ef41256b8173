#!/usr/bin/env python3
"""meta-reader.py: vidcls results read from the buffers, in Python.

The Python twin of vidcls-meta-reader (pipelines/meta-reader/main.cpp). It runs a
gst-launch-1.0 style pipeline and prints one line for every result that reaches its sink:

- the GstVidclsClassificationMeta and GstVidclsActionMeta of each buffer, read through the
  GstVidcls-1.0 typelib (GObject introspection of libgstvidclsmeta-1.0);
- the results no buffer carries (the clip completed at end of stream, results of asynchronous
  inference ready at end of stream), which the elements send downstream as custom events whose
  structure is the bus message's ("vidcls-classification", "vidcls-action-start",
  "vidcls-action-end").

So it sees every result, in stream order, as an element after the inference element would.
On a 72-frame vidcls-synth video with an untrained checkpoint (vidcls-init --preset vivit-xs
--num-classes 4 --out m.safetensors), so the scores are near chance:

    ./meta-reader.py filesrc location=v.webm ! decodebin ! videoconvert ! \\
        vidclsclipper eos-policy=partial ! vividinfer model=m.safetensors ! fakesink

    clip 0 [0:00:00.000000000 - 0:00:00.999666666] m (vivit-xs): class_2 0.282
    ...
    clip 4 [0:00:04.267000000 - 0:00:04.733666666] m (vivit-xs): class_2 0.278 (partial clip, end of stream)

--json prints every field instead, one JSON object per line.

Needs Debian's python3-gi with gir1.2-gstreamer-1.0, and the vidcls plugin and typelib: installed
(meson install puts GstVidcls-1.0.typelib in <libdir>/girepository-1.0), or from a build tree:

    export GI_TYPELIB_PATH=$BUILD/gst-plugins/meta LD_LIBRARY_PATH=$BUILD/gst-plugins/meta
    export GST_PLUGIN_PATH=$BUILD/gst-plugins

(`meson devenv -C $BUILD` sets the first two). girepository looks in its own libdir only, so an
install under /usr/local needs GI_TYPELIB_PATH=/usr/local/lib/<multiarch>/girepository-1.0.
"""

import argparse
import json
import signal
import sys
import warnings

import gi

gi.require_version("GLib", "2.0")
gi.require_version("Gst", "1.0")
try:
    gi.require_version("GstVidcls", "1.0")
except ValueError:
    sys.exit("meta-reader.py: the GstVidcls-1.0 typelib was not found: install vidcls (built with "
             "-Dintrospection) or point GI_TYPELIB_PATH and LD_LIBRARY_PATH at "
             "<build>/gst-plugins/meta")
from gi.repository import GLib, Gst, GstVidcls  # noqa: E402

CLASSIFICATION = "vidcls-classification"
ACTION_START = "vidcls-action-start"
ACTION_END = "vidcls-action-end"


def _time_or_none(t):
    return None if t == Gst.CLOCK_TIME_NONE else t


# ---------------------------------------------------------------- results as plain dicts


def classification_from_meta(m):
    """A GstVidcls.ClassificationMeta as a dict (the field names of the bus message)."""
    clip = m.clip
    return {
        "type": CLASSIFICATION,
        "source": "meta",
        "stream-id": clip.stream_id,
        "object-id": clip.object_id,
        "clip-index": clip.index,
        "start": _time_or_none(clip.start),
        "end": _time_or_none(clip.end),
        "partial": bool(clip.partial),
        "model": m.model,
        # Accessors rather than the fields: a counted C array is not readable as a field by
        # every binding.
        "labels": list(m.get_labels()),
        "scores": list(m.get_scores()),
        "class-ids": list(m.get_class_ids()),
    }


def action_from_meta(m):
    """A GstVidcls.ActionMeta as a dict (the field names of the bus messages)."""
    a = m.action
    end = m.phase == GstVidcls.ActionPhase.END
    return {
        "type": ACTION_END if end else ACTION_START,
        "source": "meta",
        "stream-id": a.stream_id,
        "object-id": a.object_id,
        "action-id": a.id,
        "label": a.label,
        "class-id": a.class_id,
        "start": _time_or_none(a.start),
        "end": _time_or_none(a.end) if end else None,
        "peak-score": a.peak_score,
        "mean-score": a.mean_score,
        "clips": a.n_clips,
        "model": a.model,
    }


def _array_field(s, name):
    """The values of a GstValueArray field ([] when missing).

    Without gst-python's overrides PyGObject cannot convert a GstValueArray GValue, but
    gst_structure_get_array() hands it over as a GValueArray, whose element getter GLib marks
    deprecated (the type itself is kept for exactly this use).
    """
    ok, array = s.get_array(name)
    if not ok or array is None:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return [array.get_nth(i) for i in range(array.n_values)]


def _get(s, getter, name, default):
    ok, value = getter(name)
    return value if ok else default


def classification_from_structure(s):
    """A "vidcls-classification" structure (bus message or event) as a dict."""
    return {
        "type": CLASSIFICATION,
        "source": "event",
        "stream-id": s.get_string("stream-id") or "",
        "object-id": _get(s, s.get_int64, "object-id", -1),
        "clip-index": _get(s, s.get_uint64, "clip-index", 0),
        "start": _time_or_none(_get(s, s.get_uint64, "start", Gst.CLOCK_TIME_NONE)),
        "end": _time_or_none(_get(s, s.get_uint64, "end", Gst.CLOCK_TIME_NONE)),
        "partial": bool(_get(s, s.get_boolean, "partial", False)),
        "model": s.get_string("model") or "",
        "labels": _array_field(s, "labels"),
        "scores": _array_field(s, "scores"),
        "class-ids": _array_field(s, "class-ids"),
    }


def action_from_structure(s):
    """A "vidcls-action-start" / "vidcls-action-end" structure as a dict."""
    end = s.get_name() == ACTION_END
    return {
        "type": s.get_name(),
        "source": "event",
        "stream-id": s.get_string("stream-id") or "",
        "object-id": _get(s, s.get_int64, "object-id", -1),
        "action-id": _get(s, s.get_uint64, "action-id", 0),
        "label": s.get_string("label") or "",
        "class-id": _get(s, s.get_int, "class-id", -1),
        "start": _time_or_none(_get(s, s.get_uint64, "start", Gst.CLOCK_TIME_NONE)),
        "end": _time_or_none(_get(s, s.get_uint64, "end", Gst.CLOCK_TIME_NONE)) if end else None,
        "peak-score": _get(s, s.get_double, "peak-score", 0.0),
        "mean-score": _get(s, s.get_double, "mean-score", 0.0),
        "clips": _get(s, s.get_uint, "clips", 0),
        "model": s.get_string("model") or "",
    }


def results_of_buffer(buf):
    """Every vidcls result a buffer carries: classifications, then action starts and ends."""
    results = [classification_from_meta(m)
               for m in GstVidcls.buffer_get_vidcls_classification_metas(buf)]
    results += [action_from_meta(m) for m in GstVidcls.buffer_get_vidcls_action_metas(buf)]
    return results


def results_of_event(event):
    """The result a vidcls custom downstream event carries, as a one-item list ([] for others)."""
    if event.type != Gst.EventType.CUSTOM_DOWNSTREAM:
        return []
    s = event.get_structure()
    if s is None:
        return []
    if s.has_name(CLASSIFICATION):
        return [classification_from_structure(s)]
    if s.has_name(ACTION_START) or s.has_name(ACTION_END):
        return [action_from_structure(s)]
    return []


# ---------------------------------------------------------------- printing


def format_time(t):
    """GST_TIME_FORMAT: H:MM:SS.nnnnnnnnn, 99:99:99.999999999 when unknown."""
    if t is None:
        return "99:99:99.999999999"
    s, ns = divmod(t, Gst.SECOND)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return "%d:%02d:%02d.%09d" % (h, m, s, ns)


def format_text(r):
    """One readable line, as vidcls-meta-reader prints it."""
    notes = []
    if r["type"] == CLASSIFICATION:
        if r["partial"]:
            notes.append("partial clip")
        if r["source"] == "event":
            notes.append("end of stream")
        head = "clip %d [%s - %s] %s: " % (r["clip-index"], format_time(r["start"]),
                                          format_time(r["end"]), r["model"])
        if r["labels"]:
            body = "%s %.3f" % (r["labels"][0], r["scores"][0])
        else:
            body = "(no label above the threshold)"
    else:
        phase = "end" if r["type"] == ACTION_END else "start"
        head = "action %d %s [%s - %s] %s: " % (r["action-id"], phase, format_time(r["start"]),
                                              format_time(r["end"]), r["model"])
        body = "%s peak %.3f mean %.3f over %d clips" % (r["label"], r["peak-score"],
                                                         r["mean-score"], r["clips"])
        if r["source"] == "event":
            notes.append("end of stream")
    return head + body + (" (%s)" % ", ".join(notes) if notes else "")


def format_json(r):
    return json.dumps(r, sort_keys=True)


# ---------------------------------------------------------------- the pipeline


def find_sink(pipeline, name):
    """The element named `name`, or the pipeline's only sink; None (and a message) otherwise."""
    if name:
        sink = pipeline.get_by_name(name)
        if sink is None:
            print("No element named '%s' in the pipeline" % name, file=sys.stderr)
        return sink
    sinks = []
    it = pipeline.iterate_sinks()
    while True:
        res, element = it.next()
        if res == Gst.IteratorResult.OK:
            sinks.append(element)
        elif res == Gst.IteratorResult.RESYNC:
            it.resync()
            sinks = []
        else:
            break
    if len(sinks) != 1:
        print("The pipeline has no sink" if not sinks else
              "The pipeline has %d sinks: name the one to watch with --sink NAME" % len(sinks),
              file=sys.stderr)
        return None
    return sinks[0]


class MetaReader:
    """Runs `pipeline` to its end and hands every result reaching `sink` to `emit` (a dict)."""

    def __init__(self, pipeline, sink, emit):
        self.pipeline = pipeline
        self.emit = emit
        self.loop = GLib.MainLoop()
        self.exit_code = 0
        self.interrupted = False
        pad = sink.get_static_pad("sink")
        if pad is None:
            raise ValueError("%s has no 'sink' pad to watch" % sink.get_name())
        mask = (Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST
                | Gst.PadProbeType.EVENT_DOWNSTREAM)
        pad.add_probe(mask, self._on_data)
        self.bus = pipeline.get_bus()
        self.bus.add_signal_watch()
        self.bus.connect("message", self._on_message)

    # Streaming thread: keep it short, the pipeline waits.
    def _on_data(self, _pad, info):
        results = []
        if info.type & Gst.PadProbeType.BUFFER:
            results = results_of_buffer(info.get_buffer())
        elif info.type & Gst.PadProbeType.BUFFER_LIST:
            blist = info.get_buffer_list()
            for i in range(blist.length()):
                results += results_of_buffer(blist.get(i))
        elif info.type & Gst.PadProbeType.EVENT_DOWNSTREAM:
            results = results_of_event(info.get_event())
        for r in results:
            self.emit(r)
        return Gst.PadProbeReturn.OK

    def _on_message(self, _bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print("ERROR from %s: %s" % (msg.src.get_path_string(), err.message), file=sys.stderr)
            if debug:
                print(debug, file=sys.stderr)
            self.exit_code = 1
            self.loop.quit()
        elif msg.type == Gst.MessageType.WARNING:
            err, _debug = msg.parse_warning()
            print("WARNING: %s" % err.message, file=sys.stderr)
        elif msg.type == Gst.MessageType.EOS:
            self.loop.quit()

    # First Ctrl-C: end the stream cleanly (results of pending clips still arrive); second: quit.
    def _on_sigint(self):
        if self.interrupted:
            self.exit_code = 130
            self.loop.quit()
            return GLib.SOURCE_REMOVE
        self.interrupted = True
        print("Interrupt: sending end of stream (again to quit now)", file=sys.stderr)
        self.pipeline.send_event(Gst.Event.new_eos())
        return GLib.SOURCE_CONTINUE

    def run(self, handle_sigint=False):
        """Plays the pipeline to its end of stream or first error; returns the exit code."""
        if handle_sigint:
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, self._on_sigint)
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            # An element that failed says why in an ERROR message on the bus.
            msg = self.bus.pop_filtered(Gst.MessageType.ERROR)
            if msg is not None:
                self._on_message(self.bus, msg)
            else:
                print("The pipeline could not start", file=sys.stderr)
            self.exit_code = 1
        else:
            self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)
        self.bus.remove_signal_watch()
        return self.exit_code


def build_pipeline(words):
    """A pipeline from gst-launch-1.0 words, or None (and a message)."""
    try:
        pipeline = Gst.parse_launchv(words)
    except GLib.Error as e:
        print("Could not build the pipeline: %s" % e.message, file=sys.stderr)
        return None
    # A single element is returned as is; wrap it so it has a bus and a state to run.
    if not isinstance(pipeline, Gst.Pipeline):
        bin_ = Gst.Pipeline.new(None)
        bin_.add(pipeline)
        pipeline = bin_
    return pipeline


def main(argv=None):
    argv = Gst.init(list(sys.argv if argv is None else argv))  # takes --gst-* options
    parser = argparse.ArgumentParser(
        description="Runs a gst-launch-1.0 style pipeline and prints every vidcls result "
        "(GstVidclsClassificationMeta, GstVidclsActionMeta, and the end-of-stream results "
        "sent as events) that reaches its sink.")
    parser.add_argument("--sink", metavar="NAME",
                        help="sink element whose input to watch (default: the pipeline's only "
                        "sink)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per result with every field (times in ns, null "
                        "when unknown) instead of a readable line")
    parser.add_argument("pipeline", nargs=argparse.REMAINDER, metavar="PIPELINE-DESCRIPTION")
    args = parser.parse_args(argv[1:])
    if not args.pipeline:
        parser.print_help(sys.stderr)
        return 2

    pipeline = build_pipeline(args.pipeline)
    if pipeline is None:
        return 1
    sink = find_sink(pipeline, args.sink)
    if sink is None:
        return 1
    fmt = format_json if args.json else format_text
    try:
        reader = MetaReader(pipeline, sink, lambda r: print(fmt(r), flush=True))
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    return reader.run(handle_sigint=True)


if __name__ == "__main__":
    sys.exit(main())
