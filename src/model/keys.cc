#include "src/model/keys.h"

#include "absl/strings/str_cat.h"

namespace juke {
namespace {

bool IsPlain(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string EscapeKeySegment(absl::string_view id) {
  constexpr char kHex[] = "0123456789ABCDEF";
  const bool all_dots = id == "." || id == "..";
  std::string out;
  out.reserve(id.size());
  for (char ch : id) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (IsPlain(c) && !all_dots) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

absl::StatusOr<std::string> UnescapeKeySegment(absl::string_view segment) {
  std::string out;
  out.reserve(segment.size());
  for (size_t i = 0; i < segment.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(segment[i]);
    if (c == '%') {
      int hi = i + 2 < segment.size() ? HexValue(segment[i + 1]) : -1;
      int lo = i + 2 < segment.size() ? HexValue(segment[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad escape in key segment \"", segment, "\""));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (IsPlain(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unescaped byte in key segment \"", segment, "\""));
    }
  }
  return out;
}

std::string HostKey(absl::string_view host_id) {
  return absl::StrCat(kHostsPrefix, EscapeKeySegment(host_id));
}

std::string AliveKey(absl::string_view host_id) {
  return absl::StrCat(kAlivePrefix, EscapeKeySegment(host_id));
}

std::string FenceKey(absl::string_view volume_id) {
  return absl::StrCat(kFencesPrefix, EscapeKeySegment(volume_id));
}

}  // namespace juke
