// pybind11 bindings: the only file that knows about Python. Returns plain dicts of
// numpy arrays; C++ errors become _core exceptions that graphrec.graph re-raises as
// graphrec.errors classes naming the file.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <unordered_map>

#include "kernel.hpp"
#include "protobuf_reader.hpp"

namespace py = pybind11;
using namespace graphrec;

#define STRINGIFY(x) #x
#define MACRO_STRINGIFY(x) STRINGIFY(x)

namespace {

template <class T>
py::array_t<T> to_array(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(T));
  return a;
}

py::array_t<bool> to_bool_array(const std::vector<uint8_t>& v) {
  py::array_t<bool> a(static_cast<py::ssize_t>(v.size()));
  bool* p = a.mutable_data();
  for (size_t i = 0; i < v.size(); ++i) p[i] = v[i] != 0;
  return a;
}

py::dict to_dict(const AnalysisResult& r) {
  py::dict d;
  d["tensor_names"] = r.tensor_names;
  d["tensor_kind"] = to_array(r.tensor_kind);
  d["tensor_dtype"] = to_array(r.tensor_dtype);
  d["tensor_producer"] = to_array(r.tensor_producer);
  d["tensor_rank"] = to_array(r.tensor_rank);
  d["tensor_numel"] = to_array(r.tensor_numel);
  d["tensor_bytes"] = to_array(r.tensor_bytes);
  d["shape_ptr"] = to_array(r.shape_ptr);
  d["shape_dims"] = to_array(r.shape_dims);
  d["tensor_is_output"] = to_bool_array(r.tensor_is_output);
  d["tensor_has_value_info"] = to_bool_array(r.tensor_has_value_info);
  std::vector<std::string> dtype_names;
  for (int32_t i = 0; i <= 26; ++i) dtype_names.push_back(dtype_name(i));
  d["dtype_names"] = dtype_names;

  // Op types as ids into a model-local vocabulary (no per-node Python strings).
  std::vector<std::string> vocab;
  std::unordered_map<std::string, int32_t> ids;
  std::vector<int32_t> op_ids;
  op_ids.reserve(r.node_op_types.size());
  for (const auto& op : r.node_op_types) {
    auto it = ids.find(op);
    if (it == ids.end()) {
      it = ids.emplace(op, static_cast<int32_t>(vocab.size())).first;
      vocab.push_back(op);
    }
    op_ids.push_back(it->second);
  }
  d["op_types"] = vocab;
  d["node_op_type_id"] = to_array(op_ids);
  d["node_names"] = r.node_names;
  d["input_ptr"] = to_array(r.input_ptr);
  d["input_tensor"] = to_array(r.input_tensor);
  d["output_ptr"] = to_array(r.output_ptr);
  d["output_tensor"] = to_array(r.output_tensor);
  d["flops"] = to_array(r.flops);
  d["macs"] = to_array(r.macs);
  d["params"] = to_array(r.params);
  d["weight_bytes"] = to_array(r.weight_bytes);
  d["bytes_read"] = to_array(r.bytes_read);
  d["bytes_written"] = to_array(r.bytes_written);
  d["out_numel"] = to_array(r.out_numel);
  d["level"] = to_array(r.level);
  d["cost_exact"] = to_bool_array(r.cost_exact);
  d["unknown_op"] = to_bool_array(r.unknown_op);
  d["subgraph_nodes"] = to_array(r.subgraph_nodes);
  d["succ_ptr"] = to_array(r.succ_ptr);
  d["succ_idx"] = to_array(r.succ_idx);
  d["totals"] = r.totals;
  d["op_histogram"] = r.op_histogram;
  d["weight_bytes_by_dtype"] = r.weight_bytes_by_dtype;
  d["activation_bytes_by_dtype"] = r.activation_bytes_by_dtype;
  d["nested_op_histogram"] = r.nested_op_histogram;
  d["opset_imports"] = r.opset_imports;
  d["metadata"] = r.metadata;
  d["functions"] = r.functions;
  d["warnings"] = r.warnings;
  d["unknown_ops"] = r.unknown_ops;
  d["producer_name"] = r.producer_name;
  d["producer_version"] = r.producer_version;
  d["graph_name"] = r.graph_name;
  d["ir_version"] = r.ir_version;
  d["graph_inputs"] = to_array(r.graph_inputs);
  d["graph_outputs"] = to_array(r.graph_outputs);
  py::list declared;
  for (const auto& dims : r.declared_input_dims) {
    py::list l;
    for (const auto& dim : dims) {
      if (dim.value >= 0) l.append(dim.value);
      else if (!dim.param.empty()) l.append(dim.param);
      else l.append(py::none());
    }
    declared.append(l);
  }
  d["declared_input_dims"] = declared;
  return d;
}

py::list value_infos(const std::vector<ValueInfo>& vs) {
  py::list out;
  for (const auto& v : vs) {
    py::object dims = py::none();
    if (v.has_shape) {
      py::list l;
      for (const auto& dim : v.dims) {
        if (dim.value >= 0) l.append(dim.value);
        else if (!dim.param.empty()) l.append(dim.param);
        else l.append(py::none());
      }
      dims = l;
    }
    out.append(py::make_tuple(v.name, std::string(dtype_name(v.elem_type)), dims));
  }
  return out;
}

py::dict interface_dict(const ModelInterface& mi) {
  py::dict d;
  d["inputs"] = value_infos(mi.inputs);
  d["outputs"] = value_infos(mi.outputs);
  d["opset_imports"] = mi.opset_imports;
  d["ir_version"] = mi.ir_version;
  d["producer_name"] = mi.producer_name;
  return d;
}

// The bytes [begin, end) of a 1-D byte buffer (end < 0: its size), bounds-checked.
Span buffer_span(const py::buffer_info& info, int64_t begin, int64_t end) {
  if (info.ndim != 1 || info.itemsize != 1) throw KernelError(ErrorCode::Argument, "expected a 1-D bytes-like buffer");
  const int64_t size = static_cast<int64_t>(info.size);
  if (end < 0) end = size;
  if (begin < 0 || begin > end || end > size)
    throw KernelError(ErrorCode::Argument, "byte range [" + std::to_string(begin) + ", " + std::to_string(end) +
                                               ") outside the buffer of " + std::to_string(size) + " bytes");
  return Span{static_cast<const uint8_t*>(info.ptr) + begin, static_cast<size_t>(end - begin)};
}

AnalyzeOptions make_options(const std::map<std::string, std::vector<int64_t>>& input_shapes, int64_t batch_size,
                            const std::map<std::string, int64_t>& dim_values, int64_t default_dim) {
  AnalyzeOptions o;
  o.input_shapes = input_shapes;
  o.batch_size = batch_size;
  o.dim_values = dim_values;
  o.default_dim = default_dim;
  return o;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "graphrec feature kernel: ONNX wire-format decoder, shape propagation and per-operator costs.";

  static py::exception<KernelError> kernel_error(m, "KernelError");
  static py::exception<KernelError> format_error(m, "FormatError", kernel_error.ptr());
  static py::exception<KernelError> limit_error(m, "LimitError", kernel_error.ptr());
  static py::exception<KernelError> external_error(m, "ExternalDataError", kernel_error.ptr());
  static py::exception<KernelError> structure_error(m, "StructureError", kernel_error.ptr());
  static py::exception<KernelError> io_error(m, "IoError", kernel_error.ptr());
  static py::exception<KernelError> argument_error(m, "ArgumentError", kernel_error.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const KernelError& e) {
      PyObject* type = kernel_error.ptr();
      switch (e.code()) {
        case ErrorCode::Format: type = format_error.ptr(); break;
        case ErrorCode::Limit: type = limit_error.ptr(); break;
        case ErrorCode::ExternalData: type = external_error.ptr(); break;
        case ErrorCode::Structure: type = structure_error.ptr(); break;
        case ErrorCode::Io: type = io_error.ptr(); break;
        case ErrorCode::Argument: type = argument_error.ptr(); break;
      }
      PyErr_SetString(type, e.what());
    } catch (const std::bad_alloc&) {
      PyErr_SetString(limit_error.ptr(), "out of memory while decoding (declared sizes too large)");
    }
  });

  m.def(
      "analyze_file",
      [](const std::string& path, const std::map<std::string, std::vector<int64_t>>& input_shapes, int64_t batch_size,
         const std::map<std::string, int64_t>& dim_values, int64_t default_dim) {
        AnalyzeOptions o = make_options(input_shapes, batch_size, dim_values, default_dim);
        AnalysisResult r;
        {
          py::gil_scoped_release release;
          r = analyze_file(path, o);
        }
        return to_dict(r);
      },
      py::arg("path"), py::arg("input_shapes") = std::map<std::string, std::vector<int64_t>>{}, py::arg("batch_size") = 1,
      py::arg("dim_values") = std::map<std::string, int64_t>{}, py::arg("default_dim") = -1,
      "Decode and analyze the ONNX model at `path` (memory-mapped). Returns a dict of numpy arrays.");

  m.def(
      "analyze_bytes",
      [](py::buffer data, const std::string& base_dir, const std::map<std::string, std::vector<int64_t>>& input_shapes,
         int64_t batch_size, const std::map<std::string, int64_t>& dim_values, int64_t default_dim) {
        py::buffer_info info = data.request();
        if (info.ndim != 1 || info.itemsize != 1) throw KernelError(ErrorCode::Argument, "expected a 1-D bytes-like buffer");
        AnalyzeOptions o = make_options(input_shapes, batch_size, dim_values, default_dim);
        AnalysisResult r;
        {
          py::gil_scoped_release release;
          r = analyze_buffer(static_cast<const uint8_t*>(info.ptr), static_cast<size_t>(info.size), base_dir, o);
        }
        return to_dict(r);
      },
      py::arg("data"), py::arg("base_dir") = "", py::arg("input_shapes") = std::map<std::string, std::vector<int64_t>>{},
      py::arg("batch_size") = 1, py::arg("dim_values") = std::map<std::string, int64_t>{}, py::arg("default_dim") = -1,
      "Decode and analyze a serialized ONNX model held in memory.");

  m.def(
      "describe_file",
      [](const std::string& path) {
        ModelInterface mi;
        {
          py::gil_scoped_release release;
          mi = describe_file(path, Limits{});
        }
        return interface_dict(mi);
      },
      py::arg("path"), "Declared inputs/outputs (name, dtype, dims with symbolic names) of the model at `path`.");
  m.def(
      "describe_bytes",
      [](py::buffer data, const std::string& base_dir) {
        py::buffer_info info = data.request();
        if (info.ndim != 1 || info.itemsize != 1) throw KernelError(ErrorCode::Argument, "expected a 1-D bytes-like buffer");
        ModelInterface mi;
        {
          py::gil_scoped_release release;
          mi = describe_buffer(static_cast<const uint8_t*>(info.ptr), static_cast<size_t>(info.size), base_dir, Limits{});
        }
        return interface_dict(mi);
      },
      py::arg("data"), py::arg("base_dir") = "", "Declared inputs/outputs of a serialized model held in memory.");

  m.def(
      "protobuf_fields",
      [](py::buffer data, int64_t begin, int64_t end, int64_t max_fields, bool truncate) {
        py::buffer_info info = data.request();
        const Span span = buffer_span(info, begin, end);
        if (max_fields < 0) throw KernelError(ErrorCode::Argument, "max_fields must be >= 0");
        std::vector<Field> fields;
        {
          py::gil_scoped_release release;
          fields = read_fields(span, static_cast<size_t>(max_fields), truncate, "protobuf message");
        }
        const auto* base = static_cast<const uint8_t*>(info.ptr);
        py::list out;
        for (const Field& f : fields) {
          py::object value;
          if (f.wire == kLen) {
            const auto start = static_cast<py::ssize_t>(f.bytes.data - base);
            value = py::make_tuple(start, start + static_cast<py::ssize_t>(f.bytes.size));
          } else {
            value = py::int_(f.varint);
          }
          out.append(py::make_tuple(f.number, static_cast<uint32_t>(f.wire), value));
        }
        return out;
      },
      py::arg("data"), py::arg("begin") = 0, py::arg("end") = -1, py::arg("max_fields") = 1000000,
      py::arg("truncate") = false,
      "The fields (number, wire type, value) of the protobuf message in data[begin:end]: value is the integer "
      "of a varint/fixed field, (start, stop) offsets into data of a length-delimited one (never copied).");
  m.def(
      "protobuf_packed_varints",
      [](py::buffer data, int64_t begin, int64_t end, int64_t limit) {
        py::buffer_info info = data.request();
        const Span span = buffer_span(info, begin, end);
        if (limit < 0) throw KernelError(ErrorCode::Argument, "limit must be >= 0");
        std::vector<uint64_t> values;
        {
          py::gil_scoped_release release;
          values = read_packed_varints(span, static_cast<size_t>(limit), "packed repeated field");
        }
        return values;
      },
      py::arg("data"), py::arg("begin") = 0, py::arg("end") = -1, py::arg("limit") = 64,
      "Up to `limit` varints of the packed repeated field payload data[begin:end].");

#ifdef VERSION_INFO
  m.attr("__version__") = MACRO_STRINGIFY(VERSION_INFO);
#else
  m.attr("__version__") = "dev";
#endif
}
