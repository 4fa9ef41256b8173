// Decoding a video file into RGB frames with GStreamer, through the same elements the live
// pipeline uses (filesrc ! decodebin ! videoconvert ! video/x-raw,format=RGB): the frames
// training sees are the pixels vidclsclipper sees.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

namespace vidcls::train {

// One decoded frame.
struct VideoFrame {
  torch::Tensor rgb;         // uint8 [H, W, 3], contiguous, owned by the tensor
  int64_t pts_ns = -1;       // buffer presentation timestamp as the pipeline sees it; -1 if none
  int64_t duration_ns = -1;  // -1 if none
};

// Frames pulled one at a time, for callers that reduce each frame as it arrives (a cache that
// resizes, a feature extractor) instead of holding a whole video.
//
//   vidcls::train::VideoReader reader("clip.avi");
//   while (auto frame = reader.next()) use(frame->rgb);
//
// Every error is a vidcls::FormatError whose message starts with the path: a missing file, a
// file GStreamer cannot decode (its error message), a file without a video stream, a stream
// that changes frame size. Only the first video stream is decoded; audio is ignored.
class VideoReader {
 public:
  explicit VideoReader(const std::string &path);  // starts decoding
  ~VideoReader();
  VideoReader(const VideoReader &) = delete;
  VideoReader &operator=(const VideoReader &) = delete;

  // The next frame, or std::nullopt at the end of the stream.
  std::optional<VideoFrame> next();

  const std::string &path() const;
  // From the negotiated caps once a frame has been decoded; 0 when unknown or variable.
  double fps() const;
  int64_t frames_read() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A whole decoded video.
struct DecodedVideo {
  torch::Tensor frames;              // uint8 [N, H, W, 3] RGB, N >= 1
  std::vector<int64_t> pts_ns;       // per frame, -1 if none
  std::vector<int64_t> duration_ns;  // per frame, -1 if none
  double fps = 0;                    // from caps, 0 if unknown or variable
};

// Decodes `path` (the first `max_frames` frames when max_frames > 0). Throws vidcls::FormatError
// as VideoReader does, and also when the stream has no frame at all.
DecodedVideo decode_video(const std::string &path, int max_frames = 0);

}  // namespace vidcls::train
