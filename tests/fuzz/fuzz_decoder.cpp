// libFuzzer target for the ONNX decoder and the analysis that follows it.
// Build and run: bash tests/fuzz/run_fuzz.sh SECONDS   (clang, ASan + UBSan)
#include <cstddef>
#include <cstdint>

#include "kernel.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  graphrec::AnalyzeOptions options;
  options.batch_size = 1;
  options.default_dim = 7;
  try {
    graphrec::AnalysisResult r = graphrec::analyze_buffer(data, size, "", options);
    (void)r;
  } catch (const graphrec::KernelError&) {
    // Typed rejection: the expected outcome for malformed input.
  }
  return 0;
}
