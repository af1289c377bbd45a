// vitrine: recommendation retrieval for retail catalogs.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <typeinfo>

#include "cli/command.h"
#include "core/progress.h"
#include "core/value_parse.h"
#include "core/version.h"

namespace vitrine::cli {

std::vector<Command>& Registry() {
  static std::vector<Command> commands;
  return commands;
}

Registrar::Registrar(std::string name, std::string summary, std::function<int(int, char**)> run) {
  Registry().push_back({std::move(name), std::move(summary), std::move(run)});
}

int Fail(const std::string& cmd, const Status& st) {
  std::fprintf(stderr, "vitrine %s: %s\n", cmd.c_str(), st.message().c_str());
  return kExitRuntime;
}

int UsageError(const std::string& cmd, const std::string& msg) {
  std::fprintf(stderr, "vitrine %s: %s\nTry 'vitrine %s --help'.\n", cmd.c_str(), msg.c_str(),
               cmd.c_str());
  return kExitUsage;
}

Result<bool> ParseOnOff(const std::string& flag, const std::string& value) {
  if (value == "on" || value == "off") return value == "on";
  return Status::InvalidArgument("--" + flag + " must be on or off, got '" + value + "'");
}

namespace {

// cxxopts says "Argument 'abc' failed to parse" without the flag; the flag
// is the argument that precedes the value (or holds it after '=').
std::string NameTheFlag(const std::string& message, int argc, char** argv) {
  // The value sits between the first pair of quotes (cxxopts uses U+2018/9).
  const std::string open = "\u2018", close = "\u2019";
  const size_t a = message.find(open);
  const size_t b = a == std::string::npos ? a : message.find(close, a + open.size());
  if (b == std::string::npos) return message;
  const std::string value = message.substr(a + open.size(), b - a - open.size());
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    if (arg.rfind("-", 0) == 0 && eq != std::string::npos && arg.substr(eq + 1) == value) {
      return arg.substr(0, eq) + ": cannot read '" + value + "' (expected a number)";
    }
    if (arg == value && i > 1 && argv[i - 1][0] == '-') {
      return std::string(argv[i - 1]) + ": cannot read '" + value + "' (expected a number)";
    }
  }
  return message;
}

}  // namespace

Parsed ParseOrExit(cxxopts::Options& opts, int argc, char** argv, const std::string& cmd,
                   const std::vector<std::string>& required, const std::string& example) {
  Parsed p;
  opts.add_options("Common")("h,help", "Show this help")("q,quiet", "No progress on stderr");
  try {
    p.result = opts.parse(argc, argv);
  } catch (const cxxopts::exceptions::incorrect_argument_type& e) {
    p.exit_code = UsageError(cmd, NameTheFlag(e.what(), argc, argv));
    return p;
  } catch (const cxxopts::exceptions::exception& e) {
    p.exit_code = UsageError(cmd, e.what());
    return p;
  }
  if (p.result.count("help")) {
    std::cout << opts.help() << std::endl;
    if (!example.empty()) std::cout << "Example:\n" << example << std::endl;
    p.exit_code = kExitOk;
    return p;
  }
  // cxxopts reads a floating-point value with operator>>, which stops at the
  // first character that is not part of a number: "--dp-epsilon 4x" would
  // be 4. Every such value must be a whole number.
  for (const auto& kv : p.result.arguments()) {
    bool floating = false;
    try {
      (void)p.result[kv.key()].as<double>();
      floating = true;
    } catch (const std::bad_cast&) {
    }
    try {
      (void)p.result[kv.key()].as<float>();
      floating = true;
    } catch (const std::bad_cast&) {
    }
    if (floating && !ParseNumber(kv.value())) {
      p.exit_code = UsageError(
          cmd, "--" + kv.key() + ": cannot read '" + kv.value() + "' (expected a number)");
      return p;
    }
  }
  if (!p.result.unmatched().empty()) {
    p.exit_code = UsageError(cmd, "unexpected argument '" + p.result.unmatched()[0] + "'");
    return p;
  }
  for (const auto& r : required) {
    if (!p.result.count(r)) {
      p.exit_code = UsageError(cmd, "missing required option --" + r);
      return p;
    }
  }
  if (p.result.count("quiet")) SetQuiet(true);
  return p;
}

Result<Cluster*> JoinCluster() {
  auto cluster = JoinLaunchedCluster();
  if (cluster.ok() && *cluster != nullptr && (*cluster)->rank() != 0) SetQuiet(true);
  return cluster;
}

int FailCluster(const std::string& cmd, const Status& st, Cluster* cluster) {
  const int code = Fail(cmd, st);
  if (cluster != nullptr && cluster->size() > 1) cluster->Abort(code);
  return code;
}

namespace {
// The commands that split their work across MPI ranks (docs/scale.md).
bool RunsOnCluster(const std::string& command) {
  return command == "build" || command == "recommend";
}

// The job's rank count and this process's rank from the launcher's
// environment, without starting MPI; 1 and 0 when not launched by one.
long LaunchedRanks() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    if (const char* v = std::getenv(var); v != nullptr) return std::strtol(v, nullptr, 10);
  }
  return 1;
}
long LaunchedRank() {
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMI_RANK"}) {
    if (const char* v = std::getenv(var); v != nullptr) return std::strtol(v, nullptr, 10);
  }
  return 0;
}

void PrintUsage() {
  auto cmds = Registry();
  std::sort(cmds.begin(), cmds.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  std::printf(
      "vitrine: recommendation retrieval for retail catalogs\n\n"
      "Usage: vitrine <command> [options]   (vitrine <command> --help for details)\n\n"
      "Commands:\n");
  for (const auto& c : cmds) std::printf("  %-12s %s\n", c.name.c_str(), c.summary.c_str());
  std::printf(
      "\nExample:\n  vitrine generate --items 2000 --users 1000 --out demo/data\n"
      "  vitrine inspect --bundle demo/bundle\n");
}
}  // namespace
}  // namespace vitrine::cli

int main(int argc, char** argv) {
  using namespace vitrine::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    PrintUsage();
    return argc < 2 ? kExitUsage : kExitOk;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("vitrine %s\n", vitrine::kVersion);
    return kExitOk;
  }
  for (const auto& c : Registry()) {
    if (c.name == argv[1]) {
      if (LaunchedRanks() > 1 && !RunsOnCluster(c.name)) {
        if (LaunchedRank() == 0) {
          std::fprintf(stderr,
                       "vitrine %s: does not run across MPI ranks (only build and recommend "
                       "--all-users do); run it without mpirun\n",
                       argv[1]);
        }
        return kExitUsage;
      }
      try {
        return c.run(argc - 1, argv + 1);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "vitrine %s: internal error: %s\n", argv[1], e.what());
        return kExitRuntime;
      }
    }
  }
  std::fprintf(stderr, "vitrine: unknown command '%s'\nTry 'vitrine --help'.\n", argv[1]);
  return kExitUsage;
}
