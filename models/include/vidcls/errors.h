// Errors that name what is wrong with a file a user gave us.
#pragma once

#include <stdexcept>
#include <string>

namespace vidcls {

// A file (checkpoint, state dict, pretrained weights) that cannot be read as what it claims to
// be. The message names the file and the problem, so a tool can print it as it is.
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file that is well formed but does not fit what it is used for (wrong architecture, wrong
// shape, labels that do not match the head).
class MismatchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace vidcls
