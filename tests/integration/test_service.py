#!/usr/bin/env python3
"""vidcls-camera, the service launcher, against real components: an RTSP server (GStreamer's
gst-rtsp-server through PyGObject, on a free loopback port, a live VP8 stream), Debian's
mosquitto broker and mosquitto_sub.

    test_service.py --launcher BUILD/pipelines/vidcls-camera --init BUILD/models/vidcls-init
                    --unit BUILD/pipelines/vidcls-camera@.service

The launcher runs from the build tree with no GST_PLUGIN_PATH (it finds the build tree's
plugins itself). Once its pipeline publishes, the pipeline process (gst-launch-1.0, the
launcher's child) is killed with SIGKILL: a new one must start and publish again (its lines
count from seq 0 again). SIGTERM then stops the launcher with exit status 0, its child gone. A
configuration with an unknown key is refused with exit status 78, naming the line. The unit file
passes `systemd-analyze verify` where systemd is installed.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "results"))
from test_publish import Broker, Subscriber, free_port, wait_until  # noqa: E402

import gi  # noqa: E402
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

ARGS = None
TMP = None


def children_of(pid):
    """Process ids whose parent is `pid` (from /proc: no procps needed)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


class RtspServer:
    """A live 96x64 ball at 24 fps, VP8 over RTP, at rtsp://127.0.0.1:PORT/cam."""

    def __init__(self, port):
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address("127.0.0.1")
        self.server.set_service(str(port))
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch("( videotestsrc is-live=true pattern=ball ! "
                           "video/x-raw,width=96,height=64,framerate=24/1 ! "
                           "vp8enc deadline=1 ! rtpvp8pay name=pay0 pt=96 )")
        factory.set_shared(True)
        self.server.get_mount_points().add_factory("/cam", factory)
        self.context = GLib.MainContext()
        self.server.attach(self.context)
        self.loop = GLib.MainLoop(self.context)
        self.thread = threading.Thread(target=self.loop.run, daemon=True)
        self.thread.start()
        self.url = f"rtsp://127.0.0.1:{port}/cam"

    def stop(self):
        self.loop.quit()
        self.thread.join(5)


class TestCameraService(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=TMP.name)
        self.model = os.path.join(self.dir, "m.safetensors")
        subprocess.run([ARGS.init, "--preset", "vivit-xs", "--num-classes", "4", "--out",
                        self.model], check=True, capture_output=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GST_PLUGIN_PATH")}
        self.env["GST_REGISTRY_1_0"] = os.path.join(self.dir, "registry.bin")

    def config(self, text):
        path = os.path.join(self.dir, "door.conf")
        Path(path).write_text(text)
        return path

    def test_pipeline_killed_comes_back_and_publishes(self):
        rtsp = RtspServer(free_port())
        port = free_port()
        broker = Broker(os.path.join(self.dir, "broker"), port)
        broker.start()
        sub = Subscriber(self.dir, port, "vidcls/door")
        log_path = os.path.join(self.dir, "launcher.log")
        launcher = None
        try:
            sub.probe()
            conf = self.config(f"# the door camera\nSOURCE={rtsp.url}\nMODEL=\"{self.model}\"\n"
                               f"MQTT_ADDRESS=127.0.0.1:{port}   # the local broker\n"
                               "RESTART_DELAY=1\n")
            with open(log_path, "w") as log:
                launcher = subprocess.Popen([ARGS.launcher, conf], stdout=log, stderr=log,
                                            env=self.env)

            def lines_from_runs():
                """Published classification lines, and how many runs (seq 0) they come from."""
                lines = [l for l in sub.lines() if isinstance(l, dict)]
                return lines, sum(1 for l in lines if l.get("seq") == 0)
            wait_until(lambda: len(lines_from_runs()[0]) >= 3, 90, "the first lines")
            first = children_of(launcher.pid)
            self.assertEqual(len(first), 1, first)
            os.kill(first[0], signal.SIGKILL)
            wait_until(lambda: children_of(launcher.pid) not in ([], first), 30,
                       "a new pipeline process")
            wait_until(lambda: lines_from_runs()[1] >= 2 and
                       any(l["seq"] >= 2 for l in lines_from_runs()[0][-3:]), 90,
                       "lines from the second run")
            self.assertIsNone(launcher.poll())
            launcher.send_signal(signal.SIGTERM)
            self.assertEqual(launcher.wait(30), 0)
            self.assertEqual(children_of(launcher.pid), [])
            log = Path(log_path).read_text()
            self.assertIn("pipeline ended (killed by signal 9)", log)
            self.assertIn("starting it again in 1 s", log)
            self.assertIn("stopped", log)
        finally:
            if launcher is not None and launcher.poll() is None:
                launcher.kill()
                launcher.wait()
            sub.stop()
            broker.stop()
            rtsp.stop()

    def test_bad_configuration_is_refused_by_line(self):
        conf = self.config(f"SOURCE=rtsp://127.0.0.1:1/cam\nMODEL={self.model}\nMQTT_ADRESS=x:1\n")
        p = subprocess.run([ARGS.launcher, conf], capture_output=True, text=True, env=self.env,
                           timeout=30)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(f"{conf}:3: unknown key MQTT_ADRESS", p.stderr)
        conf = self.config(f"SOURCE=rtsp://127.0.0.1:1/cam\nMODEL={self.model}\n")
        p = subprocess.run([ARGS.launcher, conf], capture_output=True, text=True, env=self.env,
                           timeout=30)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("set MQTT_ADDRESS, RESULTS_FILE or both", p.stderr)

    def test_unit_file(self):
        analyze = "/usr/bin/systemd-analyze"
        if not os.path.exists(analyze):
            self.skipTest("systemd-analyze is not installed (no systemd here)")
        unit = os.path.join(self.dir, "vidcls-camera@.service")
        text = Path(ARGS.unit).read_text()
        exec_start = [l for l in text.splitlines() if l.startswith("ExecStart=")][0]
        # verify wants the program where ExecStart says: the build tree's launcher stands in
        Path(unit).write_text(text.replace(exec_start.split()[0],
                                           "ExecStart=" + os.path.realpath(ARGS.launcher)))
        p = subprocess.run([analyze, "verify", unit.replace("@.service", "@door.service")],
                           capture_output=True, text=True, cwd=self.dir)
        # verify exits 0 on a value it cannot parse and ignores: any line about the file fails
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("vidcls-camera@.service:", p.stdout + p.stderr)


def main():
    global ARGS, TMP
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("--launcher", "--init", "--unit"):
        parser.add_argument(name, required=True)
    ARGS, rest = parser.parse_known_args()
    TMP = tempfile.TemporaryDirectory(prefix="vidcls-service-")
    os.environ["GST_REGISTRY_1_0"] = os.path.join(TMP.name, "registry.bin")
    Gst.init(None)
    try:
        result = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2).result
    finally:
        TMP.cleanup()
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
