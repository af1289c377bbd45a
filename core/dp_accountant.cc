#include "core/dp_accountant.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

namespace vitrine {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kSqrt2 = 1.41421356237309504880;
constexpr double kSqrt2Pi = 2.50662827463100050242;     // sqrt(2 pi)
constexpr double kLogSqrt2Pi = 0.91893853320467274178;  // ln(sqrt(2 pi))

// Above this epsilon a guarantee means nothing any more, and e^epsilon (in
// the exact Gaussian curve, in any conversion) overflows a double at 709.
constexpr double kMaxEpsilon = 1000;
// Below this the noise of any useful release is millions of times its
// signal, and float factors overflow: a budget that small trains nothing.
constexpr double kMinEpsilon = 0.01;
// A delta is the chance that the guarantee fails outright; at 0.1 or more a
// tenth of the users could be exposed, which no setting should allow.
constexpr double kMaxDelta = 0.1;

bool IsProbability(double p) { return p > 0 && p < 1; }  // false for NaN

// The shortest text that reads back to `v` ("0.5", "1e-05", "nan", "inf").
std::string Num(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("?");
}

// ln Phi(x), without the underflow of Phi itself: below -30 erfc loses
// precision to subnormals and then returns 0 (near -38.5), so the
// asymptotic (Mills ratio) series takes over. At |x| >= 30 the series'
// terms through x^-14 leave an error below 1e-17.
double LogNormalCdf(double x) {
  if (x > 0) return std::log1p(-NormalCdf(-x));
  if (x > -30) return std::log(NormalCdf(x));
  const double inv_x2 = 1 / (x * x);
  // 1 - 1/x^2 + 3/x^4 - 15/x^6 + ... with (2k-1)!! coefficients, by Horner.
  double series = 1;
  for (int k = 7; k >= 1; --k) series = 1 - (2 * k - 1) * inv_x2 * series;
  return -0.5 * x * x - std::log(-x) - kLogSqrt2Pi + std::log(series);
}

// Acklam's rational approximation of Phi^{-1}(p) for p in (0, 0.5], good to
// about 1.2e-9 relative; NormalQuantile refines it.
double AcklamQuantile(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  if (p < 0.02425) {  // lower tail
    const double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const double q = p - 0.5;
  const double r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

}  // namespace

double GaussianRho(double sensitivity, double sigma) {
  if (!(sensitivity >= 0) || !std::isfinite(sensitivity) || !(sigma > 0) || !std::isfinite(sigma)) {
    return kNaN;
  }
  const double ratio = sensitivity / sigma;  // divide first: sigma^2 may underflow
  return 0.5 * ratio * ratio;
}

double GaussianSigma(double sensitivity, double rho) {
  if (!(sensitivity >= 0) || !std::isfinite(sensitivity) || !(rho > 0) || !std::isfinite(rho)) {
    return kNaN;
  }
  return sensitivity / std::sqrt(2 * rho);
}

double EpsilonFromRho(double rho, double delta) {
  if (!(rho >= 0) || !std::isfinite(rho) || !IsProbability(delta)) return kNaN;
  return rho + 2 * std::sqrt(rho * -std::log(delta));
}

double RhoFromEpsilon(double epsilon, double delta) {
  if (!(epsilon >= 0) || !std::isfinite(epsilon) || !IsProbability(delta)) return kNaN;
  // sqrt(rho) is the positive root of x^2 + 2 sqrt(L) x - epsilon with
  // L = ln(1/delta). Written as epsilon / (sqrt(epsilon + L) + sqrt(L))
  // rather than the difference of square roots, which cancels to a few
  // digits when epsilon is small next to L (epsilon 1e-6, delta 1e-9).
  const double log_inv_delta = -std::log(delta);
  const double root = epsilon / (std::sqrt(epsilon + log_inv_delta) + std::sqrt(log_inv_delta));
  return root * root;
}

double GaussianExactDelta(double sensitivity, double sigma, double epsilon) {
  if (!(sensitivity > 0) || !std::isfinite(sensitivity) || !(sigma > 0) || !std::isfinite(sigma) ||
      !(epsilon >= 0) || !std::isfinite(epsilon)) {
    return kNaN;
  }
  const double half = sensitivity / (2 * sigma);
  const double shift = epsilon * sigma / sensitivity;
  // e^epsilon Phi(y) as one exponential: e^epsilon alone overflows past 709
  // while the product is still a small number.
  const double second = std::exp(epsilon + LogNormalCdf(-half - shift));
  // The exact value is >= 0; rounding in the difference may not be.
  return std::max(0.0, NormalCdf(half - shift) - second);
}

Status CheckDpBudget(double epsilon, double delta) {
  if (!(epsilon >= kMinEpsilon && epsilon <= kMaxEpsilon)) {  // NaN fails here too
    return Status::InvalidArgument("--dp-epsilon must be a number in [" + Num(kMinEpsilon) + ", " +
                                   Num(kMaxEpsilon) + "], got " + Num(epsilon));
  }
  if (!(delta > 0 && delta <= kMaxDelta)) {
    return Status::InvalidArgument("--dp-delta must be a number in (0, " + Num(kMaxDelta) +
                                   "], got " + Num(delta) +
                                   " (usually well below 1 / the number of users)");
  }
  return Status::OK();
}

double ZcdpLedger::Add(std::string what, double sensitivity, double sigma) {
  const double rho = GaussianRho(sensitivity, sigma);
  // A NaN in the ledger would make every later budget comparison false,
  // including the one that should have refused to train.
  if (std::isnan(rho)) {
    throw std::invalid_argument("ZcdpLedger::Add(\"" + what + "\"): sensitivity " +
                                Num(sensitivity) + " must be finite and >= 0, sigma " + Num(sigma) +
                                " finite and > 0");
  }
  entries_.push_back({std::move(what), sensitivity, sigma, rho});
  total_rho_ += rho;
  return rho;
}

double PartitionThreshold(double sigma, int64_t max_partitions, double delta_threshold) {
  if (!(sigma > 0) || !std::isfinite(sigma) || max_partitions < 1 ||
      !IsProbability(delta_threshold)) {
    return kNaN;
  }
  // Phi^{-1}(1 - q) as -Phi^{-1}(q): 1 - q rounds to 1 (an infinite
  // threshold) once q drops below 1e-16, and loses digits well before.
  const double per_key = delta_threshold / static_cast<double>(max_partitions);
  return 1 - sigma * NormalQuantile(per_key);
}

double NormalCdf(double x) {
  // erfc keeps its relative accuracy deep into the lower tail, where
  // 0.5 (1 + erf(x / sqrt 2)) would cancel to 0 below x = -8.
  return 0.5 * std::erfc(-x / kSqrt2);
}

double NormalQuantile(double p) {
  if (std::isnan(p) || p < 0 || p > 1) return kNaN;
  if (p == 0) return -kInf;
  if (p == 1) return kInf;
  // Work in the lower half, where p carries full relative precision; for
  // p >= 0.5, 1 - p is exact (Sterbenz), so nothing is lost by the flip.
  if (p > 0.5) return -NormalQuantile(1 - p);
  if (p == 0.5) return 0;
  double x = AcklamQuantile(p);
  // Two Halley steps on Phi(x) - p: each one roughly triples the digits, so
  // the first reaches double precision and the second mops up rounding.
  // The step is u = (Phi(x) - p) / phi(x), written as a relative error
  // times p / phi(x) = sqrt(2 pi) e^(ln p + x^2 / 2): in the far tail
  // Phi(x) - p would be subnormal, and e^(x^2 / 2) alone overflows past
  // |x| = 37.6 while the quotient is only about 1 / |x|.
  for (int step = 0; step < 2; ++step) {
    const double relative = NormalCdf(x) / p - 1;
    const double u = relative * kSqrt2Pi * std::exp(std::log(p) + 0.5 * x * x);
    if (!std::isfinite(u)) break;
    x -= u / (1 + 0.5 * x * u);
  }
  return x;
}

}  // namespace vitrine
