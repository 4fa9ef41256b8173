#!/usr/bin/env python3
"""A clip cut live equals what the publisher's own transforms make of the same frames.

    test_preprocess.py --init VIDCLS_INIT --dump CLIP_DUMP --plugin-dir DIR --preset PRESET

For a published classifier's preset (its checkpoint made by vidcls-init, so the clip spec is the
preset's), a real encoded video (VP8 in WebM, 320 x 240 at the frame rate the
preset samples at, so every frame is sampled) is played through filesrc ! decodebin
! videoconvert ! vidclsclipper ! vidclsinfer (clip_dump). The RGB frames that reached the
clipper go through torchvision's `<Model>_Weights.KINETICS400_V1.transforms()` and each clip is
compared with the publisher's tensor of its frames:

- uint8 frames, as a user of torchvision passes decoded video: torchvision rounds the resized
  frame to uint8 before normalising, vidcls keeps it in float, so the two may differ by half a
  grey level: |ours - theirs| <= 0.5 / 255 / min(std) (+ 1e-5 for float rounding).
- the same frames as float in [0, 1]: nothing is rounded on either side, so the tensors must be
  equal up to float rounding: |ours - theirs| <= 1e-4.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import torch
import torchvision.models.video as video

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_pretrained as mp  # noqa: E402

SKIP = 77
# preset: (weights enum in torchvision.models.video, frames in the video, its frame rate (the
# rate the preset samples at, so that every frame is sampled), clips compared)
PRESETS = {
    "r2plus1d-18-k400": ("R2Plus1D_18_Weights", 40, "15/1", 2),
    "s3d-k400": ("S3D_Weights", 132, "15/1", 1),
    "mvit-v2-s-k400": ("MViT_V2_S_Weights", 40, "15/2", 2),
}


def make_video(path, frames, rate):
    """A ball moving over a coloured background (videotestsrc): every frame differs."""
    cmd = ["gst-launch-1.0", "-q", "videotestsrc", "pattern=ball", "num-buffers=%d" % frames,
           "background-color=0xff2040a0", "!",
           "video/x-raw,width=320,height=240,framerate=" + rate, "!", "videoconvert", "!",
           "vp8enc", "deadline=1", "!", "webmmux", "!", "filesink", "location=" + path]
    subprocess.run(cmd, check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", required=True)
    parser.add_argument("--dump", required=True)
    parser.add_argument("--plugin-dir", required=True)
    parser.add_argument("--preset", choices=sorted(PRESETS), required=True)
    args = parser.parse_args()
    enum_name, n_frames, rate, n_clips = PRESETS[args.preset]
    weights = getattr(video, enum_name, None)
    if weights is None:
        print("torchvision %s has no %s: skipped" % (mp.torchvision.__version__, enum_name))
        return SKIP
    transforms = weights.KINETICS400_V1.transforms()
    print("torchvision %s: %s" % (mp.torchvision.__version__, " ".join(repr(transforms).split())))

    work = tempfile.mkdtemp(prefix="vidcls-preprocess-")
    try:
        ckpt = os.path.join(work, "model.safetensors")
        subprocess.run([args.init, "--preset", args.preset, "--num-classes", "400", "--out", ckpt],
                       check=True, stdout=subprocess.DEVNULL)
        vid = os.path.join(work, "video.webm")
        make_video(vid, n_frames, rate)
        out = os.path.join(work, "dump.safetensors")
        subprocess.run([args.dump, "--plugin-dir", args.plugin_dir, "--video", vid, "--model", ckpt,
                        "--clips", str(n_clips), "--out", out], check=True)
        dump = mp.read_safetensors(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    frames, pts = dump["frames"], dump["frame_pts"].tolist()
    bound = 0.5 / 255 / min(transforms.std) + 1e-5
    failures = []
    for k in range(n_clips):
        clip = dump["clip_%d" % k]  # [T, 3, h, w]
        first = pts.index(int(dump["clip_start"][k]))
        T = clip.shape[0]
        rgb = frames[first:first + T].permute(0, 3, 1, 2)  # [T, 3, H, W] uint8
        theirs_u8 = transforms(rgb).permute(1, 0, 2, 3)  # [C, T, h, w] -> [T, C, h, w]
        theirs_f = transforms(rgb.float() / 255).permute(1, 0, 2, 3)
        if theirs_u8.shape != clip.shape:
            failures.append("clip %d: shape %s, torchvision %s" % (k, tuple(clip.shape), tuple(theirs_u8.shape)))
            continue
        err_u8 = float((clip - theirs_u8).abs().max())
        err_f = float((clip - theirs_f).abs().max())
        ok = err_u8 <= bound and err_f <= 1e-4
        print("%s clip %d (frames %d..%d, %s): max |diff| %.2e vs uint8 frames (bound %.2e), "
              "%.2e vs float frames (bound 1e-04)" % ("ok  " if ok else "FAIL", k, first, first + T - 1,
                                                     "x".join(map(str, clip.shape)), err_u8, bound, err_f))
        if not ok:
            failures.append("clip %d: %.2e / %.2e" % (k, err_u8, err_f))
    if failures:
        print("PREPROCESSING DIFFERS: " + "; ".join(failures))
        return 1
    print("preprocessing parity ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
