// Reading state dicts saved by Python's torch.save (the zip format of PyTorch >= 1.6) without
// Python and without running code: a restricted unpickler that accepts only what a state dict
// holds (dicts, OrderedDicts with their `_metadata`, lists, tuples, strings, numbers, None,
// booleans and tensor storages rebuilt by torch._utils._rebuild_tensor_v2) and refuses any other
// global or opcode with a message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "vidcls/safetensors.h"

namespace vidcls {

// Reads `path` (a torch.save zip archive) and returns every tensor reachable from the pickled
// object as a flat list of (dotted key, tensor). For a plain state dict the keys are its keys.
// For a dict that wraps a state dict (DeiT's {"model": ...}, Lightning's {"state_dict": ...})
// the wrapped dict is returned when `unwrap` is true. Throws vidcls::FormatError naming the path
// and the problem: not a zip archive, the legacy (pre-1.6) format, a missing data.pkl or storage
// record, a forbidden global or opcode, a truncated pickle, a storage too small for a tensor.
NamedTensors read_torch_state_dict(const std::string &path, bool unwrap = true);

// The same over an archive held in memory (the fuzz target's entry point).
NamedTensors parse_torch_state_dict(const std::uint8_t *data, std::size_t size,
                                    const std::string &what = "buffer", bool unwrap = true);

}  // namespace vidcls
