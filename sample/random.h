// Random numbers for the sample generator (internal to sample/). Every draw
// is our own function of std::mt19937_64 output (whose sequence the standard
// fixes), never a std:: distribution, so generated files do not change with
// the standard library's distribution implementations.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

namespace vitrine::sample {

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : eng_(seed) {}
  // One independent stream per generator stage, so changing how one stage
  // draws does not shift every later stage.
  static Rng ForStage(uint64_t seed, uint64_t stage) {
    return Rng(SplitMix64(seed ^ SplitMix64(stage + 0x51a7e)));
  }
  double Uniform() { return static_cast<double>(eng_() >> 11) * 0x1.0p-53; }  // [0, 1)
  uint64_t Below(uint64_t n) {  // [0, n), multiply-shift
    __extension__ using U128 = unsigned __int128;
    return static_cast<uint64_t>((static_cast<U128>(eng_()) * n) >> 64);
  }
  bool Bernoulli(double p) { return Uniform() < p; }
  double Normal() {  // Box-Muller, one value per call (simple and stateless)
    const double u1 = 1.0 - Uniform();
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double Jitter() { return 0.8 + 0.4 * Uniform(); }
  // Index drawn proportional to w[0..n) (linear scan: small n only).
  int Pick(const double* w, int n) {
    double total = 0;
    for (int i = 0; i < n; ++i) total += w[i];
    double u = Uniform() * total;
    for (int i = 0; i < n; ++i) {
      if (u < w[i]) return i;
      u -= w[i];
    }
    return n - 1;
  }

 private:
  std::mt19937_64 eng_;
};

}  // namespace vitrine::sample
