// Error type of the graphrec feature kernel. Pure C++: the bindings translate
// each code into a Python exception of graphrec.errors.
#pragma once
#include <stdexcept>
#include <string>

namespace graphrec {

enum class ErrorCode {
  Format,        // not ONNX / truncated / malformed wire data
  Limit,         // declared sizes beyond the safety limits
  ExternalData,  // external tensor data missing / outside the model folder / short
  Structure,     // cycle, duplicate producer, dangling reference
  Io,            // the file cannot be opened or mapped
  Argument,      // a caller-given option is invalid
};

class KernelError : public std::runtime_error {
 public:
  KernelError(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) {
  throw KernelError(code, message);
}

}  // namespace graphrec
