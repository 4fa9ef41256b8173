// Encoding RGB frames into a video file with GStreamer encoders
// (appsrc ! videoconvert ! I420 ! encoder ! muxer ! filesink), so synthetic data and test
// fixtures are real encoded files that go through the real decoders.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <torch/types.h>

namespace vidcls::train {

enum class VideoCodec {
  kMjpegAvi,  // jpegenc ! avimux, as MSR DailyActivity3D's *_rgb.avi
  kMpeg4Mp4,  // avenc_mpeg4 ! mp4mux (MPEG-4 part 2: Debian has no H.264 encoder)
  kVp8Webm,   // vp8enc ! webmmux
};

std::string to_string(VideoCodec codec);             // "mjpeg-avi", "mpeg4-mp4", "vp8-webm"
VideoCodec video_codec_from_string(const std::string &name);  // throws std::invalid_argument
std::string file_extension(VideoCodec codec);        // ".avi", ".mp4", ".webm"

// Frames are written with timestamps i * fps_d / fps_n seconds. Throws std::runtime_error when
// an element is missing or the pipeline fails; the message names the file.
class VideoWriter {
 public:
  VideoWriter(const std::string &path, VideoCodec codec, int width, int height, int fps_n,
              int fps_d = 1);
  ~VideoWriter();  // without finish(), stops the pipeline and leaves a partial file
  VideoWriter(const VideoWriter &) = delete;
  VideoWriter &operator=(const VideoWriter &) = delete;

  // Packed RGB rows of width * 3 bytes, `row_stride` bytes apart.
  void write(const uint8_t *rgb, int64_t row_stride);
  // uint8 [H, W, 3] on the CPU.
  void write(const torch::Tensor &rgb_hwc_u8);
  // Sends end-of-stream and waits until the muxer has written the file.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vidcls::train
