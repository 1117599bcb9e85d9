#include "src/storage/daemon_config.h"

#include <sys/stat.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace juke::storage {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view what,
                 absl::string_view fix) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": ", what, "; ", fix));
}

bool IsHostPort(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  int port = -1;
  return absl::SimpleAtoi(address.substr(colon + 1), &port) && port >= 0 &&
         port <= 65535;
}

// Removes trailing slashes so that "/d/1/" and "/d/1" count as one disk.
std::string Normalize(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

}  // namespace

bool IsValidName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!absl::ascii_isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (!absl::ascii_isalnum(u) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

absl::Status ValidateConfig(const DaemonConfig& config) {
  constexpr absl::string_view kNameRule =
      "use 1 to 63 characters of letters, digits, '.', '_' and '-', "
      "starting with a letter or digit";

  if (config.host_id.empty()) {
    return Bad("host_id", "missing", "name this host, e.g. --host_id=node-1");
  }
  if (!IsValidName(config.host_id)) {
    return Bad("host_id", absl::StrCat("'", config.host_id, "' is not valid"),
               kNameRule);
  }
  if (!IsValidName(config.pool_id)) {
    return Bad("pool_id", absl::StrCat("'", config.pool_id, "' is not valid"),
               kNameRule);
  }
  struct Label {
    const char* flag;
    const std::string* value;
  };
  for (const Label& label :
       {Label{"region", &config.region}, Label{"zone", &config.zone},
        Label{"cluster", &config.cluster}}) {
    if (!label.value->empty() && !IsValidName(*label.value)) {
      return Bad(label.flag, absl::StrCat("'", *label.value, "' is not valid"),
                 kNameRule);
    }
  }

  if (config.disks.empty()) {
    return Bad("disks", "no disks given",
               "list this host's disk directories, e.g. "
               "--disks=/var/lib/juke/disk0,/var/lib/juke/disk1");
  }
  std::set<std::string> seen;
  for (const std::string& raw : config.disks) {
    std::string disk = Normalize(raw);
    if (disk.empty() || disk[0] != '/') {
      return Bad("disks", absl::StrCat("'", raw, "' is not an absolute path"),
                 "give each disk directory as an absolute path");
    }
    if (!seen.insert(disk).second) {
      return Bad("disks", absl::StrCat("'", raw, "' is listed twice"),
                 "list each disk once");
    }
    struct stat st;
    if (stat(disk.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Bad("disks",
                 absl::StrCat("'", raw,
                              "' does not exist or is not a "
                              "directory"),
                 "create and mount the disk directory first");
    }
  }

  if (!IsHostPort(config.listen)) {
    return Bad("listen", absl::StrCat("'", config.listen, "' is not HOST:PORT"),
               "e.g. --listen=0.0.0.0:7420");
  }
  if (!config.advertise.empty() && !IsHostPort(config.advertise)) {
    return Bad("advertise",
               absl::StrCat("'", config.advertise, "' is not HOST:PORT"),
               "give the address peers dial, e.g. --advertise=10.0.0.5:7420");
  }
  if (!config.metrics_listen.empty() && !IsHostPort(config.metrics_listen)) {
    return Bad("metrics_listen",
               absl::StrCat("'", config.metrics_listen, "' is not HOST:PORT"),
               "e.g. --metrics_listen=0.0.0.0:7421, or empty to disable");
  }
  if (config.etcd_endpoints.empty()) {
    return Bad("etcd", "no endpoints given",
               "point at the pool's etcd, e.g. --etcd=127.0.0.1:2379");
  }
  for (const std::string& endpoint : config.etcd_endpoints) {
    if (!IsHostPort(endpoint)) {
      return Bad("etcd", absl::StrCat("'", endpoint, "' is not HOST:PORT"),
                 "e.g. --etcd=10.0.0.1:2379,10.0.0.2:2379");
    }
  }
  if (config.lease_ttl_seconds < 2 || config.lease_ttl_seconds > 300) {
    return Bad("lease_ttl",
               absl::StrCat(config.lease_ttl_seconds, "s is out of range"),
               "use 2 to 300 seconds");
  }
  if (config.recovery_interval_seconds < 0 ||
      config.recovery_interval_seconds > 3600) {
    return Bad(
        "recovery_interval",
        absl::StrCat(config.recovery_interval_seconds, "s is out of range"),
        "use 1 to 3600 seconds, or 0 to turn recovery off");
  }
  if (config.recovery_mib_per_second > (1ull << 20)) {
    return Bad("recovery_rate_mib",
               absl::StrCat(config.recovery_mib_per_second, " is too high"),
               "use up to 1048576 MiB/s, or 0 for no limit");
  }
  constexpr uint64_t kBlock = 4096;
  if (config.max_chunk_size < kBlock || config.max_chunk_size > (1ull << 30) ||
      config.max_chunk_size % kBlock != 0) {
    return Bad("max_chunk_size",
               absl::StrCat(config.max_chunk_size, " is not allowed"),
               "use a multiple of 4096 between 4 KiB and 1 GiB");
  }
  return absl::OkStatus();
}

}  // namespace juke::storage
