// The safetensors file format: an 8-byte little-endian header length, a JSON header that maps
// tensor names to {dtype, shape, data_offsets} plus an optional "__metadata__" map of strings,
// then the raw little-endian tensor bytes. No code runs on load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace vidcls {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;  // "__metadata__", string -> string
  NamedTensors tensors;                         // in file order of data offsets
};

// Parses a whole file held in memory. Throws vidcls::FormatError naming `what` and the problem
// for: a buffer shorter than its header, a header length that overruns the buffer, bad JSON, a
// missing or malformed field, an unknown dtype, offsets out of range, overlapping or not
// covering the data exactly, a byte count that differs from dtype x shape, duplicate names.
// Tensors own their memory (copied out of `data`).
SafetensorsFile parse_safetensors(const std::uint8_t *data, std::size_t size,
                                  const std::string &what = "buffer");

// The same checks, but tensors view `data` instead of owning a copy (a tensor whose bytes are not
// aligned for its dtype is copied): valid only while `data` is, and never to be written through
// (a read-only mapping faults). For a loader that copies each tensor once into its destination.
SafetensorsFile view_safetensors(const std::uint8_t *data, std::size_t size,
                                 const std::string &what = "buffer");

// Reads and parses a file; errors name the path.
SafetensorsFile read_safetensors(const std::string &path);

// Only the header: metadata and tensor names/shapes without reading the data section.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // "F32", "F16", ...
  std::vector<std::int64_t> shape;
};
struct SafetensorsHeader {
  std::map<std::string, std::string> metadata;
  std::vector<SafetensorsEntry> entries;
};
SafetensorsHeader read_safetensors_header(const std::string &path);

// Serialises tensors (made contiguous, moved to CPU) and metadata. Names must be unique.
std::string serialize_safetensors(const NamedTensors &tensors,
                                  const std::map<std::string, std::string> &metadata);

// Writes atomically: a temporary file in the same directory, fsync, then rename over `path`.
// A crash leaves either the old file or the new one, never a torn one.
void write_safetensors(const std::string &path, const NamedTensors &tensors,
                       const std::map<std::string, std::string> &metadata);

}  // namespace vidcls
