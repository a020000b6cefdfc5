// Entry points of the feature kernel: map or take bytes, decode, analyze.
#pragma once
#include <string>

#include "analysis.hpp"

namespace graphrec {

// Reads the model at `path` through a read-only memory map (weight payloads are
// never copied or even touched) and analyzes it. External data is resolved against
// the model's folder.
AnalysisResult analyze_file(const std::string& path, const AnalyzeOptions& options);

// Analyzes a serialized model held in memory. External data, if any, is resolved
// against `base_dir` (empty: external data is an error).
AnalysisResult analyze_buffer(const uint8_t* data, size_t size, const std::string& base_dir, const AnalyzeOptions& options);

// Declared graph inputs and outputs (initializers excluded), without shape propagation.
struct ModelInterface {
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::map<std::string, int64_t> opset_imports;
  int64_t ir_version = 0;
  std::string producer_name;
};
ModelInterface describe_file(const std::string& path, const Limits& limits);
ModelInterface describe_buffer(const uint8_t* data, size_t size, const std::string& base_dir, const Limits& limits);

}  // namespace graphrec
