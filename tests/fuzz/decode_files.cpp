// Runs the decoder + analysis over model files given on the command line (sanitizer builds).
#include <cstdio>

#include "kernel.hpp"

int main(int argc, char** argv) {
  int rejected = 0;
  for (int i = 1; i < argc; ++i) {
    try {
      graphrec::AnalyzeOptions o;
      graphrec::AnalysisResult r = graphrec::analyze_file(argv[i], o);
      std::printf("ok %s nodes=%zu flops=%.0f\n", argv[i], r.node_names.size(), r.totals["flops"]);
    } catch (const graphrec::KernelError& e) {
      ++rejected;
      std::printf("rejected %s: %s\n", argv[i], e.what());
    }
  }
  return 0;
}
