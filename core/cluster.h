// Cluster: the ranks of a run that mpirun started, as the rest of vitrine
// sees them (docs/scale.md, "Training on MPI").
//
// vitrine never links MPI. When a process finds that mpirun started it
// (OpenMPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE / PMIX_RANK of other
// launchers), JoinLaunchedCluster() loads the plugin libvitrine_mpi.so from
// beside the executable (built only where libopenmpi-dev was found) and
// initialises MPI through it. Without mpirun nothing is loaded, so a machine
// without OpenMPI runs vitrine unchanged.
//
// The collectives are the few that blocked ALS and the all-users scoring
// need. Every rank must make the same calls in the same order (MPI's rule);
// a rank that fails calls Abort, which stops every rank, rather than leaving
// the others waiting in a collective.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace vitrine {

class Cluster {
 public:
  virtual ~Cluster() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Element-wise sum over all ranks, in place, on every rank.
  virtual Status AllreduceSum(std::span<double> values) = 0;
  // Minimum over all ranks, on every rank.
  virtual Result<int64_t> AllreduceMin(int64_t value) = 0;
  // `rows` is a row-major matrix of `width` floats per row, identical in
  // shape on every rank; rank r owns rows [row_offsets[r], row_offsets[r+1]).
  // Afterwards every rank holds every rank's rows.
  virtual Status AllgatherRows(std::span<float> rows, int width,
                               std::span<const int64_t> row_offsets) = 0;
  // Rank 0 receives every rank's bytes in rank order (its own first); the
  // other ranks' `all` is left empty. Any size: sent in pieces below 1 GiB.
  virtual Status GatherToRoot(const std::string& mine, std::vector<std::string>* all) = 0;
  // Stops every rank of the job with this exit code; does not return.
  [[noreturn]] virtual void Abort(int exit_code) = 0;
};

// True when this process was started by mpirun (or another MPI launcher).
bool LaunchedByMpi();

// The cluster of this process: nullptr without an MPI launcher, otherwise the
// joined cluster (one per process, joined once, finalised at exit). Errors:
// started by mpirun but the plugin is missing (vitrine built without
// libopenmpi-dev) or cannot be loaded, or MPI fails to start.
Result<Cluster*> JoinLaunchedCluster();

// The split of a CSR matrix's rows (indptr: rows + 1 offsets) into `parts`
// contiguous blocks of about equal cost, where a row costs 1 plus its
// nonzeros. Every cut is a multiple of `align` rows (so a block may be
// empty when there are few rows). Returns parts + 1 row offsets, 0 first and
// rows last; the same inputs give the same split on every rank.
std::vector<int64_t> BalancedRowBlocks(std::span<const int64_t> indptr, int parts,
                                       int64_t align = 1);

}  // namespace vitrine
