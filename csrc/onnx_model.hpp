// In-memory view of an ONNX ModelProto, decoded from the wire format.
// Weight payloads are never copied: tensors keep spans into the mapped file
// (or a reference to an external data file) and are read lazily, and only the
// small integer / float tensors that shape inference needs are ever read.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "protobuf_reader.hpp"

namespace graphrec {

// ONNX TensorProto.DataType values.
enum DType : int32_t {
  kUndefined = 0, kFloat = 1, kUint8 = 2, kInt8 = 3, kUint16 = 4, kInt16 = 5, kInt32 = 6, kInt64 = 7,
  kString = 8, kBool = 9, kFloat16 = 10, kDouble = 11, kUint32 = 12, kUint64 = 13, kComplex64 = 14,
  kComplex128 = 15, kBFloat16 = 16, kFloat8E4M3FN = 17, kFloat8E4M3FNUZ = 18, kFloat8E5M2 = 19,
  kFloat8E5M2FNUZ = 20, kUint4 = 21, kInt4 = 22, kFloat4E2M1 = 23, kFloat8E8M0 = 24, kUint2 = 25, kInt2 = 26,
};

// Bits per element (0 for unknown / string).
int dtype_bits(int32_t dtype);
const char* dtype_name(int32_t dtype);
bool dtype_is_float(int32_t dtype);
bool dtype_is_integer(int32_t dtype);

struct Limits {
  uint64_t max_rank = 64;                 // dims per tensor
  uint64_t max_nesting = 48;              // nested subgraph depth
  uint64_t max_nodes = 5'000'000;         // nodes in the whole model
  uint64_t max_elements = 1ULL << 46;     // declared elements in one tensor
  uint64_t max_strings = 1'000'000;       // inputs/outputs/attrs strings per node
};

struct TensorData {
  std::string name;
  int32_t dtype = kUndefined;
  std::vector<int64_t> dims;
  // Where the values are. Exactly one of these describes the payload.
  Span raw;                 // raw_data
  Span packed;              // float_data/int32_data/int64_data/double_data/uint64_data (packed)
  uint32_t typed_field = 0; // which typed field `packed` belongs to (4,5,7,10,11)
  std::vector<uint64_t> unpacked;  // the same, when the writer did not pack (rare)
  uint64_t string_count = 0;
  bool external = false;
  std::string external_location;
  int64_t external_offset = 0;
  int64_t external_length = -1;
  std::string external_path;   // resolved absolute path (empty before resolution)
  uint64_t numel = 0;          // product of dims
  uint64_t byte_size = 0;      // numel * element size
  bool sparse = false;
};

struct Graph;

enum class AttrType : int32_t {
  Undefined = 0, Float = 1, Int = 2, String = 3, Tensor = 4, Graph = 5, Floats = 6, Ints = 7,
  Strings = 8, Tensors = 9, Graphs = 10, SparseTensor = 11, SparseTensors = 12, TypeProto = 13, TypeProtos = 14,
};

struct Attribute {
  std::string name;
  AttrType type = AttrType::Undefined;
  float f = 0.f;
  int64_t i = 0;
  std::string s;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<TensorData> tensors;            // t / tensors / sparse
  std::vector<std::shared_ptr<Graph>> graphs; // g / graphs
  std::string ref_attr_name;                  // in function bodies
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<Attribute> attributes;

  const Attribute* attr(const std::string& n) const;
  int64_t attr_i(const std::string& n, int64_t dflt) const;
  float attr_f(const std::string& n, float dflt) const;
  std::string attr_s(const std::string& n, const std::string& dflt) const;
  std::vector<int64_t> attr_ints(const std::string& n) const;
  bool has_attr(const std::string& n) const { return attr(n) != nullptr; }
};

// A dimension: value >= 0 when known, else -1 with an optional symbolic name.
struct Dim {
  int64_t value = -1;
  std::string param;
};

struct ValueInfo {
  std::string name;
  int32_t elem_type = kUndefined;
  bool has_shape = false;   // false: rank unknown
  std::vector<Dim> dims;
  bool is_tensor = true;    // false for sequence/map/optional types
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;
  std::vector<TensorData> initializers;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<ValueInfo> value_info;
};

struct Function {
  std::string name;
  std::string domain;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<std::string> attributes;
  std::vector<Attribute> attribute_defaults;
  std::vector<Node> nodes;
  std::map<std::string, int64_t> opset_imports;
};

struct Model {
  int64_t ir_version = 0;
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  int64_t model_version = 0;
  std::map<std::string, int64_t> opset_imports;  // "" is the default domain
  std::map<std::string, std::string> metadata;
  std::shared_ptr<Graph> graph;
  std::vector<Function> functions;
  uint64_t total_nodes_decoded = 0;  // including nested graphs and functions
  uint64_t num_subgraphs = 0;
};

// Decodes a ModelProto from `data` (which must outlive the model).
// `base_dir` is the folder external data locations are resolved against (empty: none allowed).
Model decode_model(Span data, const std::string& base_dir, const Limits& limits);

// Reads up to `max_elems` values of a tensor as int64 / double. Returns false if the
// tensor is larger, external, or of a type that cannot be read that way.
bool tensor_int64_values(const TensorData& t, std::vector<int64_t>& out, uint64_t max_elems);
bool tensor_double_values(const TensorData& t, std::vector<double>& out, uint64_t max_elems);

}  // namespace graphrec
