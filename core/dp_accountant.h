// Privacy accounting for user-level differentially private training
// (`build --dp-epsilon`, docs/privacy.md): how much noise a Gaussian release
// needs, what a run of releases costs, and which keys are safe to publish.
//
// The currency is zero-concentrated DP (rho-zCDP, Bun & Steinke 2016,
// "Concentrated Differential Privacy: Simplifications, Extensions, and Lower
// Bounds"): a Gaussian mechanism has a closed-form rho, and the rho of a
// sequence of releases is simply their sum, so the ledger never needs the
// numerical composition machinery of RDP or PLD accountants. A user asks for
// (epsilon, delta); RhoFromEpsilon turns that into a rho budget, training
// spends it with GaussianSigma, and the ledger turns what was spent back into
// the epsilon that is reported:
//
//   VITRINE_RETURN_IF_ERROR(CheckDpBudget(epsilon, delta));
//   const double rho = RhoFromEpsilon(epsilon, delta);
//   const double sigma = GaussianSigma(clip, rho / iterations);
//   ZcdpLedger ledger;
//   for (int it = 0; it < iterations; ++it)
//     ledger.Add("als item Gram, iteration " + std::to_string(it), clip, sigma);
//   ledger.Epsilon(delta)  // <= epsilon
//
// The (epsilon, delta) conversion is the simple one of Bun & Steinke
// (Prop. 1.3); it is slightly loose, which errs on the side of privacy
// (tests/dp_accountant_test.cc checks it against the exact Gaussian curve).
//
// The numeric functions are pure: thread-safe, no allocation. They state
// their preconditions and return NaN outside them rather than a number that
// could be mistaken for a privacy guarantee; CheckDpBudget is the validator
// for values that come from the user.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace vitrine {

// rho of one Gaussian mechanism with L2 sensitivity `sensitivity` and noise
// standard deviation `sigma`: sensitivity^2 / (2 sigma^2). Needs a finite
// sensitivity >= 0 and a finite sigma > 0; NaN otherwise.
double GaussianRho(double sensitivity, double sigma);

// The noise standard deviation at which a Gaussian mechanism with that
// sensitivity is rho-zCDP: sensitivity / sqrt(2 rho). Needs a finite
// sensitivity >= 0 and a finite rho > 0; NaN otherwise.
double GaussianSigma(double sensitivity, double rho);

// The epsilon of the (epsilon, delta)-DP that rho-zCDP implies:
// rho + 2 sqrt(rho ln(1/delta)) (Bun & Steinke 2016, Prop. 1.3). Needs a
// finite rho >= 0 and delta in (0, 1); NaN otherwise.
double EpsilonFromRho(double rho, double delta);

// The largest rho with EpsilonFromRho(rho, delta) <= epsilon:
// (sqrt(epsilon + ln(1/delta)) - sqrt(ln(1/delta)))^2. Needs a finite
// epsilon >= 0 and delta in (0, 1); NaN otherwise.
double RhoFromEpsilon(double epsilon, double delta);

// The exact delta(epsilon) of ONE Gaussian mechanism (Balle & Wang 2018,
// "Improving the Gaussian Mechanism for Differential Privacy", Theorem 8):
//
//   Phi(s / (2 sigma) - epsilon sigma / s) - e^epsilon Phi(-s / (2 sigma) - epsilon sigma / s)
//
// with s the sensitivity. It is the tightest delta that mechanism has, so it
// serves as an oracle: any accountant's delta must be at least this. Needs a
// finite s > 0, a finite sigma > 0 and a finite epsilon >= 0; NaN otherwise.
double GaussianExactDelta(double sensitivity, double sigma, double epsilon);

// Validates a privacy budget from the command line: epsilon finite and in
// [0.01, 1000], delta in (0, 0.1]. InvalidArgument naming "--dp-epsilon" or
// "--dp-delta" and the range otherwise.
Status CheckDpBudget(double epsilon, double delta);

// A privacy ledger: the named list of Gaussian releases one training run
// made, whose rho values add up (zCDP composes additively). It records what
// was spent; keeping within a budget is the caller's decision.
//
// Thread safety: const methods are safe from several threads; Add is not.
class ZcdpLedger {
 public:
  struct Entry {
    std::string what;    // e.g. "als item Gram, iteration 3"
    double sensitivity;  // L2 sensitivity of the release
    double sigma;        // standard deviation of its Gaussian noise
    double rho;          // GaussianRho(sensitivity, sigma)
  };

  // Records one Gaussian release and returns its rho. A sensitivity or sigma
  // outside GaussianRho's preconditions is a bug in the caller (the values
  // come from code, not from the user): std::invalid_argument.
  double Add(std::string what, double sensitivity, double sigma);

  // The rho of everything recorded so far; 0 for an empty ledger.
  double total_rho() const { return total_rho_; }

  // The epsilon of everything recorded so far, at this delta.
  double Epsilon(double delta) const { return EpsilonFromRho(total_rho_, delta); }

  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
  double total_rho_ = 0;
};

// The threshold of Gaussian partition selection (Desfontaines, Voss, Gipson,
// Mandayam 2022, "Differentially Private Partition Selection"; "Gaussian
// thresholding" in Google's DP library). Each user adds at most 1 to each of
// at most `max_partitions` keys, and a key is released only when its noisy
// count (count + N(0, sigma^2)) is at least the threshold
//
//   tau = 1 + sigma Phi^{-1}(1 - delta_threshold / max_partitions),
//
// so a key that one user alone holds is released with probability
// delta_threshold / max_partitions, and one of that user's keys with
// probability at most delta_threshold. Needs a finite sigma > 0,
// max_partitions >= 1 and delta_threshold in (0, 1); NaN otherwise.
double PartitionThreshold(double sigma, int64_t max_partitions, double delta_threshold);

// The standard normal CDF, Phi(x), as erfc(-x / sqrt 2) / 2: relative
// accuracy in the lower tail too, about x^2 ulps there (the rounding of
// x / sqrt 2, amplified by the tail's steepness: 1e-13 at x = -37), and
// absolute accuracy for x > 0.
double NormalCdf(double x);

// Phi^{-1}(p): -inf at 0, +inf at 1, NaN outside [0, 1]. About 1e-15
// relative for p in [1e-300, 0.5]; above 0.5 it is -NormalQuantile(1 - p),
// exact in the subtraction, so 1 - p is what limits the accuracy there.
double NormalQuantile(double p);

}  // namespace vitrine
