// core/cluster.h on MPI: the plugin libvitrine_mpi.so. Uses MPI's C API,
// MPI_THREAD_FUNNELED (only the main thread calls MPI; OpenMP threads do the
// work between calls), and finalises MPI when the process exits.
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/cluster.h"

namespace vitrine {
namespace {

// MPI counts are int: large transfers go in pieces of at most this many bytes.
constexpr int64_t kMaxPiece = int64_t{1} << 30;

Status MpiError(const char* what, int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return Status::IOError(std::string("mpi: ") + what + ": " + std::string(text, len));
}

class MpiCluster final : public Cluster {
 public:
  MpiCluster(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Status AllreduceSum(std::span<double> values) override {
    for (size_t begin = 0; begin < values.size(); begin += kMaxPiece / sizeof(double)) {
      const size_t n = std::min<size_t>(kMaxPiece / sizeof(double), values.size() - begin);
      const int rc = MPI_Allreduce(MPI_IN_PLACE, values.data() + begin, static_cast<int>(n),
                                   MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      if (rc != MPI_SUCCESS) return MpiError("allreduce", rc);
    }
    return Status::OK();
  }

  Result<int64_t> AllreduceMin(int64_t value) override {
    long long v = value;
    const int rc = MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return MpiError("allreduce", rc);
    return static_cast<int64_t>(v);
  }

  // One broadcast per rank's block (in pieces below 1 GiB): simple, and the
  // same volume as an allgather.
  Status AllgatherRows(std::span<float> rows, int width,
                       std::span<const int64_t> row_offsets) override {
    if (row_offsets.size() != static_cast<size_t>(size_) + 1) {
      return Status::Internal("mpi: allgather needs size + 1 row offsets");
    }
    const int64_t piece_rows = std::max<int64_t>(1, kMaxPiece / (4 * std::max(width, 1)));
    for (int owner = 0; owner < size_; ++owner) {
      for (int64_t r = row_offsets[owner]; r < row_offsets[owner + 1]; r += piece_rows) {
        const int64_t n = std::min(piece_rows, row_offsets[owner + 1] - r);
        const int rc = MPI_Bcast(rows.data() + r * width, static_cast<int>(n * width), MPI_FLOAT,
                                 owner, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return MpiError("broadcast", rc);
      }
    }
    return Status::OK();
  }

  Status GatherToRoot(const std::string& mine, std::vector<std::string>* all) override {
    all->clear();
    if (rank_ != 0) {
      long long size = static_cast<long long>(mine.size());
      int rc = MPI_Send(&size, 1, MPI_LONG_LONG, 0, 0, MPI_COMM_WORLD);
      if (rc != MPI_SUCCESS) return MpiError("send", rc);
      for (size_t begin = 0; begin < mine.size(); begin += kMaxPiece) {
        const size_t n = std::min<size_t>(kMaxPiece, mine.size() - begin);
        rc = MPI_Send(mine.data() + begin, static_cast<int>(n), MPI_CHAR, 0, 1, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return MpiError("send", rc);
      }
      return Status::OK();
    }
    all->resize(static_cast<size_t>(size_));
    (*all)[0] = mine;
    for (int from = 1; from < size_; ++from) {
      long long size = 0;
      int rc = MPI_Recv(&size, 1, MPI_LONG_LONG, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS) return MpiError("receive", rc);
      std::string& bytes = (*all)[static_cast<size_t>(from)];
      bytes.resize(static_cast<size_t>(size));
      for (size_t begin = 0; begin < bytes.size(); begin += kMaxPiece) {
        const size_t n = std::min<size_t>(kMaxPiece, bytes.size() - begin);
        rc = MPI_Recv(bytes.data() + begin, static_cast<int>(n), MPI_CHAR, from, 1,
                      MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return MpiError("receive", rc);
      }
    }
    return Status::OK();
  }

  [[noreturn]] void Abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this is for the compiler
  }

 private:
  int rank_;
  int size_;
};

void FinalizeAtExit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace
}  // namespace vitrine

extern "C" __attribute__((visibility("default"))) vitrine::Cluster* vitrine_mpi_open(
    std::string* error) {
  int provided = 0;
  const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS) {
    *error = "MPI_Init_thread failed (code " + std::to_string(rc) + ")";
    return nullptr;
  }
  // Errors come back as codes (and become a Status) instead of aborting.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::atexit(vitrine::FinalizeAtExit);
  static vitrine::MpiCluster cluster(rank, size);
  return &cluster;
}
