// Flax checkpoints (flax.serialization.to_bytes, what flax.training.checkpoints writes and scenic
// publishes): one msgpack map of nested maps whose leaves are arrays, each an extension object
// holding (shape, dtype name, C-order bytes). Read with msgpack-c; no code runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "vidcls/safetensors.h"

namespace vidcls {

// Every array of the file at `path`, named by its path of keys joined with '/' (e.g.
// "optimizer/target/embedding/kernel"), shapes and dtypes as stored (bool, integers up to 32 bits
// unsigned and 64 signed, float16, bfloat16, float32, float64). Leaves that are no arrays
// (integers, strings, None) and arrays of other dtypes (complex, uint64) are skipped: they are
// training state, not weights. Throws FormatError naming `path` and the key for a file that is
// not msgpack, is truncated, or holds an array whose bytes do not match its shape and dtype.
NamedTensors read_flax_msgpack(const std::string &path);
// The same from bytes in memory; `name` stands for the file in messages.
NamedTensors parse_flax_msgpack(const std::uint8_t *data, std::size_t size,
                                const std::string &name);

// Whether `head` (the first bytes of a file) starts a msgpack map whose first key is a string,
// as every Flax checkpoint does, and is not a pickle.
bool looks_like_flax_msgpack(const unsigned char *head, std::size_t size);

}  // namespace vidcls
