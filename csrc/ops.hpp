// Per-operator shape, value and cost rules.
#pragma once
#include <functional>
#include <vector>

#include "analysis.hpp"

namespace graphrec {

struct SubgraphOutcome {
  std::vector<TensorState> outputs;
  NodeCost cost;  // flops, macs, exact, subgraph_nodes (= nodes inside), nested histogram
};

// Callbacks the op rules use for nested graphs and model-local functions.
struct NestedRunner {
  // Runs `g` in the scope of the current node with its formal inputs bound to `inputs`.
  std::function<SubgraphOutcome(const Graph& g, const std::vector<TensorState>& inputs)> run_graph;
  // Returns true and fills `out` if (domain, op_type) names a model-local function.
  std::function<bool(const Node& node, const std::vector<const TensorState*>& in, SubgraphOutcome& out)> run_function;
};

struct OpContext {
  const Node& node;
  std::vector<const TensorState*> in;  // nullptr where an optional input is omitted
  std::vector<TensorState> out;        // one per node output
  NodeCost cost;
  int64_t opset = 0;                   // opset of the node's domain
  uint64_t max_values = 1 << 16;       // largest tensor whose values are propagated
  NestedRunner* runner = nullptr;
  OpContext(const Node& n) : node(n) {}
};

// Fills ctx.out and ctx.cost. Unknown operators leave outputs unknown and set unknown_op.
void infer_node(OpContext& ctx);

}  // namespace graphrec
