// libFuzzer target: any byte string is either a torch.save state dict or a vidcls::FormatError.
// Any other exception (c10::Error included), a crash or a sanitizer report is a bug.
#include <cstddef>
#include <cstdint>

#include "vidcls/errors.h"
#include "vidcls/torch_pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  for (bool unwrap : {true, false}) {
    try {
      (void)vidcls::parse_torch_state_dict(data, size, "fuzz input", unwrap);
    } catch (const vidcls::FormatError &) {
    }
  }
  return 0;
}
