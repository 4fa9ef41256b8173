#!/usr/bin/env python3
"""vidcls installed, used from its installed paths only.

    test_install.py --meson MESON --build BUILD_DIR --prefix P --libdir L --bindir B
                    --gst-plugins SYSTEM_PLUGIN_DIR

Installs the build with `meson install --destdir` into a temporary folder (what a package build
does) and checks, with no variable of the build tree set (GST_PLUGIN_PATH, LD_LIBRARY_PATH,
GI_TYPELIB_PATH and PKG_CONFIG_PATH removed):

- every installed program and library finds the project's libraries by a RUNPATH relative to
  itself ($ORIGIN; none under /usr), and none names the build tree;
- the tools run: vidcls-import --list, vidcls-init, vidcls-info, vidcls-train --help,
  vidcls-camera --check, and
  vidcls-classify classifies a real (VP8) video with the plugins installed beside it, saying so
  with --verbose;
- gst-inspect-1.0 finds both plugins when the install's plugin folder is GStreamer's system
  path (as it is for a prefix of /usr);
- a small C program compiles and links against the meta library through its pkg-config file,
  and runs;
- Python loads the GstVidcls-1.0 typelib (GI_TYPELIB_PATH and LD_LIBRARY_PATH name the prefix,
  as for any library installed outside /usr).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = None
ROOT = None     # the installed prefix inside the destdir
WORK = None


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GST_PLUGIN_PATH", "GST_PLUGIN_PATH_1_0", "LD_LIBRARY_PATH",
                        "GI_TYPELIB_PATH", "PKG_CONFIG_PATH", "GST_PLUGIN_SYSTEM_PATH",
                        "GST_PLUGIN_SYSTEM_PATH_1_0")}
    env["GST_REGISTRY_1_0"] = os.path.join(WORK, "registry-%d.bin" % len(os.listdir(WORK)))
    env.update(extra)
    return env


def run(cmd, env=None, cwd=None):
    proc = subprocess.run(cmd, env=env or clean_env(), cwd=cwd or WORK, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        raise AssertionError("%s failed (exit %d):\n%s%s" % (" ".join(cmd), proc.returncode,
                                                             proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc.stdout + proc.stderr


def lib_dir():
    return os.path.join(ROOT, ARGS.libdir)


def bin_path(tool):
    return os.path.join(ROOT, ARGS.bindir, tool)


def elf_files():
    for top in (os.path.join(ROOT, ARGS.bindir), lib_dir()):
        for dirpath, _, files in os.walk(top):
            for f in files:
                path = os.path.join(dirpath, f)
                if os.path.islink(path):
                    continue
                with open(path, "rb") as fh:
                    if fh.read(4) == b"\x7fELF":
                        yield path


def make_video():
    """48 frames of a moving ball at 24 fps, VP8 in WebM."""
    video = os.path.join(WORK, "v.webm")
    if not os.path.exists(video):
        run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=48", "pattern=ball", "!",
             "video/x-raw,width=96,height=64,framerate=24/1", "!", "vp8enc", "!", "webmmux", "!",
             "filesink", "location=" + video])
    return video


class TestBuildTree(unittest.TestCase):
    def test_tool_takes_the_build_trees_plugins(self):
        """The build tree's vidcls-classify, with no GST_PLUGIN_PATH, loads the build tree's
        plugins (first, before any installed vidcls) and says so with --verbose."""
        ckpt = os.path.join(WORK, "build-tree.safetensors")
        run([os.path.join(ARGS.build, "models", "vidcls-init"), "--preset", "vivit-xs",
             "--num-classes", "4", "--out", ckpt])
        out = run([os.path.join(ARGS.build, "gst-plugins", "tools", "vidcls-classify"), "--verbose",
                   "-m", ckpt, make_video()])
        plugins = os.path.join(ARGS.build, "gst-plugins")
        self.assertIn("plugin folder %s (build tree)" % plugins, out)
        self.assertIn("vividinfer from %s/inference/libgstvidcls.so" % plugins, out)
        self.assertEqual(len([l for l in out.splitlines() if l[:1].isdigit()]), 3, out)


class TestInstalled(unittest.TestCase):
    def test_runpaths(self):
        """Whatever links a library of the project finds it through $ORIGIN (nothing under
        /usr); nothing names the build tree."""
        checked = 0
        for path in elf_files():
            out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
            self.assertNotIn(ARGS.build, out, path)
            entries = {kind: [line.split("[", 1)[1].rstrip("]") for line in out.splitlines()
                              if "(%s)" % kind in line] for kind in ("NEEDED", "RUNPATH", "RPATH")}
            self.assertEqual(entries["RPATH"], [], path)
            ours = [n for n in entries["NEEDED"] if n.startswith(("libvidcls", "libgstvidclsmeta"))]
            if ARGS.prefix == "/usr":
                self.assertEqual(entries["RUNPATH"], [], path)
            elif ours:
                self.assertEqual(len(entries["RUNPATH"]), 1, "%s: %s" % (path, entries))
                self.assertTrue(entries["RUNPATH"][0].startswith("$ORIGIN"), "%s: %s" % (path, entries))
                checked += 1
        self.assertGreater(checked, 8)

    def test_tools_run_from_the_install(self):
        self.assertIn("mvit-v2-s-k400", run([bin_path("vidcls-import"), "--list"]))
        ckpt = os.path.join(WORK, "m.safetensors")
        run([bin_path("vidcls-init"), "--preset", "vivit-xs", "--num-classes", "4", "--out", ckpt])
        self.assertIn("vivit-xs", run([bin_path("vidcls-info"), ckpt]))
        self.assertIn("--data", run([bin_path("vidcls-train"), "--help"]))
        conf = os.path.join(WORK, "door.conf")
        with open(conf, "w") as f:
            f.write("SOURCE=rtsp://127.0.0.1:8554/door\nMODEL=%s\nMQTT_ADDRESS=localhost:1883\n" % ckpt)
        self.assertIn("vidclsinfer model=%s" % ckpt, run([bin_path("vidcls-camera"), "--check", conf]))
        out = run([bin_path("vidcls-classify"), "--verbose", "-m", ckpt, make_video()])
        plugins = os.path.join(lib_dir(), "gstreamer-1.0")
        self.assertIn("plugin folder %s (installed)" % plugins, out)
        self.assertIn("vidclsclipper from %s/libgstvidcls.so" % plugins, out)
        clips = [l for l in out.splitlines() if l[:1].isdigit()]
        self.assertEqual(len(clips), 3, out)   # 48 frames at 24 fps: three clips of 8 at stride 2

    def test_gst_inspect_from_the_system_path(self):
        env = clean_env(GST_PLUGIN_SYSTEM_PATH_1_0=os.path.join(lib_dir(), "gstreamer-1.0") + ":"
                        + ARGS.gst_plugins)
        out = run(["gst-inspect-1.0", "vidcls"], env=env)
        for element in ("vidclsclipper", "vividinfer", "resnetvitinfer", "vidclsinfer"):
            self.assertIn(element, out)
        self.assertIn(os.path.join(lib_dir(), "gstreamer-1.0", "libgstvidcls.so"), out)
        out = run(["gst-inspect-1.0", "vidclsresults"], env=env)
        for element in ("vidclsaction", "vidclspublish", "vidclsoverlay"):
            self.assertIn(element, out)

    def test_pkg_config_compiles_and_links(self):
        src = os.path.join(WORK, "reader.c")
        with open(src, "w") as f:
            f.write('#include <gst/vidcls/gstvidclsmeta.h>\n'
                    '#include <stdio.h>\n'
                    'int main (int argc, char **argv) {\n'
                    '  gst_init (&argc, &argv);\n'
                    '  const GstMetaInfo *info = gst_vidcls_classification_meta_get_info ();\n'
                    '  printf ("%s\\n", g_type_name (gst_vidcls_classification_meta_api_get_type ()));\n'
                    '  return info == NULL;\n'
                    '}\n')
        env = clean_env(PKG_CONFIG_PATH=os.path.join(lib_dir(), "pkgconfig"))
        # The .pc is relocatable (pkgconfig.relocatable): its prefix is where it lies.
        flags = run(["pkg-config", "--cflags", "--libs", "gstreamer-vidcls-meta-1.0"],
                    env=env).split()
        includes = [os.path.normpath(f[2:]) for f in flags if f.startswith("-I")]
        self.assertIn(os.path.join(ROOT, "include", "gstreamer-1.0"), includes)
        exe = os.path.join(WORK, "reader")
        run(["cc", src, "-o", exe, "-Wl,-rpath," + lib_dir()] + flags, env=env)
        self.assertEqual(run([exe]).strip(), "GstVidclsClassificationMetaAPI")

    def test_typelib_loads_in_python(self):
        env = clean_env(GI_TYPELIB_PATH=os.path.join(lib_dir(), "girepository-1.0"),
                        LD_LIBRARY_PATH=lib_dir())
        out = run(["/usr/bin/python3", "-c",
                   "import gi; gi.require_version('Gst', '1.0'); "
                   "gi.require_version('GstVidcls', '1.0'); "
                   "from gi.repository import Gst, GstVidcls; Gst.init(None); "
                   "print(gi.Repository.get_default().get_typelib_path('GstVidcls')); "
                   "print(GstVidcls.classification_meta_api_get_type().name)"], env=env)
        self.assertIn(os.path.join(lib_dir(), "girepository-1.0", "GstVidcls-1.0.typelib"), out)
        self.assertIn("GstVidclsClassificationMetaAPI", out)


def main():
    global ARGS, ROOT, WORK
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("--meson", "--build", "--prefix", "--libdir", "--bindir", "--gst-plugins"):
        parser.add_argument(name, required=True)
    ARGS, rest = parser.parse_known_args()
    ARGS.build = os.path.realpath(ARGS.build)
    tmp = tempfile.mkdtemp(prefix="vidcls-install-")
    try:
        destdir = os.path.join(tmp, "destdir")
        WORK = os.path.join(tmp, "work")
        os.makedirs(WORK)
        subprocess.run([ARGS.meson, "install", "-C", ARGS.build, "--no-rebuild", "--quiet",
                        "--destdir", destdir], check=True, env=clean_env())
        ROOT = destdir + ARGS.prefix
        print("installed into %s" % ROOT)
        result = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2).result
        return 0 if result.wasSuccessful() else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
