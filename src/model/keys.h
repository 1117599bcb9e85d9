#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// Where the shared model lives in etcd. Every Juke key starts with
// kKeyRoot; the layout is described in docs/etcd-layout.md. Ids are opaque
// and may hold any byte, so an id always goes through EscapeKeySegment()
// before it becomes part of a key.
namespace juke {

inline constexpr char kKeyRoot[] = "/juke/v1/";
// /juke/v1/hosts/<escaped host id> -> HostRecord JSON, persistent.
inline constexpr char kHostsPrefix[] = "/juke/v1/hosts/";
// /juke/v1/alive/<escaped host id> -> small JSON, on the host's lease.
inline constexpr char kAlivePrefix[] = "/juke/v1/alive/";

// Percent-encodes every byte outside [A-Za-z0-9._-] as %XX (upper-case
// hex), so the result holds no '/' and sorts and compares byte for byte.
// The segments "." and ".." are encoded too ("%2E", "%2E%2E"), so that an
// escaped id is also a safe file name.
std::string EscapeKeySegment(absl::string_view id);

// Reverses EscapeKeySegment(). InvalidArgument for a malformed %XX or a
// byte that escaping would have encoded.
absl::StatusOr<std::string> UnescapeKeySegment(absl::string_view segment);

std::string HostKey(absl::string_view host_id);
std::string AliveKey(absl::string_view host_id);

// The highest writer generation handed out for a volume, written in the
// same transaction as the attachment that took it. Storage daemons read
// every one of them before they serve, so a daemon that was away while a
// volume moved still refuses the old writer.
inline constexpr char kFencesPrefix[] = "/juke/v1/fences/";
std::string FenceKey(absl::string_view volume_id);

}  // namespace juke
