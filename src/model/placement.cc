#include "src/model/placement.h"

#include <xxhash.h>

#include <bit>
#include <cmath>
#include <map>
#include <utility>

#include "absl/numeric/int128.h"
#include "absl/strings/str_cat.h"

namespace juke {
namespace {

// Appends `v` as 8 little-endian bytes, whatever the machine's order.
void AppendUint64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

// Hashes the chunk's part of the input once for all disks: its volume id,
// length-prefixed, and its index, as little-endian bytes. The disk id is
// hashed whole with this as the seed.
uint64_t ChunkSeed(absl::string_view volume_id, uint64_t chunk_index) {
  std::string buffer;
  buffer.reserve(16 + volume_id.size());
  AppendUint64(&buffer, volume_id.size());
  buffer.append(volume_id.data(), volume_id.size());
  AppendUint64(&buffer, chunk_index);
  return XXH3_64bits(buffer.data(), buffer.size());
}

uint64_t DiskHash(uint64_t seed, absl::string_view disk_id) {
  return XXH3_64bits_withSeed(disk_id.data(), disk_id.size(), seed);
}

}  // namespace

namespace placement_internal {

uint64_t Log2BitByBit(uint64_t x) {
  if (x == 0) return 0;  // Outside the domain; keeps shifts defined.
  // The integer part is the position of the highest bit; the fraction is
  // the log2 of the mantissa m = x / 2^p in [1, 2), held in Q2.62. Squaring
  // m doubles its log2; whenever the square reaches 2, the next bit of the
  // fraction is 1 and m is halved back into [1, 2).
  const int p = 63 - std::countl_zero(x);
  uint64_t m = p <= 62 ? x << (62 - p) : x >> 1;
  uint64_t fraction = 0;
  for (int i = 0; i < kLogFractionBits; ++i) {
    m = absl::Uint128Low64((absl::uint128(m) * m) >> 62);
    fraction <<= 1;
    if (m >= (uint64_t{1} << 63)) {
      m >>= 1;
      fraction |= 1;
    }
  }
  return (static_cast<uint64_t>(p) << kLogFractionBits) | fraction;
}

namespace {

// FixedLog2() splits the mantissa m in [1, 2) as m1 * (1 + e), where m1 =
// 1 + i / 4096 takes the top kTableBits bits after the leading one and
// e < 2^-12; log2(m1) comes from a table, log2(1 + e) from three terms of
// its series, whose first left-out term, e^4 / 4, is below 2^-50.
constexpr int kTableBits = 12;
constexpr int kTableSize = 1 << kTableBits;
// Bits of the normalised mantissa (leading one at bit 63) below the index.
constexpr int kRestBits = 63 - kTableBits;
// log2(e) in Q2.62.
constexpr uint64_t kLog2EQ62 = 6653256548922161245u;

struct Log2Tables {
  uint64_t log2_m1[kTableSize];     // log2(m1), kLogFractionBits of fraction.
  uint64_t inverse_m1[kTableSize];  // floor(2^126 / (m1 * 2^63)).
};

// Built from integer arithmetic only, so the same on every machine.
const Log2Tables& Tables() {
  static const Log2Tables* const tables = [] {
    auto* t = new Log2Tables;
    for (int i = 0; i < kTableSize; ++i) {
      const uint64_t m1 = static_cast<uint64_t>(kTableSize + i) << kRestBits;
      t->log2_m1[i] = Log2BitByBit(kTableSize + i) -
                      (uint64_t{kTableBits} << kLogFractionBits);
      t->inverse_m1[i] = absl::Uint128Low64((absl::uint128(1) << 126) / m1);
    }
    return t;
  }();
  return *tables;
}

}  // namespace

uint64_t FixedLog2(uint64_t x) {
  if (x == 0) return 0;  // Outside the domain; keeps shifts defined.
  const Log2Tables& tables = Tables();
  const int p = 63 - std::countl_zero(x);
  const uint64_t m = x << (63 - p);  // Q1.63, in [1, 2).
  const auto i = static_cast<size_t>((m >> kRestBits) & (kTableSize - 1));
  const uint64_t rest = m & ((uint64_t{1} << kRestBits) - 1);

  // e = rest / m1 in Q0.64, below 2^52; then e - e^2/2 + e^3/3.
  const uint64_t e =
      absl::Uint128Low64((absl::uint128(rest) * tables.inverse_m1[i]) >> 62);
  const uint64_t e2 = absl::Uint128High64(absl::uint128(e) * e);
  const uint64_t e3 = absl::Uint128High64(absl::uint128(e2) * e);
  const uint64_t ln = e - e2 / 2 + e3 / 3;
  const uint64_t log2_rest =
      absl::Uint128Low64((absl::uint128(ln) * kLog2EQ62) >> 62);

  return (static_cast<uint64_t>(p) << kLogFractionBits) + tables.log2_m1[i] +
         (log2_rest >> (64 - kLogFractionBits));
}

uint64_t PlacementHash(absl::string_view volume_id, uint64_t chunk_index,
                       absl::string_view disk_id) {
  return DiskHash(ChunkSeed(volume_id, chunk_index), disk_id);
}

}  // namespace placement_internal

namespace {

using placement_internal::FixedLog2;
using placement_internal::kLogFractionBits;

// The draw of straw2 is ln(u) / weight for u uniform in (0, 1]; the disk
// with the largest draw wins. Here u = (h + 1) / 2^kHashBits for the top
// kHashBits bits h of the hash, and the draw is carried as its negation in
// base 2, cost = -log2(u) = kHashBits - log2(h + 1) in fixed point, which
// is at least 0; the smallest cost / weight wins. Integer arithmetic
// throughout, so every machine agrees to the last bit.
constexpr int kHashBits = 52;
constexpr uint64_t kMaxCost = uint64_t{kHashBits} << kLogFractionBits;

// Weights are placed in units of 1/65536.
constexpr double kWeightScale = 65536.0;

uint64_t Cost(uint64_t hash) {
  const uint64_t log = FixedLog2((hash >> (64 - kHashBits)) + 1);
  // An overshoot of the approximation near 2^52 must not wrap around.
  return log >= kMaxCost ? 0 : kMaxCost - log;
}

std::string Plural(int n, absl::string_view noun) {
  return absl::StrCat(n, " ", noun, n == 1 ? "" : "s");
}

absl::Status CheckReplicas(int replicas) {
  if (replicas < kMinReplicas || replicas > kMaxReplicas) {
    return absl::InvalidArgumentError(
        absl::StrCat("replicas must be from ", kMinReplicas, " to ",
                     kMaxReplicas, ", not ", replicas));
  }
  return absl::OkStatus();
}

}  // namespace

ChunkPlacer::ChunkPlacer(const ClusterMap& map, FailureDomain level)
    : level_(level) {
  std::map<std::string, uint32_t> domains;
  for (const MapDisk& d : map.disks()) {
    // Rounding a product by a power of two is exact and the same everywhere.
    const auto units =
        static_cast<uint64_t>(std::llround(d.weight * kWeightScale));
    if (!d.in || units == 0) continue;
    auto [it, inserted] = domains.emplace(
        FailureDomainKey(d, level), static_cast<uint32_t>(domains.size()));
    candidates_.push_back({d.disk_id, units, it->second});
  }
  domain_count_ = static_cast<uint32_t>(domains.size());
}

absl::Status ChunkPlacer::CheckPlaceable(int replicas) const {
  if (absl::Status s = CheckReplicas(replicas); !s.ok()) return s;
  if (static_cast<uint32_t>(replicas) <= domain_count_) return absl::OkStatus();
  const absl::string_view noun = FailureDomainName(level_);
  return absl::FailedPreconditionError(absl::StrCat(
      Plural(replicas, "replica"), replicas == 1 ? " needs " : " need ",
      replicas, " distinct ", noun, replicas == 1 ? "" : "s", "; the map has ",
      Plural(static_cast<int>(domain_count_), noun), " with disks in"));
}

absl::StatusOr<std::vector<std::string>> ChunkPlacer::Place(
    absl::string_view volume_id, uint64_t chunk_index, int replicas) const {
  if (absl::Status s = CheckPlaceable(replicas); !s.ok()) return s;

  const uint64_t seed = ChunkSeed(volume_id, chunk_index);
  std::vector<uint64_t> costs(candidates_.size());
  for (size_t i = 0; i < candidates_.size(); ++i) {
    costs[i] = Cost(DiskHash(seed, candidates_[i].disk_id));
  }

  // Whether candidate i draws better than j: cost_i / w_i < cost_j / w_j,
  // compared exactly as cost_i * w_j < cost_j * w_i (under 2^100), then by
  // disk id.
  auto better = [&](size_t i, size_t j) {
    const absl::uint128 a =
        absl::uint128(costs[i]) * candidates_[j].weight_units;
    const absl::uint128 b =
        absl::uint128(costs[j]) * candidates_[i].weight_units;
    if (a != b) return a < b;
    return candidates_[i].disk_id < candidates_[j].disk_id;
  };

  // Greedy in draw order: each replica goes to the best disk of a domain
  // that holds none yet. Picking the best remaining one each round is the
  // same as walking the sorted order, without sorting.
  std::vector<bool> domain_used(domain_count_, false);
  std::vector<std::string> chosen;
  chosen.reserve(replicas);
  for (int r = 0; r < replicas; ++r) {
    size_t best = candidates_.size();
    for (size_t i = 0; i < candidates_.size(); ++i) {
      if (domain_used[candidates_[i].domain]) continue;
      if (best == candidates_.size() || better(i, best)) best = i;
    }
    domain_used[candidates_[best].domain] = true;
    chosen.push_back(candidates_[best].disk_id);
  }
  return chosen;
}

absl::Status CheckPlaceable(const ClusterMap& map, int replicas,
                            FailureDomain level) {
  if (absl::Status s = CheckReplicas(replicas); !s.ok()) return s;
  return ChunkPlacer(map, level).CheckPlaceable(replicas);
}

absl::StatusOr<std::vector<std::string>> PlaceChunk(const ClusterMap& map,
                                                    absl::string_view volume_id,
                                                    uint64_t chunk_index,
                                                    int replicas,
                                                    FailureDomain level) {
  if (absl::Status s = CheckReplicas(replicas); !s.ok()) return s;
  return ChunkPlacer(map, level).Place(volume_id, chunk_index, replicas);
}

}  // namespace juke
