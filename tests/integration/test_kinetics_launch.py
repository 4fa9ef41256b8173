#!/usr/bin/env python3
"""An imported Kinetics-400 classifier labels a real encoded video through gst-launch-1.0.

    test_kinetics_launch.py --import VIDCLS_IMPORT --plugin-dir DIR

torchvision's R(2+1)D-18 with seeded random weights is saved as the publisher's file
(r2plus1d_18-91a641e6.pth) and imported with vidcls-import. A VP8/WebM video (320 x 240 at
15 f/s, the rate the model samples at) plays through

    gst-launch-1.0 -m filesrc ! decodebin ! videoconvert ! vidclsclipper ! vidclsinfer ! fakesink

Checked: the checkpoint's labels are torchvision's 400 Kinetics-400 categories in order; every
clip of the video gets one vidcls-classification message in order; each message's label is the
one torchvision's model gives when it classifies the same decoded frames (gst-launch-1.0 ...
videoconvert ! video/x-raw,format=RGB ! filesink, then the weights' own transforms()); its score
is torchvision's softmax probability within 1e-4. pipelines/kinetics.sh, given the .pth as
downloaded, imports it and prints the same labels; vividinfer refuses the checkpoint with an
error that names vidclsinfer.
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import torch
import torchvision.models.video as video

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "parity"))
import test_video_import as tvi  # noqa: E402

W, H, FRAMES, T = 320, 240, 50, 16
MESSAGE = re.compile(r"clip-index=\(guint64\)(\d+).*?"
                     r"label=\(string\)(\"(?:[^\"\\]|\\.)*\"|[^,\s]+).*?score=\((?:float|double)\)([0-9.e+-]+)")


def checkpoint_labels(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return json.loads(header["__metadata__"]["vidcls.labels"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--import", dest="importer", required=True)
    parser.add_argument("--plugin-dir", required=True)
    args = parser.parse_args()
    env = dict(os.environ, GST_PLUGIN_PATH=args.plugin_dir)
    weights = video.R2Plus1D_18_Weights.KINETICS400_V1
    categories = weights.meta["categories"]
    failures = []
    work = tempfile.mkdtemp(prefix="vidcls-kinetics-")
    try:
        model = tvi.randomise(video.r2plus1d_18(), tvi.SEED)
        pth = os.path.join(work, "r2plus1d_18-91a641e6.pth")
        torch.save(model.state_dict(), pth)
        ckpt = os.path.join(work, "r2plus1d.safetensors")
        subprocess.run([args.importer, pth, "-o", ckpt], check=True)
        if checkpoint_labels(ckpt) != list(categories):
            failures.append("the checkpoint's labels are not torchvision's Kinetics-400 categories")

        vid = os.path.join(work, "v.webm")
        subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "pattern=ball", "num-buffers=%d" % FRAMES,
                        "!", "video/x-raw,width=%d,height=%d,framerate=15/1" % (W, H), "!", "videoconvert",
                        "!", "vp8enc", "deadline=1", "!", "webmmux", "!", "filesink", "location=" + vid],
                       check=True, env=env)
        raw = os.path.join(work, "frames.rgb")
        subprocess.run(["gst-launch-1.0", "-q", "filesrc", "location=" + vid, "!", "decodebin", "!",
                        "videoconvert", "!", "video/x-raw,format=RGB", "!", "filesink", "location=" + raw],
                       check=True, env=env)
        launch = subprocess.run(["gst-launch-1.0", "-m", "filesrc", "location=" + vid, "!", "decodebin", "!",
                                 "videoconvert", "!", "vidclsclipper", "!", "vidclsinfer", "model=" + ckpt,
                                 "!", "fakesink"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True, env=env, timeout=600)
        if launch.returncode != 0:
            print(launch.stdout[-3000:])
            raise SystemExit("gst-launch-1.0 failed (exit %d)" % launch.returncode)
        # vividinfer runs ViViT checkpoints only, and says which element runs this one.
        wrong = subprocess.run(["gst-launch-1.0", "filesrc", "location=" + vid, "!", "decodebin", "!",
                                "videoconvert", "!", "vidclsclipper", "!", "vividinfer", "model=" + ckpt,
                                "!", "fakesink"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True, env=env, timeout=300)
        refused = wrong.returncode != 0 and "use vidclsinfer" in wrong.stdout
        print("%s vividinfer refuses the video-resnet checkpoint, naming vidclsinfer" % ("ok  " if refused else "FAIL"))
        if not refused:
            failures.append("vividinfer with a video-resnet checkpoint: " + wrong.stdout[-500:])
        with open(raw, "rb") as f:
            frames = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).view(-1, H, W, 3)
        # pipelines/kinetics.sh with the publisher's file: imports it into its cache, then the
        # same labels (drawn by the overlay into frames that go to fakesink here).
        script = subprocess.run([os.path.join(HERE, "..", "..", "pipelines", "kinetics.sh"), pth, vid],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                                env=dict(env, SINK="fakesink", MODE="sync", VIDCLS_CACHE=os.path.join(work, "cache"),
                                         # the build's vidcls-import and vidcls-info
                                         PATH=os.path.dirname(os.path.abspath(args.importer)) + os.pathsep +
                                         env.get("PATH", "")),
                                timeout=600)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # gst_structure_to_string quotes a string with spaces and escapes them: "playing\ violin".
    results = [(int(m.group(1)), re.sub(r"\\(.)", r"\1", m.group(2).strip('"')), float(m.group(3)))
               for m in MESSAGE.finditer(launch.stdout)]
    whole = FRAMES // T  # clips of whole frames; the end-of-stream policy may add a partial one
    if [r[0] for r in results[:whole]] != list(range(whole)):
        failures.append("clip indices %s, expected 0..%d first" % ([r[0] for r in results], whole - 1))
    transforms = weights.transforms()
    for index, label, score in results[:whole]:
        clip = frames[index * T:(index + 1) * T].permute(0, 3, 1, 2).float() / 255
        with torch.no_grad():
            probs = model(transforms(clip).unsqueeze(0)).softmax(1)[0]
        want = categories[int(probs.argmax())]
        ok = label == want and abs(score - float(probs.max())) <= 1e-4
        print("%s clip %d: gst-launch '%s' %.4f, torchvision '%s' %.4f" % (
            "ok  " if ok else "FAIL", index, label, score, want, float(probs.max())))
        if not ok:
            failures.append("clip %d: '%s' %.4f vs '%s' %.4f" % (index, label, score, want, float(probs.max())))
    from_script = [(int(m.group(1)), re.sub(r"\\(.)", r"\1", m.group(2).strip('"')), float(m.group(3)))
                   for m in MESSAGE.finditer(script.stdout)]
    same = script.returncode == 0 and [r[:2] for r in from_script] == [r[:2] for r in results]
    print("%s pipelines/kinetics.sh (exit %d): %d results, %s" % (
        "ok  " if same else "FAIL", script.returncode, len(from_script),
        "the same labels" if same else "different: " + script.stdout[-2000:]))
    if not same:
        failures.append("pipelines/kinetics.sh")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("%d clips labelled as torchvision labels them" % whole)
    return 0


if __name__ == "__main__":
    sys.exit(main())
