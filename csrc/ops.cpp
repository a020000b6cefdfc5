// Shape, value and cost rules per ONNX operator.
//
// Cost conventions (documented for users in graphrec/graph/__init__.py):
//  * MACs: multiply-accumulates of Conv/ConvTranspose/Gemm/MatMul/Einsum/RNNs/attention
//    (and their quantized forms); FLOPs of those ops = 2 * MACs (+ one per output for a bias).
//  * Other ops: FLOPs = output elements x a small per-op factor (1 for arithmetic and
//    comparisons, 4 for transcendental activations, 5 for Softmax, 8 for normalizations,
//    kernel size for pooling, input elements for reductions). Data movement ops: 0 FLOPs.
#include "ops.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>

namespace graphrec {

namespace {

constexpr int64_t kUnknown = -1;
constexpr int64_t kBig = std::numeric_limits<int64_t>::max() / 4;

int64_t mul_sat(int64_t a, int64_t b) {
  if (a < 0 || b < 0) return kUnknown;
  if (a == 0 || b == 0) return 0;
  if (a > kBig / b) return kBig;
  return a * b;
}

// A dimension computed in wide arithmetic: unknown (-1) unless it fits in [0, kBig].
int64_t dim_of(__int128 v) {
  if (v < 0 || v > static_cast<__int128>(kBig)) return kUnknown;
  return static_cast<int64_t>(v);
}

int64_t add_sat(int64_t a, int64_t b) {
  if (a < 0 || b < 0) return kUnknown;
  return dim_of(static_cast<__int128>(a) + b);
}

// double -> int64 without undefined behaviour (NaN / out of range give `fallback`).
int64_t to_int(double v, int64_t fallback = kUnknown) {
  if (!(v > -9.0e18 && v < 9.0e18)) return fallback;
  return static_cast<int64_t>(v);
}

bool wrap_arith(const std::string& op, int64_t a, int64_t b, int64_t& out) {
  if (op == "Add") return !__builtin_add_overflow(a, b, &out);
  if (op == "Sub") return !__builtin_sub_overflow(a, b, &out);
  if (op == "Mul") return !__builtin_mul_overflow(a, b, &out);
  return false;
}

TensorState tensor_of(int32_t dtype, std::vector<int64_t> dims) {
  TensorState t;
  t.dtype = dtype;
  t.rank_known = true;
  t.dims = std::move(dims);
  for (auto& d : t.dims)
    if (d < 0) d = kUnknown;
  return t;
}

TensorState unknown_rank(int32_t dtype) {
  TensorState t;
  t.dtype = dtype;
  return t;
}

int64_t norm_axis(int64_t axis, int64_t rank) {
  if (rank < 0) return kUnknown;
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return kUnknown;
  return axis;
}

bool values_of(const TensorState* t, std::vector<int64_t>& v) {
  if (!t || !t->has_ivals) return false;
  v = t->ivals;
  return true;
}

bool fvalues_of(const TensorState* t, std::vector<double>& v) {
  if (!t) return false;
  if (t->has_fvals) {
    v = t->fvals;
    return true;
  }
  if (t->has_ivals) {
    v.assign(t->ivals.begin(), t->ivals.end());
    return true;
  }
  return false;
}

void set_ivals(TensorState& t, std::vector<int64_t> v) {
  t.has_ivals = true;
  t.ivals = std::move(v);
  t.has_fvals = true;
  t.fvals.assign(t.ivals.begin(), t.ivals.end());
}

void set_fvals(TensorState& t, std::vector<double> v) {
  t.has_fvals = true;
  t.fvals = std::move(v);
  if (dtype_is_integer(t.dtype)) {
    t.has_ivals = true;
    t.ivals.clear();
    for (double d : t.fvals) t.ivals.push_back(to_int(d, 0));
  }
}

double numel_d(const TensorState* t) {
  if (!t) return 0;
  const int64_t n = t->numel();
  return n < 0 ? -1.0 : static_cast<double>(n);
}

// Multidirectional (numpy) broadcasting of known-rank shapes.
bool broadcast(const std::vector<const TensorState*>& ins, std::vector<int64_t>& out) {
  size_t rank = 0;
  for (auto* t : ins) {
    if (!t) continue;
    if (!t->rank_known) return false;
    rank = std::max(rank, t->dims.size());
  }
  out.assign(rank, 1);
  std::vector<bool> unknown(rank, false);
  for (auto* t : ins) {
    if (!t) continue;
    const size_t off = rank - t->dims.size();
    for (size_t i = 0; i < t->dims.size(); ++i) {
      const int64_t d = t->dims[i];
      int64_t& o = out[off + i];
      if (d == 1) continue;
      if (d < 0) {
        if (o == 1) unknown[off + i] = true;
        continue;
      }
      if (o == 1 || unknown[off + i]) {
        o = d;
        unknown[off + i] = false;
      }
    }
  }
  for (size_t i = 0; i < rank; ++i)
    if (unknown[i]) out[i] = kUnknown;
  return true;
}

struct Factor {
  const char* op;
  double flops_per_elem;
};

const Factor kUnaryFactors[] = {
    {"Relu", 1},       {"LeakyRelu", 1},   {"PRelu", 1},     {"Clip", 1},      {"Neg", 1},       {"Abs", 1},
    {"Ceil", 1},       {"Floor", 1},       {"Round", 1},     {"Sign", 1},      {"Not", 1},       {"IsNaN", 1},
    {"IsInf", 1},      {"Identity", 0},    {"Cast", 0},      {"CastLike", 0},  {"HardSigmoid", 3},
    {"HardSwish", 4},  {"Sigmoid", 4},     {"Tanh", 4},      {"Exp", 4},       {"Log", 4},       {"Sqrt", 4},
    {"Reciprocal", 1}, {"Erf", 4},         {"Elu", 4},       {"Selu", 4},      {"Celu", 4},      {"Softplus", 4},
    {"Softsign", 3},   {"Mish", 8},        {"Gelu", 8},      {"Sin", 4},       {"Cos", 4},       {"Tan", 4},
    {"Asin", 4},       {"Acos", 4},        {"Atan", 4},      {"Sinh", 4},      {"Cosh", 4},      {"Asinh", 4},
    {"Acosh", 4},      {"Atanh", 4},       {"Shrink", 2},    {"ThresholdedRelu", 1}, {"Dropout", 0},
    {"Softmax", 5},    {"LogSoftmax", 6},  {"Hardmax", 2},   {"LRN", 8},       {"CumSum", 1},    {"Trilu", 0},
    {"BatchNormalization", 2}, {"InstanceNormalization", 8}, {"LpNormalization", 4},
    {"MeanVarianceNormalization", 8}, {"QuantizeLinear", 3}, {"DequantizeLinear", 2},
    {"FastGelu", 8},   {"BiasGelu", 9},    {"QuickGelu", 5}, {"BiasAdd", 1},   {"Swish", 5},     {"SiLU", 5},
    {"QLinearSigmoid", 6}, {"QLinearLeakyRelu", 3}, {"Bernoulli", 2}, {"RandomNormalLike", 2}, {"RandomUniformLike", 2},
    {"BitwiseNot", 1}, {"ReverseSequence", 0}, {"ScatterND", 0}, {"ScatterElements", 0}, {"Scatter", 0},
    {"LayerNormalization", 8}, {"SimplifiedLayerNormalization", 6}, {"SkipLayerNormalization", 9},
    {"SkipSimplifiedLayerNormalization", 7}, {"GroupNormalization", 8}, {"RMSNormalization", 6},
    {"GroupNorm", 8},  {"DynamicQuantizeLinear", 4}, {"ImageScaler", 2}, {"Affine", 2}, {"ScaledTanh", 5},
    {"ParametricSoftplus", 5}, {"Crop", 0}, {"Col2Im", 1}, {"Swish", 5},
};

const Factor kBinaryFactors[] = {
    {"Add", 1}, {"Sub", 1}, {"Mul", 1}, {"Div", 1}, {"Pow", 4}, {"Max", 1}, {"Min", 1}, {"Mean", 1}, {"Sum", 1},
    {"Mod", 1}, {"Equal", 1}, {"Less", 1}, {"Greater", 1}, {"LessOrEqual", 1}, {"GreaterOrEqual", 1},
    {"And", 1}, {"Or", 1}, {"Xor", 1}, {"BitShift", 1}, {"BitwiseAnd", 1}, {"BitwiseOr", 1}, {"BitwiseXor", 1},
    {"Where", 1}, {"QLinearAdd", 4}, {"QLinearMul", 4}, {"Expand", 0},
};

double factor_of(const Factor* table, size_t n, const std::string& op, bool& found) {
  for (size_t i = 0; i < n; ++i)
    if (op == table[i].op) {
      found = true;
      return table[i].flops_per_elem;
    }
  found = false;
  return 0;
}

bool is_bool_op(const std::string& op) {
  static const std::set<std::string> ops = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And",
                                            "Or", "Xor", "Not", "IsNaN", "IsInf"};
  return ops.count(op) > 0;
}

class Rules {
 public:
  explicit Rules(OpContext& c) : ctx(c), node(c.node), op(c.node.op_type) {}

  void run();

 private:
  OpContext& ctx;
  const Node& node;
  const std::string& op;

  const TensorState* in(size_t i) const { return i < ctx.in.size() ? ctx.in[i] : nullptr; }
  size_t n_out() const { return ctx.out.size(); }
  void set_out(size_t i, TensorState t) {
    if (i < ctx.out.size()) ctx.out[i] = std::move(t);
  }
  // Nodes, parameters and op histogram of a nested graph / function body.
  void absorb_structure(const NodeCost& c) {
    ctx.cost.subgraph_nodes += c.subgraph_nodes;
    ctx.cost.params += c.params;
    for (const auto& kv : c.nested_histogram) ctx.cost.nested_histogram[kv.first] += kv.second;
  }
  // FLOPs/MACs of a body run `times` times (-1: unknown count, counted once and inexact).
  void absorb_cost(const NodeCost& c, int64_t times) {
    const double t = times >= 0 ? static_cast<double>(times) : 1.0;
    ctx.cost.flops += c.flops * t;
    ctx.cost.macs += c.macs * t;
    ctx.cost.exact = ctx.cost.exact && c.exact && times >= 0;
  }
  int32_t dtype0() const { return in(0) ? in(0)->dtype : kUndefined; }
  void elementwise_flops(double per_elem, const TensorState& out) {
    const int64_t n = out.numel();
    if (n < 0) {
      ctx.cost.exact = false;
      return;
    }
    ctx.cost.flops += per_elem * static_cast<double>(n);
  }
  void add_macs(double macs, bool known, double extra_flops = 0) {
    if (!known) {
      ctx.cost.exact = false;
      return;
    }
    ctx.cost.macs += macs;
    ctx.cost.flops += 2 * macs + extra_flops;
  }
  // ints from an attribute (older opsets) or from an input's known values (newer opsets).
  bool ints_attr_or_input(const char* attr, size_t input, std::vector<int64_t>& v, bool& present) {
    present = false;
    if (node.has_attr(attr)) {
      present = true;
      v = node.attr_ints(attr);
      return true;
    }
    if (input < ctx.in.size() && in(input)) {
      present = true;
      return values_of(in(input), v);
    }
    return true;
  }

  bool unary();
  bool binary();
  void conv(size_t x_idx, size_t w_idx, size_t bias_idx, int32_t out_dtype);
  void conv_transpose();
  void pool(bool global);
  void gemm(size_t a_idx, size_t b_idx, size_t c_idx, int32_t out_dtype);
  void matmul(size_t a_idx, size_t b_idx, int32_t out_dtype);
  void reduce();
  void arg_reduce();
  void reshape();
  void flatten();
  void squeeze(bool unsq);
  void transpose();
  void concat();
  void split();
  void slice();
  void gather();
  void gather_elements();
  void gather_nd();
  void expand();
  void tile();
  void pad();
  void resize();
  void depth_space(bool to_depth);
  void shape();
  void size();
  void constant();
  void constant_of_shape();
  void range();
  void cast();
  void rnn(int gates);
  void topk();
  void onehot();
  void einsum();
  void layer_norm_like();
  void attention_ms();
  void attention_onnx();
  void mha_ms();
  void if_op();
  void loop_op();
  void scan_op();
  void quantize_dynamic();
  void nonzero_like();
  void eye_like();
  void random_op();
};

// Elements of a row-major tensor `in` (dims `in_dims`) at start[k] + i_k * step[k] for every
// output index (i_0, ..., i_{r-1}) < out_dims. Returns an empty vector when an index falls
// outside the input (the caller then leaves the values unknown).
std::vector<int64_t> gather_strided(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& out_dims,
                                    const std::vector<int64_t>& start, const std::vector<int64_t>& step,
                                    const std::vector<int64_t>& in) {
  const size_t r = in_dims.size();
  int64_t n = 1;
  for (int64_t d : out_dims) n = mul_sat(n, d);
  if (n < 0 || n > (1 << 16) || out_dims.size() != r) return {};
  std::vector<int64_t> stride(r, 1);
  for (size_t k = r; k-- > 1;) stride[k - 1] = stride[k] * in_dims[k];
  std::vector<int64_t> idx(r, 0), out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    __int128 flat = 0;
    for (size_t k = 0; k < r; ++k) {
      const __int128 pos = static_cast<__int128>(start[k]) + static_cast<__int128>(idx[k]) * step[k];
      if (pos < 0 || pos >= in_dims[k]) return {};
      flat += pos * stride[k];
    }
    if (flat < 0 || flat >= static_cast<__int128>(in.size())) return {};
    out.push_back(in[static_cast<size_t>(flat)]);
    for (size_t k = r; k-- > 0;) {  // next output index
      if (++idx[k] < out_dims[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

// Output shaped by a 1-D shape tensor whose values are unknown: the rank is its length.
TensorState shaped_by_unknown_values(const TensorState* shape, int32_t dt) {
  if (shape && shape->rank_known && shape->dims.size() == 1 && shape->dims[0] >= 0 && shape->dims[0] <= 64)
    return tensor_of(dt, std::vector<int64_t>(static_cast<size_t>(shape->dims[0]), kUnknown));
  return unknown_rank(dt);
}

bool Rules::unary() {
  bool found = false;
  double f = factor_of(kUnaryFactors, sizeof(kUnaryFactors) / sizeof(Factor), op, found);
  if (!found) return false;
  const TensorState* x = in(0);
  TensorState o = x ? *x : TensorState{};
  o.is_weight = false;
  o.data = nullptr;
  o.has_ivals = o.has_fvals = false;
  if (is_bool_op(op)) o.dtype = kBool;
  if (op == "Cast") o.dtype = static_cast<int32_t>(node.attr_i("to", kUndefined));
  if (op == "CastLike" && in(1)) o.dtype = in(1)->dtype;
  if (op == "QuantizeLinear") {
    o.dtype = in(2) ? in(2)->dtype : static_cast<int32_t>(node.attr_i("output_dtype", kUint8));
    if (o.dtype == kUndefined) o.dtype = kUint8;
  }
  if (op == "DequantizeLinear") {
    o.dtype = static_cast<int32_t>(node.attr_i("output_dtype", 0));
    if (o.dtype == kUndefined) o.dtype = in(1) ? in(1)->dtype : kFloat;
    if (o.dtype == kUndefined) o.dtype = kFloat;
  }
  if (op == "DynamicQuantizeLinear") o.dtype = kUint8;
  // Value propagation for the few unary ops that appear in shape arithmetic.
  if (x && (x->has_ivals || x->has_fvals)) {
    std::vector<double> v;
    fvalues_of(x, v);
    bool ok = true;
    for (auto& d : v) {
      if (op == "Identity" || op == "Cast" || op == "CastLike" || op == "Dropout") {
      } else if (op == "Neg") d = -d;
      else if (op == "Abs") d = std::fabs(d);
      else if (op == "Floor") d = std::floor(d);
      else if (op == "Ceil") d = std::ceil(d);
      else if (op == "Round") d = std::nearbyint(d);
      else if (op == "Sqrt") d = std::sqrt(d);
      else if (op == "Relu") d = std::max(0.0, d);
      else if (op == "Not") d = d == 0 ? 1 : 0;
      else ok = false;
    }
    if (ok) {
      if (x->has_ivals && dtype_is_integer(o.dtype) && (op == "Identity" || op == "Cast" || op == "Neg" || op == "Abs")) {
        std::vector<int64_t> iv = x->ivals;
        if (op == "Neg") for (auto& i : iv) i = -i;
        if (op == "Abs") for (auto& i : iv) i = i < 0 ? -i : i;
        set_ivals(o, iv);
      } else {
        set_fvals(o, v);
      }
    }
  }
  elementwise_flops(f, o);
  set_out(0, o);
  // Secondary outputs.
  if (op == "Dropout" && n_out() > 1) {
    TensorState m = o;
    m.dtype = kBool;
    m.has_ivals = m.has_fvals = false;
    set_out(1, m);
  }
  if (op == "DynamicQuantizeLinear") {
    set_out(1, tensor_of(kFloat, {}));
    set_out(2, tensor_of(kUint8, {}));
  }
  if (op == "BatchNormalization" && n_out() > 1 && x && x->rank_known && x->dims.size() >= 2) {
    for (size_t i = 1; i < n_out(); ++i) set_out(i, tensor_of(x->dtype, {x->dims[1]}));
  }
  if ((op == "LayerNormalization" || op == "SimplifiedLayerNormalization" || op == "SkipLayerNormalization" ||
       op == "SkipSimplifiedLayerNormalization") &&
      n_out() > 1) {
    layer_norm_like();
  }
  return true;
}

void Rules::layer_norm_like() {
  const TensorState* x = in(0);
  if (!x || !x->rank_known) return;
  const int64_t r = x->rank();
  int64_t axis = norm_axis(node.attr_i("axis", -1), r);
  if (axis < 0) return;
  std::vector<int64_t> stat = x->dims;
  for (int64_t i = axis; i < r; ++i) stat[static_cast<size_t>(i)] = 1;
  int32_t st = static_cast<int32_t>(node.attr_i("stash_type", kFloat));
  if (op.rfind("Skip", 0) == 0) {
    // SkipLayerNormalization: output, mean, inv_std_var, input_skip_bias_sum
    if (n_out() > 1) set_out(1, tensor_of(kFloat, stat));
    if (n_out() > 2) set_out(2, tensor_of(kFloat, stat));
    if (n_out() > 3) set_out(3, tensor_of(x->dtype, x->dims));
  } else {
    for (size_t i = 1; i < n_out(); ++i) set_out(i, tensor_of(st, stat));
  }
}

bool Rules::binary() {
  bool found = false;
  double f = factor_of(kBinaryFactors, sizeof(kBinaryFactors) / sizeof(Factor), op, found);
  if (!found) return false;
  std::vector<const TensorState*> ops;
  if (op == "QLinearAdd" || op == "QLinearMul") {
    ops = {in(0), in(3)};
  } else if (op == "Expand") {
    expand();
    return true;
  } else {
    for (size_t i = 0; i < ctx.in.size(); ++i) ops.push_back(in(i));
  }
  int32_t dt = dtype0();
  if (op == "Where") dt = in(1) ? in(1)->dtype : kUndefined;
  if (is_bool_op(op)) dt = kBool;
  if (op == "QLinearAdd" || op == "QLinearMul") dt = in(7) ? in(7)->dtype : kUint8;
  std::vector<int64_t> dims;
  TensorState o;
  if (broadcast(ops, dims)) o = tensor_of(dt, dims);
  else o = unknown_rank(dt);
  // Values: elementwise with scalar/equal-size broadcasting.
  bool all_vals = !ops.empty();
  size_t n = 1;
  for (auto* t : ops) {
    if (!t || !(t->has_fvals || t->has_ivals)) {
      all_vals = false;
      break;
    }
    const size_t m = t->has_ivals ? t->ivals.size() : t->fvals.size();
    if (m != 1 && n != 1 && m != n) {
      all_vals = false;
      break;
    }
    n = std::max(n, m);
  }
  if (all_vals && o.fully_known() && static_cast<size_t>(o.numel()) == n && n <= ctx.max_values) {
    const bool ints = dtype_is_integer(dt) || dt == kBool;
    std::vector<std::vector<double>> fv(ops.size());
    std::vector<std::vector<int64_t>> iv(ops.size());
    bool all_int = true;
    for (size_t k = 0; k < ops.size(); ++k) {
      fvalues_of(ops[k], fv[k]);
      if (ops[k]->has_ivals) iv[k] = ops[k]->ivals;
      else all_int = false;
    }
    std::vector<double> res(n);
    std::vector<int64_t> ires(n);
    bool ok = true;
    for (size_t e = 0; e < n && ok; ++e) {
      auto F = [&](size_t k) { return fv[k].size() == 1 ? fv[k][0] : fv[k][e]; };
      auto I = [&](size_t k) { return iv[k].size() == 1 ? iv[k][0] : iv[k][e]; };
      double r = 0;
      int64_t ir = 0;
      if (op == "Where") {
        r = F(0) != 0 ? F(1) : F(2);
        if (all_int) ir = I(0) != 0 ? I(1) : I(2);
      } else if (ops.size() == 2) {
        const double a = F(0), b = F(1);
        const bool use_i = all_int && ints;
        const int64_t ia = use_i ? I(0) : 0, ib = use_i ? I(1) : 0;
        if (op == "Add" || op == "Sub" || op == "Mul") {
          r = op == "Add" ? a + b : (op == "Sub" ? a - b : a * b);
          if (use_i && !wrap_arith(op, ia, ib, ir)) ok = false;  // overflow: values unknown
        } else if (op == "Div") {
          if (use_i) {
            if (ib == 0 || (ia == std::numeric_limits<int64_t>::min() && ib == -1)) ok = false;
            else { ir = ia / ib; r = static_cast<double>(ir); }
          } else r = a / b;
        } else if (op == "Mod") {
          if (use_i) {
            if (ib == 0 || ib == -1) { ok = ib == -1; ir = 0; r = 0; }
            else { ir = ia % ib; if (ir != 0 && ((ir < 0) != (ib < 0)) && node.attr_i("fmod", 0) == 0) ir += ib; r = static_cast<double>(ir); }
          }
          else r = std::fmod(a, b);
        }
        else if (op == "Max") { r = std::max(a, b); ir = std::max(ia, ib); }
        else if (op == "Min") { r = std::min(a, b); ir = std::min(ia, ib); }
        else if (op == "Equal") { r = use_i ? (ia == ib) : (a == b); ir = static_cast<int64_t>(r); }
        else if (op == "Less") { r = a < b; ir = static_cast<int64_t>(r); }
        else if (op == "Greater") { r = a > b; ir = static_cast<int64_t>(r); }
        else if (op == "LessOrEqual") { r = a <= b; ir = static_cast<int64_t>(r); }
        else if (op == "GreaterOrEqual") { r = a >= b; ir = static_cast<int64_t>(r); }
        else if (op == "And") { r = (a != 0) && (b != 0); ir = static_cast<int64_t>(r); }
        else if (op == "Or") { r = (a != 0) || (b != 0); ir = static_cast<int64_t>(r); }
        else if (op == "Pow") { r = std::pow(a, b); ir = to_int(r, 0); }
        else ok = false;
      } else ok = false;
      res[e] = r;
      ires[e] = ir;
    }
    if (ok) {
      if (ints && all_int) set_ivals(o, ires);
      else set_fvals(o, res);
    }
  }
  elementwise_flops(f, o);
  set_out(0, o);
  return true;
}

// Spatial output size of a convolution / pooling window.
int64_t window_out(int64_t in, int64_t k, int64_t stride, int64_t dil, int64_t pb, int64_t pe, const std::string& auto_pad,
                   bool ceil_mode) {
  if (in < 0 || k < 0) return kUnknown;
  if (stride <= 0) stride = 1;
  if (dil <= 0) dil = 1;
  using W = __int128;  // attributes of hostile files may be any int64
  const W ek = static_cast<W>(dil) * (k - 1) + 1;
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") return dim_of((static_cast<W>(in) + stride - 1) / stride);
  if (auto_pad == "VALID") {
    const W span = in - ek;
    return span < 0 ? 0 : dim_of(span / stride + 1);
  }
  const W span = static_cast<W>(in) + pb + pe - ek;
  if (span < 0) return 0;
  W o = ceil_mode ? (span + stride - 1) / stride + 1 : span / stride + 1;
  // ceil_mode: the last window must start inside the (left-padded) input.
  if (ceil_mode && (o - 1) * stride >= static_cast<W>(in) + pb) o -= 1;
  return dim_of(o);
}

void Rules::conv(size_t x_idx, size_t w_idx, size_t bias_idx, int32_t out_dtype) {
  const TensorState* x = in(x_idx);
  const TensorState* w = in(w_idx);
  const int32_t dt = out_dtype != kUndefined ? out_dtype : (x ? x->dtype : kUndefined);
  int64_t rank = x && x->rank_known ? x->rank() : (w && w->rank_known ? w->rank() : -1);
  if (rank < 3) {
    set_out(0, unknown_rank(dt));
    ctx.cost.exact = false;
    return;
  }
  const size_t ns = static_cast<size_t>(rank - 2);
  std::vector<int64_t> kernel = node.attr_ints("kernel_shape");
  if (kernel.size() != ns) {
    kernel.assign(ns, kUnknown);
    if (w && w->rank_known && w->dims.size() == ns + 2)
      for (size_t i = 0; i < ns; ++i) kernel[i] = w->dims[i + 2];
  }
  std::vector<int64_t> strides = node.attr_ints("strides"), dil = node.attr_ints("dilations"), pads = node.attr_ints("pads");
  strides.resize(ns, 1);
  dil.resize(ns, 1);
  pads.resize(2 * ns, 0);
  const std::string auto_pad = node.attr_s("auto_pad", "NOTSET");
  const int64_t group = std::max<int64_t>(1, node.attr_i("group", 1));
  std::vector<int64_t> out(static_cast<size_t>(rank), kUnknown);
  out[0] = x && x->rank_known ? x->dims[0] : kUnknown;
  out[1] = w && w->rank_known && !w->dims.empty() ? w->dims[0] : kUnknown;
  for (size_t i = 0; i < ns; ++i) {
    const int64_t xin = x && x->rank_known ? x->dims[i + 2] : kUnknown;
    out[i + 2] = window_out(xin, kernel[i], strides[i], dil[i], pads[i], pads[i + ns], auto_pad, false);
  }
  TensorState o = tensor_of(dt, out);
  // MACs = N * Cout * prod(out spatial) * (Cin / group) * prod(kernel)
  int64_t cin_g = w && w->rank_known && w->dims.size() >= 2 ? w->dims[1] : kUnknown;
  if (cin_g < 0 && x && x->rank_known && x->dims[1] >= 0) cin_g = x->dims[1] / group;
  int64_t m = mul_sat(o.numel(), cin_g);
  for (int64_t k : kernel) m = mul_sat(m, k);
  const bool bias = in(bias_idx) != nullptr;
  add_macs(static_cast<double>(m), m >= 0, bias && o.numel() >= 0 ? static_cast<double>(o.numel()) : 0);
  set_out(0, o);
}

void Rules::conv_transpose() {
  const TensorState* x = in(0);
  const TensorState* w = in(1);
  const int32_t dt = x ? x->dtype : kUndefined;
  int64_t rank = x && x->rank_known ? x->rank() : (w && w->rank_known ? w->rank() : -1);
  if (rank < 3) {
    set_out(0, unknown_rank(dt));
    ctx.cost.exact = false;
    return;
  }
  const size_t ns = static_cast<size_t>(rank - 2);
  const int64_t group = std::max<int64_t>(1, node.attr_i("group", 1));
  std::vector<int64_t> kernel = node.attr_ints("kernel_shape");
  if (kernel.size() != ns) {
    kernel.assign(ns, kUnknown);
    if (w && w->rank_known && w->dims.size() == ns + 2)
      for (size_t i = 0; i < ns; ++i) kernel[i] = w->dims[i + 2];
  }
  std::vector<int64_t> strides = node.attr_ints("strides"), dil = node.attr_ints("dilations"), pads = node.attr_ints("pads"),
                       opad = node.attr_ints("output_padding"), oshape = node.attr_ints("output_shape");
  strides.resize(ns, 1);
  dil.resize(ns, 1);
  pads.resize(2 * ns, 0);
  opad.resize(ns, 0);
  const std::string auto_pad = node.attr_s("auto_pad", "NOTSET");
  std::vector<int64_t> out(static_cast<size_t>(rank), kUnknown);
  out[0] = x && x->rank_known ? x->dims[0] : kUnknown;
  out[1] = w && w->rank_known && w->dims.size() >= 2 ? mul_sat(w->dims[1], group) : kUnknown;
  for (size_t i = 0; i < ns; ++i) {
    const int64_t xin = x && x->rank_known ? x->dims[i + 2] : kUnknown;
    if (oshape.size() == ns) out[i + 2] = oshape[i];
    else if (oshape.size() == ns + 2) out[i + 2] = oshape[i + 2];
    else if (xin < 0 || kernel[i] < 0) out[i + 2] = kUnknown;
    else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") out[i + 2] = xin * strides[i];
    else
      out[i + 2] = dim_of(static_cast<__int128>(strides[i]) * (xin - 1) + opad[i] + (static_cast<__int128>(kernel[i]) - 1) * dil[i] + 1 -
                          pads[i] - pads[i + ns]);
  }
  TensorState o = tensor_of(dt, out);
  // MACs = N * Cin * prod(in spatial) * (Cout / group) * prod(kernel)
  int64_t m = x ? x->numel() : kUnknown;
  m = mul_sat(m, w && w->rank_known && w->dims.size() >= 2 ? w->dims[1] : kUnknown);
  for (int64_t k : kernel) m = mul_sat(m, k);
  add_macs(static_cast<double>(m), m >= 0, in(2) && o.numel() >= 0 ? static_cast<double>(o.numel()) : 0);
  set_out(0, o);
}

void Rules::pool(bool global) {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  if (!x || !x->rank_known || x->rank() < 3) {
    set_out(0, unknown_rank(dt));
    ctx.cost.exact = false;
    return;
  }
  const size_t ns = x->dims.size() - 2;
  std::vector<int64_t> out = x->dims;
  double window = 1;
  if (global) {
    for (size_t i = 0; i < ns; ++i) {
      window = x->dims[i + 2] < 0 ? -1 : window * static_cast<double>(x->dims[i + 2]);
      out[i + 2] = 1;
    }
  } else {
    std::vector<int64_t> kernel = node.attr_ints("kernel_shape");
    std::vector<int64_t> strides = node.attr_ints("strides"), dil = node.attr_ints("dilations"), pads = node.attr_ints("pads");
    kernel.resize(ns, kUnknown);
    strides.resize(ns, 1);
    dil.resize(ns, 1);
    pads.resize(2 * ns, 0);
    const std::string auto_pad = node.attr_s("auto_pad", "NOTSET");
    const bool ceil_mode = node.attr_i("ceil_mode", 0) != 0;
    for (size_t i = 0; i < ns; ++i) {
      out[i + 2] = window_out(x->dims[i + 2], kernel[i], strides[i], dil[i], pads[i], pads[i + ns], auto_pad, ceil_mode);
      window = kernel[i] < 0 ? -1 : window * static_cast<double>(kernel[i]);
    }
  }
  TensorState o = tensor_of(dt, out);
  if (global) {
    const double n = numel_d(x);
    if (n < 0) ctx.cost.exact = false;
    else ctx.cost.flops += n;
  } else if (window < 0) {
    ctx.cost.exact = false;
  } else {
    elementwise_flops(window, o);
  }
  set_out(0, o);
  if (n_out() > 1) set_out(1, tensor_of(kInt64, out));
}

void Rules::matmul(size_t a_idx, size_t b_idx, int32_t out_dtype) {
  const TensorState* a = in(a_idx);
  const TensorState* b = in(b_idx);
  const int32_t dt = out_dtype != kUndefined ? out_dtype : (a ? a->dtype : kUndefined);
  if (!a || !b || !a->rank_known || !b->rank_known || a->dims.empty() || b->dims.empty()) {
    set_out(0, unknown_rank(dt));
    ctx.cost.exact = false;
    return;
  }
  std::vector<int64_t> ad = a->dims, bd = b->dims;
  const bool a1 = ad.size() == 1, b1 = bd.size() == 1;
  if (a1) ad.insert(ad.begin(), 1);
  if (b1) bd.push_back(1);
  const int64_t M = ad[ad.size() - 2], K = ad.back(), N = bd.back();
  TensorState ab, bb;
  ab.rank_known = bb.rank_known = true;
  ab.dims.assign(ad.begin(), ad.end() - 2);
  bb.dims.assign(bd.begin(), bd.end() - 2);
  std::vector<int64_t> batch;
  broadcast({&ab, &bb}, batch);
  std::vector<int64_t> out = batch;
  if (!a1) out.push_back(M);
  if (!b1) out.push_back(N);
  TensorState o = tensor_of(dt, out);
  int64_t m = mul_sat(mul_sat(M, K), N);
  for (int64_t d : batch) m = mul_sat(m, d);
  add_macs(static_cast<double>(m), m >= 0);
  set_out(0, o);
}

void Rules::gemm(size_t a_idx, size_t b_idx, size_t c_idx, int32_t out_dtype) {
  const TensorState* a = in(a_idx);
  const TensorState* b = in(b_idx);
  const int32_t dt = out_dtype != kUndefined ? out_dtype : dtype0();
  if (!a || !b || !a->rank_known || !b->rank_known || a->dims.size() != 2 || b->dims.size() != 2) {
    set_out(0, unknown_rank(dt));
    ctx.cost.exact = false;
    return;
  }
  const bool ta = node.attr_i("transA", 0) != 0, tb = node.attr_i("transB", 0) != 0;
  const int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
  const int64_t N = tb ? b->dims[0] : b->dims[1];
  TensorState o = tensor_of(dt, {M, N});
  const int64_t m = mul_sat(mul_sat(M, K), N);
  const double extra = in(c_idx) && o.numel() >= 0 ? static_cast<double>(o.numel()) : 0;
  add_macs(static_cast<double>(m), m >= 0, extra);
  set_out(0, o);
}

void Rules::reduce() {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  const double n = numel_d(x);
  if (n < 0) ctx.cost.exact = false;
  else ctx.cost.flops += n;
  if (!x || !x->rank_known) {
    set_out(0, unknown_rank(dt));
    return;
  }
  std::vector<int64_t> axes;
  bool present = false;
  if (!ints_attr_or_input("axes", 1, axes, present)) {
    // axes given as a runtime tensor: rank is known only with keepdims.
    if (node.attr_i("keepdims", 1)) set_out(0, tensor_of(dt, std::vector<int64_t>(x->dims.size(), kUnknown)));
    else set_out(0, unknown_rank(dt));
    return;
  }
  const int64_t r = x->rank();
  const bool keep = node.attr_i("keepdims", 1) != 0;
  std::vector<bool> red(static_cast<size_t>(r), false);
  if (!present || axes.empty()) {
    if (node.attr_i("noop_with_empty_axes", 0) != 0 && present) {
      set_out(0, tensor_of(dt, x->dims));
      return;
    }
    red.assign(static_cast<size_t>(r), true);
  }
  for (int64_t a : axes) {
    const int64_t k = norm_axis(a, r);
    if (k < 0) {
      set_out(0, unknown_rank(dt));
      return;
    }
    red[static_cast<size_t>(k)] = true;
  }
  std::vector<int64_t> out;
  for (size_t i = 0; i < red.size(); ++i) {
    if (!red[i]) out.push_back(x->dims[i]);
    else if (keep) out.push_back(1);
  }
  TensorState o = tensor_of(dt, out);
  if (x->has_ivals && o.numel() == 1 && (op == "ReduceProd" || op == "ReduceSum" || op == "ReduceMax" || op == "ReduceMin")) {
    int64_t acc = op == "ReduceProd" ? 1 : 0;
    if (op == "ReduceMax") acc = std::numeric_limits<int64_t>::min();
    if (op == "ReduceMin") acc = std::numeric_limits<int64_t>::max();
    bool overflow = false;
    for (int64_t v : x->ivals) {
      if (op == "ReduceProd") overflow |= __builtin_mul_overflow(acc, v, &acc);
      else if (op == "ReduceSum") overflow |= __builtin_add_overflow(acc, v, &acc);
      else if (op == "ReduceMax") acc = std::max(acc, v);
      else acc = std::min(acc, v);
    }
    if (!overflow) set_ivals(o, {acc});
  }
  set_out(0, o);
}

void Rules::arg_reduce() {
  const TensorState* x = in(0);
  const double n = numel_d(x);
  if (n < 0) ctx.cost.exact = false;
  else ctx.cost.flops += n;
  if (!x || !x->rank_known) {
    set_out(0, unknown_rank(kInt64));
    return;
  }
  const int64_t axis = norm_axis(node.attr_i("axis", 0), x->rank());
  if (axis < 0) {
    set_out(0, unknown_rank(kInt64));
    return;
  }
  std::vector<int64_t> out = x->dims;
  if (node.attr_i("keepdims", 1)) out[static_cast<size_t>(axis)] = 1;
  else out.erase(out.begin() + axis);
  set_out(0, tensor_of(kInt64, out));
}

void Rules::reshape() {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  std::vector<int64_t> shape;
  if (node.has_attr("shape")) shape = node.attr_ints("shape");  // opset < 5
  else if (!values_of(in(1), shape)) {
    set_out(0, shaped_by_unknown_values(in(1), dt));
    return;
  }
  const bool allowzero = node.attr_i("allowzero", 0) != 0;
  std::vector<int64_t> out = shape;
  int64_t infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0 && !allowzero) out[i] = x && x->rank_known && i < x->dims.size() ? x->dims[i] : kUnknown;
    else if (out[i] == -1) {
      if (infer >= 0) {
        set_out(0, tensor_of(dt, std::vector<int64_t>(out.size(), kUnknown)));
        return;
      }
      infer = static_cast<int64_t>(i);
    } else if (out[i] < -1) out[i] = kUnknown;
  }
  if (infer >= 0) {
    out[static_cast<size_t>(infer)] = kUnknown;
    const int64_t total = x ? x->numel() : kUnknown;
    int64_t rest = 1;
    for (size_t i = 0; i < out.size(); ++i)
      if (static_cast<int64_t>(i) != infer) rest = mul_sat(rest, out[i]);
    if (total >= 0 && rest > 0 && total % rest == 0) out[static_cast<size_t>(infer)] = total / rest;
  }
  TensorState o = tensor_of(dt, out);
  if (x && x->has_ivals) set_ivals(o, x->ivals);
  else if (x && x->has_fvals) set_fvals(o, x->fvals);
  set_out(0, o);
}

void Rules::flatten() {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  if (!x || !x->rank_known) {
    set_out(0, tensor_of(dt, {kUnknown, kUnknown}));
    return;
  }
  int64_t axis = node.attr_i("axis", 1);
  if (axis < 0) axis += x->rank();
  int64_t a = 1, b = 1;
  for (size_t i = 0; i < x->dims.size(); ++i) {
    if (static_cast<int64_t>(i) < axis) a = mul_sat(a, x->dims[i]);
    else b = mul_sat(b, x->dims[i]);
  }
  TensorState o = tensor_of(dt, {a, b});
  if (x->has_ivals) set_ivals(o, x->ivals);
  set_out(0, o);
}

void Rules::squeeze(bool unsq) {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  std::vector<int64_t> axes;
  bool present = false;
  const bool ok = ints_attr_or_input("axes", 1, axes, present);
  if (!x || !x->rank_known || !ok) {
    set_out(0, unknown_rank(dt));
    return;
  }
  std::vector<int64_t> out;
  if (unsq) {
    const int64_t r = x->rank() + static_cast<int64_t>(axes.size());
    std::vector<bool> ins(static_cast<size_t>(r), false);
    for (int64_t a : axes) {
      const int64_t k = norm_axis(a, r);
      if (k < 0) {
        set_out(0, unknown_rank(dt));
        return;
      }
      ins[static_cast<size_t>(k)] = true;
    }
    size_t j = 0;
    for (size_t i = 0; i < ins.size(); ++i) out.push_back(ins[i] ? 1 : (j < x->dims.size() ? x->dims[j++] : kUnknown));
  } else {
    std::vector<bool> rm(x->dims.size(), false);
    if (!present || axes.empty()) {
      for (size_t i = 0; i < x->dims.size(); ++i) {
        if (x->dims[i] < 0) {
          set_out(0, unknown_rank(dt));
          return;
        }
        rm[i] = x->dims[i] == 1;
      }
    }
    for (int64_t a : axes) {
      const int64_t k = norm_axis(a, x->rank());
      if (k < 0) {
        set_out(0, unknown_rank(dt));
        return;
      }
      rm[static_cast<size_t>(k)] = true;
    }
    for (size_t i = 0; i < x->dims.size(); ++i)
      if (!rm[i]) out.push_back(x->dims[i]);
  }
  TensorState o = tensor_of(dt, out);
  if (x->has_ivals) set_ivals(o, x->ivals);
  else if (x->has_fvals) set_fvals(o, x->fvals);
  set_out(0, o);
}

void Rules::transpose() {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  if (!x || !x->rank_known) {
    set_out(0, unknown_rank(dt));
    return;
  }
  std::vector<int64_t> perm = node.attr_ints("perm");
  const size_t r = x->dims.size();
  if (perm.empty())
    for (size_t i = 0; i < r; ++i) perm.push_back(static_cast<int64_t>(r - 1 - i));
  if (perm.size() != r) {
    set_out(0, unknown_rank(dt));
    return;
  }
  std::vector<int64_t> out;
  std::vector<int64_t> axes;
  for (int64_t p : perm) {
    const int64_t k = norm_axis(p, static_cast<int64_t>(r));
    axes.push_back(k);
    out.push_back(k < 0 ? kUnknown : x->dims[static_cast<size_t>(k)]);
  }
  TensorState o = tensor_of(dt, out);
  if (x->has_ivals && x->fully_known() && o.fully_known() && static_cast<int64_t>(x->ivals.size()) == x->numel() &&
      std::find(axes.begin(), axes.end(), kUnknown) == axes.end()) {
    // out[i_0..] = in[j] with j[perm[k]] = i_k: walk the output with permuted input strides.
    std::vector<int64_t> in_stride(r, 1);
    for (size_t k = r; k-- > 1;) in_stride[k - 1] = in_stride[k] * x->dims[k];
    std::vector<int64_t> v, idx(r, 0);
    const int64_t n = o.numel();
    for (int64_t e = 0; e < n && n <= (1 << 16); ++e) {
      int64_t flat = 0;
      for (size_t k = 0; k < r; ++k) flat += idx[k] * in_stride[static_cast<size_t>(axes[k])];
      v.push_back(x->ivals[static_cast<size_t>(flat)]);
      for (size_t k = r; k-- > 0;) {
        if (++idx[k] < out[k]) break;
        idx[k] = 0;
      }
    }
    if (static_cast<int64_t>(v.size()) == n) set_ivals(o, v);
  }
  set_out(0, o);
}

void Rules::concat() {
  const int32_t dt = dtype0();
  int64_t rank = -1;
  for (auto* t : ctx.in)
    if (t && t->rank_known) rank = t->rank();
  if (rank < 0) {
    set_out(0, unknown_rank(dt));
    return;
  }
  const int64_t axis = norm_axis(node.attr_i("axis", 0), rank);
  std::vector<int64_t> out(static_cast<size_t>(rank), kUnknown);
  bool sum_known = true;
  int64_t sum = 0;
  bool all_vals = true;
  std::vector<int64_t> iv;
  std::vector<double> fv;
  bool float_vals = false;
  for (auto* t : ctx.in) {
    if (!t) continue;
    if (!t->rank_known || t->rank() != rank) {
      sum_known = false;
      all_vals = false;
      continue;
    }
    for (size_t i = 0; i < out.size(); ++i) {
      if (static_cast<int64_t>(i) == axis) continue;
      if (out[i] < 0) out[i] = t->dims[i];
    }
    if (axis >= 0) {
      const int64_t d = t->dims[static_cast<size_t>(axis)];
      if (d < 0) sum_known = false;
      else sum = add_sat(sum, d);
    }
    if (t->has_ivals) {
      iv.insert(iv.end(), t->ivals.begin(), t->ivals.end());
      fv.insert(fv.end(), t->fvals.begin(), t->fvals.end());
    } else if (t->has_fvals) {
      float_vals = true;
      fv.insert(fv.end(), t->fvals.begin(), t->fvals.end());
    } else all_vals = false;
  }
  if (axis >= 0 && sum_known) out[static_cast<size_t>(axis)] = sum;  // kUnknown on overflow
  TensorState o = tensor_of(dt, out);
  if (all_vals && rank <= 1 && fv.size() <= ctx.max_values) {
    if (!float_vals && dtype_is_integer(dt)) set_ivals(o, iv);
    else set_fvals(o, fv);
  }
  set_out(0, o);
}

void Rules::split() {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  if (!x || !x->rank_known) {
    for (size_t i = 0; i < n_out(); ++i) set_out(i, unknown_rank(dt));
    return;
  }
  const int64_t axis = norm_axis(node.attr_i("axis", 0), x->rank());
  std::vector<int64_t> sizes;
  bool present = false;
  const bool ok = ints_attr_or_input("split", 1, sizes, present);
  const int64_t n = static_cast<int64_t>(n_out());
  if (axis < 0) {
    for (size_t i = 0; i < n_out(); ++i) set_out(i, unknown_rank(dt));
    return;
  }
  const int64_t d = x->dims[static_cast<size_t>(axis)];
  if (!ok || (present && static_cast<int64_t>(sizes.size()) != n)) sizes.assign(static_cast<size_t>(n), kUnknown);
  else if (!present || sizes.empty()) {
    sizes.assign(static_cast<size_t>(n), kUnknown);
    if (d >= 0 && n > 0) {
      const int64_t chunk = (d + n - 1) / n;  // opset 18: the last chunk may be smaller
      int64_t left = d;
      for (int64_t i = 0; i < n; ++i) {
        sizes[static_cast<size_t>(i)] = std::min(chunk, left);
        left -= sizes[static_cast<size_t>(i)];
      }
    }
  }
  int64_t offset = 0;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> out = x->dims;
    out[static_cast<size_t>(axis)] = sizes[static_cast<size_t>(i)];
    TensorState o = tensor_of(dt, out);
    if (x->has_ivals && x->rank() == 1 && offset >= 0 && sizes[static_cast<size_t>(i)] >= 0 &&
        add_sat(offset, sizes[static_cast<size_t>(i)]) >= 0 &&
        offset + sizes[static_cast<size_t>(i)] <= static_cast<int64_t>(x->ivals.size())) {
      set_ivals(o, std::vector<int64_t>(x->ivals.begin() + offset, x->ivals.begin() + offset + sizes[static_cast<size_t>(i)]));
    }
    offset = sizes[static_cast<size_t>(i)] >= 0 && offset >= 0 ? add_sat(offset, sizes[static_cast<size_t>(i)]) : -1;
    set_out(static_cast<size_t>(i), o);
  }
}

void Rules::slice() {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  if (!x || !x->rank_known) {
    set_out(0, unknown_rank(dt));
    return;
  }
  std::vector<int64_t> starts, ends, axes, steps;
  bool ok = true;
  if (node.has_attr("starts")) {  // opset < 10
    starts = node.attr_ints("starts");
    ends = node.attr_ints("ends");
    axes = node.attr_ints("axes");
  } else {
    ok = values_of(in(1), starts) && values_of(in(2), ends);
    if (in(3) && !values_of(in(3), axes)) ok = false;
    if (in(4) && !values_of(in(4), steps)) ok = false;
  }
  const int64_t r = x->rank();
  if (!ok || starts.size() != ends.size()) {
    std::vector<int64_t> out = x->dims;
    // Axes known: the other dims keep their size.
    if (in(3) && values_of(in(3), axes)) {
      for (int64_t a : axes) {
        const int64_t k = norm_axis(a, r);
        if (k >= 0) out[static_cast<size_t>(k)] = kUnknown;
      }
    } else {
      for (auto& d : out) d = kUnknown;
    }
    set_out(0, tensor_of(dt, out));
    return;
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  steps.resize(starts.size(), 1);
  std::vector<int64_t> out = x->dims;
  std::vector<int64_t> v_start(static_cast<size_t>(r), 0), v_step(static_cast<size_t>(r), 1);
  bool values_ok = x->has_ivals && x->fully_known() && static_cast<int64_t>(x->ivals.size()) == x->numel();
  for (size_t i = 0; i < starts.size() && i < axes.size(); ++i) {
    const int64_t k = norm_axis(axes[i], r);
    if (k < 0) {
      set_out(0, unknown_rank(dt));
      return;
    }
    const int64_t d = x->dims[static_cast<size_t>(k)];
    const int64_t step = steps[i];
    if (d < 0 || step == 0 || step == std::numeric_limits<int64_t>::min()) {
      out[static_cast<size_t>(k)] = kUnknown;
      values_ok = false;
      continue;
    }
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += d;
    if (e < 0) e += d;
    int64_t cnt;
    if (step > 0) {
      s = std::max<int64_t>(0, std::min(s, d));
      e = std::max<int64_t>(0, std::min(e, d));
      cnt = e > s ? 1 + (e - s - 1) / step : 0;
    } else {
      s = std::max<int64_t>(-1, std::min(s, d - 1));
      e = std::max<int64_t>(-1, std::min(e, d - 1));
      cnt = s > e ? 1 + (s - e - 1) / (-step) : 0;
    }
    out[static_cast<size_t>(k)] = cnt;
    v_start[static_cast<size_t>(k)] = s;
    v_step[static_cast<size_t>(k)] = step;
  }
  TensorState o = tensor_of(dt, out);
  if (values_ok && o.fully_known()) {
    // Gather the selected elements (row-major) of a small tensor with known values.
    const std::vector<int64_t> src = gather_strided(x->dims, out, v_start, v_step, x->ivals);
    if (src.size() == static_cast<size_t>(o.numel())) set_ivals(o, src);
  }
  set_out(0, o);
}

void Rules::gather() {
  const TensorState* x = in(0);
  const TensorState* idx = in(1);
  const int32_t dt = dtype0();
  if (!x || !idx || !x->rank_known || !idx->rank_known) {
    set_out(0, unknown_rank(dt));
    return;
  }
  const int64_t axis = norm_axis(node.attr_i("axis", 0), x->rank());
  if (axis < 0) {
    set_out(0, unknown_rank(dt));
    return;
  }
  std::vector<int64_t> out(x->dims.begin(), x->dims.begin() + axis);
  out.insert(out.end(), idx->dims.begin(), idx->dims.end());
  out.insert(out.end(), x->dims.begin() + axis + 1, x->dims.end());
  TensorState o = tensor_of(dt, out);
  if (x->has_ivals && x->rank() == 1 && idx->has_ivals) {
    std::vector<int64_t> v;
    const int64_t n = static_cast<int64_t>(x->ivals.size());
    bool ok = true;
    for (int64_t i : idx->ivals) {
      if (i < 0) i += n;
      if (i < 0 || i >= n) {
        ok = false;
        break;
      }
      v.push_back(x->ivals[static_cast<size_t>(i)]);
    }
    if (ok) set_ivals(o, v);
  }
  set_out(0, o);
}

void Rules::gather_elements() {
  const TensorState* idx = in(1);
  set_out(0, idx && idx->rank_known ? tensor_of(dtype0(), idx->dims) : unknown_rank(dtype0()));
}

void Rules::gather_nd() {
  const TensorState* x = in(0);
  const TensorState* idx = in(1);
  const int32_t dt = dtype0();
  if (!x || !idx || !x->rank_known || !idx->rank_known || idx->dims.empty() || idx->dims.back() < 0) {
    set_out(0, unknown_rank(dt));
    return;
  }
  const int64_t b = node.attr_i("batch_dims", 0);
  const int64_t last = idx->dims.back();
  std::vector<int64_t> out(idx->dims.begin(), idx->dims.end() - 1);
  if (b + last > x->rank()) {
    set_out(0, unknown_rank(dt));
    return;
  }
  out.insert(out.end(), x->dims.begin() + b + last, x->dims.end());
  set_out(0, tensor_of(dt, out));
}

void Rules::expand() {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  std::vector<int64_t> shape;
  if (!values_of(in(1), shape)) {
    const TensorState* s = in(1);
    if (s && s->rank_known && s->dims.size() == 1 && s->dims[0] >= 0 && x && x->rank_known)
      set_out(0, tensor_of(dt, std::vector<int64_t>(static_cast<size_t>(std::max<int64_t>(s->dims[0], x->rank())), kUnknown)));
    else set_out(0, unknown_rank(dt));
    return;
  }
  TensorState s = tensor_of(dt, shape);
  std::vector<int64_t> out;
  if (!x || !broadcast({x, &s}, out)) {
    set_out(0, unknown_rank(dt));
    return;
  }
  TensorState o = tensor_of(dt, out);
  if (x->has_ivals && x->ivals.size() == 1 && o.numel() >= 0 && static_cast<uint64_t>(o.numel()) <= ctx.max_values)
    set_ivals(o, std::vector<int64_t>(static_cast<size_t>(o.numel()), x->ivals[0]));
  set_out(0, o);
}

void Rules::tile() {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  std::vector<int64_t> rep;
  if (!x || !x->rank_known) {
    set_out(0, unknown_rank(dt));
    return;
  }
  if (!values_of(in(1), rep) || rep.size() != x->dims.size()) {
    set_out(0, tensor_of(dt, std::vector<int64_t>(x->dims.size(), kUnknown)));
    return;
  }
  std::vector<int64_t> out = x->dims;
  for (size_t i = 0; i < out.size(); ++i) out[i] = mul_sat(out[i], rep[i]);
  set_out(0, tensor_of(dt, out));
}

void Rules::pad() {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  if (!x || !x->rank_known) {
    set_out(0, unknown_rank(dt));
    return;
  }
  std::vector<int64_t> pads, axes;
  bool ok = true;
  if (node.has_attr("pads")) pads = node.attr_ints("pads");
  else if (node.has_attr("paddings")) pads = node.attr_ints("paddings");
  else ok = values_of(in(1), pads);
  if (ok && in(3) && !values_of(in(3), axes)) ok = false;
  const int64_t r = x->rank();
  if (axes.empty())
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  if (!ok || pads.size() != 2 * axes.size()) {
    set_out(0, tensor_of(dt, std::vector<int64_t>(x->dims.size(), kUnknown)));
    return;
  }
  std::vector<int64_t> out = x->dims;
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t k = norm_axis(axes[i], r);
    if (k < 0) continue;
    int64_t& d = out[static_cast<size_t>(k)];
    if (d >= 0) {
      const __int128 v = static_cast<__int128>(d) + pads[i] + pads[i + axes.size()];
      d = v < 0 ? 0 : dim_of(v);
    }
  }
  set_out(0, tensor_of(dt, out));
}

void Rules::resize() {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  if (!x || !x->rank_known) {
    set_out(0, unknown_rank(dt));
    return;
  }
  const int64_t r = x->rank();
  std::vector<double> scales;
  std::vector<int64_t> sizes;
  bool have_scales = false, have_sizes = false;
  if (op == "Upsample") {
    if (node.has_attr("scales")) {
      const Attribute* a = node.attr("scales");
      scales.assign(a->floats.begin(), a->floats.end());
      have_scales = true;
    } else have_scales = fvalues_of(in(1), scales);
  } else if (ctx.opset > 0 && ctx.opset < 11) {
    have_scales = fvalues_of(in(1), scales);
  } else {
    have_sizes = in(3) && values_of(in(3), sizes) && !sizes.empty();
    if (!have_sizes) have_scales = in(2) && fvalues_of(in(2), scales) && !scales.empty();
  }
  std::vector<int64_t> axes = node.attr_ints("axes");
  if (axes.empty())
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  std::vector<int64_t> out = x->dims;
  if (have_sizes && sizes.size() == axes.size()) {
    const std::string policy = node.attr_s("keep_aspect_ratio_policy", "stretch");
    if (policy == "stretch") {
      for (size_t i = 0; i < axes.size(); ++i) {
        const int64_t k = norm_axis(axes[i], r);
        if (k >= 0) out[static_cast<size_t>(k)] = sizes[i];
      }
    } else {
      double scale = policy == "not_larger" ? 1e300 : 0;
      bool ok = true;
      for (size_t i = 0; i < axes.size(); ++i) {
        const int64_t k = norm_axis(axes[i], r);
        if (k < 0 || x->dims[static_cast<size_t>(k)] <= 0) { ok = false; break; }
        const double s = static_cast<double>(sizes[i]) / static_cast<double>(x->dims[static_cast<size_t>(k)]);
        scale = policy == "not_larger" ? std::min(scale, s) : std::max(scale, s);
      }
      for (size_t i = 0; i < axes.size(); ++i) {
        const int64_t k = norm_axis(axes[i], r);
        if (k < 0) continue;
        out[static_cast<size_t>(k)] = ok ? to_int(std::nearbyint(static_cast<double>(x->dims[static_cast<size_t>(k)]) * scale)) : kUnknown;
      }
    }
  } else if (have_scales && scales.size() == axes.size()) {
    for (size_t i = 0; i < axes.size(); ++i) {
      const int64_t k = norm_axis(axes[i], r);
      if (k < 0) continue;
      int64_t& d = out[static_cast<size_t>(k)];
      if (d >= 0) d = to_int(std::floor(static_cast<double>(d) * scales[i] + 1e-9));
      if (d > kBig) d = kUnknown;
    }
  } else {
    for (auto& d : out) d = kUnknown;
    if (out.size() >= 2) {
      out[0] = x->dims[0];
      out[1] = x->dims[1];  // N and C of image resizes
    }
    ctx.cost.exact = false;
  }
  TensorState o = tensor_of(dt, out);
  const std::string mode = node.attr_s("mode", "nearest");
  elementwise_flops(mode == "nearest" ? 1 : (mode == "cubic" ? 16 : 4), o);
  set_out(0, o);
}

void Rules::depth_space(bool to_depth) {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  const int64_t b = node.attr_i("blocksize", 1);
  if (!x || !x->rank_known || x->rank() != 4 || b <= 0) {
    set_out(0, unknown_rank(dt));
    return;
  }
  auto d = x->dims;
  auto m = [&](int64_t v, int64_t f) { return mul_sat(v, f); };
  auto q = [&](int64_t v, int64_t f) { return v < 0 ? kUnknown : v / f; };
  const int64_t bb = mul_sat(b, b);
  if (bb <= 0 || bb >= kBig) {
    set_out(0, unknown_rank(dt));
    return;
  }
  if (to_depth) set_out(0, tensor_of(dt, {d[0], m(d[1], bb), q(d[2], b), q(d[3], b)}));
  else set_out(0, tensor_of(dt, {d[0], q(d[1], bb), m(d[2], b), m(d[3], b)}));
}

void Rules::shape() {
  const TensorState* x = in(0);
  if (!x || !x->rank_known) {
    set_out(0, tensor_of(kInt64, {kUnknown}));
    return;
  }
  const int64_t r = x->rank();
  int64_t s = node.attr_i("start", 0), e = node.attr_i("end", r);
  if (s < 0) s += r;
  if (e < 0) e += r;
  s = std::max<int64_t>(0, std::min(s, r));
  e = std::max<int64_t>(0, std::min(e, r));
  const int64_t n = std::max<int64_t>(0, e - s);
  TensorState o = tensor_of(kInt64, {n});
  std::vector<int64_t> v(x->dims.begin() + s, x->dims.begin() + s + n);
  bool known = true;
  for (int64_t d : v) known = known && d >= 0;
  if (known) set_ivals(o, v);
  set_out(0, o);
}

void Rules::size() {
  TensorState o = tensor_of(kInt64, {});
  const TensorState* x = in(0);
  if (x && x->numel() >= 0) set_ivals(o, {x->numel()});
  set_out(0, o);
}

void Rules::constant() {
  TensorState o;
  o.rank_known = true;
  o.is_weight = true;
  for (const auto& a : node.attributes) {
    if (a.name == "value" || a.name == "sparse_value") {
      if (a.tensors.empty()) continue;
      const TensorData& t = a.tensors[0];
      o.dtype = t.dtype;
      o.dims = t.dims;
      o.data = &t;
      std::vector<int64_t> iv;
      std::vector<double> fv;
      if (dtype_is_integer(t.dtype) && tensor_int64_values(t, iv, ctx.max_values)) set_ivals(o, iv);
      else if ((t.dtype == kFloat || t.dtype == kDouble) && tensor_double_values(t, fv, ctx.max_values)) set_fvals(o, fv);
    } else if (a.name == "value_float") {
      o.dtype = kFloat;
      set_fvals(o, {a.f});
    } else if (a.name == "value_floats") {
      o.dtype = kFloat;
      o.dims = {static_cast<int64_t>(a.floats.size())};
      set_fvals(o, std::vector<double>(a.floats.begin(), a.floats.end()));
    } else if (a.name == "value_int") {
      o.dtype = kInt64;
      set_ivals(o, {a.i});
    } else if (a.name == "value_ints") {
      o.dtype = kInt64;
      o.dims = {static_cast<int64_t>(a.ints.size())};
      set_ivals(o, a.ints);
    } else if (a.name == "value_string") {
      o.dtype = kString;
    } else if (a.name == "value_strings") {
      o.dtype = kString;
      o.dims = {static_cast<int64_t>(a.strings.size())};
    }
  }
  set_out(0, o);
}

void Rules::constant_of_shape() {
  std::vector<int64_t> shape;
  int32_t dt = kFloat;
  double fill = 0;
  const Attribute* a = node.attr("value");
  if (a && !a->tensors.empty()) {
    dt = a->tensors[0].dtype;
    std::vector<double> v;
    if (tensor_double_values(a->tensors[0], v, 1) && !v.empty()) fill = v[0];
  }
  if (!values_of(in(0), shape)) {
    set_out(0, shaped_by_unknown_values(in(0), dt));
    return;
  }
  TensorState o = tensor_of(dt, shape);
  const int64_t n = o.numel();
  if (n >= 0 && static_cast<uint64_t>(n) <= ctx.max_values) {
    if (dtype_is_integer(dt)) set_ivals(o, std::vector<int64_t>(static_cast<size_t>(n), to_int(fill, 0)));
    else set_fvals(o, std::vector<double>(static_cast<size_t>(n), fill));
  }
  elementwise_flops(0, o);
  set_out(0, o);
}

void Rules::range() {
  const int32_t dt = dtype0();
  std::vector<double> s, l, d;
  if (fvalues_of(in(0), s) && fvalues_of(in(1), l) && fvalues_of(in(2), d) && s.size() == 1 && l.size() == 1 && d.size() == 1 &&
      d[0] != 0) {
    const double cnt = std::max(0.0, std::ceil((l[0] - s[0]) / d[0]));
    if (cnt > 1e15) {
      set_out(0, tensor_of(dt, {kUnknown}));
      return;
    }
    const int64_t n = static_cast<int64_t>(cnt);
    TensorState o = tensor_of(dt, {n});
    if (static_cast<uint64_t>(n) <= ctx.max_values) {
      std::vector<double> v;
      for (int64_t i = 0; i < n; ++i) v.push_back(s[0] + static_cast<double>(i) * d[0]);
      set_fvals(o, v);
      if (dtype_is_integer(dt)) {
        std::vector<int64_t> iv(v.begin(), v.end());
        set_ivals(o, iv);
      }
    }
    set_out(0, o);
    return;
  }
  set_out(0, tensor_of(dt, {kUnknown}));
}

void Rules::rnn(int gates) {
  // Inputs: X, W, R, B, sequence_lens, initial_h, (initial_c, P for LSTM)
  const TensorState* x = in(0);
  const TensorState* w = in(1);
  const int32_t dt = dtype0();
  const int64_t layout = node.attr_i("layout", 0);
  int64_t hidden = node.attr_i("hidden_size", kUnknown);
  const std::string dir = node.attr_s("direction", "forward");
  int64_t dirs = dir == "bidirectional" ? 2 : 1;
  if (w && w->rank_known && w->dims.size() == 3) {
    if (w->dims[0] > 0) dirs = w->dims[0];
    if (hidden < 0 && w->dims[1] > 0) hidden = w->dims[1] / gates;
  }
  int64_t seq = kUnknown, batch = kUnknown, input = kUnknown;
  if (x && x->rank_known && x->dims.size() == 3) {
    seq = layout ? x->dims[1] : x->dims[0];
    batch = layout ? x->dims[0] : x->dims[1];
    input = x->dims[2];
  }
  if (layout) {
    set_out(0, tensor_of(dt, {batch, seq, dirs, hidden}));
    if (n_out() > 1) set_out(1, tensor_of(dt, {batch, dirs, hidden}));
    if (n_out() > 2) set_out(2, tensor_of(dt, {batch, dirs, hidden}));
  } else {
    set_out(0, tensor_of(dt, {seq, dirs, batch, hidden}));
    if (n_out() > 1) set_out(1, tensor_of(dt, {dirs, batch, hidden}));
    if (n_out() > 2) set_out(2, tensor_of(dt, {dirs, batch, hidden}));
  }
  // MACs per step and direction: gates * hidden * (input + hidden) per batch element.
  int64_t m = mul_sat(mul_sat(mul_sat(seq, batch), dirs), mul_sat(mul_sat(gates, hidden), add_sat(input, hidden)));
  if (hidden < 0) m = kUnknown;
  const int64_t cells = mul_sat(mul_sat(mul_sat(seq, batch), dirs), hidden);
  // Gate non-linearities and cell updates: ~ (4 per gate + 3) per hidden unit.
  add_macs(static_cast<double>(m), m >= 0 && cells >= 0, cells >= 0 ? static_cast<double>(cells) * (4.0 * gates + 3.0) : 0);
}

void Rules::topk() {
  const TensorState* x = in(0);
  const int32_t dt = dtype0();
  std::vector<int64_t> k;
  if (node.has_attr("k")) k = {node.attr_i("k", kUnknown)};
  else values_of(in(1), k);
  if (!x || !x->rank_known) {
    set_out(0, unknown_rank(dt));
    if (n_out() > 1) set_out(1, unknown_rank(kInt64));
    return;
  }
  const int64_t axis = norm_axis(node.attr_i("axis", -1), x->rank());
  std::vector<int64_t> out = x->dims;
  if (axis >= 0) out[static_cast<size_t>(axis)] = k.size() == 1 ? k[0] : kUnknown;
  const double n = numel_d(x);
  if (n < 0) ctx.cost.exact = false;
  else ctx.cost.flops += n * 2;
  set_out(0, tensor_of(dt, out));
  if (n_out() > 1) set_out(1, tensor_of(kInt64, out));
}

void Rules::onehot() {
  const TensorState* idx = in(0);
  const int32_t dt = in(2) ? in(2)->dtype : kFloat;
  std::vector<int64_t> depth;
  if (!idx || !idx->rank_known) {
    set_out(0, unknown_rank(dt));
    return;
  }
  const int64_t r = idx->rank() + 1;
  int64_t axis = node.attr_i("axis", -1);
  if (axis < 0) axis += r;
  std::vector<int64_t> out = idx->dims;
  const int64_t d = values_of(in(1), depth) && depth.size() == 1 ? depth[0] : kUnknown;
  if (axis < 0 || axis > idx->rank()) {
    set_out(0, unknown_rank(dt));
    return;
  }
  out.insert(out.begin() + axis, d);
  set_out(0, tensor_of(dt, out));
}

void Rules::einsum() {
  const std::string eq = node.attr_s("equation", "");
  const int32_t dt = dtype0();
  std::string lhs = eq, rhs;
  const size_t arrow = eq.find("->");
  if (arrow != std::string::npos) {
    lhs = eq.substr(0, arrow);
    rhs = eq.substr(arrow + 2);
  }
  auto strip = [](std::string s) {
    s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
    return s;
  };
  lhs = strip(lhs);
  rhs = strip(rhs);
  if (eq.find("...") != std::string::npos) {
    set_out(0, unknown_rank(dt));
    ctx.cost.exact = false;
    return;
  }
  std::vector<std::string> terms;
  size_t pos = 0;
  while (true) {
    const size_t c = lhs.find(',', pos);
    terms.push_back(lhs.substr(pos, c == std::string::npos ? std::string::npos : c - pos));
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  std::map<char, int64_t> size;
  std::map<char, int> count;
  for (size_t t = 0; t < terms.size(); ++t) {
    const TensorState* x = in(t);
    for (size_t i = 0; i < terms[t].size(); ++i) {
      const char c = terms[t][i];
      count[c]++;
      int64_t d = x && x->rank_known && i < x->dims.size() ? x->dims[i] : kUnknown;
      auto it = size.find(c);
      if (it == size.end() || it->second < 0 || it->second == 1) size[c] = d;
    }
  }
  if (arrow == std::string::npos) {
    for (auto& kv : count)
      if (kv.second == 1) rhs.push_back(kv.first);
  }
  std::vector<int64_t> out;
  for (char c : rhs) out.push_back(size.count(c) ? size[c] : kUnknown);
  TensorState o = tensor_of(dt, out);
  int64_t m = 1;
  for (auto& kv : size) m = mul_sat(m, kv.second);
  if (terms.size() >= 2) add_macs(static_cast<double>(m), m >= 0);
  else if (m >= 0) ctx.cost.flops += static_cast<double>(m);
  set_out(0, o);
}

void Rules::attention_ms() {
  // com.microsoft Attention: input [B,S,In], weights [In, 3*H] (or separate qkv_hidden_sizes).
  const TensorState* x = in(0);
  const TensorState* w = in(1);
  const int32_t dt = dtype0();
  int64_t B = kUnknown, S = kUnknown, In = kUnknown, H3 = kUnknown;
  if (x && x->rank_known && x->dims.size() == 3) {
    B = x->dims[0];
    S = x->dims[1];
    In = x->dims[2];
  }
  if (w && w->rank_known && w->dims.size() == 2) H3 = w->dims[1];
  std::vector<int64_t> qkv = node.attr_ints("qkv_hidden_sizes");
  int64_t Hv = H3 >= 0 ? H3 / 3 : kUnknown, Hq = Hv;
  if (qkv.size() == 3) {
    Hq = qkv[0];
    Hv = qkv[2];
  }
  set_out(0, tensor_of(dt, {B, S, Hv}));
  const int64_t proj = mul_sat(mul_sat(mul_sat(B, S), In), H3);
  const int64_t att = mul_sat(mul_sat(mul_sat(B, S), S), add_sat(Hq, Hv));
  add_macs(static_cast<double>(proj) + static_cast<double>(att), proj >= 0 && att >= 0,
           att >= 0 ? 5.0 * static_cast<double>(mul_sat(mul_sat(B, S), S)) * std::max<int64_t>(1, node.attr_i("num_heads", 1)) : 0);
}

void Rules::mha_ms() {
  // com.microsoft MultiHeadAttention / ONNX-style packed forms: output like query (value hidden size).
  const TensorState* q = in(0);
  const TensorState* k = in(1);
  const TensorState* v = in(2);
  const int32_t dt = dtype0();
  if (!q || !q->rank_known || q->dims.size() != 3) {
    set_out(0, unknown_rank(dt));
    ctx.cost.exact = false;
    return;
  }
  int64_t B = q->dims[0], S = q->dims[1], D = q->dims[2];
  int64_t L = k && k->rank_known && k->dims.size() >= 2 ? k->dims[k->dims.size() == 4 ? 2 : 1] : S;
  int64_t Dv = v && v->rank_known && v->dims.size() == 3 ? v->dims[2] : D;
  set_out(0, tensor_of(dt, {B, S, Dv}));
  const int64_t m = mul_sat(mul_sat(mul_sat(B, S), L), add_sat(D, Dv));
  add_macs(static_cast<double>(m), m >= 0);
}

void Rules::attention_onnx() {
  // ONNX Attention (opset 23): Q [B,Hq,S,Dh] or [B,S,Hq*Dh]; output follows Q with V's head size.
  const TensorState* q = in(0);
  const TensorState* k = in(1);
  const TensorState* v = in(2);
  const int32_t dt = dtype0();
  if (!q || !q->rank_known || (q->dims.size() != 3 && q->dims.size() != 4)) {
    for (size_t i = 0; i < n_out(); ++i) set_out(i, unknown_rank(dt));
    ctx.cost.exact = false;
    return;
  }
  std::vector<int64_t> out = q->dims;
  int64_t L = kUnknown, dv_total = kUnknown;
  if (k && k->rank_known && k->dims.size() == q->dims.size()) L = k->dims[k->dims.size() - 2];
  if (v && v->rank_known && v->dims.size() == q->dims.size()) {
    if (q->dims.size() == 4) {
      out[3] = v->dims[3];
      dv_total = mul_sat(v->dims[3], q->dims[1]);
    } else {
      out[2] = v->dims[2];
      dv_total = v->dims[2];
    }
  }
  set_out(0, tensor_of(dt, out));
  int64_t dq_total = q->dims.size() == 4 ? mul_sat(q->dims[1], q->dims[3]) : q->dims[2];
  const int64_t S = q->dims.size() == 4 ? q->dims[2] : q->dims[1];
  const int64_t m = mul_sat(mul_sat(mul_sat(q->dims[0], S), L), add_sat(dq_total, dv_total));
  add_macs(static_cast<double>(m), m >= 0);
}

void Rules::quantize_dynamic() {
  // com.microsoft DynamicQuantizeMatMul / MatMulIntegerToFloat: like MatMul, float output.
  matmul(0, 1, kFloat);
}

void Rules::nonzero_like() {
  const TensorState* x = in(0);
  if (op == "NonZero") set_out(0, tensor_of(kInt64, {x && x->rank_known ? x->rank() : kUnknown, kUnknown}));
  else if (op == "NonMaxSuppression") set_out(0, tensor_of(kInt64, {kUnknown, 3}));
  else if (op == "Compress") {
    if (x && x->rank_known && node.has_attr("axis")) {
      const int64_t axis = norm_axis(node.attr_i("axis", 0), x->rank());
      std::vector<int64_t> out = x->dims;
      if (axis >= 0) out[static_cast<size_t>(axis)] = kUnknown;
      set_out(0, tensor_of(dtype0(), out));
    } else set_out(0, tensor_of(dtype0(), {kUnknown}));
  } else {  // Unique
    set_out(0, unknown_rank(dtype0()));
    for (size_t i = 1; i < n_out(); ++i) set_out(i, tensor_of(kInt64, {kUnknown}));
  }
  const double n = numel_d(x);
  if (n >= 0) ctx.cost.flops += n;
}

void Rules::eye_like() {
  const TensorState* x = in(0);
  const int32_t dt = static_cast<int32_t>(node.attr_i("dtype", x ? x->dtype : kFloat));
  set_out(0, x && x->rank_known ? tensor_of(dt, x->dims) : unknown_rank(dt));
}

void Rules::random_op() {
  const int32_t dt = static_cast<int32_t>(node.attr_i("dtype", kFloat));
  std::vector<int64_t> shape = node.attr_ints("shape");
  TensorState o = tensor_of(dt, shape);
  elementwise_flops(2, o);
  set_out(0, o);
}

TensorState merge_states(const TensorState& a, const TensorState& b) {
  TensorState o;
  o.dtype = a.dtype != kUndefined ? a.dtype : b.dtype;
  if (a.rank_known && b.rank_known && a.dims.size() == b.dims.size()) {
    o.rank_known = true;
    for (size_t i = 0; i < a.dims.size(); ++i) o.dims.push_back(a.dims[i] == b.dims[i] ? a.dims[i] : kUnknown);
  }
  return o;
}

void Rules::if_op() {
  const Attribute* then_a = node.attr("then_branch");
  const Attribute* else_a = node.attr("else_branch");
  std::vector<SubgraphOutcome> res;
  for (const Attribute* a : {then_a, else_a}) {
    if (a && !a->graphs.empty() && ctx.runner) res.push_back(ctx.runner->run_graph(*a->graphs[0], {}));
  }
  std::vector<int64_t> cond;
  int chosen = -1;
  if (values_of(in(0), cond) && cond.size() == 1) chosen = cond[0] ? 0 : 1;
  for (size_t i = 0; i < n_out(); ++i) {
    if (chosen >= 0 && static_cast<size_t>(chosen) < res.size() && i < res[static_cast<size_t>(chosen)].outputs.size())
      set_out(i, res[static_cast<size_t>(chosen)].outputs[i]);
    else if (res.size() == 2 && i < res[0].outputs.size() && i < res[1].outputs.size())
      set_out(i, merge_states(res[0].outputs[i], res[1].outputs[i]));
    else if (!res.empty() && i < res[0].outputs.size())
      set_out(i, res[0].outputs[i]);
  }
  // Cost: the branch that runs when the condition is known, else the more expensive one.
  const SubgraphOutcome* pick = nullptr;
  if (chosen >= 0 && static_cast<size_t>(chosen) < res.size()) pick = &res[static_cast<size_t>(chosen)];
  for (auto& r : res) {
    absorb_structure(r.cost);
    if (chosen < 0 && (!pick || r.cost.flops > pick->cost.flops)) pick = &r;
  }
  if (pick) absorb_cost(pick->cost, 1);
}

void Rules::loop_op() {
  // Inputs: M (max trips), cond, v_initial...; body inputs: iter_num, cond, v...; body outputs: cond, v..., scan outputs...
  const Attribute* body = node.attr("body");
  if (!body || body->graphs.empty() || !ctx.runner) {
    ctx.cost.unknown_op = true;
    return;
  }
  std::vector<int64_t> m;
  int64_t trips = values_of(in(0), m) && m.size() == 1 ? m[0] : kUnknown;
  if (trips > (int64_t{1} << 40)) trips = kUnknown;
  std::vector<TensorState> bind;
  bind.push_back(tensor_of(kInt64, {}));
  bind.push_back(tensor_of(kBool, {}));
  const size_t n_carried = ctx.in.size() > 2 ? ctx.in.size() - 2 : 0;
  for (size_t i = 0; i < n_carried; ++i) {
    TensorState s = in(i + 2) ? *in(i + 2) : TensorState{};
    s.has_ivals = s.has_fvals = false;
    s.is_weight = false;
    s.data = nullptr;
    bind.push_back(s);
  }
  SubgraphOutcome r = ctx.runner->run_graph(*body->graphs[0], bind);
  for (size_t i = 0; i < n_out(); ++i) {
    if (i < n_carried) {
      // Loop-carried: shape of the initial value if the body keeps it, else merged.
      if (i + 1 < r.outputs.size()) set_out(i, merge_states(bind[i + 2], r.outputs[i + 1]));
      else set_out(i, bind[i + 2]);
    } else if (i + 1 < r.outputs.size()) {
      TensorState s = r.outputs[i + 1];
      if (s.rank_known) s.dims.insert(s.dims.begin(), trips);
      set_out(i, s);
    }
  }
  absorb_cost(r.cost, trips);
  absorb_structure(r.cost);
}

void Rules::scan_op() {
  const Attribute* body = node.attr("body");
  if (!body || body->graphs.empty() || !ctx.runner) {
    ctx.cost.unknown_op = true;
    return;
  }
  const int64_t n_scan = node.attr_i("num_scan_inputs", 0);
  const size_t first = ctx.opset > 0 && ctx.opset < 9 ? 1 : 0;  // opset 8 has sequence_lens first
  const size_t n_in = ctx.in.size() > first ? ctx.in.size() - first : 0;
  const size_t n_state = n_in > static_cast<size_t>(n_scan) ? n_in - static_cast<size_t>(n_scan) : 0;
  std::vector<int64_t> in_axes = node.attr_ints("scan_input_axes");
  std::vector<TensorState> bind;
  int64_t seq = kUnknown;
  for (size_t i = 0; i < n_in; ++i) {
    TensorState s = in(i + first) ? *in(i + first) : TensorState{};
    s.has_ivals = s.has_fvals = false;
    s.is_weight = false;
    s.data = nullptr;
    if (i >= n_state && s.rank_known && !s.dims.empty()) {
      const size_t j = i - n_state;
      const int64_t ax = norm_axis(j < in_axes.size() ? in_axes[j] : 0, s.rank());
      if (ax >= 0) {
        if (seq < 0) seq = s.dims[static_cast<size_t>(ax)];
        s.dims.erase(s.dims.begin() + ax);
      }
    }
    bind.push_back(s);
  }
  SubgraphOutcome r = ctx.runner->run_graph(*body->graphs[0], bind);
  std::vector<int64_t> out_axes = node.attr_ints("scan_output_axes");
  for (size_t i = 0; i < n_out() && i < r.outputs.size(); ++i) {
    TensorState s = r.outputs[i];
    if (i >= n_state && s.rank_known) {
      const size_t j = i - n_state;
      int64_t ax = j < out_axes.size() ? out_axes[j] : 0;
      if (ax < 0) ax += s.rank() + 1;
      if (ax >= 0 && ax <= s.rank()) s.dims.insert(s.dims.begin() + ax, seq);
    }
    set_out(i, s);
  }
  absorb_cost(r.cost, seq);
  absorb_structure(r.cost);
}

void Rules::run() {
  const std::string& d = node.domain;
  const bool std_domain = d.empty() || d == "ai.onnx";
  const bool ms = d == "com.microsoft";
  if (!std_domain && !ms) {
    SubgraphOutcome fo;
    if (ctx.runner && ctx.runner->run_function(node, ctx.in, fo)) {
      for (size_t i = 0; i < n_out() && i < fo.outputs.size(); ++i) set_out(i, fo.outputs[i]);
      absorb_cost(fo.cost, 1);
      absorb_structure(fo.cost);
      return;
    }
    ctx.cost.unknown_op = true;
    ctx.cost.exact = false;
    return;
  }
  if (op == "Conv") return conv(0, 1, 2, kUndefined);
  if (op == "ConvTranspose") return conv_transpose();
  if (op == "QLinearConv") return conv(0, 3, 8, in(7) ? in(7)->dtype : kUint8);
  if (op == "ConvInteger") return conv(0, 1, 99, kInt32);
  if (op == "FusedConv" || op == "NhwcConv") return conv(0, 1, 2, kUndefined);
  if (op == "MaxPool" || op == "AveragePool" || op == "LpPool" || op == "QLinearAveragePool") return pool(false);
  if (op == "GlobalAveragePool" || op == "GlobalMaxPool" || op == "GlobalLpPool" || op == "QLinearGlobalAveragePool")
    return pool(true);
  if (op == "Gemm" || op == "FusedGemm") return gemm(0, 1, 2, kUndefined);
  if (op == "MatMul" || op == "FusedMatMul") return matmul(0, 1, kUndefined);
  if (op == "MatMulInteger") return matmul(0, 1, kInt32);
  if (op == "QLinearMatMul") return matmul(0, 3, in(7) ? in(7)->dtype : kUint8);
  if (op == "DynamicQuantizeMatMul" || op == "MatMulIntegerToFloat") return quantize_dynamic();
  if (op == "QGemm") return gemm(0, 3, 6, in(8) ? in(8)->dtype : kFloat);
  if (op.rfind("Reduce", 0) == 0) return reduce();
  if (op == "ArgMax" || op == "ArgMin") return arg_reduce();
  if (op == "Reshape") return reshape();
  if (op == "Flatten") return flatten();
  if (op == "Squeeze") return squeeze(false);
  if (op == "Unsqueeze") return squeeze(true);
  if (op == "Transpose") return transpose();
  if (op == "Concat") return concat();
  if (op == "Split") return split();
  if (op == "Slice") return slice();
  if (op == "Gather") return gather();
  if (op == "GatherElements") return gather_elements();
  if (op == "GatherND") return gather_nd();
  if (op == "Tile") return tile();
  if (op == "Pad") return pad();
  if (op == "Resize" || op == "Upsample") return resize();
  if (op == "DepthToSpace") return depth_space(false);
  if (op == "SpaceToDepth") return depth_space(true);
  if (op == "Shape") return shape();
  if (op == "Size") return size();
  if (op == "Constant") return constant();
  if (op == "ConstantOfShape") return constant_of_shape();
  if (op == "Range") return range();
  if (op == "LSTM" || op == "DynamicQuantizeLSTM") return rnn(4);
  if (op == "GRU") return rnn(3);
  if (op == "RNN") return rnn(1);
  if (op == "TopK") return topk();
  if (op == "OneHot") return onehot();
  if (op == "Einsum") return einsum();
  if (op == "If") return if_op();
  if (op == "Loop") return loop_op();
  if (op == "Scan") return scan_op();
  if (op == "Attention" && ms) return attention_ms();
  if (op == "Attention") return attention_onnx();
  if (op == "MultiHeadAttention" || op == "GroupQueryAttention") return mha_ms();
  if (op == "NonZero" || op == "NonMaxSuppression" || op == "Compress" || op == "Unique") return nonzero_like();
  if (op == "EyeLike") return eye_like();
  if (op == "RandomNormal" || op == "RandomUniform") return random_op();
  if (unary()) return;
  if (binary()) return;
  ctx.cost.unknown_op = true;
  ctx.cost.exact = false;
}

}  // namespace

int64_t TensorState::numel() const {
  if (!rank_known) return kUnknown;
  int64_t n = 1;
  for (int64_t d : dims) n = mul_sat(n, d);
  return n;
}

double TensorState::bytes() const {
  const int64_t n = numel();
  const int bits = dtype_bits(dtype);
  if (n < 0 || bits == 0) return -1;
  return std::ceil(static_cast<double>(n) * bits / 8.0);
}

void infer_node(OpContext& ctx) {
  Rules(ctx).run();
}

}  // namespace graphrec
