#!/usr/bin/python3
"""The used-by pipeline, for real: encoded files made here with GStreamer's own encoders and
muxers, classified by `gst-launch-1.0 -m filesrc ! decodebin ! vidclsclipper ! <infer> ! fakesink`.

Each case checks that gst-launch exits 0 and that the bus carries exactly the number of
`vidcls-classification` messages that the frame count, T, stride, hop and eos-policy predict.
"""
import argparse
import math
import os
import re
import subprocess
import sys
import tempfile

# (container, encoder pipeline fragment, file suffix)
CONTAINERS = {
    "mjpeg-avi": ("jpegenc ! avimux", "avi"),
    "vp8-webm": ("vp8enc deadline=1 ! webmmux", "webm"),
    "mpeg4-mp4": ("avenc_mpeg4 ! mp4mux", "mp4"),
}


def expected_clips(frames: int, T: int, stride: int, hop: int, policy: str) -> int:
    sampled = math.ceil(frames / stride)
    full = 1 + (sampled - T) // hop if sampled >= T else 0
    if policy == "drop" or sampled == 0:
        return full
    # the trailing clip starts at the next hop position and is sent only for frames that no
    # complete clip holds
    next_start = full * hop
    covered_to = (full - 1) * hop + T if full else 0
    return full + (1 if sampled > max(next_start, covered_to) else 0)


def run(cmd, env, timeout=300):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def make_video(path: str, container: str, frames: int, env, pattern: str = "ball") -> None:
    enc, _ = CONTAINERS[container]
    cmd = ["gst-launch-1.0", "-q", "videotestsrc", f"pattern={pattern}", f"num-buffers={frames}", "!",
           "video/x-raw,width=96,height=72,framerate=15/1", "!", "videoconvert", "!"]
    cmd += enc.replace("!", " ! ").split() + ["!", "filesink", f"location={path}"]
    rc, out = run(cmd, env)
    if rc != 0:
        raise SystemExit(f"could not encode {container}: {out}")


CLIP_LINE = re.compile(r"^(?:(.*)  )?(\d+\.\d{3}-\d+\.\d{3})  (\S+)  ([01]\.\d{3})")


def clip_lines(out: str, prefixed: bool):
    """{file or None: [(times, label, score)]} of vidcls-classify's text lines."""
    rows = {}
    for line in out.splitlines():
        m = CLIP_LINE.match(line)
        if m and (m.group(1) is not None) == prefixed:
            rows.setdefault(m.group(1), []).append((m.group(2), m.group(3), float(m.group(4))))
    return rows


def same_results(got, want) -> bool:
    """Same clips, times and labels; scores equal to the printed 3 decimals, give or take one
    step (a batch of several clips may round the last bit differently)."""
    return (len(got) == len(want) and
            all(g[:2] == w[:2] and abs(g[2] - w[2]) <= 0.0011 for g, w in zip(got, want)))


def check_classify_files(classify: str, model: str, tmp: str, env) -> int:
    """vidcls-classify with several files: every file classified in one process through one
    shared model instance, batched, each result as in a run of that file alone; a file that
    cannot be read fails alone. Returns the number of failures (of 2 checks)."""
    videos = [os.path.join(tmp, "several-a.avi"), os.path.join(tmp, "several-b.webm"),
              os.path.join(tmp, "several-c.mp4")]
    for path, container, frames, pattern in zip(videos, ("mjpeg-avi", "vp8-webm", "mpeg4-mp4"),
                                                (70, 90, 61), ("ball", "smpte", "snow")):
        make_video(path, container, frames, env, pattern)
    alone = {}
    for path in videos:
        rc, out = run([classify, "--model", model, path], env)
        alone[path] = clip_lines(out, False).get(None, []) if rc == 0 else None
    failures = 0
    rc, out = run([classify, "--model", model] + videos, env)
    got = clip_lines(out, True)
    summary = re.search(r"(\d+) streams, (\d+) clips in (\d+) batches \(mean batch (\d+\.\d+)\)",
                        out)
    total = sum(len(r) for r in got.values())
    ok = (rc == 0 and all(alone[p] for p in videos) and sorted(got) == sorted(videos)
          and all(same_results(got[p], alone[p]) for p in videos) and summary is not None
          and int(summary.group(1)) == 3 and int(summary.group(2)) == total
          and float(summary.group(4)) > 1.0)
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} vidcls-classify 3 files: exit {rc}, "
          f"{ {os.path.basename(p): len(r) for p, r in got.items()} } lines, "
          f"{summary.group(0) if summary else 'no summary'}")
    if not ok:
        print(out[-3000:])
    missing = os.path.join(tmp, "missing.mp4")
    broken = os.path.join(tmp, "broken.mp4")
    with open(broken, "wb") as f:
        f.write(b"this is not a video" * 100)
    good = videos[0]
    rc, out = run([classify, "--model", model, missing, good, broken], env)
    got = clip_lines(out, True)
    errors = [l for l in out.splitlines() if re.match(r"^vidcls-classify: .*: error from ", l)]
    ok = (rc == 1 and list(got) == [good] and same_results(got[good], alone[good])
          and any(l.startswith(f"vidcls-classify: {missing}: error") for l in errors)
          and any(l.startswith(f"vidcls-classify: {broken}: error") for l in errors)
          and not any(good in l for l in errors))
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} vidcls-classify with a missing and a broken file among "
          f"good ones: exit {rc}, {len(got.get(good, []))} lines of the good file, "
          f"{len(errors)} errors")
    if not ok:
        print(out[-3000:])
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--init", required=True, help="vidcls-init")
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--classify", help="vidcls-classify")
    ap.add_argument("--meta-reader", help="vidcls-meta-reader (in-tree build)")
    args = ap.parse_args()

    env = dict(os.environ)
    env["GST_PLUGIN_PATH"] = args.plugin_dir
    failures = 0
    with tempfile.TemporaryDirectory(prefix="vidcls-launch-") as tmp:
        env["GST_REGISTRY"] = os.path.join(tmp, "registry.bin")
        models = {}
        for element, preset in (("vividinfer", "vivit-xs"), ("resnetvitinfer", "resnet18-tvit-xs")):
            path = os.path.join(tmp, preset + ".safetensors")
            rc, out = run([args.init, "--preset", preset, "--num-classes", "4", "--out", path], env)
            if rc != 0:
                raise SystemExit(f"vidcls-init failed: {out}")
            models[element] = path
        # (container, frames, element, clipper settings (T, stride, hop) or None for the
        # checkpoint's own: (8, 2, 8) for vivit-xs, (9, 2, 9) for resnet18-tvit-xs, whose motion
        # input takes T + 1 frames for T frame pairs; eos-policy)
        own = {"vividinfer": (8, 2, 8), "resnetvitinfer": (9, 2, 9)}
        cases = [
            ("mjpeg-avi", 45, "vividinfer", None, "pad"),
            ("vp8-webm", 45, "vividinfer", None, "drop"),
            ("mpeg4-mp4", 37, "resnetvitinfer", None, "partial"),
            ("mjpeg-avi", 50, "resnetvitinfer", (9, 1, 3), "pad"),
            ("vp8-webm", 31, "vividinfer", (8, 3, 2), "drop"),
        ]
        videos = {}
        for container, frames, element, settings, policy in cases:
            key = (container, frames)
            if key not in videos:
                videos[key] = os.path.join(tmp, f"v{frames}.{CONTAINERS[container][1]}")
                make_video(videos[key], container, frames, env)
            clipper = ["vidclsclipper", f"eos-policy={policy}"]
            T, stride, hop = own[element]
            if settings:
                T, stride, hop = settings
                clipper += [f"clip-length={T}", f"frame-stride={stride}", f"clip-stride={hop}"]
            cmd = ["gst-launch-1.0", "-m", "filesrc", f"location={videos[key]}", "!", "decodebin",
                   "!"] + clipper + ["!", element, f"model={models[element]}", "!", "fakesink"]
            rc, out = run(cmd, env)
            got = len(re.findall(r"vidcls-classification", out))
            want = expected_clips(frames, T, stride, hop, policy)
            name = f"{container} {frames} frames {element} T={T} stride={stride} hop={hop} {policy}"
            if rc != 0 or got != want:
                failures += 1
                print(f"FAIL {name}: exit {rc}, {got} messages, expected {want}\n{out[-3000:]}")
            else:
                print(f"ok   {name}: {got} messages")
        # GStreamer's leaks tracer over a whole run of each element: gst-launch-1.0 calls
        # gst_deinit() at exit, and every GstObject or GstMiniObject (buffers with their clip
        # and result metas, events, queries) still alive then is reported as object-alive.
        checks = len(cases)
        for element, extra in (("vividinfer", ["eos-policy=pad"]),
                               ("resnetvitinfer", ["eos-policy=partial", "clip-stride=2"])):
            checks += 1
            video = videos[("mjpeg-avi", 45)]
            leak_env = dict(env, GST_TRACERS="leaks", GST_DEBUG="GST_TRACER:7",
                            GST_DEBUG_NO_COLOR="1")
            cmd = ["gst-launch-1.0", "filesrc", f"location={video}", "!", "decodebin", "!",
                   "vidclsclipper"] + extra + ["!", element, f"model={models[element]}", "!",
                                               "fakesink"]
            rc, out = run(cmd, leak_env)
            leaks = [l for l in out.splitlines()
                     if "object-alive, type-name=(string)" in l and "format string" not in l]
            name = f"leaks tracer {element}"
            if rc != 0 or leaks:
                failures += 1
                print(f"FAIL {name}: exit {rc}, {len(leaks)} objects alive at exit")
                print("\n".join(leaks[:20]))
            else:
                print(f"ok   {name}: no object alive at exit")
        # vidcls-classify prints one line per clip (text and JSON lines); the meta-reader sees
        # the result meta on every buffer that completed a clip (the EOS clip has no buffer and
        # is reported on the bus only).
        video = videos[("mjpeg-avi", 45)]
        want = expected_clips(45, 8, 2, 8, "pad")
        if args.classify:
            checks += 3
            rc, out = run([args.classify, "--model", models["vividinfer"], video], env)
            lines = [l for l in out.splitlines() if re.match(r"^\d+\.\d{3}-\d+\.\d{3}  \S+  [01]\.\d{3}", l)]
            ok = rc == 0 and len(lines) == want
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} vidcls-classify text: exit {rc}, {len(lines)} lines, expected {want}")
            rc, out = run([args.classify, "--json", "--model", models["resnetvitinfer"], video], env)
            import json
            rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
            ok = (rc == 0 and len(rows) == want and [r["clip-index"] for r in rows] == list(range(want))
                  and all(r["labels"][0] == r["label"] and r["start"] < r["end"] for r in rows))
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} vidcls-classify --json: exit {rc}, {len(rows)} rows")
            rc, out = run([args.classify, "--model", os.path.join(tmp, "missing.safetensors"), video], env)
            ok = rc == 1 and "missing.safetensors" in out
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} vidcls-classify with a missing model: exit {rc}")
            checks += 2
            failures += check_classify_files(args.classify, models["vividinfer"], tmp, env)
        if args.meta_reader:
            checks += 1
            rc, out = run([args.meta_reader, "filesrc", f"location={video}", "!", "decodebin", "!",
                           "vidclsclipper", "!", "vividinfer", f"model={models['vividinfer']}",
                           "!", "fakesink"], env)
            lines = [l for l in out.splitlines() if l.startswith("clip ")]
            ok = rc == 0 and len(lines) == want - 1
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} meta-reader: exit {rc}, {len(lines)} metas read, expected {want - 1}")
    print(f"{checks - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
