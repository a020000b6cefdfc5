#include "protobuf_reader.hpp"

namespace graphrec {

std::string Span::str() const {
  std::string out;
  out.reserve(size);
  size_t i = 0;
  while (i < size) {
    const uint8_t c = data[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) len = 1, cp = c;
    else if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
    bool ok = len > 0 && i + len <= size;
    for (size_t k = 1; ok && k < len; ++k) {
      if ((data[i + k] & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (data[i + k] & 0x3F);
    }
    // Reject overlong forms, surrogates and out-of-range code points.
    if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
               (cp >= 0xD800 && cp <= 0xDFFF)))
      ok = false;
    if (ok) {
      out.append(reinterpret_cast<const char*>(data + i), len);
      i += len;
    } else {
      out.push_back('?');
      i += 1;
    }
  }
  return out;
}

uint64_t ProtoReader::read_varint(const uint8_t*& p, const uint8_t* end, const char* what) {
  uint64_t result = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (p >= end) fail(ErrorCode::Format, std::string("truncated varint in ") + what);
    const uint8_t b = *p++;
    if (shift == 63 && (b & 0x7E) != 0) fail(ErrorCode::Format, std::string("varint overflow in ") + what);
    result |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return result;
  }
  fail(ErrorCode::Format, std::string("varint longer than 10 bytes in ") + what);
}

bool ProtoReader::next(Field& f) {
  if (p_ >= end_) return false;
  const uint64_t key = read_varint(p_, end_, what_);
  const uint64_t number = key >> 3;
  if (number == 0 || number > 536870911ULL) fail(ErrorCode::Format, std::string("invalid field number in ") + what_);
  f.number = static_cast<uint32_t>(number);
  f.wire = static_cast<WireType>(key & 7);
  f.bytes = Span{};
  f.varint = 0;
  switch (f.wire) {
    case kVarint:
      f.varint = read_varint(p_, end_, what_);
      return true;
    case kFixed64: {
      if (end_ - p_ < 8) fail(ErrorCode::Format, std::string("truncated fixed64 in ") + what_);
      uint64_t v = 0;
      for (int i = 7; i >= 0; --i) v = (v << 8) | p_[i];
      f.varint = v;
      p_ += 8;
      return true;
    }
    case kFixed32: {
      if (end_ - p_ < 4) fail(ErrorCode::Format, std::string("truncated fixed32 in ") + what_);
      uint32_t v = 0;
      for (int i = 3; i >= 0; --i) v = (v << 8) | p_[i];
      f.varint = v;
      p_ += 4;
      return true;
    }
    case kLen: {
      const uint64_t len = read_varint(p_, end_, what_);
      if (len > static_cast<uint64_t>(end_ - p_))
        fail(ErrorCode::Format, std::string("length-delimited field runs past the end of the data (truncated or corrupt) in ") + what_);
      f.bytes = Span{p_, static_cast<size_t>(len)};
      p_ += len;
      return true;
    }
    default:
      fail(ErrorCode::Format, std::string("unsupported wire type (groups or invalid) in ") + what_);
  }
}

std::vector<Field> read_fields(Span span, size_t max_fields, bool truncate, const char* what) {
  std::vector<Field> out;
  ProtoReader r(span, what);
  Field f;
  while (true) {
    if (out.size() >= max_fields) {
      if (truncate) break;
      Field extra;
      if (!r.next(extra)) break;
      fail(ErrorCode::Limit, std::string("more than ") + std::to_string(max_fields) + " fields in " + what);
    }
    if (!r.next(f)) break;
    out.push_back(f);
  }
  return out;
}

std::vector<uint64_t> read_packed_varints(Span span, size_t limit, const char* what) {
  std::vector<uint64_t> out;
  const uint8_t* p = span.data;
  const uint8_t* end = p + span.size;
  while (p < end && out.size() < limit) out.push_back(ProtoReader::read_varint(p, end, what));
  return out;
}

}  // namespace graphrec
