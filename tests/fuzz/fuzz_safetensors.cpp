// libFuzzer target: any byte string is either a safetensors file or a vidcls::FormatError.
// Any other exception, a crash or a sanitizer report is a bug.
#include <cstddef>
#include <cstdint>

#include "vidcls/errors.h"
#include "vidcls/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  try {
    const vidcls::SafetensorsFile file = vidcls::parse_safetensors(data, size, "fuzz input");
    // What was accepted must serialise again.
    (void)vidcls::serialize_safetensors(file.tensors, file.metadata);
  } catch (const vidcls::FormatError &) {
  }
  return 0;
}
