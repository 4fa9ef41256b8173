#!/usr/bin/python3
"""vidclspublish for real: JSON lines from a real pipeline (a vidcls-synth video, vidclsclipper,
vividinfer with an untrained vivit-xs checkpoint, vidclsaction) to files and to Debian's mosquitto
broker, started here on a free loopback port; mosquitto_sub receives.

The broker is killed (SIGKILL) in the middle of a stream and started again on the same port: every
line the element made arrives, in order, none twice, when the lines made meanwhile fit in
max-queued; with a small max-queued the oldest are dropped, counted, and the rest arrive in order.
Every line validates against docs/vidcls-results.schema.json (python3-jsonschema).

The subscriber keeps a persistent session (mosquitto_sub -c) that the broker saved to its
database (SIGUSR1) before the stream: a restarted broker knows the subscription and keeps the
lines for the subscriber until it has reconnected. (A broker without persistence would forget
the subscription, and lines the element delivers before mosquitto_sub has reconnected would go
nowhere: that race is the subscriber's, not the element's.)

Run through meson (VIDCLS_PLUGIN_DIR, VIDCLS_INIT, VIDCLS_SYNTH set).
"""
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "vidcls-results.schema.json"
MOSQUITTO = "/usr/sbin/mosquitto"

TMP = None          # tempfile.TemporaryDirectory of the module
VIDEO = None        # a paced stream of it lasts about 5 s
MODEL = None
Gst = None


def setUpModule():
    global TMP, VIDEO, MODEL, Gst
    for var in ("VIDCLS_PLUGIN_DIR", "VIDCLS_INIT", "VIDCLS_SYNTH"):
        if not os.environ.get(var):
            raise unittest.SkipTest(f"{var} is not set (run through meson test)")
    TMP = tempfile.TemporaryDirectory(prefix="vidcls-publish-")
    os.environ["GST_PLUGIN_PATH"] = os.environ["VIDCLS_PLUGIN_DIR"]
    os.environ["GST_REGISTRY"] = os.path.join(TMP.name, "registry.bin")
    os.environ["GST_REGISTRY_FORK"] = "no"
    if os.environ.get("VIDCLS_GST_SYSTEM_PLUGINS"):
        os.environ["GST_PLUGIN_SYSTEM_PATH_1_0"] = os.environ["VIDCLS_GST_SYSTEM_PLUGINS"]
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst as gst
    Gst = gst
    Gst.init(None)
    for name in ("vidclspublish", "vidclsaction", "vividinfer"):
        if Gst.ElementFactory.find(name) is None:
            raise RuntimeError(f"element {name} not found in {os.environ['VIDCLS_PLUGIN_DIR']}")
    MODEL = os.path.join(TMP.name, "m.safetensors")
    subprocess.run([os.environ["VIDCLS_INIT"], "--preset", "vivit-xs", "--num-classes", "4",
                    "--out", MODEL], check=True, capture_output=True)
    synth = os.path.join(TMP.name, "synth")
    subprocess.run([os.environ["VIDCLS_SYNTH"], "--layout", "folder", "--out", synth,
                    "--classes", "1", "--videos-per-class", "1", "--frames", "150", "--fps", "30",
                    "--size", "64", "-q"], check=True, capture_output=True)
    VIDEO = next(str(p) for p in Path(synth).rglob("*.webm"))


def tearDownModule():
    if TMP is not None:
        TMP.cleanup()


def validator():
    import jsonschema
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_lines(path):
    """The JSON objects of a file of lines; other lines (the subscriber's probes) are skipped."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{") and line.endswith("}\n")]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pipeline_text(sink: str, paced: bool, actions: bool = True, clip_stride: int = 1) -> str:
    """The real pipeline: decode, (paced to real time), clips, classify, detect actions with
    thresholds an untrained 4-class model's scores (about 0.25) reach, publish."""
    pace = "identity sync=true ! " if paced else ""
    action = "vidclsaction on-threshold=0.25 off-threshold=0.25 ! " if actions else ""
    return (f"filesrc location={VIDEO} ! decodebin ! videoconvert ! {pace}"
            f"vidclsclipper clip-stride={clip_stride} ! vividinfer model={MODEL} ! {action}"
            f"vidclspublish name=pub {sink} ! fakesink")


def array_field(structure, name):
    """A GST_TYPE_ARRAY field as a list (PyGObject without gst-python's overrides cannot read
    GstValueArray itself)."""
    ok, arr = structure.get_array(name)
    assert ok, f"{name} is not an array in {structure.to_string()}"
    return [arr.get_nth(i) for i in range(arr.n_values)]


class Run:
    def __init__(self):
        self.eos = False
        self.errors, self.warnings, self.infos, self.classifications = [], [], [], []
        self.counters = {}


COUNTERS = ("messages-published", "messages-queued", "messages-dropped")


def run_pipeline(text, tick=None, timeout=120):
    """Plays `text` to EOS or ERROR, calling tick(run, pub) between bus messages (every 50 ms
    at most). Collects errors, warnings and infos (message and debug), the inference element's
    vidcls-classification messages, and the publisher's counters at the end."""
    pipeline = Gst.parse_launch(text)
    pub = pipeline.get_by_name("pub")
    bus = pipeline.get_bus()
    run = Run()
    mask = (Gst.MessageType.ERROR | Gst.MessageType.EOS | Gst.MessageType.WARNING
            | Gst.MessageType.INFO | Gst.MessageType.ELEMENT)
    pipeline.set_state(Gst.State.PLAYING)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = bus.timed_pop_filtered(50 * Gst.MSECOND, mask)
            if tick is not None:
                tick(run, pub)
            if msg is None:
                continue
            if msg.type == Gst.MessageType.EOS:
                run.eos = True
                break
            if msg.type == Gst.MessageType.ERROR:
                err, dbg = msg.parse_error()
                run.errors.append(f"{err.message} | {dbg}")
                break
            if msg.type == Gst.MessageType.WARNING:
                err, dbg = msg.parse_warning()
                run.warnings.append(f"{err.message} | {dbg}")
            elif msg.type == Gst.MessageType.INFO:
                err, dbg = msg.parse_info()
                run.infos.append(f"{err.message} | {dbg}")
            elif msg.get_structure() is not None and \
                    msg.get_structure().get_name() == "vidcls-classification":
                run.classifications.append(msg.get_structure().copy())
        run.counters = {name: pub.get_property(name) for name in COUNTERS}
    finally:
        pipeline.set_state(Gst.State.NULL)
    return run


class Broker:
    """Debian's mosquitto on 127.0.0.1:port, persistence in its own folder, saved only when
    told (SIGUSR1) or on a clean exit."""

    def __init__(self, folder, port, tls=None, auth=None):
        """auth: {"user": ..., "password": ...}: no anonymous clients, that one user in a
        password file made by mosquitto_passwd."""
        self.folder, self.port, self.proc = folder, port, None
        os.makedirs(folder, exist_ok=True)
        self.conf = os.path.join(folder, "mosquitto.conf")
        access = ["allow_anonymous true"]
        if auth:
            passwords = os.path.join(folder, "passwords")
            subprocess.run(["mosquitto_passwd", "-c", "-b", passwords, auth["user"],
                            auth["password"]], check=True, capture_output=True)
            access = ["allow_anonymous false", f"password_file {passwords}"]
        lines = [f"listener {port} 127.0.0.1"] + access + ["persistence true",
                 f"persistence_location {folder}/", "autosave_interval 0",
                 "max_queued_messages 0", f"user {getpass.getuser()}",
                 f"log_dest file {folder}/mosquitto.log"]
        if tls:
            lines += [f"cafile {tls['ca']}", f"certfile {tls['cert']}", f"keyfile {tls['key']}"]
            if tls.get("require_certificate"):
                lines.append("require_certificate true")
        Path(self.conf).write_text("\n".join(lines) + "\n")

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(listening, 10, "mosquitto to listen")

    def save(self):
        """Writes the in-memory database (sessions, subscriptions) now."""
        db = os.path.join(self.folder, "mosquitto.db")
        before = os.stat(db).st_mtime_ns if os.path.exists(db) else None
        self.proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: os.path.exists(db) and os.stat(db).st_mtime_ns != before, 10,
                   "mosquitto to save its database")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)     # a frozen broker cannot handle SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        path = os.path.join(self.folder, "mosquitto.log")
        return Path(path).read_text()[-2000:] if os.path.exists(path) else ""


class Subscriber:
    """mosquitto_sub with a persistent session (clean session off, qos 1), one payload a line."""

    def __init__(self, folder, port, topic, tls_args=()):
        self.port, self.topic, self.tls_args = port, topic, list(tls_args)
        self.path = os.path.join(folder, "received.txt")
        self.out = open(self.path, "w")
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "1",
             "-c", "-i", "vidcls-test-sub"] + self.tls_args,
            stdout=self.out, stderr=subprocess.DEVNULL)
        self.probes = 0

    def probe(self):
        """Publishes a marker and waits until it came back: the subscription is in place and
        everything the broker queued for this subscriber before the marker has arrived."""
        self.probes += 1
        marker = f"probe-{self.probes}"
        deadline = time.monotonic() + 20
        while True:
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-t",
                            self.topic, "-q", "1", "-m", marker] + self.tls_args,
                           capture_output=True, timeout=10)
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                if marker in Path(self.path).read_text():
                    return
                time.sleep(0.05)
            if time.monotonic() > deadline:
                raise AssertionError(f"the subscriber never saw {marker}")

    def lines(self):
        return read_lines(self.path)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.out.close()


class BrokerCase(unittest.TestCase):
    """A broker on a free port with a subscriber whose session the broker saved; with AUTH, a
    broker that takes that user only, and the element logs in with a password file."""
    AUTH = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=TMP.name)
        self.port = free_port()
        self.topic = f"vidcls/test/{self.id().rsplit('.', 1)[-1]}"
        self.ref = os.path.join(self.dir, "reference.jsonl")
        self.broker = Broker(os.path.join(self.dir, "broker"), self.port, auth=self.AUTH)
        self.broker.start()
        login = ["-u", self.AUTH["user"], "-P", self.AUTH["password"]] if self.AUTH else []
        if self.AUTH:
            self.password_file = os.path.join(self.dir, "mqtt-password")
            Path(self.password_file).write_text(self.AUTH["password"] + "\n")
            os.chmod(self.password_file, 0o600)
        self.sub = Subscriber(self.dir, self.port, self.topic, tls_args=login)
        self.sub.probe()
        self.broker.save()

    def tearDown(self):
        self.sub.stop()
        self.broker.stop()

    def sink(self, **props):
        """vidclspublish to the broker and, as the reference of what was made, to a file."""
        settings = {"address": f"127.0.0.1:{self.port}", "topic": self.topic,
                    "file-path": self.ref, "file-mode": "truncate", "reconnect-delay": 100,
                    "reconnect-delay-max": 400, "flush-timeout": 30000}
        if self.AUTH:
            settings.update({"username": self.AUTH["user"], "password-file": self.password_file})
        settings.update(props)
        settings = {k: v for k, v in settings.items() if v is not None}
        return " ".join(f"{k}={v}" for k, v in settings.items())

    def outage(self, stop_after, restart_after):
        """A tick for an outage in three steps: once `stop_after` lines were made the broker is
        frozen (SIGSTOP: it takes lines into its socket but never reads or acknowledges them),
        5 lines later it is killed (SIGKILL: the lines it had are lost with it, so the element
        must send them again), and `restart_after` lines after that it starts again."""
        state = {"stopped_at": None, "killed_at": None, "restarted_at": None,
                 "unacknowledged": None}

        def tick(_run, pub):
            made = len(read_lines(self.ref))
            if state["stopped_at"] is None and made >= stop_after:
                self.broker.proc.send_signal(signal.SIGSTOP)
                state["stopped_at"] = made
            elif state["stopped_at"] is not None and state["killed_at"] is None \
                    and made >= state["stopped_at"] + 5:
                state["unacknowledged"] = pub.get_property("messages-queued")
                self.broker.kill()
                state["killed_at"] = made
            elif state["killed_at"] is not None and state["restarted_at"] is None \
                    and made >= state["killed_at"] + restart_after:
                self.broker.start()
                state["restarted_at"] = made
        return tick, state

    def received_after_probe(self):
        """What the subscriber got, once the broker has given it everything queued."""
        self.sub.probe()
        return self.sub.lines()

    def assert_valid(self, lines):
        v = validator()
        for line in lines:
            errors = [e.message for e in v.iter_errors(line)]
            self.assertEqual(errors, [], line)


    def check_every_line_arrives_in_order_once(self):
        """Broker frozen, killed mid-stream and restarted: all lines arrive, in order, none
        twice, those it had taken unacknowledged included."""
        tick, state = self.outage(stop_after=10, restart_after=25)
        run = run_pipeline(pipeline_text(self.sink(**{"max-queued": 1000}), paced=True), tick)
        self.assertTrue(run.eos, run.errors)
        made = read_lines(self.ref)
        self.assertIsNotNone(state["restarted_at"], f"the stream made only {len(made)} lines")
        # the lines made while the broker was frozen were with it, unacknowledged, when it died
        self.assertGreaterEqual(state["unacknowledged"], 3)
        self.assertGreater(len(made), state["restarted_at"], "no line after the broker returned")
        received = self.received_after_probe()
        self.assertEqual([l["seq"] for l in made], list(range(len(made))))
        self.assertEqual([l["seq"] for l in received], [l["seq"] for l in made])
        self.assertEqual(received, made)
        self.assertEqual(run.counters, {"messages-published": len(made), "messages-queued": 0,
                                        "messages-dropped": 0})
        self.assertTrue(any(f"Lost the connection to the MQTT broker at 127.0.0.1:{self.port}"
                            in w for w in run.warnings), run.warnings)
        self.assertTrue(any("Connected to the MQTT broker" in i for i in run.infos), run.infos)
        types = {l["type"] for l in received}
        self.assertEqual(types, {"classification", "action-start", "action-end"})
        self.assert_valid(received)


class TestBrokerOutage(BrokerCase):
    def test_every_line_arrives_in_order_once(self):
        self.check_every_line_arrives_in_order_once()

    def test_small_queue_drops_oldest(self):
        """max-queued=4 and 25 lines during the outage: the oldest are dropped and counted, the
        newest 4 and every line before and after the outage arrive, in order. A dropped line
        the broker already had may arrive too (at least once, never twice)."""
        tick, state = self.outage(stop_after=10, restart_after=20)
        run = run_pipeline(pipeline_text(self.sink(**{"max-queued": 4}), paced=True), tick)
        self.assertTrue(run.eos, run.errors)
        made = read_lines(self.ref)
        self.assertIsNotNone(state["restarted_at"], f"the stream made only {len(made)} lines")
        received = self.received_after_probe()
        seqs = [l["seq"] for l in received]
        self.assertEqual(seqs, sorted(set(seqs)), "out of order or twice")
        self.assertEqual(received, [made[s] for s in seqs])
        missing = sorted(set(range(len(made))) - set(seqs))
        dropped = run.counters["messages-dropped"]
        self.assertGreaterEqual(dropped, state["restarted_at"] - state["stopped_at"] - 4)
        # When all 4 queued lines are with the broker (max-queued is below the in-flight
        # window) and a new line comes, the oldest of them is dropped from the queue although
        # the broker has it: right after the reconnection it may still arrive. Only such lines,
        # never more than the queue held, are counted as dropped and received both.
        arrived_anyway = dropped - len(missing)
        self.assertGreaterEqual(arrived_anyway, 0)
        self.assertLessEqual(arrived_anyway, 4)
        self.assertEqual(missing, list(range(missing[0], missing[0] + len(missing))),
                         "the dropped lines are not one run")
        # The oldest go first: the run starts with the lines the frozen broker never
        # acknowledged (made from about stopped_at on; a line may have been made between the
        # test's look at the file and the SIGSTOP), not 4 lines later.
        self.assertLessEqual(missing[0], state["stopped_at"] + 1)
        self.assertGreaterEqual(missing[0], state["stopped_at"] - 4)
        self.assertEqual(run.counters["messages-published"], len(received) - arrived_anyway)
        self.assertEqual(run.counters["messages-queued"], 0)
        self.assert_valid(received)

    def test_unreachable_at_start(self):
        """No broker at start: a warning says so, the stream goes on, and the lines are
        delivered once a broker appears on that port."""
        self.broker.kill()
        started = {}

        def tick(run, _pub):
            made = len(read_lines(self.ref))
            if not started and made >= 15 and any("Cannot reach" in w for w in run.warnings):
                self.broker.start()
                started["at"] = made
        run = run_pipeline(pipeline_text(self.sink(), paced=True), tick)
        self.assertTrue(run.eos, run.errors)
        self.assertIn("at", started, run.warnings)
        self.assertTrue(any(f"Cannot reach the MQTT broker at 127.0.0.1:{self.port}: "
                            "Connection refused" in w for w in run.warnings), run.warnings)
        self.assertTrue(any("max-queued=1000" in w for w in run.warnings), run.warnings)
        self.assertTrue(any("Connected to the MQTT broker" in i for i in run.infos), run.infos)
        made = read_lines(self.ref)
        self.assertGreater(len(made), started["at"])
        received = self.received_after_probe()
        self.assertEqual(received, made)
        self.assertEqual(run.counters["messages-published"], len(made))

    def test_qos0(self):
        """qos=0 with the broker there all along: every line, in order."""
        run = run_pipeline(pipeline_text(self.sink(qos=0), paced=False))
        self.assertTrue(run.eos, run.errors)
        made = read_lines(self.ref)
        self.assertGreater(len(made), 20)
        self.assertEqual(self.received_after_probe(), made)
        self.assertEqual(run.counters["messages-published"], len(made))

    def test_qos0_queue_goes_out_when_the_broker_returns(self):
        """qos=0 with no broker until 60 lines are queued (unpaced: they pile up at once): the
        whole queue goes out once it appears, within a short flush-timeout, none dropped. (The
        rate at which such a queue goes out is bench-publish's "outage" line.)"""
        self.broker.kill()
        started = {}

        def tick(_run, _pub):
            if not started and len(read_lines(self.ref)) >= 60:
                self.broker.start()
                started["at"] = True
        run = run_pipeline(pipeline_text(self.sink(qos=0, **{"flush-timeout": 2500}),
                                         paced=False), tick)
        self.assertTrue(run.eos, run.errors)
        self.assertIn("at", started)
        made = read_lines(self.ref)
        # Counted, not compared with the subscriber's: the broker keeps no qos 0 message for a
        # subscriber that has not reconnected yet, so what it receives is not the element's doing.
        self.assertFalse([w for w in run.warnings if "were not delivered" in w], run.warnings)
        self.assertEqual(run.counters, {"messages-published": len(made), "messages-queued": 0,
                                        "messages-dropped": 0})


SECRET = "s3cret-Pa55-for-vidcls"


class TestAuthenticatedBroker(BrokerCase):
    """mosquitto with allow_anonymous false and a password file."""
    AUTH = {"user": "camera-7", "password": SECRET}

    def test_outage_with_password_file(self):
        """The outage of TestBrokerOutage, logged in with a password file: every line
        arrives, in order, once, across the broker's death and return."""
        self.check_every_line_arrives_in_order_once()

    def test_password_from_environment(self):
        os.environ["VIDCLS_TEST_MQTT_PASSWORD"] = SECRET
        try:
            run = run_pipeline(pipeline_text(self.sink(**{
                "password-file": None, "password-env": "VIDCLS_TEST_MQTT_PASSWORD"}), paced=False))
        finally:
            del os.environ["VIDCLS_TEST_MQTT_PASSWORD"]
        self.assertTrue(run.eos, run.errors)
        self.assertEqual(run.warnings, [])
        made = read_lines(self.ref)
        self.assertGreater(len(made), 20)
        self.assertEqual(self.received_after_probe(), made)

    def assert_refused(self, run, *expected):
        """An element error that says each of `expected`, and nowhere the secret."""
        self.assertFalse(run.eos)
        self.assertEqual(len(run.errors), 1, run.errors)
        for text in expected:
            self.assertIn(text, run.errors[0])
        for message in run.errors + run.warnings + run.infos:
            self.assertNotIn(SECRET, message)
            self.assertNotIn("wrong-" + SECRET, message)

    def test_wrong_password_is_an_error_that_hides_it(self):
        Path(self.password_file).write_text("wrong-" + SECRET + "\n")
        run = run_pipeline(pipeline_text(self.sink(), paced=False), timeout=30)
        self.assert_refused(run, f"The MQTT broker at 127.0.0.1:{self.port} refused user "
                            '"camera-7"', "not authorised", self.password_file, "(not shown)")

    def test_anonymous_is_an_error(self):
        run = run_pipeline(pipeline_text(self.sink(**{"username": None, "password-file": None}),
                                         paced=False), timeout=30)
        self.assert_refused(run, "refused a connection without credentials", "Set username")

    def test_missing_password_file_or_variable(self):
        missing = os.path.join(self.dir, "no-such-file")
        run = run_pipeline(pipeline_text(self.sink(**{"password-file": missing}), paced=False),
                           timeout=30)
        self.assert_refused(run, f'Cannot read the password file "{missing}"')
        run = run_pipeline(pipeline_text(self.sink(**{
            "password-file": None, "password-env": "VIDCLS_TEST_NO_SUCH_VARIABLE"}), paced=False),
            timeout=30)
        self.assert_refused(run, "The environment variable VIDCLS_TEST_NO_SUCH_VARIABLE "
                            "(password-env) is not set")


class TestTls(unittest.TestCase):
    def assert_delivered(self, sub, sink, ref):
        """The pipeline publishing through `sink` (writing `ref` too) gets every line to `sub`."""
        run = run_pipeline(pipeline_text(sink + f" file-path={ref}", paced=False, actions=False))
        self.assertTrue(run.eos, run.errors)
        self.assertEqual(run.warnings, [])
        made = read_lines(ref)
        self.assertGreater(len(made), 20)
        sub.probe()
        self.assertEqual(sub.lines(), made)

    def assert_refused(self, sink, ref, why=""):
        """The broker never takes the connection: warnings say so (and `why`), lines are left."""
        run = run_pipeline(pipeline_text(sink + f" file-path={ref} flush-timeout=300",
                                         paced=False, actions=False))
        self.assertTrue(run.eos, run.errors)
        self.assertTrue(any("Cannot reach the MQTT broker" in w and why in w
                            for w in run.warnings), run.warnings)
        self.assertTrue(any("were not delivered" in w for w in run.warnings), run.warnings)

    def test_tls_with_own_ca(self):
        """A TLS listener with a certificate of a CA made here: tls-ca-file trusts it and the
        lines arrive; without that CA the connection fails verification and a warning says
        why."""
        d = tempfile.mkdtemp(dir=TMP.name)
        tls = make_certificates(d)
        port = free_port()
        broker = Broker(os.path.join(d, "broker"), port, tls=tls)
        broker.start()
        topic = "vidcls/test/tls"
        sub = Subscriber(d, port, topic, tls_args=["--cafile", tls["ca"]])
        try:
            sub.probe()
            address = f"address=127.0.0.1:{port} topic={topic}"
            self.assert_delivered(sub, f"{address} tls-ca-file={tls['ca']}",
                                  os.path.join(d, "reference.jsonl"))
            other = make_certificates(os.path.join(d, "other"))
            self.assert_refused(f"{address} tls-ca-file={other['ca']}",
                                os.path.join(d, "other.jsonl"), "certificate verify failed")
        finally:
            sub.stop()
            broker.stop()

    def test_tls_with_password(self):
        """TLS, a client certificate and a password together: the broker takes no anonymous
        client and no client without a certificate of its CA; the element logs in over TLS
        with tls-cert-file / tls-key-file, username and password-file, and the lines arrive."""
        d = tempfile.mkdtemp(dir=TMP.name)
        tls = dict(make_certificates(d), require_certificate=True)
        port = free_port()
        auth = TestAuthenticatedBroker.AUTH
        broker = Broker(os.path.join(d, "broker"), port, tls=tls, auth=auth)
        broker.start()
        topic = "vidcls/test/tls-password"
        sub = Subscriber(d, port, topic, tls_args=[
            "--cafile", tls["ca"], "--cert", tls["client-cert"], "--key", tls["client-key"],
            "-u", auth["user"], "-P", auth["password"]])
        try:
            sub.probe()
            password_file = os.path.join(d, "password")
            Path(password_file).write_text(auth["password"])
            login = (f"address=127.0.0.1:{port} topic={topic} tls-ca-file={tls['ca']} "
                     f"username={auth['user']} password-file={password_file}")
            self.assert_delivered(sub, f"{login} tls-cert-file={tls['client-cert']} "
                                  f"tls-key-file={tls['client-key']}",
                                  os.path.join(d, "reference.jsonl"))
            # the same without the client certificate: the broker ends the handshake
            self.assert_refused(login, os.path.join(d, "no-cert.jsonl"))
        finally:
            sub.stop()
            broker.stop()


def make_certificates(folder, names="IP:127.0.0.1,DNS:localhost"):
    """A CA and a server certificate for 127.0.0.1 (or `names`) signed by it (openssl)."""
    os.makedirs(folder, exist_ok=True)
    p = {k: os.path.join(folder, f"{k}.pem") for k in ("ca", "ca-key", "cert", "key")}
    csr = os.path.join(folder, "server.csr")
    ext = os.path.join(folder, "ext.cnf")
    Path(ext).write_text(f"subjectAltName={names}\n")

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=vidcls test CA", "-keyout", p["ca-key"], "-out", p["ca"])
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", p["key"],
         "-out", csr)
    ossl("x509", "-req", "-in", csr, "-CA", p["ca"], "-CAkey", p["ca-key"], "-CAcreateserial",
         "-days", "2", "-extfile", ext, "-out", p["cert"])
    # and a client certificate of the same CA, for brokers that ask for one
    client = {k: os.path.join(folder, f"client-{k}.pem") for k in ("cert", "key")}
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=vidcls camera", "-keyout",
         client["key"], "-out", csr)
    ossl("x509", "-req", "-in", csr, "-CA", p["ca"], "-CAkey", p["ca-key"], "-CAcreateserial",
         "-days", "2", "-out", client["cert"])
    return {"ca": p["ca"], "cert": p["cert"], "key": p["key"], "client-cert": client["cert"],
            "client-key": client["key"]}


class TestFile(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=TMP.name)
        self.path = os.path.join(self.dir, "results.jsonl")

    def test_object_lines_carry_their_object_and_box(self):
        """Clips of tracked objects (boxes replayed from a MOT file): each line names its object
        and carries the object's box on the clip's last frame; whole-frame fields stay valid."""
        tracks = os.path.join(self.dir, "gt.txt")
        boxes = {1: (4, 6, 30, 40), 2: (40, 10, 24, 24)}
        with open(tracks, "w") as f:
            for frame in range(1, 151):
                for ident, (x, y, w, h) in boxes.items():
                    # person 2 walks right one pixel every 10 frames
                    dx = (frame - 1) // 10 if ident == 2 else 0
                    f.write(f"{frame},{ident},{x + dx},{y},{w},{h},1,1,1\n")
        text = (f"filesrc location={VIDEO} ! decodebin ! videoconvert ! "
                f"vidclsroireplay location={tracks} ! "
                f"vidclsclipper inference-region=roi-list ! vividinfer model={MODEL} ! "
                f"vidclspublish name=pub file-path={self.path} ! fakesink")
        run = run_pipeline(text)
        self.assertTrue(run.eos, run.errors)
        lines = read_lines(self.path)
        self.assert_valid_lines(lines)
        cls = [l for l in lines if l["type"] == "classification"]
        self.assertEqual({l["object-id"] for l in cls}, {1, 2})
        for line in cls:
            x, y, w, h = boxes[line["object-id"]]
            # the clip's last frame: the one whose end is the clip's end (30 fps, from 0)
            last = round(line["end"] * 30 / 1e9) - 1
            if line["object-id"] == 2:
                x += last // 10
            self.assertEqual(line["box"], {"x": x, "y": y, "width": w, "height": h}, line)

    def assert_valid_lines(self, lines):
        v = validator()
        for line in lines:
            self.assertEqual([e.message for e in v.iter_errors(line)], [], line)

    def test_lines_validate_and_carry_the_results(self):
        """Every line validates against the schema; the classifications are those the
        inference element posted (clip, labels, scores), in order; actions start and end."""
        # clips every 2 sampled frames: the last frames make a partial clip at end of stream,
        # whose result comes as an event, not a meta
        run = run_pipeline(pipeline_text(f"file-path={self.path}", paced=False, clip_stride=2))
        self.assertTrue(run.eos, run.errors)
        lines = read_lines(self.path)
        v = validator()
        for line in lines:
            self.assertEqual([e.message for e in v.iter_errors(line)], [], line)
        self.assertEqual([l["seq"] for l in lines], list(range(len(lines))))
        self.assertEqual(run.counters["messages-published"], len(lines))
        cls = [l for l in lines if l["type"] == "classification"]
        self.assertEqual(len(cls), len(run.classifications))
        self.assertGreater(len(cls), 10)
        for line, msg in zip(cls, run.classifications):
            self.assertEqual(line["clip-index"], msg.get_value("clip-index"))
            self.assertEqual(line["start"], msg.get_value("start"))
            self.assertEqual(line["labels"], array_field(msg, "labels"))
            want = array_field(msg, "scores")
            self.assertEqual(len(line["scores"]), len(want))
            for got, w in zip(line["scores"], want):
                self.assertAlmostEqual(got, w, places=5)
            self.assertEqual(len(line["labels"]), len(line["scores"]))
            self.assertEqual(len(line["labels"]), len(line["class-ids"]))
            self.assertEqual(line["scores"], sorted(line["scores"], reverse=True))
        starts = [l for l in lines if l["type"] == "action-start"]
        ends = [l for l in lines if l["type"] == "action-end"]
        self.assertGreater(len(starts), 0)
        self.assertEqual(sorted(l["action-id"] for l in starts),
                         sorted(l["action-id"] for l in ends))
        # the end-of-stream results came as events (which say why an action ended and how long
        # inference took), the others as metas (which do not)
        self.assertTrue(all(l["reason"] == "eos" for l in ends), ends)
        self.assertTrue(cls[-1]["partial"])
        self.assertIsNotNone(cls[-1]["inference-time"])
        self.assertTrue(all(l["inference-time"] is None for l in cls[:-1]))

    def test_append_and_truncate(self):
        """append (the default) adds a second run's lines, seq from 0 again; truncate empties
        the file first."""
        sink = f"file-path={self.path}"
        for _ in range(2):
            self.assertTrue(run_pipeline(pipeline_text(sink, paced=False, actions=False)).eos)
        lines = read_lines(self.path)
        half = len(lines) // 2
        self.assertGreater(half, 20)
        self.assertEqual([l["seq"] for l in lines], list(range(half)) * 2)
        run = run_pipeline(pipeline_text(sink + " file-mode=truncate", paced=False,
                                         actions=False))
        self.assertTrue(run.eos)
        self.assertEqual([l["seq"] for l in read_lines(self.path)], list(range(half)))

    def test_unwritable_path_is_an_error_naming_it(self):
        for path, why in ((os.path.join(self.dir, "no-such-folder", "r.jsonl"),
                           "No such file or directory"), (self.dir, "Is a directory")):
            run = run_pipeline(pipeline_text(f"file-path={path}", paced=False))
            self.assertFalse(run.eos)
            self.assertEqual(len(run.errors), 1, run.errors)
            self.assertIn(f'Could not open "{path}" for writing: {why}', run.errors[0])

    def test_write_error_mid_stream(self):
        """/dev/full opens and then refuses every write: an error, not a crash."""
        run = run_pipeline(pipeline_text("file-path=/dev/full", paced=False))
        self.assertFalse(run.eos)
        self.assertIn('Could not write to "/dev/full": No space left on device', run.errors[0])

    def test_stdout(self):
        """file-path=- writes the lines to standard output (gst-launch-1.0 -q says nothing
        else there)."""
        text = pipeline_text("file-path=-", paced=False)
        p = subprocess.run(["gst-launch-1.0", "-q"] + text.split(), capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertGreater(len(lines), 20)
        self.assertEqual([l["seq"] for l in lines], list(range(len(lines))))
        v = validator()
        self.assertTrue(all(v.is_valid(l) for l in lines))


class TestAddresses(unittest.TestCase):
    """A host name with several addresses, the first dead: the element tries each in turn.
    Debian's nss_wrapper (LD_PRELOAD) resolves broker.vidcls.test from a hosts file of the
    test's own to 127.0.0.3 (nothing listens there: a non-blocking connect is pending first,
    refused later, so libmosquitto's own walk over the addresses would stop at it) and then
    127.0.0.1, where mosquitto listens; gst-launch-1.0 runs the pipeline."""
    NAME = "broker.vidcls.test"

    def launch(self, d, sink):
        hosts = os.path.join(d, "hosts")
        Path(hosts).write_text(f"127.0.0.3 {self.NAME}\n127.0.0.1 {self.NAME}\n")
        env = dict(os.environ, LD_PRELOAD="libnss_wrapper.so", NSS_WRAPPER_HOSTS=hosts)
        text = pipeline_text(sink, paced=False, actions=False)
        return subprocess.run(["gst-launch-1.0", "-e"] + text.split(), capture_output=True,
                              text=True, timeout=120, env=env)

    def run_case(self, tls_names=None, expect_delivery=True):
        d = tempfile.mkdtemp(dir=TMP.name)
        port = free_port()
        tls = make_certificates(d, tls_names) if tls_names else None
        broker = Broker(os.path.join(d, "broker"), port, tls=tls)
        broker.start()
        topic = "vidcls/test/addresses"
        sub = Subscriber(d, port, topic, tls_args=["--cafile", tls["ca"], "--insecure"] if tls else [])
        try:
            sub.probe()
            ref = os.path.join(d, "reference.jsonl")
            sink = (f"address={self.NAME}:{port} topic={topic} file-path={ref} "
                    "flush-timeout=3000 reconnect-delay=100")
            if tls:
                sink += f" tls-ca-file={tls['ca']}"
            p = self.launch(d, sink)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            made = read_lines(ref)
            self.assertGreater(len(made), 20)
            if expect_delivery:
                sub.probe()
                self.assertEqual(sub.lines(), made, (p.stdout + p.stderr)[-3000:])
            return p.stdout + p.stderr
        finally:
            sub.stop()
            broker.stop()

    def test_second_address(self):
        out = self.run_case()
        self.assertNotIn("Cannot reach", out)

    def test_tls_checks_the_host_name_at_each_address(self):
        """TLS to the second address: the certificate is checked against the host name (it
        names broker.vidcls.test, not 127.0.0.1), and one that does not name it is refused."""
        out = self.run_case(tls_names=f"DNS:{self.NAME}")
        self.assertNotIn("Cannot reach", out)
        out = self.run_case(tls_names="DNS:other.vidcls.test,IP:127.0.0.1", expect_delivery=False)
        self.assertIn(f"Cannot reach the MQTT broker at {self.NAME}", out)
        self.assertIn("every address of broker.vidcls.test failed: 127.0.0.3: ", out)
        self.assertIn("certificate verify failed", out)
        self.assertIn("were not delivered", out)


class TestSettings(unittest.TestCase):
    def error_of(self, sink):
        run = run_pipeline(pipeline_text(sink, paced=False))
        self.assertFalse(run.eos)
        self.assertEqual(len(run.errors), 1, run.errors)
        return run.errors[0]

    def test_nothing_to_publish_to(self):
        self.assertIn("Nothing to publish to", self.error_of(""))

    def test_malformed_address(self):
        self.assertIn('Invalid MQTT broker address "localhost": no port',
                      self.error_of("address=localhost"))
        self.assertIn('Invalid MQTT broker address "localhost:99999": the port must be',
                      self.error_of("address=localhost:99999"))

    def test_wildcard_topic(self):
        self.assertIn('Invalid MQTT topic "a/#"', self.error_of("address=127.0.0.1:1 topic=a/#"))

    def test_unreadable_tls_file(self):
        missing = os.path.join(TMP.name, "missing-ca.pem")
        self.assertIn(f'Cannot read the TLS file "{missing}"',
                      self.error_of(f"address=127.0.0.1:1 tls-ca-file={missing}"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
