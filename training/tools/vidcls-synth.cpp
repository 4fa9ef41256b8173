// vidcls-synth: writes a synthetic motion dataset of real encoded videos in the layout of MSR
// DailyActivity3D, Kinetics-400 or a folder per class. The class of a video is how its object
// moves; everything else is random, so a model that looks at one frame is at chance. In the ava
// layout a video holds several people, each with their own action, labelled per person.
#include <chrono>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "vidcls/errors.h"
#include "vidcls/train/synth.h"

int main(int argc, char **argv) {
  namespace train = vidcls::train;
  train::SynthOptions o;
  std::string layout = "msr", camera = "drift";
  bool no_drift = false, quiet = false;
  const auto &names = train::synth_motion_names();
  std::string classes_help = "number of motion classes, the first N of:";
  for (const auto &n : names) classes_help += " " + n;

  CLI::App app{"Write a synthetic motion-classification dataset of encoded videos."};
  app.add_option(
         "--layout", layout,
         "msr: aXX_sYY_eZZ_rgb.avi (MJPEG/AVI); kinetics400: train.csv, val.csv and "
         "videos/{id}_{start:06d}_{end:06d}.mp4 (MPEG-4); folder: <class>/<name>.webm (VP8); "
         "ava: 2-4 people per video, each with their own action: videos/crowd_NNNN.webm, "
         "train.csv and val.csv in AVA's format, tracks/crowd_NNNN.txt in MOT's "
         "(--videos-per-class counts people)")
      ->check(CLI::IsMember({"msr", "kinetics400", "folder", "ava"}))
      ->capture_default_str();
  app.add_option("--out", o.out, "output folder (created; files of the same names are replaced)")
      ->required();
  app.add_option("--classes", o.classes, classes_help)->capture_default_str();
  app.add_option("--videos-per-class", o.videos_per_class, "videos per class")
      ->capture_default_str();
  app.add_option("--subjects", o.subjects,
                 "msr: subjects; video v of a class is subject v % N + 1, repetition v / N + 1")
      ->capture_default_str();
  app.add_option("--frames", o.frames, "frames per video")->capture_default_str();
  app.add_option("--size", o.size, "frame height in pixels")->capture_default_str();
  app.add_option("--width", o.width, "frame width in pixels; 0: 4:3 of --size")
      ->capture_default_str();
  app.add_option("--fps", o.fps, "frames per second")->capture_default_str();
  app.add_option("--seed", o.seed, "seed; each video is drawn from the seed and its index")
      ->capture_default_str();
  auto *camera_opt =
      app.add_option("--camera", camera,
                     "how the camera moves: still; drift (slow constant translation, 3-12 % of "
                     "the short side over the video); pan (eases in and out, 20-40 %, mostly "
                     "horizontal); shake (hand-held jitter of a few percent)")
          ->check(CLI::IsMember({"still", "drift", "pan", "shake"}))
          ->capture_default_str();
  app.add_flag("--no-drift", no_drift, "keep the camera still: the same as --camera still")
      ->excludes(camera_opt);
  app.add_option("--clutter", o.clutter,
                 "object-sized textured shapes in each video's background (about half of them "
                 "moving slowly on their own), in [0, 64]")
      ->capture_default_str();
  app.add_option("--corrupt", o.corrupt,
                 "also write N undecodable files with valid names (header only, random bytes, "
                 "empty, in turn; kinetics400: listed in train.csv)")
      ->capture_default_str();
  app.add_option("--jobs,-j", o.jobs, "videos encoded in parallel")->capture_default_str();
  app.add_flag("--quiet,-q", quiet, "no progress output");
  CLI11_PARSE(app, argc, argv);

  return vidcls::run_tool("vidcls-synth", [&] {
    o.layout = train::synth_layout_from_string(layout);
    o.camera = no_drift ? train::SynthCamera::kStill : train::synth_camera_from_string(camera);
    o.validate();
    const auto start = std::chrono::steady_clock::now();
    auto progress = [quiet](int done, int total) {
      if (quiet) return;
      std::fprintf(stderr, "\rvidcls-synth: %d/%d", done, total);
      if (done == total) std::fprintf(stderr, "\n");
    };
    const auto items = train::write_synth_dataset(o, progress);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!quiet && o.layout == train::SynthLayout::kAva) {
      std::printf(
          "wrote %d classes x %d people in %zu videos (%d frames, %dx%d, %d fps) in the "
          "ava layout to %s in %.1f s\n",
          o.classes, o.videos_per_class, items.size(), o.frames, o.frame_width(), o.size, o.fps,
          o.out.c_str(), seconds);
    } else if (!quiet) {
      std::printf(
          "wrote %d classes x %d videos (%d frames, %dx%d, %d fps) in the %s layout to %s "
          "in %.1f s",
          o.classes, o.videos_per_class, o.frames, o.frame_width(), o.size, o.fps, layout.c_str(),
          o.out.c_str(), seconds);
      std::printf(", camera %s", train::to_string(o.camera).c_str());
      if (o.clutter > 0) std::printf(", %d clutter shapes", o.clutter);
      if (o.corrupt > 0) std::printf(", plus %d corrupt files", o.corrupt);
      std::printf("\n");
    }
    (void)items;
    return 0;
  });
}
