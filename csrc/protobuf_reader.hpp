// A bounds-checked reader of the protobuf wire format (no protobuf library).
// It never copies length-delimited payloads: sub-messages and bytes fields are
// returned as spans into the caller's buffer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "errors.hpp"

namespace graphrec {

struct Span {
  const uint8_t* data = nullptr;
  size_t size = 0;
  bool empty() const noexcept { return size == 0; }
  // The bytes as a string; invalid UTF-8 sequences (hostile files) become '?', so every
  // name handed to Python is valid text.
  std::string str() const;
};

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

struct Field {
  uint32_t number = 0;
  WireType wire = kVarint;
  uint64_t varint = 0;  // kVarint, kFixed64, kFixed32 (raw bits)
  Span bytes;           // kLen
};

class ProtoReader {
 public:
  ProtoReader(Span span, const char* what) : p_(span.data), end_(span.data + span.size), what_(what) {}
  bool next(Field& f);
  static uint64_t read_varint(const uint8_t*& p, const uint8_t* end, const char* what);

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const char* what_;
};

// Decodes every element of a packed repeated varint field, or one element of an
// unpacked one, calling fn(uint64_t) for each.
template <class Fn>
void for_each_varint(const Field& f, const char* what, Fn&& fn) {
  if (f.wire == kVarint) {
    fn(f.varint);
    return;
  }
  if (f.wire != kLen) fail(ErrorCode::Format, std::string("bad wire type for repeated integer in ") + what);
  const uint8_t* p = f.bytes.data;
  const uint8_t* end = p + f.bytes.size;
  while (p < end) fn(ProtoReader::read_varint(p, end, what));
}

// Every field of one message level, in wire order (sub-messages are not entered).
// More than `max_fields` fields fail with ErrorCode::Limit, unless `truncate` is set:
// then the first `max_fields` are returned and the rest is not read.
std::vector<Field> read_fields(Span span, size_t max_fields, bool truncate, const char* what);

// Up to `limit` varints of a packed repeated field's payload.
std::vector<uint64_t> read_packed_varints(Span span, size_t limit, const char* what);

inline int64_t zigzag_free_int64(uint64_t v) { return static_cast<int64_t>(v); }

}  // namespace graphrec
