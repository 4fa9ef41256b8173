// vidcls-hog-tracks: people boxes and track ids for a video, from OpenCV's built-in HOG people
// detector (Dalal and Triggs' pedestrian SVM that OpenCV ships) and a greedy IoU tracker, written
// as a MOTChallenge file for vidclsroireplay. An example of where boxes come from, not a tracker
// to rely on: the point is what vidcls does with boxes and ids.
//
//   vidcls-hog-tracks VIDEO OUT.txt [--every N] [--frames F]
//
// Every N-th frame (default 3) of the first F (default all) is searched; a detection joins the
// track whose last box it overlaps most (IoU >= 0.3), else starts a new one; a track not matched
// for 4 searches ends. Lines: frame (from 1), id, left, top, width, height, 1, -1, -1, on the
// searched frames only: vidclsroireplay interpolates between them (max-gap).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <opencv2/videoio.hpp>

namespace {

struct Track {
  int id;
  cv::Rect box;
  int missed = 0;
};

double iou(const cv::Rect &a, const cv::Rect &b) {
  const double inter = (a & b).area();
  return inter > 0 ? inter / (a.area() + b.area() - inter) : 0.0;
}

int usage() {
  std::fprintf(stderr, "usage: vidcls-hog-tracks VIDEO OUT.txt [--every N] [--frames F]\n");
  return 2;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 3) return usage();
  int every = 3, max_frames = 0;
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string opt = argv[i];
    if (opt == "--every") every = std::atoi(argv[i + 1]);
    else if (opt == "--frames") max_frames = std::atoi(argv[i + 1]);
    else return usage();
  }
  if (every < 1) return usage();
  cv::VideoCapture video(argv[1]);
  if (!video.isOpened()) {
    std::fprintf(stderr, "vidcls-hog-tracks: cannot open %s\n", argv[1]);
    return 1;
  }
  std::ofstream out(argv[2]);
  if (!out) {
    std::fprintf(stderr, "vidcls-hog-tracks: cannot write %s\n", argv[2]);
    return 1;
  }
  cv::HOGDescriptor hog;
  hog.setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector());
  std::vector<Track> tracks;
  int next_id = 1, boxes = 0;
  cv::Mat frame, gray;
  for (int f = 0; video.read(frame) && (max_frames <= 0 || f < max_frames); ++f) {
    if (f % every != 0) continue;
    cv::cvtColor(frame, gray, cv::COLOR_BGR2GRAY);
    std::vector<cv::Rect> found;
    hog.detectMultiScale(gray, found, 0, cv::Size(8, 8), cv::Size(16, 16), 1.05, 2);
    for (auto &t : tracks) ++t.missed;
    for (const auto &r : found) {
      Track *best = nullptr;
      double best_iou = 0.3;
      for (auto &t : tracks) {
        const double v = iou(t.box, r);
        if (t.missed > 0 && v >= best_iou) best = &t, best_iou = v;
      }
      if (best == nullptr) {
        tracks.push_back({next_id++, r, 0});
        best = &tracks.back();
      }
      best->box = r;
      best->missed = 0;
      out << f + 1 << ',' << best->id << ',' << r.x << ',' << r.y << ',' << r.width << ','
          << r.height << ",1,-1,-1\n";
      ++boxes;
    }
    std::vector<Track> kept;
    for (const auto &t : tracks)
      if (t.missed <= 4) kept.push_back(t);
    tracks.swap(kept);
    std::fprintf(stderr, "\rframe %d: %zu people", f + 1, found.size());
  }
  std::fprintf(stderr, "\n%d boxes of %d tracks written to %s\n", boxes, next_id - 1, argv[2]);
  return out ? 0 : 1;
}
