#pragma once

namespace juke {

// The version of every Juke program, kept equal to the Helm chart's
// appVersion (deploy/helm/juke/Chart.yaml).
inline constexpr char kJukeVersion[] = "0.1.0";

}  // namespace juke
