#!/usr/bin/python3
"""Results from Python: pipelines/meta-reader.py, run by Debian's python3-gi with the build's
GstVidcls-1.0 typelib (GI_TYPELIB_PATH and LD_LIBRARY_PATH point at the meta library's build
folder; meson sets both).

- On a real encoded video (vidcls-synth) with an untrained vivit-xs checkpoint (vidcls-init), what
  the reader prints from the buffers' metas and the end-of-stream event equals, clip for clip,
  what the inference element posted on the bus in the same run: clip indexes, stream-id, times,
  labels, class ids, scores to float precision.
- Its command line: readable lines, results with no label above the threshold, errors.
- Metas added from Python through the typelib read back, in order, and the custom downstream
  events that carry results no buffer carries are read from an event probe.

usage: test_python_meta.py EXAMPLE --init VIDCLS_INIT --synth VIDCLS_SYNTH --plugin-dir DIR
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest
import warnings

ARGS = None
EXAMPLE = None   # the example, imported as a module
TMP = None
VIDEO = None
MODEL = None
FRAMES = 72      # 15 fps: four whole clips of vivit-xs (T = 8, every 2nd frame) and a partial one


def load_example(path):
    spec = importlib.util.spec_from_file_location("meta_reader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(cmd, timeout=300):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def setUpModule():
    global TMP, VIDEO, MODEL
    TMP = tempfile.TemporaryDirectory(prefix="vidcls-python-meta-")
    # The build's plugins, a registry of this test's own (inherited by the reader's processes).
    os.environ["GST_PLUGIN_PATH"] = ARGS.plugin_dir
    os.environ["GST_REGISTRY"] = os.path.join(TMP.name, "registry.bin")
    EXAMPLE.Gst.init(None)
    p = run([ARGS.synth, "--layout", "folder", "--out", os.path.join(TMP.name, "synth"),
             "--classes", "1", "--videos-per-class", "1", "--frames", str(FRAMES), "-q"])
    if p.returncode != 0:
        raise RuntimeError("vidcls-synth failed: " + p.stdout + p.stderr)
    VIDEO = os.path.join(TMP.name, "synth", "slide_left", "slide_left_0000.webm")
    MODEL = os.path.join(TMP.name, "m.safetensors")
    p = run([ARGS.init, "--preset", "vivit-xs", "--num-classes", "4", "--out", MODEL])
    if p.returncode != 0:
        raise RuntimeError("vidcls-init failed: " + p.stdout + p.stderr)


def tearDownModule():
    TMP.cleanup()


def pipeline_words(threshold=None):
    infer = ["vividinfer", "model=" + MODEL]
    if threshold is not None:
        infer.append("threshold=%g" % threshold)
    return (["filesrc", "location=" + VIDEO, "!", "decodebin", "!", "videoconvert", "!",
             "vidclsclipper", "eos-policy=partial", "!"] + infer + ["!", "fakesink"])


def bus_classification(s):
    """A "vidcls-classification" bus message read here, independently of the example's code."""
    def array(name):
        ok, a = s.get_array(name)
        assert ok, name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # GValueArray's getter
            return [a.get_nth(i) for i in range(a.n_values)]

    def field(getter, name):
        ok, v = getter(name)
        assert ok, name
        return v

    return {
        "stream-id": s.get_string("stream-id"),
        "object-id": field(s.get_int64, "object-id"),
        "clip-index": field(s.get_uint64, "clip-index"),
        "start": field(s.get_uint64, "start"),
        "end": field(s.get_uint64, "end"),
        "partial": field(s.get_boolean, "partial"),
        "model": s.get_string("model"),
        "labels": array("labels"),
        "scores": array("scores"),
        "class-ids": array("class-ids"),
    }


def read_in_process(words):
    """Runs the example's reader on `words`: (exit code, JSON lines it would print, bus
    messages of the same run)."""
    pipeline = EXAMPLE.build_pipeline(words)
    sink = EXAMPLE.find_sink(pipeline, None)
    lines, bus = [], []
    reader = EXAMPLE.MetaReader(pipeline, sink, lambda r: lines.append(EXAMPLE.format_json(r)))

    def on_element(_bus, msg):
        s = msg.get_structure()
        if s is not None and s.has_name("vidcls-classification"):
            bus.append(bus_classification(s))

    reader.bus.connect("message::element", on_element)
    return reader.run(), lines, bus


class PipelineResults(unittest.TestCase):
    """What a Python application reads from a real classifying pipeline."""

    @classmethod
    def setUpClass(cls):
        cls.code, cls.lines, cls.bus = read_in_process(pipeline_words())
        cls.printed = [json.loads(line) for line in cls.lines]

    def test_every_clip_read_in_order(self):
        self.assertEqual(self.code, 0)
        self.assertEqual([r["type"] for r in self.printed], ["vidcls-classification"] * 5)
        self.assertEqual([r["clip-index"] for r in self.printed], [0, 1, 2, 3, 4])
        # four clips completed by a buffer, the partial one at end of stream by the event
        self.assertEqual([r["source"] for r in self.printed], ["meta"] * 4 + ["event"])
        self.assertEqual([r["partial"] for r in self.printed], [False] * 4 + [True])
        for r in self.printed:
            self.assertLess(r["start"], r["end"])
            self.assertEqual(r["object-id"], -1)
            self.assertTrue(r["stream-id"])
            self.assertIn("vivit-xs", r["model"])
            # threshold 0, top-k 5 of 4 classes: every class, a softmax that sums to 1
            self.assertEqual(sorted(r["class-ids"]), [0, 1, 2, 3])
            self.assertAlmostEqual(sum(r["scores"]), 1.0, places=5)
            self.assertEqual(r["scores"], sorted(r["scores"], reverse=True))
            self.assertEqual(r["labels"], ["class_%d" % i for i in r["class-ids"]])
        for a, b in zip(self.printed, self.printed[1:]):
            self.assertLess(a["start"], b["start"])

    def test_same_as_the_bus_messages_of_the_run(self):
        self.assertEqual([m["clip-index"] for m in self.bus],
                         [r["clip-index"] for r in self.printed])
        for r, m in zip(self.printed, self.bus):
            with self.subTest(clip=m["clip-index"]):
                for key in ("stream-id", "object-id", "start", "end", "partial", "model",
                            "labels", "class-ids"):
                    self.assertEqual(r[key], m[key], key)
                self.assertEqual(len(r["scores"]), len(m["scores"]))
                for got, want in zip(r["scores"], m["scores"]):
                    # a gfloat in the meta, the same value as a gdouble in the message
                    self.assertAlmostEqual(got, want, delta=1e-7 * max(1.0, abs(want)))


class CommandLine(unittest.TestCase):
    """meta-reader.py as a user runs it."""

    def reader(self, *words):
        return run([sys.executable, ARGS.example] + list(words))

    def test_text_lines_with_no_label_above_the_threshold(self):
        # No class reaches 0.99 with an untrained model: every meta has 0 results (and the bus
        # has no message), but the reader still sees one result per clip.
        p = self.reader(*pipeline_words(threshold=0.99))
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 5, p.stdout)
        for i, line in enumerate(lines):
            self.assertRegex(line, r"^clip %d \[\d:\d\d:\d\d\.\d{9} - \d:\d\d:\d\d\.\d{9}\] "
                             r".*vivit-xs.*: \(no label above the threshold\)" % i)
        self.assertTrue(lines[-1].endswith("(partial clip, end of stream)"), lines[-1])
        self.assertNotIn("partial", "".join(lines[:-1]))

    def test_text_line_of_a_result(self):
        p = self.reader(*pipeline_words())
        self.assertEqual(p.returncode, 0, p.stderr)
        first = p.stdout.splitlines()[0]
        self.assertRegex(first, r"^clip 0 \[0:00:00\.000000000 - 0:00:0\d\.\d{9}\] "
                         r".*vivit-xs.*: class_[0-3] 0\.\d{3}$")

    def test_errors_say_what_is_wrong(self):
        p = self.reader("filesrc", "location=" + VIDEO, "!", "nosuchelement", "!", "fakesink")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Could not build the pipeline", p.stderr)
        self.assertIn("nosuchelement", p.stderr)
        missing = os.path.join(TMP.name, "missing.safetensors")
        words = pipeline_words()
        words[words.index("model=" + MODEL)] = "model=" + missing
        p = self.reader(*words)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ERROR from", p.stderr)
        self.assertIn("missing.safetensors", p.stderr)
        p = self.reader("videotestsrc", "!", "tee", "name=t", "!", "fakesink", "t.", "!",
                        "queue", "!", "fakesink")
        self.assertEqual(p.returncode, 1)
        self.assertIn("--sink NAME", p.stderr)


class MetasFromPython(unittest.TestCase):
    """The typelib's functions from Python, and the reader's event path, without a model."""

    def setUp(self):
        self.Gst = EXAMPLE.Gst
        self.V = EXAMPLE.GstVidcls

    def clip(self, index, partial=False):
        c = self.V.Clip()
        c.stream_id, c.object_id, c.index = "cam0/video", 7, index
        c.start, c.end, c.partial = 2 * self.Gst.SECOND, self.Gst.CLOCK_TIME_NONE, partial
        return c

    def action(self):
        a = self.V.Action()
        a.stream_id, a.object_id, a.id, a.label, a.class_id = "cam0/video", -1, 3, "wave", 2
        a.start, a.end, a.n_clips, a.model = 1000, 5000, 4, "m"
        a.peak_score, a.mean_score = 0.875, 0.625
        return a

    def filled_buffer(self):
        buf = self.Gst.Buffer.new_allocate(None, 16, None)
        self.V.buffer_add_vidcls_classification_meta(buf, self.clip(5), "m", ["wave", "sit"],
                                                     [0.75, 0.125], [2, 0])
        self.V.buffer_add_vidcls_action_meta(buf, self.V.ActionPhase.START, self.action())
        self.V.buffer_add_vidcls_classification_meta(buf, self.clip(6, True), None, [], [], None)
        self.V.buffer_add_vidcls_action_meta(buf, self.V.ActionPhase.END, self.action())
        return buf

    def expected(self, source):
        clip = {"type": "vidcls-classification", "source": source, "stream-id": "cam0/video",
                "object-id": 7, "start": 2000000000, "end": None}
        action = {"source": source, "stream-id": "cam0/video", "object-id": -1, "action-id": 3,
                  "label": "wave", "class-id": 2, "start": 1000, "peak-score": 0.875,
                  "mean-score": 0.625, "clips": 4, "model": "m"}
        return [
            dict(clip, **{"clip-index": 5, "partial": False, "model": "m",
                          "labels": ["wave", "sit"], "scores": [0.75, 0.125],
                          "class-ids": [2, 0]}),
            dict(clip, **{"clip-index": 6, "partial": True, "model": "", "labels": [],
                          "scores": [], "class-ids": []}),
            dict(action, type="vidcls-action-start", end=None),
            dict(action, type="vidcls-action-end", end=5000),
        ]

    def test_metas_added_from_python_read_back(self):
        buf = self.filled_buffer()
        first = self.V.buffer_get_vidcls_classification_meta(buf)
        self.assertEqual(first.clip.index, 5)
        self.assertEqual(first.n_results, 2)
        self.assertEqual(list(first.get_labels()), ["wave", "sit"])
        self.assertEqual(self.V.buffer_get_vidcls_action_meta(buf).phase,
                         self.V.ActionPhase.START)
        self.assertEqual(EXAMPLE.results_of_buffer(buf), self.expected("meta"))
        # a copy of the buffer carries its own deep copies
        copy = buf.copy()
        del buf
        self.assertEqual(EXAMPLE.results_of_buffer(copy), self.expected("meta"))
        empty = self.Gst.Buffer.new()
        self.assertIsNone(self.V.buffer_get_vidcls_classification_meta(empty))
        self.assertEqual(self.V.buffer_get_vidcls_action_metas(empty), [])
        self.assertEqual(EXAMPLE.results_of_buffer(empty), [])

    def test_reader_sees_buffers_and_result_events_in_stream_order(self):
        Gst = self.Gst
        pipeline = EXAMPLE.build_pipeline(["appsrc", "name=src", "format=time", "!", "fakesink"])
        src = pipeline.get_by_name("src")
        src.set_property("caps", Gst.Caps.from_string("video/x-raw,format=GRAY8,width=4,"
                                                       "height=4,framerate=15/1"))
        got = []
        reader = EXAMPLE.MetaReader(pipeline, EXAMPLE.find_sink(pipeline, None), got.append)
        buf = self.filled_buffer()
        buf.pts, buf.duration = 0, Gst.SECOND // 15
        plain = Gst.Buffer.new_allocate(None, 16, None)
        plain.pts, plain.duration = buf.duration, buf.duration
        # as vividinfer and vidclsaction send them where no buffer follows
        events = [
            'vidcls-classification, stream-id=(string)"cam0/video", object-id=(gint64)7, '
            'clip-index=(guint64)5, start=(guint64)2000000000, '
            'end=(guint64)18446744073709551615, partial=(boolean)false, model=(string)m, '
            'labels=(string)<wave, sit>, scores=(double)<0.75, 0.125>, class-ids=(int)<2, 0>',
            'vidcls-classification, stream-id=(string)"cam0/video", object-id=(gint64)7, '
            'clip-index=(guint64)6, start=(guint64)2000000000, '
            'end=(guint64)18446744073709551615, partial=(boolean)true, model=(string)"", '
            'label=(string)wave, score=(double)0.75, labels=(string)<>, scores=(double)<>, '
            'class-ids=(int)<>',
            'vidcls-action-start, stream-id=(string)"cam0/video", object-id=(gint64)-1, '
            'action-id=(guint64)3, label=(string)wave, class-id=(int)2, start=(guint64)1000, '
            'start-running-time=(guint64)1000, peak-score=(double)0.875, '
            'mean-score=(double)0.625, clips=(uint)4, model=(string)m',
            'vidcls-action-end, stream-id=(string)"cam0/video", object-id=(gint64)-1, '
            'action-id=(guint64)3, label=(string)wave, class-id=(int)2, start=(guint64)1000, '
            'end=(guint64)5000, start-running-time=(guint64)1000, '
            'end-running-time=(guint64)5000, peak-score=(double)0.875, '
            'mean-score=(double)0.625, clips=(uint)4, model=(string)m, reason=(string)eos',
            # not a vidcls result: not printed
            'other-app-event, x=(int)1',
        ]
        pipeline.set_state(Gst.State.PAUSED)
        src.emit("push-buffer", buf)
        src.emit("push-buffer", plain)
        for e in events:
            s = Gst.Structure.from_string(e)[0]
            self.assertIsNotNone(s, e)
            src.send_event(Gst.Event.new_custom(Gst.EventType.CUSTOM_DOWNSTREAM, s))
        src.emit("end-of-stream")
        self.assertEqual(reader.run(), 0)
        self.assertEqual(got, self.expected("meta") + self.expected("event"))


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("example", help="pipelines/meta-reader.py")
    ap.add_argument("--init", required=True, help="vidcls-init")
    ap.add_argument("--synth", required=True, help="vidcls-synth")
    ap.add_argument("--plugin-dir", required=True, help="the build's plugin folder")
    ARGS, rest = ap.parse_known_args()
    global EXAMPLE
    EXAMPLE = load_example(ARGS.example)   # imports gi's modules (Gst is initialised later)
    unittest.main(argv=[sys.argv[0], "-v"] + rest)


if __name__ == "__main__":
    main()
