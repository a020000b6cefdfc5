// Propagation driver: topological order, scopes for nested graphs and functions,
// value_info fallback, per-node costs and model-level graph statistics.
#include "analysis.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <set>
#include <unordered_set>

#include "ops.hpp"

namespace graphrec {

namespace {

constexpr uint64_t kMaxValues = 1 << 16;
constexpr int kMaxFunctionDepth = 32;

bool counts_as_param(int32_t dtype) {
  return dtype != kInt64 && dtype != kBool && dtype != kString && dtype != kUndefined;
}

struct Scope {
  const Scope* parent = nullptr;
  std::unordered_map<std::string, TensorState> tensors;
  const TensorState* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      auto it = s->tensors.find(name);
      if (it != s->tensors.end()) return &it->second;
    }
    return nullptr;
  }
};

std::string op_key(const Node& n) {
  return n.domain.empty() ? n.op_type : n.domain + "::" + n.op_type;
}

TensorState state_of_initializer(const TensorData& t) {
  TensorState s;
  s.dtype = t.dtype;
  s.rank_known = true;
  s.dims = t.dims;
  s.is_weight = true;
  s.data = &t;
  std::vector<int64_t> iv;
  std::vector<double> fv;
  if (dtype_is_integer(t.dtype) && tensor_int64_values(t, iv, kMaxValues)) {
    s.has_ivals = true;
    s.ivals = iv;
    s.has_fvals = true;
    s.fvals.assign(iv.begin(), iv.end());
  } else if ((t.dtype == kFloat || t.dtype == kDouble) && t.numel <= 64 && tensor_double_values(t, fv, 64)) {
    s.has_fvals = true;
    s.fvals = fv;
  }
  return s;
}

// Per-node records of the top-level graph.
struct Recorder {
  AnalysisResult* res = nullptr;
  std::unordered_map<std::string, int64_t> tensor_index;
  std::vector<TensorState> states;  // by tensor index
  std::vector<std::vector<int64_t>> consumers;
  std::vector<NodeCost> costs;

  int64_t add_tensor(const std::string& name, int32_t kind, int32_t producer) {
    auto it = tensor_index.find(name);
    if (it != tensor_index.end()) return it->second;
    const int64_t id = static_cast<int64_t>(res->tensor_names.size());
    tensor_index.emplace(name, id);
    res->tensor_names.push_back(name);
    res->tensor_kind.push_back(kind);
    res->tensor_producer.push_back(producer);
    res->tensor_is_output.push_back(0);
    res->tensor_has_value_info.push_back(0);
    states.emplace_back();
    consumers.emplace_back();
    return id;
  }
};

class Analyzer {
 public:
  Analyzer(const Model& m, const AnalyzeOptions& o) : model_(m), opt_(o) {
    runner_.run_graph = [this](const Graph& g, const std::vector<TensorState>& in) { return run_nested(g, in); };
    runner_.run_function = [this](const Node& n, const std::vector<const TensorState*>& in, SubgraphOutcome& out) {
      return run_function(n, in, out);
    };
  }

  AnalysisResult run();

 private:
  const Model& model_;
  const AnalyzeOptions& opt_;
  NestedRunner runner_;
  Scope* current_ = nullptr;
  int nest_depth_ = 0;
  std::map<std::string, int64_t> symbols_;  // symbolic dim -> value bound at the graph inputs
  std::vector<std::string> warnings_;
  std::set<std::string> unknown_ops_;
  const std::map<std::string, int64_t>* opsets_ = nullptr;

  int64_t opset_of(const Node& n) const {
    auto it = opsets_->find(n.domain);
    if (it != opsets_->end()) return it->second;
    auto it2 = model_.opset_imports.find(n.domain);
    return it2 != model_.opset_imports.end() ? it2->second : 0;
  }

  std::vector<size_t> topo_order(const std::vector<Node>& nodes, const Scope& scope, bool top_level);
  void apply_value_info(TensorState& s, const ValueInfo* vi) const;
  NodeCost run_nodes(const std::vector<Node>& nodes, Scope& scope, const std::map<std::string, const ValueInfo*>& vinfo,
                     Recorder* rec);
  SubgraphOutcome run_nested(const Graph& g, const std::vector<TensorState>& inputs);
  bool run_function(const Node& n, const std::vector<const TensorState*>& in, SubgraphOutcome& out);
  void finish_stats(AnalysisResult& res, Recorder& rec);
};

void Analyzer::apply_value_info(TensorState& s, const ValueInfo* vi) const {
  if (!vi || !vi->is_tensor) return;
  if (s.dtype == kUndefined) s.dtype = vi->elem_type;
  if (!vi->has_shape) return;
  std::vector<int64_t> dims;
  for (const Dim& d : vi->dims) {
    if (d.value >= 0) dims.push_back(d.value);
    else if (!d.param.empty() && symbols_.count(d.param)) dims.push_back(symbols_.at(d.param));
    else dims.push_back(-1);
  }
  if (!s.rank_known) {
    s.rank_known = true;
    s.dims = dims;
    return;
  }
  if (s.dims.size() != dims.size()) return;  // inference disagrees on rank: keep inference
  for (size_t i = 0; i < dims.size(); ++i)
    if (s.dims[i] < 0) s.dims[i] = dims[i];
}

std::vector<size_t> Analyzer::topo_order(const std::vector<Node>& nodes, const Scope& scope, bool top_level) {
  std::unordered_map<std::string, size_t> producer;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const auto& o : nodes[i].outputs) {
      if (o.empty()) continue;
      if (!producer.emplace(o, i).second)
        fail(ErrorCode::Structure, "tensor '" + o + "' is produced by more than one node (second: '" + nodes[i].name + "', " +
                                       nodes[i].op_type + ")");
    }
  }
  std::vector<int64_t> indeg(nodes.size(), 0);
  std::vector<std::vector<size_t>> succ(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::unordered_set<size_t> seen;
    for (const auto& in : nodes[i].inputs) {
      if (in.empty()) continue;
      auto it = producer.find(in);
      if (it != producer.end()) {
        if (seen.insert(it->second).second) {
          succ[it->second].push_back(i);
          indeg[i]++;
        }
      } else if (!scope.find(in)) {
        if (top_level)
          fail(ErrorCode::Structure, "input '" + in + "' of node '" + nodes[i].name + "' (" + nodes[i].op_type +
                                         ") is not a graph input, initializer or node output");
      }
    }
  }
  std::deque<size_t> ready;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (indeg[i] == 0) ready.push_back(i);
  std::vector<size_t> order;
  order.reserve(nodes.size());
  while (!ready.empty()) {
    const size_t i = ready.front();
    ready.pop_front();
    order.push_back(i);
    for (size_t j : succ[i])
      if (--indeg[j] == 0) ready.push_back(j);
  }
  if (order.size() != nodes.size()) {
    for (size_t i = 0; i < nodes.size(); ++i)
      if (indeg[i] > 0)
        fail(ErrorCode::Structure, "the graph has a cycle through node '" + nodes[i].name + "' (" + nodes[i].op_type + ")");
  }
  return order;
}

NodeCost Analyzer::run_nodes(const std::vector<Node>& nodes, Scope& scope, const std::map<std::string, const ValueInfo*>& vinfo,
                             Recorder* rec) {
  NodeCost total;
  Scope* saved = current_;
  current_ = &scope;
  const std::vector<size_t> order = topo_order(nodes, scope, rec != nullptr);
  std::unordered_set<std::string> attributed;  // weights already counted as parameters
  for (size_t k = 0; k < order.size(); ++k) {
    const Node& node = nodes[order[k]];
    OpContext ctx(node);
    ctx.opset = opset_of(node);
    ctx.max_values = kMaxValues;
    ctx.runner = &runner_;
    for (const auto& in : node.inputs) ctx.in.push_back(in.empty() ? nullptr : scope.find(in));
    ctx.out.resize(node.outputs.size());
    infer_node(ctx);
    if (ctx.cost.unknown_op) unknown_ops_.insert(op_key(node));
    // Weight parameters consumed here (first consumer only).
    double params = 0, weight_bytes = 0, bytes_read = 0, bytes_written = 0;
    bool bytes_known = true;
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const TensorState* t = ctx.in[i];
      if (!t) {
        if (!node.inputs[i].empty()) bytes_known = false;
        continue;
      }
      const double b = t->bytes();
      if (b < 0) bytes_known = false;
      else bytes_read += b;
      if (t->is_weight) {
        if (b >= 0) weight_bytes += b;
        // Nested graphs count their own initializers (run_nested); only the top level attributes them.
        if (rec && t->data && attributed.insert(node.inputs[i]).second && counts_as_param(t->dtype))
          params += static_cast<double>(t->data->numel);
      }
    }
    if (node.op_type == "Constant" && node.domain.empty()) {
      // Constant-node weights count as parameters where they are produced.
      for (auto& o : ctx.out)
        if (counts_as_param(o.dtype) && o.numel() > 0) params += static_cast<double>(o.numel());
    }
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      TensorState& o = ctx.out[i];
      auto vit = vinfo.find(node.outputs[i]);
      if (vit != vinfo.end()) apply_value_info(o, vit->second);
      const double b = o.bytes();
      if (b < 0) bytes_known = false;
      else bytes_written += b;
    }
    if (node.op_type == "Constant" && node.domain.empty())
      for (auto& o : ctx.out) {
        o.is_weight = true;
        for (const auto& n : node.outputs) attributed.insert(n);
      }
    total.flops += ctx.cost.flops;
    total.macs += ctx.cost.macs;
    total.params += params + ctx.cost.params;
    total.exact = total.exact && ctx.cost.exact;
    total.subgraph_nodes += 1 + ctx.cost.subgraph_nodes;
    total.nested_histogram[op_key(node)] += 1;
    for (auto& kv : ctx.cost.nested_histogram) total.nested_histogram[kv.first] += kv.second;
    if (rec) {
      AnalysisResult& r = *rec->res;
      const int32_t node_idx = static_cast<int32_t>(r.node_names.size());
      r.node_names.push_back(node.name);
      r.node_op_types.push_back(op_key(node));
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        if (node.inputs[i].empty() || !ctx.in[i]) {
          r.input_tensor.push_back(-1);
          continue;
        }
        const int64_t id = rec->tensor_index.at(node.inputs[i]);
        r.input_tensor.push_back(id);
        rec->consumers[static_cast<size_t>(id)].push_back(node_idx);
      }
      r.input_ptr.push_back(static_cast<int64_t>(r.input_tensor.size()));
      const bool is_const = node.op_type == "Constant" && node.domain.empty();
      for (size_t i = 0; i < node.outputs.size(); ++i) {
        if (node.outputs[i].empty()) continue;
        const int64_t id = rec->add_tensor(node.outputs[i], is_const ? 1 : 0, node_idx);
        rec->states[static_cast<size_t>(id)] = ctx.out[i];
        r.output_tensor.push_back(id);
      }
      r.output_ptr.push_back(static_cast<int64_t>(r.output_tensor.size()));
      r.flops.push_back(ctx.cost.flops);
      r.macs.push_back(ctx.cost.macs);
      r.params.push_back(params + ctx.cost.params);
      r.weight_bytes.push_back(weight_bytes);
      r.bytes_read.push_back(bytes_read);
      r.bytes_written.push_back(bytes_written);
      int64_t on = 0;
      for (auto& o : ctx.out) {
        const int64_t n = o.numel();
        on = (n < 0 || on < 0 || n > INT64_MAX / 2 || on > INT64_MAX / 2) ? -1 : on + n;
      }
      r.out_numel.push_back(on);
      r.cost_exact.push_back(ctx.cost.exact && bytes_known ? 1 : 0);
      r.unknown_op.push_back(ctx.cost.unknown_op ? 1 : 0);
      r.subgraph_nodes.push_back(ctx.cost.subgraph_nodes);
      for (auto& kv : ctx.cost.nested_histogram) r.nested_op_histogram[kv.first] += kv.second;
      rec->costs.push_back(ctx.cost);
    }
    for (size_t i = 0; i < node.outputs.size(); ++i)
      if (!node.outputs[i].empty()) scope.tensors[node.outputs[i]] = std::move(ctx.out[i]);
  }
  current_ = saved;
  return total;
}

SubgraphOutcome Analyzer::run_nested(const Graph& g, const std::vector<TensorState>& inputs) {
  SubgraphOutcome out;
  if (++nest_depth_ > static_cast<int>(opt_.limits.max_nesting)) {
    --nest_depth_;
    fail(ErrorCode::Limit, "subgraphs nested too deeply");
  }
  Scope scope;
  scope.parent = current_;
  for (const auto& t : g.initializers) scope.tensors[t.name] = state_of_initializer(t);
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    TensorState s = i < inputs.size() ? inputs[i] : TensorState{};
    apply_value_info(s, &g.inputs[i]);
    scope.tensors[g.inputs[i].name] = s;
  }
  std::map<std::string, const ValueInfo*> vinfo;
  for (const auto& v : g.value_info) vinfo[v.name] = &v;
  for (const auto& v : g.outputs) vinfo[v.name] = &v;
  NodeCost c = run_nodes(g.nodes, scope, vinfo, nullptr);
  for (const auto& t : g.initializers)
    if (counts_as_param(t.dtype)) c.params += static_cast<double>(t.numel);
  for (const auto& o : g.outputs) {
    const TensorState* s = scope.find(o.name);
    TensorState t = s ? *s : TensorState{};
    t.has_ivals = t.has_ivals && s != nullptr;
    apply_value_info(t, &o);
    t.is_weight = false;
    t.data = nullptr;
    out.outputs.push_back(t);
  }
  out.cost = c;
  --nest_depth_;
  return out;
}

bool Analyzer::run_function(const Node& n, const std::vector<const TensorState*>& in, SubgraphOutcome& out) {
  const Function* fn = nullptr;
  for (const auto& f : model_.functions)
    if (f.name == n.op_type && f.domain == n.domain) fn = &f;
  if (!fn) return false;
  if (nest_depth_ >= kMaxFunctionDepth) {
    warnings_.push_back("function '" + fn->name + "' nests too deeply (recursive?); its cost is not counted");
    return false;
  }
  ++nest_depth_;
  // Substitute attribute references by the caller's attributes (or the function's defaults).
  std::vector<Node> body = fn->nodes;
  for (auto& bn : body) {
    for (auto& a : bn.attributes) {
      if (a.ref_attr_name.empty()) continue;
      const Attribute* src = n.attr(a.ref_attr_name);
      if (!src)
        for (const auto& d : fn->attribute_defaults)
          if (d.name == a.ref_attr_name) src = &d;
      if (src) {
        const std::string name = a.name;
        a = *src;
        a.name = name;
      }
    }
  }
  Scope scope;  // functions do not see the caller's scope
  for (size_t i = 0; i < fn->inputs.size(); ++i) {
    TensorState s = i < in.size() && in[i] ? *in[i] : TensorState{};
    s.is_weight = false;  // the caller's weights are counted where they are defined
    s.data = nullptr;
    scope.tensors[fn->inputs[i]] = s;
  }
  const auto* saved_opsets = opsets_;
  std::map<std::string, int64_t> merged = model_.opset_imports;
  for (auto& kv : fn->opset_imports) merged[kv.first] = kv.second;
  opsets_ = &merged;
  Scope* saved = current_;
  NodeCost c = run_nodes(body, scope, {}, nullptr);
  current_ = saved;
  opsets_ = saved_opsets;
  for (const auto& o : fn->outputs) {
    const TensorState* s = scope.find(o);
    out.outputs.push_back(s ? *s : TensorState{});
  }
  out.cost = c;
  --nest_depth_;
  return true;
}

AnalysisResult Analyzer::run() {
  AnalysisResult res;
  const Graph& g = *model_.graph;
  opsets_ = &model_.opset_imports;
  res.opset_imports = model_.opset_imports;
  res.metadata = model_.metadata;
  res.producer_name = model_.producer_name;
  res.producer_version = model_.producer_version;
  res.graph_name = g.name;
  res.ir_version = model_.ir_version;
  for (const auto& f : model_.functions) res.functions.push_back(f.domain.empty() ? f.name : f.domain + "::" + f.name);

  Recorder rec;
  rec.res = &res;
  Scope scope;
  std::unordered_set<std::string> init_names;
  for (const auto& t : g.initializers) {
    if (!init_names.insert(t.name).second) warnings_.push_back("initializer '" + t.name + "' is defined twice");
    scope.tensors[t.name] = state_of_initializer(t);
  }
  // Graph inputs (those that are also initializers are weights with an overridable default).
  std::unordered_set<std::string> seen_inputs;
  for (const auto& vi : g.inputs) {
    if (init_names.count(vi.name)) continue;
    seen_inputs.insert(vi.name);
    TensorState s;
    s.dtype = vi.elem_type;
    auto given = opt_.input_shapes.find(vi.name);
    if (given != opt_.input_shapes.end()) {
      if (vi.has_shape && vi.dims.size() != given->second.size())
        fail(ErrorCode::Argument, "input '" + vi.name + "' has rank " + std::to_string(vi.dims.size()) + " but the given shape has rank " +
                                      std::to_string(given->second.size()));
      s.rank_known = true;
      s.dims = given->second;
      for (size_t i = 0; i < s.dims.size(); ++i) {
        if (s.dims[i] < 0) s.dims[i] = -1;
        if (vi.has_shape && i < vi.dims.size() && !vi.dims[i].param.empty() && s.dims[i] >= 0) symbols_[vi.dims[i].param] = s.dims[i];
      }
    } else if (vi.has_shape) {
      s.rank_known = true;
      for (size_t i = 0; i < vi.dims.size(); ++i) {
        const Dim& d = vi.dims[i];
        int64_t v = d.value > 0 ? d.value : -1;
        if (d.value == 0) v = 0;
        if (v < 0 && !d.param.empty()) {
          auto it = opt_.dim_values.find(d.param);
          if (it != opt_.dim_values.end()) v = it->second;
          else if (symbols_.count(d.param)) v = symbols_[d.param];
        }
        if (v < 0 && i == 0 && opt_.batch_size > 0) v = opt_.batch_size;
        if (v < 0 && opt_.default_dim > 0) v = opt_.default_dim;
        if (v >= 0 && !d.param.empty() && !symbols_.count(d.param)) symbols_[d.param] = v;
        s.dims.push_back(v);
      }
    }
    scope.tensors[vi.name] = s;
  }
  for (const auto& kv : opt_.input_shapes)
    if (!seen_inputs.count(kv.first)) fail(ErrorCode::Argument, "no graph input is named '" + kv.first + "'");
  for (const auto& kv : opt_.dim_values)
    if (!symbols_.count(kv.first)) symbols_[kv.first] = kv.second;

  // Register tensors in a stable order: graph inputs, weights, then node outputs.
  for (const auto& vi : g.inputs) {
    if (init_names.count(vi.name)) continue;
    const int64_t id = rec.add_tensor(vi.name, 2, -1);
    rec.states[static_cast<size_t>(id)] = scope.tensors[vi.name];
    res.graph_inputs.push_back(id);
    res.declared_input_dims.push_back(vi.dims);
  }
  for (const auto& t : g.initializers) {
    const int64_t id = rec.add_tensor(t.name, 1, -1);
    rec.states[static_cast<size_t>(id)] = scope.tensors[t.name];
  }
  std::map<std::string, const ValueInfo*> vinfo;
  for (const auto& v : g.value_info) vinfo[v.name] = &v;
  for (const auto& v : g.outputs) vinfo[v.name] = &v;
  res.input_ptr.push_back(0);
  res.output_ptr.push_back(0);
  NodeCost total = run_nodes(g.nodes, scope, vinfo, &rec);
  for (const auto& v : g.value_info) {
    auto it = rec.tensor_index.find(v.name);
    if (it != rec.tensor_index.end()) res.tensor_has_value_info[static_cast<size_t>(it->second)] = 1;
  }
  for (const auto& o : g.outputs) {
    auto it = rec.tensor_index.find(o.name);
    if (it == rec.tensor_index.end())
      fail(ErrorCode::Structure, "graph output '" + o.name + "' is not produced by any node, input or initializer");
    res.tensor_is_output[static_cast<size_t>(it->second)] = 1;
    res.graph_outputs.push_back(it->second);
  }
  // Parameters: every weight tensor once (initializers + Constant outputs + nested).
  double params = 0, param_bytes = 0;
  for (size_t i = 0; i < rec.states.size(); ++i) {
    if (res.tensor_kind[i] != 1) continue;
    const TensorState& s = rec.states[i];
    const int64_t n = s.data ? static_cast<int64_t>(s.data->numel) : s.numel();
    if (n > 0 && counts_as_param(s.dtype)) {
      params += static_cast<double>(n);
      const double b = s.bytes();
      if (b > 0) param_bytes += b;
    }
  }
  res.totals["params"] = params + [&] {
    double nested = 0;
    for (auto& c : rec.costs) nested += c.params;
    return nested;
  }();
  res.totals["param_bytes"] = param_bytes;
  res.totals["flops"] = total.flops;
  res.totals["macs"] = total.macs;
  for (size_t i = 0; i < res.node_op_types.size(); ++i) res.op_histogram[res.node_op_types[i]] += 1;
  finish_stats(res, rec);
  res.warnings = warnings_;
  res.unknown_ops.assign(unknown_ops_.begin(), unknown_ops_.end());
  return res;
}

void Analyzer::finish_stats(AnalysisResult& res, Recorder& rec) {
  const size_t n_nodes = res.node_names.size();
  const size_t n_t = res.tensor_names.size();
  // Tensor table.
  res.shape_ptr.push_back(0);
  double activation_bytes = 0;
  int64_t unknown_shapes = 0, n_activations = 0;
  for (size_t i = 0; i < n_t; ++i) {
    const TensorState& s = rec.states[i];
    res.tensor_dtype.push_back(s.dtype);
    res.tensor_rank.push_back(s.rank());
    const int64_t n = s.data ? static_cast<int64_t>(s.data->numel) : s.numel();
    res.tensor_numel.push_back(n);
    res.tensor_bytes.push_back(s.bytes());
    if (s.rank_known)
      for (int64_t d : s.dims) res.shape_dims.push_back(d);
    res.shape_ptr.push_back(static_cast<int64_t>(res.shape_dims.size()));
    const double nb = s.data ? std::ceil(static_cast<double>(s.data->numel) * dtype_bits(s.dtype) / 8.0) : s.bytes();
    if (nb > 0) {
      if (res.tensor_kind[i] == 1) res.weight_bytes_by_dtype[dtype_name(s.dtype)] += nb;
      else if (res.tensor_kind[i] == 0) res.activation_bytes_by_dtype[dtype_name(s.dtype)] += nb;
    }
    if (res.tensor_kind[i] != 1) {
      n_activations++;
      if (!s.fully_known()) unknown_shapes++;
      else if (res.tensor_kind[i] == 0) activation_bytes += std::max(0.0, s.bytes());
    }
  }
  // Node-to-node edges and levels (nodes are in topological order).
  res.succ_ptr.assign(1, 0);
  std::vector<std::vector<int64_t>> succ(n_nodes);
  std::vector<int64_t> n_pred_nodes(n_nodes, 0);
  for (size_t v = 0; v < n_nodes; ++v) {
    std::unordered_set<int64_t> preds;
    for (int64_t k = res.input_ptr[v]; k < res.input_ptr[v + 1]; ++k) {
      const int64_t t = res.input_tensor[static_cast<size_t>(k)];
      if (t < 0) continue;
      const int64_t p = res.tensor_producer[static_cast<size_t>(t)];
      if (p >= 0 && preds.insert(p).second) succ[static_cast<size_t>(p)].push_back(static_cast<int64_t>(v));
    }
    n_pred_nodes[v] = static_cast<int64_t>(preds.size());
  }
  res.level.assign(n_nodes, 0);
  std::vector<double> cp(n_nodes, 0);
  for (size_t v = 0; v < n_nodes; ++v) cp[v] = res.flops[v];
  double critical = 0;
  int64_t depth = 0;
  for (size_t v = 0; v < n_nodes; ++v) {
    for (int64_t w : succ[v]) {
      res.level[static_cast<size_t>(w)] = std::max(res.level[static_cast<size_t>(w)], res.level[v] + 1);
      cp[static_cast<size_t>(w)] = std::max(cp[static_cast<size_t>(w)], cp[v] + res.flops[static_cast<size_t>(w)]);
    }
    critical = std::max(critical, cp[v]);
    depth = std::max(depth, res.level[v] + 1);
    for (int64_t w : succ[v]) res.succ_idx.push_back(w);
    res.succ_ptr.push_back(static_cast<int64_t>(res.succ_idx.size()));
  }
  std::map<int64_t, int64_t> width;
  for (size_t v = 0; v < n_nodes; ++v)
    if (res.node_op_types[v] != "Constant") width[res.level[v]]++;
  int64_t max_width = 0;
  for (auto& kv : width) max_width = std::max(max_width, kv.second);
  int64_t fanout = 0, merges = 0;
  for (size_t i = 0; i < n_t; ++i)
    if (res.tensor_kind[i] != 1 && rec.consumers[i].size() > 1) fanout++;
  for (size_t v = 0; v < n_nodes; ++v)
    if (n_pred_nodes[v] > 1) merges++;
  // Peak activation memory: outputs allocated when produced, freed after their last consumer.
  std::vector<int64_t> last_use(n_t, -1);
  for (size_t i = 0; i < n_t; ++i)
    for (int64_t c : rec.consumers[i]) last_use[i] = std::max(last_use[i], c);
  std::vector<std::vector<size_t>> free_at(n_nodes);
  double live = 0, peak = 0;
  for (size_t i = 0; i < n_t; ++i) {
    if (res.tensor_kind[i] == 1 || res.tensor_is_output[i]) continue;
    if (last_use[i] >= 0) free_at[static_cast<size_t>(last_use[i])].push_back(i);
  }
  for (size_t i = 0; i < n_t; ++i)
    if (res.tensor_kind[i] == 2) live += std::max(0.0, res.tensor_bytes[i]);
  peak = live;
  for (size_t v = 0; v < n_nodes; ++v) {
    for (int64_t k = res.output_ptr[v]; k < res.output_ptr[v + 1]; ++k) {
      const size_t t = static_cast<size_t>(res.output_tensor[static_cast<size_t>(k)]);
      if (res.tensor_kind[t] == 0) live += std::max(0.0, res.tensor_bytes[t]);
    }
    peak = std::max(peak, live);
    for (size_t t : free_at[v])
      if (res.tensor_kind[t] == 0 || res.tensor_kind[t] == 2) live -= std::max(0.0, res.tensor_bytes[t]);
    // Outputs nobody consumes (and that are not graph outputs) die at once.
    for (int64_t k = res.output_ptr[v]; k < res.output_ptr[v + 1]; ++k) {
      const size_t t = static_cast<size_t>(res.output_tensor[static_cast<size_t>(k)]);
      if (res.tensor_kind[t] == 0 && last_use[t] < 0 && !res.tensor_is_output[t]) live -= std::max(0.0, res.tensor_bytes[t]);
    }
  }
  int64_t inexact = 0, unknown_op_nodes = 0, nested = 0, const_nodes = 0;
  double br = 0, bw = 0;
  for (size_t v = 0; v < n_nodes; ++v) {
    inexact += res.cost_exact[v] ? 0 : 1;
    unknown_op_nodes += res.unknown_op[v];
    nested += res.subgraph_nodes[v];
    br += res.bytes_read[v];
    bw += res.bytes_written[v];
    if (res.node_op_types[v] == "Constant") const_nodes++;
  }
  int64_t n_weights = 0;
  for (size_t i = 0; i < n_t; ++i) n_weights += res.tensor_kind[i] == 1 ? 1 : 0;
  auto& T = res.totals;
  T["num_nodes"] = static_cast<double>(n_nodes);
  T["num_nested_nodes"] = static_cast<double>(nested);
  T["num_subgraphs"] = static_cast<double>(model_.num_subgraphs);
  T["num_functions"] = static_cast<double>(model_.functions.size());
  T["num_tensors"] = static_cast<double>(n_t);
  T["num_activation_tensors"] = static_cast<double>(n_activations);
  T["num_weight_tensors"] = static_cast<double>(n_weights);
  T["num_constant_nodes"] = static_cast<double>(const_nodes);
  T["num_unknown_shape_tensors"] = static_cast<double>(unknown_shapes);
  T["num_unknown_op_nodes"] = static_cast<double>(unknown_op_nodes);
  T["num_inexact_nodes"] = static_cast<double>(inexact);
  T["depth"] = static_cast<double>(depth);
  T["critical_path_flops"] = critical;
  T["max_width"] = static_cast<double>(max_width);
  T["num_fanout_tensors"] = static_cast<double>(fanout);
  T["num_merge_nodes"] = static_cast<double>(merges);
  T["mean_out_degree"] = n_nodes ? static_cast<double>(res.succ_idx.size()) / static_cast<double>(n_nodes) : 0;
  T["peak_activation_bytes"] = peak;
  T["activation_bytes"] = activation_bytes;
  T["bytes_read"] = br;
  T["bytes_written"] = bw;
  T["arithmetic_intensity"] = (br + bw) > 0 ? T["flops"] / (br + bw) : 0;
}

}  // namespace

AnalysisResult analyze_model(const Model& model, const AnalyzeOptions& options) {
  if (!model.graph) fail(ErrorCode::Format, "model has no graph");
  Analyzer a(model, options);
  return a.run();
}

}  // namespace graphrec
