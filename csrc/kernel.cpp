#include "kernel.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace graphrec {

namespace {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail(ErrorCode::Io, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int e = errno;
      ::close(fd_);
      fail(ErrorCode::Io, std::string("cannot stat: ") + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd_);
      fail(ErrorCode::Io, "not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) return;
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd_);
      fail(ErrorCode::Io, std::string("cannot map: ") + std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
    // The decoder reads small headers scattered through the file and skips the weight
    // payloads: no read-around, so resident memory does not grow with the payload.
    ::madvise(p, size_, MADV_RANDOM);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

AnalysisResult analyze_buffer(const uint8_t* data, size_t size, const std::string& base_dir, const AnalyzeOptions& options) {
  Model m = decode_model(Span{data, size}, base_dir, options.limits);
  return analyze_model(m, options);
}

ModelInterface describe_buffer(const uint8_t* data, size_t size, const std::string& base_dir, const Limits& limits) {
  Model m = decode_model(Span{data, size}, base_dir, limits);
  ModelInterface mi;
  std::set<std::string> inits;
  for (const auto& t : m.graph->initializers) inits.insert(t.name);
  for (const auto& v : m.graph->inputs)
    if (!inits.count(v.name)) mi.inputs.push_back(v);
  mi.outputs = m.graph->outputs;
  mi.opset_imports = m.opset_imports;
  mi.ir_version = m.ir_version;
  mi.producer_name = m.producer_name;
  return mi;
}

ModelInterface describe_file(const std::string& path, const Limits& limits) {
  MappedFile f(path);
  std::filesystem::path p(path);
  std::string base = p.has_parent_path() ? p.parent_path().string() : std::string(".");
  return describe_buffer(f.data(), f.size(), base, limits);
}

AnalysisResult analyze_file(const std::string& path, const AnalyzeOptions& options) {
  MappedFile f(path);
  std::filesystem::path p(path);
  std::string base = p.has_parent_path() ? p.parent_path().string() : std::string(".");
  return analyze_buffer(f.data(), f.size(), base, options);
}

}  // namespace graphrec
