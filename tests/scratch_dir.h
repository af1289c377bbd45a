// A scratch directory for one test program: created on first use under the
// system temp directory, unique to the process, removed after the last test.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <system_error>

#include "tests/test_util.h"  // WriteText, Slurp

namespace vitrine {

inline const std::filesystem::path& ScratchDir() {
  static const std::filesystem::path root = [] {
    std::filesystem::path p =
        std::filesystem::temp_directory_path() / ("vitrine_test_" + std::to_string(::getpid()) +
                                                  "_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(p);
    return p;
  }();
  return root;
}

class RemoveScratchDir : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(ScratchDir(), ec);
  }
};
// Registered once per test program (an inline variable), before RUN_ALL_TESTS.
inline const ::testing::Environment* const kRemoveScratchDir =
    ::testing::AddGlobalTestEnvironment(new RemoveScratchDir);

}  // namespace vitrine
