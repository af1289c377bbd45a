// Finding the MPI launcher and loading the MPI plugin (core/cluster.h).
#include "core/cluster.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>

namespace vitrine {

namespace {

// The plugin's one entry point (mpi/mpi_cluster.cc): starts MPI and returns
// the cluster, or nullptr with *error set.
using OpenFn = Cluster* (*)(std::string* error);
constexpr const char* kPluginName = "libvitrine_mpi.so";
constexpr const char* kOpenSymbol = "vitrine_mpi_open";

std::filesystem::path ExecutableDir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}

Result<Cluster*> Join() {
  const std::filesystem::path dir = ExecutableDir();
  // Beside the executable (the build tree), then an installed lib directory.
  const std::filesystem::path candidates[] = {dir / kPluginName,
                                              dir / ".." / "lib" / "vitrine" / kPluginName};
  std::string tried;
  for (const auto& path : candidates) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      tried += (tried.empty() ? "" : ", ") + path.lexically_normal().string();
      continue;
    }
    // RTLD_GLOBAL: OpenMPI's own components, loaded later by libmpi, expect
    // libmpi's symbols to be global.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (handle == nullptr) {
      return Status::IOError("started by mpirun, but the MPI plugin " + path.string() +
                              " does not load: " + dlerror());
    }
    auto open = reinterpret_cast<OpenFn>(dlsym(handle, kOpenSymbol));
    if (open == nullptr) {
      return Status::Internal("the MPI plugin " + path.string() + " has no " + kOpenSymbol);
    }
    std::string error;
    Cluster* cluster = open(&error);
    if (cluster == nullptr) return Status::IOError("MPI did not start: " + error);
    return cluster;
  }
  return Status::Unsupported(
      "started by mpirun, but this vitrine was built without MPI support (no " +
      std::string(kPluginName) + " at " + tried +
      "); install libopenmpi-dev (scripts/install-deps.sh) and rebuild");
}

}  // namespace

bool LaunchedByMpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') return true;
  }
  return false;
}

Result<Cluster*> JoinLaunchedCluster() {
  if (!LaunchedByMpi()) return static_cast<Cluster*>(nullptr);
  // MPI starts once per process; later calls get the same answer.
  static std::once_flag once;
  static Result<Cluster*> joined = static_cast<Cluster*>(nullptr);
  std::call_once(once, [] { joined = Join(); });
  return joined;
}

std::vector<int64_t> BalancedRowBlocks(std::span<const int64_t> indptr, int parts,
                                       int64_t align) {
  const int64_t rows = indptr.empty() ? 0 : static_cast<int64_t>(indptr.size()) - 1;
  parts = std::max(parts, 1);
  std::vector<int64_t> offsets(static_cast<size_t>(parts) + 1, rows);
  offsets[0] = 0;
  // The cost of rows [0, r) is r + indptr[r] - indptr[0]: cut where it
  // first reaches k / parts of the total.
  const int64_t total = rows + (rows > 0 ? indptr.back() - indptr.front() : 0);
  int64_t r = 0;
  for (int k = 1; k < parts; ++k) {
    const auto target = static_cast<int64_t>(static_cast<__int128>(total) * k / parts);
    while (r < rows && r + indptr[static_cast<size_t>(r)] - indptr[0] < target) ++r;
    // To the nearest multiple of align, never before the previous cut.
    const int64_t a = std::max<int64_t>(align, 1);
    const int64_t aligned = std::min(rows, (r + a / 2) / a * a);
    offsets[static_cast<size_t>(k)] = std::max(offsets[static_cast<size_t>(k) - 1], aligned);
  }
  return offsets;
}

}  // namespace vitrine
