#include "onnx_model.hpp"

#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

namespace graphrec {

namespace fs = std::filesystem;

int dtype_bits(int32_t dtype) {
  switch (dtype) {
    case kFloat: case kInt32: case kUint32: return 32;
    case kUint8: case kInt8: case kBool: case kFloat8E4M3FN: case kFloat8E4M3FNUZ:
    case kFloat8E5M2: case kFloat8E5M2FNUZ: case kFloat8E8M0: return 8;
    case kUint16: case kInt16: case kFloat16: case kBFloat16: return 16;
    case kInt64: case kUint64: case kDouble: case kComplex64: return 64;
    case kComplex128: return 128;
    case kUint4: case kInt4: case kFloat4E2M1: return 4;
    case kUint2: case kInt2: return 2;
    default: return 0;
  }
}

const char* dtype_name(int32_t dtype) {
  switch (dtype) {
    case kFloat: return "float32"; case kUint8: return "uint8"; case kInt8: return "int8";
    case kUint16: return "uint16"; case kInt16: return "int16"; case kInt32: return "int32";
    case kInt64: return "int64"; case kString: return "string"; case kBool: return "bool";
    case kFloat16: return "float16"; case kDouble: return "float64"; case kUint32: return "uint32";
    case kUint64: return "uint64"; case kComplex64: return "complex64"; case kComplex128: return "complex128";
    case kBFloat16: return "bfloat16"; case kFloat8E4M3FN: return "float8e4m3fn";
    case kFloat8E4M3FNUZ: return "float8e4m3fnuz"; case kFloat8E5M2: return "float8e5m2";
    case kFloat8E5M2FNUZ: return "float8e5m2fnuz"; case kUint4: return "uint4"; case kInt4: return "int4";
    case kFloat4E2M1: return "float4e2m1"; case kFloat8E8M0: return "float8e8m0";
    case kUint2: return "uint2"; case kInt2: return "int2";
    default: return "undefined";
  }
}

bool dtype_is_float(int32_t d) {
  return d == kFloat || d == kFloat16 || d == kDouble || d == kBFloat16 || (d >= kFloat8E4M3FN && d <= kFloat8E5M2FNUZ) ||
         d == kFloat4E2M1 || d == kFloat8E8M0;
}
bool dtype_is_integer(int32_t d) {
  return d == kUint8 || d == kInt8 || d == kUint16 || d == kInt16 || d == kInt32 || d == kInt64 || d == kUint32 ||
         d == kUint64 || d == kBool || d == kUint4 || d == kInt4 || d == kUint2 || d == kInt2;
}

const Attribute* Node::attr(const std::string& n) const {
  for (const auto& a : attributes)
    if (a.name == n) return &a;
  return nullptr;
}
int64_t Node::attr_i(const std::string& n, int64_t dflt) const {
  const Attribute* a = attr(n);
  return a && a->type == AttrType::Int ? a->i : dflt;
}
float Node::attr_f(const std::string& n, float dflt) const {
  const Attribute* a = attr(n);
  return a && a->type == AttrType::Float ? a->f : dflt;
}
std::string Node::attr_s(const std::string& n, const std::string& dflt) const {
  const Attribute* a = attr(n);
  return a && a->type == AttrType::String ? a->s : dflt;
}
std::vector<int64_t> Node::attr_ints(const std::string& n) const {
  const Attribute* a = attr(n);
  if (a && a->type == AttrType::Ints) return a->ints;
  if (a && a->type == AttrType::Int) return {a->i};
  return {};
}

namespace {

// A StringStringEntryProto (external_data, metadata_props): key = 1, value = 2.
std::pair<std::string, std::string> string_entry(Span bytes, const char* what) {
  ProtoReader kv(bytes, what);
  Field g;
  std::pair<std::string, std::string> out;
  while (kv.next(g)) {
    if (g.wire != kLen) continue;
    if (g.number == 1) out.first = g.bytes.str();
    else if (g.number == 2) out.second = g.bytes.str();
  }
  return out;
}

struct Decoder {
  std::string base_dir;
  Limits limits;
  Model* model = nullptr;

  void count_node() {
    if (++model->total_nodes_decoded > limits.max_nodes)
      fail(ErrorCode::Limit, "model has more than " + std::to_string(limits.max_nodes) + " nodes");
  }

  static float as_float(uint64_t bits) {
    uint32_t b = static_cast<uint32_t>(bits);
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }

  void finish_tensor(TensorData& t) {
    if (t.dims.size() > limits.max_rank) fail(ErrorCode::Limit, "tensor '" + t.name + "' has rank " + std::to_string(t.dims.size()));
    uint64_t n = 1;
    for (int64_t d : t.dims) {
      if (d < 0) fail(ErrorCode::Format, "tensor '" + t.name + "' has a negative dimension");
      if (d != 0 && n > limits.max_elements / static_cast<uint64_t>(d))
        fail(ErrorCode::Limit, "tensor '" + t.name + "' declares an absurd number of elements");
      n *= static_cast<uint64_t>(d);
    }
    if (n > limits.max_elements) fail(ErrorCode::Limit, "tensor '" + t.name + "' declares an absurd number of elements");
    t.numel = n;
    const int bits = dtype_bits(t.dtype);
    t.byte_size = (n * static_cast<uint64_t>(bits) + 7) / 8;
    if (t.external) {
      resolve_external(t);
    } else if (!t.raw.empty() || t.typed_field == 0) {
      if (!t.raw.empty() && bits > 0 && t.raw.size != t.byte_size && t.dtype != kString)
        fail(ErrorCode::Format, "tensor '" + t.name + "' raw_data holds " + std::to_string(t.raw.size) + " bytes but its dims and dtype need " +
                                    std::to_string(t.byte_size));
    }
  }

  void resolve_external(TensorData& t) {
    if (t.external_location.empty()) fail(ErrorCode::ExternalData, "tensor '" + t.name + "' uses external data without a location");
    if (base_dir.empty())
      fail(ErrorCode::ExternalData, "tensor '" + t.name + "' uses external data '" + t.external_location +
                                        "' but the model was given as bytes without a base folder");
    fs::path loc(t.external_location);
    if (loc.is_absolute()) fail(ErrorCode::ExternalData, "external data location '" + t.external_location + "' is an absolute path");
    std::error_code ec;
    const fs::path base = fs::weakly_canonical(fs::path(base_dir), ec);
    const fs::path full = fs::weakly_canonical(base / loc, ec);
    if (ec) fail(ErrorCode::ExternalData, "cannot resolve external data location '" + t.external_location + "'");
    auto rel = full.lexically_relative(base);
    if (rel.empty() || *rel.begin() == "..")
      fail(ErrorCode::ExternalData, "external data location '" + t.external_location + "' escapes the model folder");
    if (!fs::is_regular_file(full, ec))
      fail(ErrorCode::ExternalData, "external data file '" + full.string() + "' for tensor '" + t.name + "' is missing");
    const uint64_t fsize = fs::file_size(full, ec);
    if (ec) fail(ErrorCode::ExternalData, "cannot stat external data file '" + full.string() + "'");
    if (t.external_offset < 0) fail(ErrorCode::ExternalData, "tensor '" + t.name + "' has a negative external data offset");
    const uint64_t need = t.external_length >= 0 ? static_cast<uint64_t>(t.external_length) : t.byte_size;
    if (static_cast<uint64_t>(t.external_offset) > fsize || need > fsize - static_cast<uint64_t>(t.external_offset))
      fail(ErrorCode::ExternalData, "external data file '" + full.string() + "' is too short for tensor '" + t.name + "' (needs " +
                                        std::to_string(need) + " bytes at offset " + std::to_string(t.external_offset) + ", file has " +
                                        std::to_string(fsize) + ")");
    t.external_path = full.string();
  }

  TensorData tensor(Span s) {
    TensorData t;
    ProtoReader r(s, "TensorProto");
    Field f;
    bool has_location_field = false;
    while (r.next(f)) {
      switch (f.number) {
        case 1:
          for_each_varint(f, "TensorProto.dims", [&](uint64_t v) {
            if (t.dims.size() >= limits.max_rank) fail(ErrorCode::Limit, "tensor has more than " + std::to_string(limits.max_rank) + " dims");
            t.dims.push_back(static_cast<int64_t>(v));
          });
          break;
        case 2: t.dtype = static_cast<int32_t>(f.varint); break;
        case 8: if (f.wire == kLen) t.name = f.bytes.str(); break;
        case 9: if (f.wire == kLen) t.raw = f.bytes; break;
        case 4: case 5: case 7: case 10: case 11:
          t.typed_field = f.number;
          if (f.wire == kLen) {
            t.packed = f.bytes;
          } else {
            if (t.unpacked.size() > (1u << 20)) fail(ErrorCode::Limit, "too many unpacked tensor values");
            t.unpacked.push_back(f.varint);
          }
          break;
        case 6: t.string_count++; t.typed_field = 6; break;
        case 13: {  // external_data: StringStringEntryProto
          if (f.wire != kLen) break;
          const auto [key, value] = string_entry(f.bytes, "TensorProto.external_data");
          try {
            if (key == "location") t.external_location = value;
            else if (key == "offset") t.external_offset = std::stoll(value);
            else if (key == "length") t.external_length = std::stoll(value);
          } catch (const std::exception&) {
            fail(ErrorCode::ExternalData, "tensor external_data '" + key + "' is not a number: '" + value + "'");
          }
          break;
        }
        case 14: has_location_field = f.varint == 1; break;
        default: break;
      }
    }
    t.external = has_location_field || !t.external_location.empty();
    finish_tensor(t);
    return t;
  }

  TensorData sparse_tensor(Span s) {
    TensorData values;
    std::vector<int64_t> dims;
    ProtoReader r(s, "SparseTensorProto");
    Field f;
    while (r.next(f)) {
      if (f.number == 1 && f.wire == kLen) values = tensor(f.bytes);
      else if (f.number == 3) for_each_varint(f, "SparseTensorProto.dims", [&](uint64_t v) {
          if (dims.size() >= limits.max_rank) fail(ErrorCode::Limit, "sparse tensor rank too large");
          dims.push_back(static_cast<int64_t>(v));
        });
    }
    TensorData t = values;
    t.sparse = true;
    t.dims = dims;
    // Parameters of a sparse tensor are its stored values; the dense numel is kept for shapes.
    uint64_t n = 1;
    for (int64_t d : dims) {
      if (d < 0) fail(ErrorCode::Format, "sparse tensor has a negative dimension");
      if (d != 0 && n > limits.max_elements / static_cast<uint64_t>(d)) fail(ErrorCode::Limit, "sparse tensor declares absurd dims");
      n *= static_cast<uint64_t>(d);
    }
    t.numel = values.numel;
    (void)n;
    return t;
  }

  void dims_of_shape(Span s, ValueInfo& vi) {
    vi.has_shape = true;
    ProtoReader r(s, "TensorShapeProto");
    Field f;
    while (r.next(f)) {
      if (f.number != 1 || f.wire != kLen) continue;
      if (vi.dims.size() >= limits.max_rank) fail(ErrorCode::Limit, "value '" + vi.name + "' has too many dims");
      Dim d;
      ProtoReader dr(f.bytes, "TensorShapeProto.Dimension");
      Field g;
      while (dr.next(g)) {
        if (g.number == 1 && g.wire == kVarint) d.value = static_cast<int64_t>(g.varint);
        else if (g.number == 2 && g.wire == kLen) d.param = g.bytes.str();
      }
      if (d.value < -1) d.value = -1;
      vi.dims.push_back(d);
    }
  }

  void type_proto(Span s, ValueInfo& vi, int depth) {
    if (depth > 16) fail(ErrorCode::Limit, "TypeProto nested too deeply");
    ProtoReader r(s, "TypeProto");
    Field f;
    while (r.next(f)) {
      if (f.wire != kLen) continue;
      if (f.number == 1 || f.number == 8) {  // tensor_type / sparse_tensor_type
        ProtoReader tr(f.bytes, "TypeProto.Tensor");
        Field g;
        while (tr.next(g)) {
          if (g.number == 1 && g.wire == kVarint) vi.elem_type = static_cast<int32_t>(g.varint);
          else if (g.number == 2 && g.wire == kLen) dims_of_shape(g.bytes, vi);
        }
      } else if (f.number == 4 || f.number == 5 || f.number == 9) {  // sequence / map / optional
        vi.is_tensor = false;
      }
    }
  }

  ValueInfo value_info(Span s) {
    ValueInfo vi;
    ProtoReader r(s, "ValueInfoProto");
    Field f;
    while (r.next(f)) {
      if (f.wire != kLen) continue;
      if (f.number == 1) vi.name = f.bytes.str();
      else if (f.number == 2) type_proto(f.bytes, vi, 0);
    }
    return vi;
  }

  Attribute attribute(Span s, int depth) {
    Attribute a;
    ProtoReader r(s, "AttributeProto");
    Field f;
    bool has_type = false;
    while (r.next(f)) {
      switch (f.number) {
        case 1: if (f.wire == kLen) a.name = f.bytes.str(); break;
        case 2: a.f = as_float(f.varint); if (!has_type) a.type = AttrType::Float; break;
        case 3: a.i = static_cast<int64_t>(f.varint); if (!has_type) a.type = AttrType::Int; break;
        case 4: if (f.wire == kLen) a.s = f.bytes.str(); if (!has_type) a.type = AttrType::String; break;
        case 5: if (f.wire == kLen) a.tensors.push_back(tensor(f.bytes)); if (!has_type) a.type = AttrType::Tensor; break;
        case 6: if (f.wire == kLen) a.graphs.push_back(graph(f.bytes, depth + 1)); if (!has_type) a.type = AttrType::Graph; break;
        case 7:
          if (f.wire == kLen) {
            if (f.bytes.size % 4) fail(ErrorCode::Format, "packed floats attribute has a partial element");
            for (size_t k = 0; k + 4 <= f.bytes.size; k += 4) {
              float v;
              std::memcpy(&v, f.bytes.data + k, 4);
              a.floats.push_back(v);
            }
          } else {
            a.floats.push_back(as_float(f.varint));
          }
          if (!has_type) a.type = AttrType::Floats;
          break;
        case 8:
          for_each_varint(f, "AttributeProto.ints", [&](uint64_t v) {
            if (a.ints.size() > (1u << 24)) fail(ErrorCode::Limit, "ints attribute too long");
            a.ints.push_back(static_cast<int64_t>(v));
          });
          if (!has_type) a.type = AttrType::Ints;
          break;
        case 9:
          if (f.wire == kLen) {
            if (a.strings.size() > limits.max_strings) fail(ErrorCode::Limit, "strings attribute too long");
            a.strings.push_back(f.bytes.str());
          }
          if (!has_type) a.type = AttrType::Strings;
          break;
        case 10: if (f.wire == kLen) a.tensors.push_back(tensor(f.bytes)); if (!has_type) a.type = AttrType::Tensors; break;
        case 11: if (f.wire == kLen) a.graphs.push_back(graph(f.bytes, depth + 1)); if (!has_type) a.type = AttrType::Graphs; break;
        case 20: a.type = static_cast<AttrType>(static_cast<int32_t>(f.varint)); has_type = true; break;
        case 21: if (f.wire == kLen) a.ref_attr_name = f.bytes.str(); break;
        case 22: case 23: if (f.wire == kLen) a.tensors.push_back(sparse_tensor(f.bytes)); if (!has_type) a.type = AttrType::SparseTensor; break;
        default: break;
      }
    }
    return a;
  }

  Node node(Span s, int depth) {
    count_node();
    Node n;
    ProtoReader r(s, "NodeProto");
    Field f;
    while (r.next(f)) {
      if (f.wire != kLen) continue;
      switch (f.number) {
        case 1:
          if (n.inputs.size() >= limits.max_strings) fail(ErrorCode::Limit, "node has too many inputs");
          n.inputs.push_back(f.bytes.str());
          break;
        case 2:
          if (n.outputs.size() >= limits.max_strings) fail(ErrorCode::Limit, "node has too many outputs");
          n.outputs.push_back(f.bytes.str());
          break;
        case 3: n.name = f.bytes.str(); break;
        case 4: n.op_type = f.bytes.str(); break;
        case 5: n.attributes.push_back(attribute(f.bytes, depth)); break;
        case 7: n.domain = f.bytes.str(); break;
        default: break;
      }
    }
    if (n.domain == "ai.onnx") n.domain.clear();
    if (n.op_type.empty()) fail(ErrorCode::Format, "a node '" + n.name + "' has no op_type");
    return n;
  }

  std::shared_ptr<Graph> graph(Span s, int depth) {
    if (static_cast<uint64_t>(depth) > limits.max_nesting) fail(ErrorCode::Limit, "subgraphs nested deeper than " + std::to_string(limits.max_nesting));
    if (depth > 0) model->num_subgraphs++;
    auto g = std::make_shared<Graph>();
    ProtoReader r(s, "GraphProto");
    Field f;
    while (r.next(f)) {
      if (f.wire != kLen) continue;
      switch (f.number) {
        case 1: g->nodes.push_back(node(f.bytes, depth)); break;
        case 2: g->name = f.bytes.str(); break;
        case 5: g->initializers.push_back(tensor(f.bytes)); break;
        case 15: g->initializers.push_back(sparse_tensor(f.bytes)); break;
        case 11: g->inputs.push_back(value_info(f.bytes)); break;
        case 12: g->outputs.push_back(value_info(f.bytes)); break;
        case 13: g->value_info.push_back(value_info(f.bytes)); break;
        default: break;
      }
    }
    return g;
  }

  void opset(Span s, std::map<std::string, int64_t>& out) {
    ProtoReader r(s, "OperatorSetIdProto");
    Field f;
    std::string domain;
    int64_t version = 0;
    while (r.next(f)) {
      if (f.number == 1 && f.wire == kLen) domain = f.bytes.str();
      else if (f.number == 2 && f.wire == kVarint) version = static_cast<int64_t>(f.varint);
    }
    if (domain == "ai.onnx") domain.clear();
    out[domain] = version;
  }

  Function function(Span s) {
    Function fn;
    ProtoReader r(s, "FunctionProto");
    Field f;
    while (r.next(f)) {
      if (f.wire != kLen) continue;
      switch (f.number) {
        case 1: fn.name = f.bytes.str(); break;
        case 4: fn.inputs.push_back(f.bytes.str()); break;
        case 5: fn.outputs.push_back(f.bytes.str()); break;
        case 6: fn.attributes.push_back(f.bytes.str()); break;
        case 7: fn.nodes.push_back(node(f.bytes, 1)); break;
        case 9: opset(f.bytes, fn.opset_imports); break;
        case 10: fn.domain = f.bytes.str(); break;
        case 11: fn.attribute_defaults.push_back(attribute(f.bytes, 1)); break;
        default: break;
      }
    }
    return fn;
  }
};

}  // namespace

Model decode_model(Span data, const std::string& base_dir, const Limits& limits) {
  Model m;
  Decoder d;
  d.base_dir = base_dir;
  d.limits = limits;
  d.model = &m;
  if (data.size == 0) fail(ErrorCode::Format, "the file is empty");
  ProtoReader r(data, "ModelProto");
  Field f;
  bool saw_graph = false;
  while (r.next(f)) {
    switch (f.number) {
      case 1: m.ir_version = static_cast<int64_t>(f.varint); break;
      case 2: if (f.wire == kLen) m.producer_name = f.bytes.str(); break;
      case 3: if (f.wire == kLen) m.producer_version = f.bytes.str(); break;
      case 4: if (f.wire == kLen) m.domain = f.bytes.str(); break;
      case 5: m.model_version = static_cast<int64_t>(f.varint); break;
      case 7:
        if (f.wire != kLen) fail(ErrorCode::Format, "ModelProto.graph has the wrong wire type (not an ONNX model)");
        m.graph = d.graph(f.bytes, 0);
        saw_graph = true;
        break;
      case 8: if (f.wire == kLen) d.opset(f.bytes, m.opset_imports); break;
      case 14:
        if (f.wire == kLen) {
          auto [key, value] = string_entry(f.bytes, "ModelProto.metadata_props");
          m.metadata[key] = value;
        }
        break;
      case 25: if (f.wire == kLen) m.functions.push_back(d.function(f.bytes)); break;
      default: break;
    }
  }
  if (!saw_graph) fail(ErrorCode::Format, "no graph found: not an ONNX ModelProto");
  if (m.ir_version <= 0 || m.ir_version > 100) fail(ErrorCode::Format, "ir_version " + std::to_string(m.ir_version) + " is not a valid ONNX IR version (not an ONNX model?)");
  if (m.opset_imports.empty() && m.ir_version >= 3) fail(ErrorCode::Format, "model declares no opset_import");
  return m;
}

namespace {

int64_t to_i64(double v) {
  if (!(v == v)) return 0;
  if (v >= 9.2e18) return std::numeric_limits<int64_t>::max();
  if (v <= -9.2e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

template <class T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Calls fn(int64, double) for each element; returns false if not readable.
template <class Fn>
bool each_value(const TensorData& t, uint64_t max_elems, Fn&& fn) {
  if (t.external || t.sparse || t.numel > max_elems) return false;
  const uint64_t n = t.numel;
  if (!t.raw.empty() || (t.typed_field == 0 && n == 0)) {
    const int bits = dtype_bits(t.dtype);
    if (bits < 8 || t.raw.size < n * static_cast<uint64_t>(bits / 8)) return n == 0;
    const uint8_t* p = t.raw.data;
    for (uint64_t k = 0; k < n; ++k) {
      switch (t.dtype) {
        case kFloat: { float v = load_le<float>(p + 4 * k); fn(to_i64(v), static_cast<double>(v)); break; }
        case kDouble: { double v = load_le<double>(p + 8 * k); fn(to_i64(v), v); break; }
        case kInt64: { int64_t v = load_le<int64_t>(p + 8 * k); fn(v, static_cast<double>(v)); break; }
        case kUint64: { uint64_t v = load_le<uint64_t>(p + 8 * k); fn(static_cast<int64_t>(v), static_cast<double>(v)); break; }
        case kInt32: { int32_t v = load_le<int32_t>(p + 4 * k); fn(v, v); break; }
        case kUint32: { uint32_t v = load_le<uint32_t>(p + 4 * k); fn(v, v); break; }
        case kInt16: { int16_t v = load_le<int16_t>(p + 2 * k); fn(v, v); break; }
        case kUint16: { uint16_t v = load_le<uint16_t>(p + 2 * k); fn(v, v); break; }
        case kInt8: { int8_t v = static_cast<int8_t>(p[k]); fn(v, v); break; }
        case kUint8: case kBool: { uint8_t v = p[k]; fn(v, v); break; }
        default: return false;
      }
    }
    return true;
  }
  uint64_t count = 0;
  auto emit_int = [&](uint64_t raw) {
    if (count++ >= n) return;
    int64_t v = static_cast<int64_t>(raw);
    if (t.typed_field == 5 && t.dtype != kUint32) v = static_cast<int32_t>(raw);
    fn(v, static_cast<double>(v));
  };
  if (t.typed_field == 5 || t.typed_field == 7 || t.typed_field == 11) {
    if (!t.packed.empty()) {
      const uint8_t* p = t.packed.data;
      const uint8_t* end = p + t.packed.size;
      while (p < end) emit_int(ProtoReader::read_varint(p, end, "tensor values"));
    } else {
      for (uint64_t v : t.unpacked) emit_int(v);
    }
    return count >= n;
  }
  if (t.typed_field == 4) {
    if (!t.packed.empty()) {
      if (t.packed.size < n * 4) return false;
      for (uint64_t k = 0; k < n; ++k) { float v = load_le<float>(t.packed.data + 4 * k); fn(to_i64(v), v); }
    } else {
      if (t.unpacked.size() < n) return false;
      for (uint64_t k = 0; k < n; ++k) { uint32_t b = static_cast<uint32_t>(t.unpacked[k]); float v; std::memcpy(&v, &b, 4); fn(to_i64(v), v); }
    }
    return true;
  }
  if (t.typed_field == 10) {
    if (!t.packed.empty()) {
      if (t.packed.size < n * 8) return false;
      for (uint64_t k = 0; k < n; ++k) { double v = load_le<double>(t.packed.data + 8 * k); fn(to_i64(v), v); }
    } else {
      if (t.unpacked.size() < n) return false;
      for (uint64_t k = 0; k < n; ++k) { double v; std::memcpy(&v, &t.unpacked[k], 8); fn(to_i64(v), v); }
    }
    return true;
  }
  return false;
}

}  // namespace

bool tensor_int64_values(const TensorData& t, std::vector<int64_t>& out, uint64_t max_elems) {
  out.clear();
  if (dtype_is_float(t.dtype) && t.dtype != kFloat && t.dtype != kDouble) return false;
  return each_value(t, max_elems, [&](int64_t i, double) { out.push_back(i); });
}

bool tensor_double_values(const TensorData& t, std::vector<double>& out, uint64_t max_elems) {
  out.clear();
  if (dtype_is_float(t.dtype) && t.dtype != kFloat && t.dtype != kDouble) return false;
  return each_value(t, max_elems, [&](int64_t, double d) { out.push_back(d); });
}

}  // namespace graphrec
