// libFuzzer target: any byte string is either a Flax checkpoint (tensors by key path) or a
// vidcls::FormatError. Any other exception, a crash or a sanitizer report is a bug.
#include <cstddef>
#include <cstdint>

#include "vidcls/errors.h"
#include "vidcls/flax_msgpack.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  try {
    // The sniffing read_pretrained does first must not read past the bytes it is given.
    (void)vidcls::looks_like_flax_msgpack(data, size);
    const auto tensors = vidcls::parse_flax_msgpack(data, size, "fuzz input");
    for (const auto &kv : tensors) (void)kv.second.sum();  // every accepted tensor is readable
  } catch (const vidcls::FormatError &) {
  }
  return 0;
}
