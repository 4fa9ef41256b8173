// AVA's frame-level mean average precision: per class, every (keyframe, box) detection ranked by
// its score of the class, a detection a true positive when it overlaps (IoU >= 0.5) a box of the
// same keyframe whose truth is the class and that no better-ranked detection took; the class's AP
// is the area under its precision-recall curve with precision made non-increasing (the PASCAL VOC
// 2012 rule AVA's evaluation uses); the mean is over the classes that have truth.
#pragma once

#include <string>
#include <vector>

#include "vidcls/clip_record.h"  // Box

namespace vidcls::train {

// One box at one keyframe with every class's score (a classified person).
struct FrameDetection {
  std::string video;
  double t = 0;  // keyframe time, s
  Box box;       // any unit, the same as the truth's (AVA: fractions of the frame)
  std::vector<float> scores;
};

// One annotated box at one keyframe and its class.
struct FrameTruth {
  std::string video;
  double t = 0;
  Box box;
  int label = 0;
};

struct FrameMap {
  double map = 0;          // mean of `ap` over the classes with truth; 0 without any
  std::vector<double> ap;  // per class; -1 for a class without truth
  size_t truths = 0;       // annotated boxes (person keyframes)
  size_t detections = 0;   // of them scored: the rest had no clip (count as misses)
};

double box_iou(const Box &a, const Box &b);

FrameMap frame_map(const std::vector<FrameDetection> &detections,
                   const std::vector<FrameTruth> &truth, int classes, double min_iou = 0.5);

}  // namespace vidcls::train
