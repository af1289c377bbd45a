// Subcommand registry for the vitrine binary. Each cli/<name>.cc registers
// itself with VITRINE_COMMAND; main() dispatches on argv[1].
//
// Exit codes (docs/architecture.md): 0 ok, 1 runtime error, 2 usage error.
#pragma once

#include <cxxopts.hpp>
#include <functional>
#include <string>
#include <vector>

#include "core/cluster.h"
#include "core/status.h"

namespace vitrine::cli {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

struct Command {
  std::string name;
  std::string summary;  // one line for `vitrine --help`
  std::function<int(int argc, char** argv)> run;
};

std::vector<Command>& Registry();

struct Registrar {
  Registrar(std::string name, std::string summary, std::function<int(int, char**)> run);
};

#define VITRINE_COMMAND(name, summary, fn) \
  static ::vitrine::cli::Registrar VITRINE_CONCAT_(vitrine_cmd_, __LINE__)(name, summary, fn)

// Prints "vitrine <cmd>: <status message>" to stderr and returns exit code 1.
int Fail(const std::string& cmd, const Status& st);
// Prints "vitrine <cmd>: <msg>\nTry 'vitrine <cmd> --help'." and returns 2.
int UsageError(const std::string& cmd, const std::string& msg);
// An on|off flag's value: true for "on", false for "off", else
// InvalidArgument "--<flag> must be on or off, got '<value>'".
Result<bool> ParseOnOff(const std::string& flag, const std::string& value);

// Parses argv with `opts` and handles --help (prints help and `example`, exits 0) and
// unknown/malformed flags (exit 2). Returns nullopt-equivalent through
// `exit_code` >= 0 when the caller should return immediately.
struct Parsed {
  cxxopts::ParseResult result;
  int exit_code = -1;  // >= 0: return this now
};
Parsed ParseOrExit(cxxopts::Options& opts, int argc, char** argv, const std::string& cmd,
                   const std::vector<std::string>& required = {}, const std::string& example = "");

// Under mpirun (core/cluster.h): joins the job, and makes ranks other than
// 0 quiet so that the job prints one set of progress lines. nullptr without
// mpirun.
Result<Cluster*> JoinCluster();
// Fail(), and with more than one rank also stops every rank of the job: the
// others would otherwise wait forever in the next collective.
int FailCluster(const std::string& cmd, const Status& st, Cluster* cluster);

}  // namespace vitrine::cli
