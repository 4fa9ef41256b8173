// Errors that name what is wrong with a file a user gave us.
#pragma once

#include <exception>
#include <functional>
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

// The message of an exception as a user should read it: LibTorch's without its C++ backtrace.
std::string error_message(const std::exception &e);

// Runs a command-line tool's body: an exception that escapes it is printed as "tool: message" on
// stderr and makes the exit status 1.
int run_tool(const char *tool, const std::function<int()> &body);

}  // namespace vidcls
