// vitrine bench: recall@k against exact search versus QPS and latency, for
// index specs swept over ef / nprobe, optionally next to raw FAISS and
// hnswlib on the same data in the same run. Parsing and printing only; the
// measuring is index/measure.h, the CSV, frontier, filters and hnswlib peer
// are benchlib/.
#include <faiss/AutoTune.h>
#include <faiss/IndexIVF.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

#include "benchlib/bench_harness.h"
#include "benchlib/hnswlib_peer.h"
#include "cli/command.h"
#include "cli/output.h"
#include "core/array_io.h"
#include "core/file_util.h"
#include "core/progress.h"
#include "engine/engine.h"
#include "index/autotune.h"
#include "index/measure.h"
#include "serve/load_generator.h"

namespace vitrine::cli {
namespace {

constexpr char kName[] = "bench";

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, sep);) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Parses "0.01,0.1" / "16,32" style lists; false on a malformed entry.
template <typename T>
bool ParseList(const std::string& s, std::vector<T>* out) {
  for (const std::string& item : Split(s, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (end == item.c_str() || *end != '\0') return false;
    out->push_back(static_cast<T>(v));
  }
  return !out->empty();
}

// One filter setting of the run: none (fraction 0) or a random bitmap.
struct FilterCase {
  double fraction = 0;
  Bitmap bitmap;
  GroundTruth truth;
  std::string Suffix() const {
    return fraction > 0 ? " filter=" + FormatFloat(fraction, 3) : std::string();
  }
};

Status WritePlot(const std::vector<BenchRow>& rows, const std::string& path,
                 const std::string& title) {
  // gnuplot's inputs go to a scratch directory beside the output, removed
  // afterwards; gnuplot writes the plot itself.
  const std::filesystem::path dir = TempSiblingPath(path);
  std::map<std::string, std::vector<const BenchRow*>> series;
  for (const BenchRow& r : rows) {
    if (r.qps > 0) series[r.index].push_back(&r);
  }
  const bool png = path.size() > 4 && path.substr(path.size() - 4) == ".png";
  std::ostringstream gp;
  gp << "set terminal " << (png ? "pngcairo size 900,600" : "svg size 900,600 dynamic") << "\n"
     << "set output '" << path << "'\n"
     << "set title '" << title << "' noenhanced\n"
     << "set xlabel 'queries per second (log scale)'\nset ylabel 'recall@k'\n"
     << "set logscale x\nset grid\nset key bottom left noenhanced\n";
  std::string plot = "plot ";
  int i = 0;
  for (const auto& [name, pts] : series) {
    const auto file = dir / ("s" + std::to_string(i++) + ".dat");
    std::ostringstream data;
    for (const BenchRow* r : pts) data << r->qps << " " << r->recall << "\n";
    if (Status st = WriteFileAtomic(file, data.str()); !st.ok()) {
      std::filesystem::remove_all(dir);
      return st;
    }
    plot += (i > 1 ? ", " : "") + std::string("'") + file.string() + "' with linespoints title '" +
            name + "'";
  }
  gp << plot << "\n";
  const auto script = dir / "plot.gp";
  if (Status st = WriteFileAtomic(script, gp.str()); !st.ok()) {
    std::filesystem::remove_all(dir);
    return st;
  }
  const std::string cmd = "gnuplot '" + script.string() + "'";
  const int rc = std::system(cmd.c_str());
  std::filesystem::remove_all(dir);
  if (rc != 0) return Status::IOError("gnuplot failed writing " + path);
  return Status::OK();
}

// `--server URL`: the load generator of serve/load_generator.h.
int RunServerLoad(const cxxopts::ParseResult& r) {
  const std::string url = r["server"].as<std::string>();
  LoadOptions o;
  {
    std::string rest = url;
    if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
    if (!rest.empty() && rest.find_first_not_of("0123456789") == std::string::npos) {
      rest = "127.0.0.1:" + rest;  // a bare port: loopback
    }
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    const size_t colon = rest.rfind(':');
    o.host = colon == std::string::npos ? rest : rest.substr(0, colon);
    const std::string port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
    char* end = nullptr;
    const long v = std::strtol(port.c_str(), &end, 10);
    const bool other_scheme =
        url.find("://") != std::string::npos && url.rfind("http://", 0) != 0;
    if (o.host.empty() || port.empty() || *end != '\0' || v < 1 || v > 65535 || other_scheme) {
      return UsageError(kName, "--server: expected http://HOST:PORT, got '" + url + "'");
    }
    o.port = static_cast<int>(v);
  }
  if (!r.count("bundle")) {
    return UsageError(kName, "--server needs --bundle: the item and user ids to ask about");
  }
  auto bundle = Bundle::Open(r["bundle"].as<std::string>(), VerifyMode::kSizesOnly);
  if (!bundle.ok()) return Fail(kName, bundle.status());
  auto items = bundle->ReadIds(bundle_file::kItemIds);
  if (!items.ok()) return Fail(kName, items.status());
  o.items = std::move(*items);
  if (bundle->Has(bundle_file::kUserIds)) {
    auto users = bundle->ReadIds(bundle_file::kUserIds);
    if (!users.ok()) return Fail(kName, users.status());
    o.users = std::move(*users);
  }
  o.requests = r["requests"].as<int64_t>();
  o.concurrency = r["concurrency"].as<int>();
  const double limit = r["time-limit"].as<double>();
  if (!(limit > 0 && limit <= 86400)) return UsageError(kName, "--time-limit must be in (0, 86400]");
  o.time_limit = std::chrono::milliseconds(static_cast<int64_t>(limit * 1000));
  o.endpoints = Split(r["endpoints"].as<std::string>(), ',');
  o.k = r["k"].as<int>();
  auto report = RunLoad(o);
  if (!report.ok()) {
    return report.status().code() == Status::Code::kInvalidArgument
               ? UsageError(kName, report.status().message())
               : Fail(kName, report.status());
  }
  std::printf("load test of %s: %lld requests, %d clients, %.2f s%s\n", url.c_str(),
              static_cast<long long>(o.requests), o.concurrency, report->seconds,
              report->time_limited ? " (stopped by --time-limit)" : "");
  std::printf("%-10s %8s %8s %8s %9s %9s %9s %9s %9s %9s\n", "endpoint", "sent", "ok", "errors",
              "qps", "p50_ms", "p99_ms", "p999_ms", "srv_count", "srv_p50<=");
  for (const auto& [name, l] : report->endpoints) {
    const int64_t ok = l.by_status.count(200) ? l.by_status.at(200) : 0;
    std::printf("%-10s %8lld %8lld %8lld %9.1f %9.3f %9.3f %9.3f", name.c_str(),
                static_cast<long long>(l.sent), static_cast<long long>(ok),
                static_cast<long long>(l.sent - ok),
                static_cast<double>(l.sent) / std::max(report->seconds, 1e-9),
                l.Quantile(0.5) * 1e3, l.Quantile(0.99) * 1e3, l.Quantile(0.999) * 1e3);
    if (report->server_metrics) {
      std::printf(" %9lld %9.4g\n", static_cast<long long>(l.server_count),
                  l.ServerQuantile(0.5) * 1e3);
    } else {
      std::printf(" %9s %9s\n", "-", "-");
    }
    for (const auto& [status, n] : l.by_status) {
      if (status != 200) {
        std::printf("  %s: %lld answered %s\n", name.c_str(), static_cast<long long>(n),
                    status < 0 ? "nothing (connection error)" : std::to_string(status).c_str());
      }
    }
  }
  if (report->server_metrics) {
    std::printf(
        "(srv_count and srv_p50<= come from the server's /metrics, scraped before and "
        "after: its request count and the histogram bucket bound, in ms, holding its "
        "median)\n");
  } else {
    std::printf("(the server's /metrics is off: no srv_count or srv_p50<=)\n");
  }
  return kExitOk;
}

// --audience: FindAudience over sampled items, the exact scan against the
// HNSW index over users: QPS of each (median of the passes) and the index's
// recall@k of the exact audience.
int RunAudienceBench(const cxxopts::ParseResult& r) {
  if (!r.count("bundle")) return UsageError(kName, "--audience needs --bundle");
  const int k = r["k"].as<int>();
  const int repeats = r["repeats"].as<int>();
  if (k < 1 || repeats < 1 || r["queries-limit"].as<size_t>() < 1) {
    return UsageError(kName, "-k, --repeats and --queries-limit must be >= 1");
  }
  for (const char* other : {"output", "plot", "specs", "peers", "autotune", "vectors", "queries",
                            "filter-selectivity", "ef", "nprobe"}) {
    if (r.count(other)) {
      return UsageError(kName, std::string("--audience measures the bundle's audience search "
                                           "alone; --") + other + " does not apply");
    }
  }
  if (r["threads"].as<int>() != 1) {
    return UsageError(kName, "--audience runs on one thread (--threads 1)");
  }
  auto e = Engine::Open(r["bundle"].as<std::string>());
  if (!e.ok()) return Fail(kName, e.status());
  const Engine& engine = **e;
  const int32_t n_items = engine.catalog().size();
  const auto n = static_cast<int32_t>(
      std::min<size_t>(r["queries-limit"].as<size_t>(), static_cast<size_t>(n_items)));
  std::vector<std::string> items;
  for (int32_t q = 0; q < n; ++q) {  // spread evenly over the catalog
    items.push_back(engine.catalog().ids.id(static_cast<int32_t>(int64_t{q} * n_items / n)));
  }
  auto run = [&](AudienceSearch how, std::vector<std::vector<int32_t>>* users) -> Result<double> {
    std::vector<double> qps;
    for (int pass = 0; pass < repeats; ++pass) {
      users->clear();
      const auto t0 = std::chrono::steady_clock::now();
      for (const std::string& id : items) {
        AudienceRequest req;
        req.item = id;
        req.query.k = k;
        req.search = how;
        VITRINE_ASSIGN_OR_RETURN(Audience a, engine.FindAudience(req));
        users->emplace_back();
        for (const auto& m : a.members) users->back().push_back(m.user);
      }
      qps.push_back(static_cast<double>(items.size()) / std::max(SecondsSince(t0), 1e-9));
    }
    std::sort(qps.begin(), qps.end());
    return qps[qps.size() / 2];
  };
  std::vector<std::vector<int32_t>> exact_users, hnsw_users;
  {  // the one-time builds, outside the timed passes
    StageTimer t("audience: first requests (user vectors, HNSW index)");
    AudienceRequest req;
    req.item = items.front();
    req.search = AudienceSearch::kIndex;
    auto a = engine.FindAudience(req);
    if (!a.ok()) return Fail(kName, a.status());
    t.Done();
  }
  auto exact_qps = run(AudienceSearch::kExact, &exact_users);
  if (!exact_qps.ok()) return Fail(kName, exact_qps.status());
  auto hnsw_qps = run(AudienceSearch::kIndex, &hnsw_users);
  if (!hnsw_qps.ok()) return Fail(kName, hnsw_qps.status());
  double found = 0, total = 0;
  for (size_t q = 0; q < exact_users.size(); ++q) {
    std::vector<int32_t> truth = exact_users[q];
    std::sort(truth.begin(), truth.end());
    for (int32_t u : hnsw_users[q]) found += std::binary_search(truth.begin(), truth.end(), u);
    total += static_cast<double>(truth.size());
  }
  const double recall = total > 0 ? found / total : 1.0;
  std::printf("audience of %d items, k=%d, %lld users, median of %d passes, 1 thread\n", n, k,
              static_cast<long long>(engine.users().size()), repeats);
  std::printf("%-8s %10s %10s\n", "search", "qps", "recall@k");
  std::printf("%-8s %10.1f %10.4f\n", "exact", *exact_qps, 1.0);
  std::printf("%-8s %10.1f %10.4f\n", "hnsw", *hnsw_qps, recall);
  return kExitOk;
}

int Run(int argc, char** argv) {
  cxxopts::Options opts("vitrine bench",
                        "Recall@k vs QPS/latency of index specs (and peers), exact ground truth.");
  opts.custom_help("(--bundle B | --vectors F [--queries F]) [options]");
  // clang-format off
  opts.add_options()
      ("bundle", "Bundle directory (benchmarks its index and vectors)", cxxopts::value<std::string>())
      ("vectors", "Base vectors (.npy, .fvecs, IDX, optionally .gz)", cxxopts::value<std::string>())
      ("queries", "Query vectors (same formats); default: held-out sample of the base",
       cxxopts::value<std::string>())
      ("metric", "l2 or ip (with --vectors)", cxxopts::value<std::string>()->default_value("ip"))
      ("specs", "';'-separated faiss specs", cxxopts::value<std::string>())
      ("autotune", "Run autotune (target --target-recall) and add its points")
      ("target-recall", "Autotune target recall@k", cxxopts::value<double>()->default_value("0.95"))
      ("ef", "HNSW ef sweep, e.g. 16,32,64", cxxopts::value<std::string>())
      ("nprobe", "IVF nprobe sweep, e.g. 1,4,16", cxxopts::value<std::string>())
      ("ef-construction", "HNSW build beam of vitrine's specs",
       cxxopts::value<int>()->default_value("100"))
      ("k", "Neighbours per query", cxxopts::value<int>()->default_value("10"))
      ("queries-limit", "Use at most this many queries", cxxopts::value<size_t>()->default_value("2000"))
      ("threads", "Concurrent callers", cxxopts::value<int>()->default_value("1"))
      ("batch", "Queries per search call", cxxopts::value<size_t>()->default_value("1"))
      ("repeats", "Timed passes per point (median QPS reported)",
       cxxopts::value<int>()->default_value("3"))
      ("filter-selectivity", "Also measure filtered search at these allowed fractions, e.g. 0.01,0.1",
       cxxopts::value<std::string>())
      ("peers", "Add raw FAISS (same specs) and hnswlib (M=16, efC=100) rows")
      ("cache-dir", "Ground-truth cache directory ('' = none)",
       cxxopts::value<std::string>()->default_value(".vitrine-cache"))
      ("output", "Write every measured row as CSV here", cxxopts::value<std::string>())
      ("plot", "Write recall vs QPS plot (.svg or .png, gnuplot)", cxxopts::value<std::string>())
      ("seed", "Seed for sampled queries and filters", cxxopts::value<uint64_t>()->default_value("42"))
      ("server", "Load-test a running `vitrine serve` instead: http://HOST:PORT, or a port on "
       "127.0.0.1 (ids from --bundle)", cxxopts::value<std::string>())
      ("requests", "With --server: requests in total", cxxopts::value<int64_t>()->default_value("2000"))
      ("concurrency", "With --server: concurrent keep-alive clients",
       cxxopts::value<int>()->default_value("4"))
      ("time-limit", "With --server: stop after this many seconds",
       cxxopts::value<double>()->default_value("60"))
      ("audience", "With --bundle: audience search (exact scan vs the HNSW index over users): "
       "QPS and recall@k over --queries-limit items")
      ("endpoints", "With --server: similar, recommend or both",
       cxxopts::value<std::string>()->default_value("similar,recommend"));
  // clang-format on
  opts.set_width(110);
  auto p = ParseOrExit(
      opts, argc, argv, kName, {},
      "  vitrine bench --vectors /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \\\n"
      "      --queries /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --metric l2 \\\n"
      "      --specs 'HNSW16;IVF512,Flat' --peers --output fm.csv --plot fm.svg\n"
      "  vitrine bench --bundle demo/bundle --autotune --filter-selectivity 0.01,0.1\n"
      "  vitrine bench --server 8080 --bundle demo/bundle --requests 5000   # 127.0.0.1:8080\n"
      "  vitrine bench --bundle demo/bundle --audience -k 200 --queries-limit 100");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  if (r.count("server") && r.count("audience")) {
    return UsageError(kName, "give --server or --audience, not both");
  }
  if (r.count("server")) return RunServerLoad(r);
  if (r.count("audience")) return RunAudienceBench(r);
  if (!r.count("bundle") == !r.count("vectors")) {
    return UsageError(kName, "give exactly one of --bundle and --vectors");
  }
  const std::string metric_s = r["metric"].as<std::string>();
  if (metric_s != "l2" && metric_s != "ip") return UsageError(kName, "--metric must be l2 or ip");
  const int k = r["k"].as<int>();
  const int threads = r["threads"].as<int>();
  const size_t batch = r["batch"].as<size_t>();
  const int repeats = r["repeats"].as<int>();
  if (k < 1 || threads < 1 || batch < 1 || repeats < 1) {
    return UsageError(kName, "-k, --threads, --batch and --repeats must be >= 1");
  }
  std::vector<int> ef_sweep = DefaultEfSweep(k), nprobe_sweep;
  if (r.count("ef") && !(ef_sweep.clear(), ParseList(r["ef"].as<std::string>(), &ef_sweep))) {
    return UsageError(kName, "--ef: expected a list like 16,32,64");
  }
  if (r.count("nprobe") && !ParseList(r["nprobe"].as<std::string>(), &nprobe_sweep)) {
    return UsageError(kName, "--nprobe: expected a list like 1,4,16");
  }
  std::vector<double> fractions = {0};
  if (r.count("filter-selectivity")) {
    std::vector<double> f;
    if (!ParseList(r["filter-selectivity"].as<std::string>(), &f)) {
      return UsageError(kName, "--filter-selectivity: expected fractions like 0.01,0.1");
    }
    for (double x : f) {
      if (!(x > 0 && x <= 1)) return UsageError(kName, "--filter-selectivity: fractions in (0, 1]");
      fractions.push_back(x);
    }
  }
  const double target = r["target-recall"].as<double>();
  if (!(target > 0 && target <= 1)) return UsageError(kName, "--target-recall must be in (0, 1]");
  const uint64_t seed = r["seed"].as<uint64_t>();

  // Inputs.
  std::unique_ptr<Engine> engine;
  std::shared_ptr<const Matrix> base;
  Metric metric = metric_s == "l2" ? Metric::kL2 : Metric::kInnerProduct;
  std::string dataset;
  if (r.count("bundle")) {
    auto e = Engine::Open(r["bundle"].as<std::string>());
    if (!e.ok()) return Fail(kName, e.status());
    engine = std::move(*e);
    base = std::make_shared<const Matrix>(engine->vectors());
    metric = engine->index().metric();
    dataset = r["bundle"].as<std::string>();
  } else {
    StageTimer t("reading " + r["vectors"].as<std::string>());
    auto v = ReadVectors(r["vectors"].as<std::string>());
    if (!v.ok()) return Fail(kName, v.status());
    base = std::make_shared<const Matrix>(std::move(*v));
    dataset = std::filesystem::path(r["vectors"].as<std::string>()).filename().string();
  }
  Matrix queries;
  if (r.count("queries")) {
    auto q = ReadVectors(r["queries"].as<std::string>());
    if (!q.ok()) return Fail(kName, q.status());
    queries = std::move(*q);
    if (queries.cols != base->cols) {
      return Fail(kName, Status::InvalidArgument(r["queries"].as<std::string>() + ": dimension " +
                                                 std::to_string(queries.cols) + ", expected " +
                                                 std::to_string(base->cols)));
    }
    const size_t limit = std::min(queries.rows, r["queries-limit"].as<size_t>());
    queries.rows = limit;
    queries.data.resize(limit * queries.cols);
  } else {
    queries = SampleQueries(*base, r["queries-limit"].as<size_t>(), seed);
  }
  LogInfo("bench: %zu base vectors x %zu, %zu queries, k=%d, %s", base->rows, base->cols,
          queries.rows, k, metric == Metric::kL2 ? "L2" : "inner product");

  // Ground truth per filter setting.
  const std::string cache_dir = r["cache-dir"].as<std::string>();
  std::vector<FilterCase> filters;
  for (double f : fractions) {
    FilterCase fc;
    fc.fraction = f;
    if (f > 0) fc.bitmap = RandomFilter(base->rows, f, seed + 1);
    StageTimer t("ground truth" + fc.Suffix());
    bool cached = false;
    auto gt = CachedGroundTruth(*base, queries, k, metric, f > 0 ? &fc.bitmap : nullptr, cache_dir,
                                &cached);
    if (!gt.ok()) return Fail(kName, gt.status());
    fc.truth = std::move(*gt);
    t.Done(cached ? "(cached)" : "");
    filters.push_back(std::move(fc));
  }

  MeasureOptions mo;
  mo.threads = threads;
  mo.batch = batch;
  mo.repeats = 1;  // repeats are interleaved below

  // Every (index, knob, filter) point is a case; all indexes stay alive so
  // that the timed passes can be interleaved: pass 1 over every case, then
  // pass 2, ... Load from other processes then hits every case alike, and
  // each case reports its median-QPS pass.
  struct Case {
    std::string name, params;
    SearchFn fn;
    std::function<void()> setup;  // e.g. set a peer's shared ef
    const FilterCase* filter;
    double build_s, bpv;
    int ef, nprobe;
  };
  std::vector<Case> cases;
  std::vector<std::unique_ptr<VectorIndex>> built;
  std::vector<std::unique_ptr<faiss::Index>> raws;
  std::unique_ptr<HnswlibPeer> peer;

  // vitrine's own index(es), swept; optionally raw FAISS on a clone.
  auto add_index = [&](const std::string& name, const VectorIndex& index, double build_s) {
    const size_t nlist = IvfNlist(index);
    const bool ivf = nlist > 0;
    const bool hnsw = index.Describe().find("HNSW") != std::string::npos;
    std::vector<int> knobs = {0};
    if (hnsw) knobs = ef_sweep;
    if (ivf) knobs = nprobe_sweep.empty() ? DefaultNprobeSweep(nlist) : nprobe_sweep;
    const double bpv = index.BytesPerVector();
    for (const FilterCase& fc : filters) {
      for (int knob : knobs) {
        SearchParams sp;
        sp.k = k;
        sp.filter = fc.fraction > 0 ? &fc.bitmap : nullptr;
        sp.refine_k_factor = hnsw ? 1 : sp.refine_k_factor;  // ef alone sets the re-ranked beam
        std::string params = "-";
        if (hnsw) sp.ef_search = knob, params = "ef=" + std::to_string(knob);
        if (ivf) sp.nprobe = knob, params = "nprobe=" + std::to_string(knob);
        cases.push_back({name, params + fc.Suffix(), VitrineSearch(index, sp), nullptr, &fc,
                         build_s, bpv, hnsw ? knob : 0, ivf ? knob : 0});
      }
    }
    if (!r.count("peers") || !(hnsw || ivf)) return;
    // Raw FAISS on a copy of the same index: parameters set on the index
    // (ParameterSpace), its own search code, unfiltered only.
    auto clone = index.CloneFaiss();
    if (!clone.ok()) {
      LogInfo("bench: no raw FAISS peer for %s (%s)", name.c_str(),
              clone.status().ToString().c_str());
      return;
    }
    raws.push_back(std::move(*clone));
    faiss::Index* raw = raws.back().get();
    for (int knob : knobs) {
      const std::string knob_name = hnsw ? "efSearch" : "nprobe";
      SearchFn fn = [raw](const float* q, size_t n, int kk, int64_t* labels) -> Status {
        thread_local std::vector<float> d;
        d.resize(n * kk);
        raw->search(static_cast<faiss::Index::idx_t>(n), q, kk, d.data(), labels);
        return Status::OK();
      };
      auto setup = [raw, knob_name, knob] {
        faiss::ParameterSpace().set_index_parameter(raw, knob_name, knob);
      };
      cases.push_back({"faiss " + name, knob_name + "=" + std::to_string(knob), fn, setup,
                       &filters[0], build_s, bpv, 0, 0});
    }
  };

  if (engine) add_index("bundle " + engine->index().Describe(), engine->index(), 0);
  std::vector<std::string> specs;
  if (r.count("specs")) {
    specs = Split(r["specs"].as<std::string>(), ';');
  } else if (!engine && !r.count("autotune")) {
    specs = DefaultAutotuneSpecs(base->rows);
  }
  for (const std::string& spec : specs) {
    VectorIndexOptions io;
    io.spec = spec;
    io.metric = metric;
    io.hnsw_ef_construction = r["ef-construction"].as<int>();
    io.seed = seed;
    StageTimer t("building " + spec);
    auto index = VectorIndex::Build(base, io);
    if (!index.ok()) {
      return index.status().code() == Status::Code::kInvalidArgument
                 ? UsageError(kName, index.status().message())
                 : Fail(kName, index.status());
    }
    const double build_s = t.Seconds();
    t.Done();
    built.push_back(std::move(*index));
    add_index(spec, *built.back(), build_s);
  }
  if (r.count("peers")) {
    StageTimer t("building hnswlib M=16 efC=100");
    auto p = HnswlibPeer::Build(*base, metric, 16, 100, std::max(1, omp_get_max_threads()));
    if (!p.ok()) {
      LogInfo("bench: hnswlib peer skipped: %s", p.status().message().c_str());
    } else {
      const double build_s = t.Seconds();
      t.Done();
      peer = std::move(*p);
      const HnswlibPeer* hp = peer.get();
      for (int ef : ef_sweep) {
        SearchFn fn = [hp](const float* q, size_t n, int kk, int64_t* labels) {
          return hp->Search(q, n, kk, labels);
        };
        HnswlibPeer* mp = peer.get();
        cases.push_back({"hnswlib M=16 efC=100", "ef=" + std::to_string(ef), fn,
                         [mp, ef] { mp->SetEf(ef); }, &filters[0], build_s, peer->BytesPerVector(),
                         ef, 0});
      }
    }
  }

  std::vector<std::vector<BenchRow>> runs(cases.size());
  for (int pass = 0; pass < repeats; ++pass) {
    StageTimer t("timed pass " + std::to_string(pass + 1) + " / " + std::to_string(repeats) +
                     " over " + std::to_string(cases.size()) + " points",
                 static_cast<int64_t>(cases.size()));
    for (size_t c = 0; c < cases.size(); ++c) {
      const Case& cs = cases[c];
      if (cs.setup) cs.setup();
      auto row = MeasureSearch(cs.name, cs.params, cs.fn, queries, cs.filter->truth, mo);
      if (!row.ok()) return Fail(kName, row.status());
      runs[c].push_back(*row);
      t.Update(static_cast<int64_t>(c + 1));
    }
    t.Done();
  }
  std::vector<BenchRow> rows;
  for (size_t c = 0; c < cases.size(); ++c) {
    std::vector<BenchRow>& rs = runs[c];
    std::sort(rs.begin(), rs.end(),
              [](const BenchRow& a, const BenchRow& b) { return a.qps < b.qps; });
    BenchRow row = rs[rs.size() / 2];
    row.build_s = cases[c].build_s;
    row.bytes_per_vector = cases[c].bpv;
    row.ef_search = cases[c].ef;
    row.nprobe = cases[c].nprobe;
    LogInfo("bench: %-26s %-22s recall %.4f %9.0f QPS  p50 %7.1f us", row.index.c_str(),
            row.params.c_str(), row.recall, row.qps, row.p50_us);
    rows.push_back(row);
  }

  if (r.count("autotune")) {
    AutotuneOptions ao;
    ao.metric = metric;
    ao.target_recall = target;
    ao.k = k;
    ao.queries = &queries;
    ao.seed = seed;
    ao.hnsw_ef_construction = r["ef-construction"].as<int>();
    ao.measure = mo;
    ao.measure.repeats = repeats;
    ao.cache_dir = cache_dir;
    auto at = Autotune(base, ao);
    if (!at.ok()) return Fail(kName, at.status());
    for (BenchRow row : at->table) {
      row.index = "autotune " + row.index;
      rows.push_back(row);
    }
    std::printf("autotune: %s %s recall@%d %.4f, %.0f QPS, p50 %.1f us%s\n\n", at->spec.c_str(),
                at->chosen.params.c_str(), k, at->chosen.recall, at->chosen.qps, at->chosen.p50_us,
                at->met_target ? "" : " (target not reached)");
  }

  Status st;
  Table all{BenchCsvHeader(), {}};
  for (const BenchRow& row : rows) all.rows.push_back(BenchCsvCells(row));
  if (r.count("output")) {
    const std::string out = r["output"].as<std::string>();
    st = WriteFileAtomic(out, all.Render(Format::kCsv));
    if (!st.ok()) return Fail(kName, st);
  }
  // The frontier per filter setting (unfiltered first).
  for (const FilterCase& fc : filters) {
    std::vector<BenchRow> subset;
    for (const BenchRow& row : rows) {
      const bool filtered = row.params.find(" filter=") != std::string::npos;
      if ((fc.fraction > 0) == filtered &&
          (fc.fraction == 0 || row.params.find(fc.Suffix()) != std::string::npos)) {
        subset.push_back(row);
      }
    }
    Table t{BenchCsvHeader(), {}};
    for (size_t i : ParetoFrontier(subset)) t.rows.push_back(BenchCsvCells(subset[i]));
    std::printf("Pareto frontier%s (recall@%d vs QPS, %d thread(s), batch %zu):\n",
                fc.Suffix().c_str(), k, threads, batch);
    t.Print(Format::kTable);
    std::printf("\n");
  }
  if (r.count("plot")) {
    std::vector<BenchRow> unfiltered;
    for (const BenchRow& row : rows) {
      if (row.params.find(" filter=") == std::string::npos) unfiltered.push_back(row);
    }
    st = WritePlot(unfiltered, r["plot"].as<std::string>(),
                   dataset + ": recall@" + std::to_string(k) + " vs QPS, " +
                       std::to_string(threads) + " thread(s), batch " + std::to_string(batch));
    if (!st.ok()) return Fail(kName, st);
  }
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("bench", "Recall vs latency of index specs, autotune, peers (FAISS, hnswlib)", Run);

}  // namespace vitrine::cli
