// Shape propagation, per-operator cost and graph statistics over a decoded model.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "onnx_model.hpp"

namespace graphrec {

// Knowledge about one tensor during propagation.
struct TensorState {
  int32_t dtype = kUndefined;
  bool rank_known = false;
  std::vector<int64_t> dims;  // -1: unknown
  bool has_ivals = false;     // small integer values known (shape arithmetic)
  std::vector<int64_t> ivals;
  bool has_fvals = false;     // small float values known (Resize scales ...)
  std::vector<double> fvals;
  bool is_weight = false;     // initializer or Constant output
  const TensorData* data = nullptr;

  bool fully_known() const {
    if (!rank_known) return false;
    for (int64_t d : dims)
      if (d < 0) return false;
    return true;
  }
  int64_t rank() const { return rank_known ? static_cast<int64_t>(dims.size()) : -1; }
  // -1 when unknown; saturates at INT64_MAX/4.
  int64_t numel() const;
  double bytes() const;  // -1 when unknown
};

struct NodeCost {
  double flops = 0;
  double macs = 0;
  double params = 0;           // parameters of weights inside nested graphs / functions
  bool exact = true;           // false when a shape needed for the count was unknown
  int64_t subgraph_nodes = 0;  // nodes inside If/Loop/Scan bodies and inlined functions
  bool unknown_op = false;     // no shape/cost rule and no model-local function
  std::map<std::string, int64_t> nested_histogram;
};

// Analysis options given by the caller.
struct AnalyzeOptions {
  int64_t batch_size = 1;
  std::map<std::string, std::vector<int64_t>> input_shapes;  // graph input name -> dims
  std::map<std::string, int64_t> dim_values;                 // symbolic dim name -> value
  int64_t default_dim = -1;   // value for still-unknown input dims (-1: leave unknown)
  Limits limits;
};

// The result for the top-level graph, in flat arrays.
struct AnalysisResult {
  // Tensors of the top-level graph (activations, weights, graph inputs).
  std::vector<std::string> tensor_names;
  std::vector<int32_t> tensor_kind;      // 0 activation, 1 weight, 2 graph input
  std::vector<int32_t> tensor_dtype;
  std::vector<int32_t> tensor_producer;  // node index or -1
  std::vector<int64_t> tensor_rank;      // -1 unknown rank
  std::vector<int64_t> tensor_numel;     // -1 unknown
  std::vector<double> tensor_bytes;      // -1 unknown
  std::vector<int64_t> shape_ptr;        // CSR over dims
  std::vector<int64_t> shape_dims;       // -1 unknown dim
  std::vector<uint8_t> tensor_is_output;
  std::vector<uint8_t> tensor_has_value_info;

  // Nodes in topological order.
  std::vector<std::string> node_names;
  std::vector<std::string> node_op_types;  // "Conv" or "com.microsoft::Attention"
  std::vector<int64_t> input_ptr, input_tensor;    // CSR; -1 for omitted optional inputs
  std::vector<int64_t> output_ptr, output_tensor;  // CSR
  std::vector<double> flops, macs, params, weight_bytes, bytes_read, bytes_written;
  std::vector<int64_t> out_numel;  // -1 unknown
  std::vector<int64_t> level;      // longest path from any graph input (in nodes)
  std::vector<uint8_t> cost_exact, unknown_op;
  std::vector<int64_t> subgraph_nodes;

  // Node-to-node data-flow edges (CSR by source node).
  std::vector<int64_t> succ_ptr, succ_idx;

  // Model-level figures.
  std::map<std::string, double> totals;
  std::map<std::string, double> weight_bytes_by_dtype;      // initializers + Constant outputs
  std::map<std::string, double> activation_bytes_by_dtype;  // node outputs with known size
  std::map<std::string, int64_t> op_histogram;         // top-level nodes
  std::map<std::string, int64_t> nested_op_histogram;  // nodes inside subgraphs/functions
  std::map<std::string, int64_t> opset_imports;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> functions;
  std::vector<std::string> warnings;
  std::vector<std::string> unknown_ops;
  std::string producer_name, producer_version, graph_name;
  int64_t ir_version = 0;
  std::vector<int64_t> graph_inputs, graph_outputs;  // tensor indices
  std::vector<std::vector<Dim>> declared_input_dims;   // as declared (symbolic names kept)
};

AnalysisResult analyze_model(const Model& model, const AnalyzeOptions& options);

}  // namespace graphrec
