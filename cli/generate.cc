// vitrine generate: writes the synthetic luxury-fashion sample data set
// (items.csv, interactions.csv, images.idx.gz, truth.json). See sample/generator.h.
#include <cstdio>
#include <string>

#include "cli/command.h"
#include "sample/generator.h"

namespace vitrine::cli {
namespace {

constexpr const char* kCmd = "generate";

int RunGenerate(int argc, char** argv) {
  cxxopts::Options opts(
      "vitrine generate",
      "Write a synthetic luxury-fashion catalog with real Fashion-MNIST product images and\n"
      "interactions drawn from hidden user tastes: items.csv, interactions.csv,\n"
      "images.idx.gz and truth.json in --out.\n\n"
      "Example:\n  vitrine generate --items 2000 --users 1000 --out demo/data --seed 7\n");
  opts.custom_help("--items N --users M --out DIR [options]");
  auto add = opts.add_options();
  add("items", "Number of catalog items (required)", cxxopts::value<int64_t>());
  add("users", "Number of users (required)", cxxopts::value<int64_t>());
  add("out", "Output directory (required; created if missing)", cxxopts::value<std::string>());
  add("seed", "Random seed", cxxopts::value<uint64_t>()->default_value("42"));
  add("fashion-mnist",
      "Fashion-MNIST directory (default $VITRINE_FASHION_MNIST or "
      "/usr/share/datasets/fashion-mnist)",
      cxxopts::value<std::string>());
  add("events-per-user-median", "Median events per user (log-normal)",
      cxxopts::value<double>()->default_value("6"));
  add("events-per-user-sigma", "Log-normal shape of events per user (tail weight)",
      cxxopts::value<double>()->default_value("1.2"));
  add("clusters", "Number of hidden taste clusters (1..64)",
      cxxopts::value<int>()->default_value("14"));
  add("zipf-exponent", "Item popularity ~ 1 / rank^exponent (0 = uniform)",
      cxxopts::value<double>()->default_value("1.0"));
  add("trend-items",
      "Plant a trend: this many random items get a burst of views in the last day "
      "(truth.json 'trend_items'; `vitrine trending` should rank them first)",
      cxxopts::value<int64_t>()->default_value("0"));
  add("gift-share",
      "Plant gifts: this share of purchases become gift_purchase events of a few gift items "
      "(truth.json 'gift_items'; `recommend --intent gift` should find them)",
      cxxopts::value<double>()->default_value("0"));
  add("next-step",
      "Plant style progression: with this probability a user's fresh pick comes from the "
      "category that follows their previous item's (truth.json 'next_category'; `recommend "
      "--intent next-step` should find it)",
      cxxopts::value<double>()->default_value("0"));
  add("omnichannel",
      "Add a channel column: with this probability a purchase (and its return) is in store "
      "and a cart is a wishlist add; the other events are online",
      cxxopts::value<double>()->default_value("0"));
  Parsed p = ParseOrExit(opts, argc, argv, kCmd, {"items", "users", "out"});
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;

  GeneratorOptions o;
  o.num_items = r["items"].as<int64_t>();
  o.num_users = r["users"].as<int64_t>();
  o.seed = r["seed"].as<uint64_t>();
  o.events_per_user_median = r["events-per-user-median"].as<double>();
  o.events_per_user_sigma = r["events-per-user-sigma"].as<double>();
  o.num_clusters = r["clusters"].as<int>();
  o.zipf_exponent = r["zipf-exponent"].as<double>();
  o.trend_items = r["trend-items"].as<int64_t>();
  o.gift_share = r["gift-share"].as<double>();
  o.next_step_share = r["next-step"].as<double>();
  o.omnichannel = r["omnichannel"].as<double>();
  if (r.count("fashion-mnist")) o.fashion_mnist_dir = r["fashion-mnist"].as<std::string>();
  const std::string out = r["out"].as<std::string>();
  if (out.empty()) return UsageError(kCmd, "--out must not be empty");
  // Option ranges are usage errors (exit 2), not runtime errors.
  if (o.num_items < 1) return UsageError(kCmd, "--items must be >= 1");
  if (o.num_users < 1) return UsageError(kCmd, "--users must be >= 1");
  if (!(o.gift_share >= 0 && o.gift_share <= 1)) {
    return UsageError(kCmd, "--gift-share must be between 0 and 1");
  }
  if (!(o.next_step_share >= 0 && o.next_step_share <= 1)) {
    return UsageError(kCmd, "--next-step must be between 0 and 1");
  }
  if (!(o.omnichannel >= 0 && o.omnichannel <= 1)) {
    return UsageError(kCmd, "--omnichannel must be between 0 and 1");
  }
  if (o.trend_items < 0 || o.trend_items > o.num_items) {
    return UsageError(kCmd, "--trend-items must be between 0 and --items");
  }
  if (!(o.events_per_user_median > 0)) {
    return UsageError(kCmd, "--events-per-user-median must be > 0");
  }

  auto result = GenerateSampleData(o, out);
  if (!result.ok()) {
    if (result.status().code() == Status::Code::kInvalidArgument) {
      return UsageError(kCmd, result.status().message());
    }
    return Fail(kCmd, result.status());
  }
  const GeneratorReport& rep = *result;
  std::printf(
      "generated %lld items, %lld users, %lld events (median %.1f events per user): %s %s %s "
      "%s\n",
      static_cast<long long>(rep.items), static_cast<long long>(rep.users),
      static_cast<long long>(rep.events), rep.median_events_per_user, rep.items_csv.c_str(),
      rep.interactions_csv.c_str(), rep.images.c_str(), rep.truth.c_str());
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("generate", "Write a synthetic fashion catalog, interactions and images",
                RunGenerate);

}  // namespace vitrine::cli
