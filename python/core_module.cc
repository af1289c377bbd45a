// vitrine._core: the pybind11 binding of the engine (docs/python.md).
//
// It only translates, as the CLI and the HTTP server do: Python arguments
// into QueryParams / RecommendRequest / BuildOptions, and answers into numpy
// arrays. Every decision stays in Engine, BuildBundle and EvaluateBundle, so
// Python answers are the CLI's answers.
//
// Conventions:
//   - The GIL is released around every engine call; batch calls spread their
//     queries over OpenMP threads. Errors are raised after the GIL is back.
//   - A Status becomes the exception class vitrine.errors maps its code to
//     (InvalidArgumentError is also a ValueError, NotFoundError also a
//     FileNotFoundError and a KeyError, ...), with the same message as the CLI.
//   - A Bundle holds its Engine by shared_ptr; a call in flight and every
//     zero-copy view (Bundle.vectors) hold their own reference, so close()
//     never pulls memory out from under them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>
#include <omp.h>

#include <atomic>
#include <cmath>
#include <chrono>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "core/progress.h"
#include "core/value_parse.h"
#include "embed/als.h"
#include "engine/build_config.h"
#include "engine/builder.h"
#include "engine/compiled_rules.h"
#include "engine/engine.h"
#include "engine/evaluate_bundle.h"
#include "engine/tune.h"

namespace py = pybind11;

namespace vitrine::python {
namespace {

// ------------------------------------------------------------------ errors

// Text from the engine as a Python str. Bundle bytes are not trusted to be
// UTF-8 (a bundle opened without verify=True may be damaged, and error
// messages quote input): invalid bytes become U+FFFD instead of a
// UnicodeDecodeError in place of the answer or the real error.
py::str Text(const std::string& s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
  if (o == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(o);
}


[[noreturn]] void Raise(const Status& st) {
  const char* name = "Error";
  switch (st.code()) {
    case Status::Code::kInvalidArgument: name = "InvalidArgumentError"; break;
    case Status::Code::kNotFound: name = "NotFoundError"; break;
    case Status::Code::kCorruption: name = "CorruptionError"; break;
    case Status::Code::kIOError: name = "IOError"; break;
    case Status::Code::kUnsupported: name = "UnsupportedError"; break;
    default: break;
  }
  py::object cls = py::module_::import("vitrine.errors").attr(name);
  PyErr_SetObject(cls.ptr(), cls(Text(st.message())).ptr());
  throw py::error_already_set();
}

void Check(const Status& st) {
  if (!st.ok()) Raise(st);
}

template <typename T>
T Take(Result<T> r) {
  if (!r.ok()) Raise(r.status());
  return std::move(*r);
}

// ---------------------------------------------------------------- queries

// A query's knobs from keyword arguments, and what they point to.
struct Query {
  QueryParams q;
  std::unique_ptr<CompiledRules> rules;
};

const py::object& Numpy(const char* name);  // numpy.array, .integer or .number

std::map<std::string, std::string, std::less<>> StringMap(const py::object& o, const char* what) {
  std::map<std::string, std::string, std::less<>> out;
  if (o.is_none()) return out;
  if (!py::isinstance<py::dict>(o)) {
    Raise(Status::InvalidArgument(std::string(what) + ": expected a dict of str -> str"));
  }
  for (auto [k, v] : o.cast<py::dict>()) out[py::str(k)] = py::str(v);
  return out;
}

// rules: rule text, or a pathlib.Path / os.PathLike naming a rules file.
std::unique_ptr<Query> MakeQuery(const Engine& engine, int n, const py::object& rules,
                                 const py::object& weights, const py::object& diversity,
                                 const py::object& params, const py::object& context, int pool,
                                 int ef, bool explain) {
  auto query = std::make_unique<Query>();
  QueryParams& q = query->q;
  if (n < 1) Raise(Status::InvalidArgument("N must be at least 1"));
  q.k = n;
  if (pool < 0) Raise(Status::InvalidArgument("pool must be >= 0"));
  if (ef < 0) Raise(Status::InvalidArgument("ef must be >= 0"));
  q.pool = pool;
  q.ef_search = ef;
  q.explain = explain;
  if (!weights.is_none()) {
    if (py::isinstance<py::str>(weights)) {
      q.weights = Take(ParseBlockWeights(weights.cast<std::string>()));
    } else if (py::isinstance<py::dict>(weights)) {
      // The checks ParseBlockWeights makes on "block=number", on the values
      // themselves (a round trip through text would round them).
      for (auto [k, v] : weights.cast<py::dict>()) {
        const std::string block = py::str(k);
        if (!py::isinstance<py::float_>(v) && !py::isinstance<py::int_>(v) &&
            !py::isinstance(v, Numpy("number"))) {
          Raise(Status::InvalidArgument("weights: '" + block + "': expected a number, got " +
                                        std::string(py::str(v.get_type()))));
        }
        const float w = v.cast<float>();
        if (block.empty() || block.find_first_of("=,") != std::string::npos || !std::isfinite(w)) {
          Raise(Status::InvalidArgument("weights: '" + block + "': expected block=number"));
        }
        q.weights[block] = w;
      }
    } else {
      Raise(Status::InvalidArgument("weights: expected a dict or a string like 'cf=0.6,content=0.3'"));
    }
  }
  if (!diversity.is_none()) Check(ParseDiversity(diversity.cast<std::string>(), &q));
  q.context.params = StringMap(params, "params");
  q.context.context = StringMap(context, "context");
  if (!rules.is_none()) {
    std::string text, source = "rules";
    if (py::isinstance(rules, py::module_::import("os").attr("PathLike"))) {
      source = py::str(rules);
      text = Take(ReadFile(source));
    } else {
      text = rules.cast<std::string>();
    }
    query->rules = std::make_unique<CompiledRules>(Take(CompileRules(engine, text, source)));
    query->rules->ApplyTo(&q);
  }
  return query;
}

// --------------------------------------------------------------- results

// Python objects looked up once (the module lives as long as the
// interpreter; they are never released, so no destructor runs after
// Python's finalisation).
const py::object& Numpy(const char* name) {
  static auto* array = new py::object(py::module_::import("numpy").attr("array"));
  static auto* integer = new py::object(py::module_::import("numpy").attr("integer"));
  static auto* number = new py::object(py::module_::import("numpy").attr("number"));
  const std::string_view n(name);
  return n == "array" ? *array : n == "number" ? *number : *integer;
}

// Fixed-width numpy unicode ids (dtype <U{width}), rows x cols, "" where a
// row has fewer answers. ASCII ids (the usual case) are written straight
// into the array's UCS-4 buffer; others go through Python's UTF-8 decoder.
py::array IdArray(const std::vector<std::vector<const std::string*>>& rows, size_t cols,
                  bool flat) {
  size_t width = 1;
  bool ascii = true;
  for (const auto& row : rows) {
    for (const std::string* id : row) {
      width = std::max(width, id->size());
      for (const char c : *id) ascii &= static_cast<unsigned char>(c) < 0x80;
    }
  }
  std::vector<py::ssize_t> shape = {static_cast<py::ssize_t>(rows.size()),
                                    static_cast<py::ssize_t>(cols)};
  if (flat) shape = {static_cast<py::ssize_t>(cols)};
  if (!ascii) {
    py::list list;
    for (const auto& row : rows) {
      for (size_t j = 0; j < cols; ++j) list.append(j < row.size() ? Text(*row[j]) : py::str(""));
    }
    return Numpy("array")(list, py::str("U")).attr("reshape")(py::tuple(py::cast(shape)));
  }
  // Parsing a dtype string costs about a microsecond: keep one per width.
  static auto* dtypes = new std::map<size_t, py::dtype>();
  auto it = dtypes->find(width);
  if (it == dtypes->end()) it = dtypes->emplace(width, py::dtype("<U" + std::to_string(width))).first;
  py::array a(it->second, shape);
  auto* out = static_cast<uint32_t*>(a.mutable_data());
  std::fill(out, out + rows.size() * cols * width, 0u);
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t j = 0; j < rows[i].size() && j < cols; ++j) {
      uint32_t* cell = out + (i * cols + j) * width;
      const std::string& id = *rows[i][j];
      for (size_t c = 0; c < id.size(); ++c) cell[c] = static_cast<unsigned char>(id[c]);
    }
  }
  return a;
}

// (ids, scores) from per-query hits: 1-D for one query, 2-D (queries x N)
// for a batch, padded with "" and NaN.
py::tuple IdsAndScores(const Engine& engine, const std::vector<std::vector<Hit>>& hits, size_t n,
                       bool single) {
  std::vector<std::vector<const std::string*>> ids(hits.size());
  // No answer is longer than the catalog, so a huge N does not allocate
  // padding for answers that cannot exist.
  size_t cols = single ? (hits.empty() ? 0 : hits[0].size())
                       : std::min(n, static_cast<size_t>(engine.catalog().size()));
  py::array_t<float> scores(single ? std::vector<py::ssize_t>{static_cast<py::ssize_t>(cols)}
                                   : std::vector<py::ssize_t>{static_cast<py::ssize_t>(hits.size()),
                                                              static_cast<py::ssize_t>(cols)});
  float* s = scores.mutable_data();
  for (size_t i = 0; i < hits.size(); ++i) {
    for (size_t j = 0; j < cols; ++j) {
      const bool has = j < hits[i].size();
      s[i * cols + j] = has ? hits[i][j].score : std::numeric_limits<float>::quiet_NaN();
      if (has) ids[i].push_back(&engine.catalog().ids.id(hits[i][j].item));
    }
  }
  return py::make_tuple(IdArray(ids, cols, single), scores);
}

py::dict HitDict(const Engine& engine, const Hit& h) {
  py::dict d;
  d["item"] = Text(engine.catalog().ids.id(h.item));
  d["score"] = h.score;
  py::dict blocks;
  for (size_t b = 0; b < h.block_cos.size() && b < engine.layout().size(); ++b) {
    blocks[py::str(engine.layout()[b].name)] = h.block_cos[b];
  }
  d["blocks"] = blocks;
  d["reason"] = Text(h.reason);
  d["pinned"] = h.pinned;
  d["boost"] = h.boost;
  d["rule_lines"] = h.rule_lines;
  py::list features;
  for (const auto& f : h.ranker_features) {
    features.append(py::make_tuple(Text(f.name), f.value));
  }
  d["ranker_features"] = features;
  return d;
}

// Query items: one id (str), one index (int), or a sequence of them.
std::vector<std::string> ItemIds(const Engine& engine, const py::handle& o, bool* single) {
  auto one = [&](const py::handle& x) -> std::string {
    if (py::isinstance<py::str>(x)) return x.cast<std::string>();
    if (py::isinstance<py::int_>(x) || py::isinstance(x, Numpy("integer"))) {
      int64_t i = -1;
      try {
        i = x.cast<int64_t>();
      } catch (const py::cast_error&) {  // beyond int64: out of range all the same
        Raise(Status::NotFound("item index " + std::string(py::str(x)) + " out of range [0, " +
                               std::to_string(engine.catalog().size()) + ")"));
      }
      if (i < 0 || i >= engine.catalog().size()) {
        Raise(Status::NotFound("item index " + std::to_string(i) + " out of range [0, " +
                               std::to_string(engine.catalog().size()) + ")"));
      }
      return engine.catalog().ids.id(static_cast<int32_t>(i));
    }
    Raise(Status::InvalidArgument("expected an item id (str) or index (int), got " +
                                  std::string(py::str(x.get_type()))));
  };
  *single = py::isinstance<py::str>(o) || py::isinstance<py::int_>(o) ||
            py::isinstance(o, Numpy("integer"));
  std::vector<std::string> out;
  if (*single) {
    out.push_back(one(o));
  } else {
    for (const py::handle x : o) out.push_back(one(x));
  }
  return out;
}

// Runs fn(i) for i in [0, n) over OpenMP threads with the GIL released; the
// first failing query's Status (by index) is raised, naming the query. An
// exception (std::bad_alloc) must not leave an OpenMP region, where it
// would terminate the process: it is kept and rethrown with the GIL held,
// and pybind11 raises it (MemoryError for bad_alloc).
// Threads of a batch call (vitrine.set_num_threads); 0 = OpenMP's default,
// every core. Process-wide, like faiss.omp_set_num_threads, but read per
// call so that it holds for batches started from any Python thread.
std::atomic<int> g_batch_threads{0};

int BatchThreads() {
  const int t = g_batch_threads.load(std::memory_order_relaxed);
  return t > 0 ? t : omp_get_max_threads();
}

template <typename Fn>
void ParallelQueries(size_t n, const std::vector<std::string>& labels, Fn fn) {
  std::vector<Status> errors(n);
  std::atomic<bool> failed{false};
  std::exception_ptr thrown;
  std::mutex thrown_mu;
  auto run = [&](size_t i) {
    try {
      Status st = fn(i);
      if (!st.ok()) {
        errors[i] = std::move(st);
        failed = true;
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(thrown_mu);
      if (!thrown) thrown = std::current_exception();
      failed = true;
    }
  };
  {
    py::gil_scoped_release release;
    if (n == 1) {  // no thread team for one query
      run(0);
    } else {
#pragma omp parallel for schedule(dynamic, 4) num_threads(BatchThreads())
      for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
        if (failed.load(std::memory_order_relaxed)) continue;
        run(static_cast<size_t>(i));
      }
    }
  }
  if (thrown) std::rethrow_exception(thrown);
  for (size_t i = 0; i < n; ++i) {
    if (!errors[i].ok()) {
      Raise(n > 1 ? errors[i].WithContext("query " + std::to_string(i) + " (" + labels[i] + ")")
                  : errors[i]);
    }
  }
}

// `self` of a bound method, checked: an instance whose __init__ never ran
// (made with __new__, as copy and pickle protocols do) has no C++ object
// behind it, and pybind11 would hand the method its unconstructed storage.
// The check is pybind11's own ("__init__ must be called"), made per call.
template <typename T>
T& Self(py::handle self, const char* type) {
  if (!py::isinstance<T>(self)) {
    Raise(Status::InvalidArgument(std::string("expected a ") + type + " as self"));
  }
  auto* inst = reinterpret_cast<py::detail::instance*>(self.ptr());
  auto vh = inst->get_value_and_holder(py::detail::get_type_info(typeid(T)));
  if (!vh || !vh.holder_constructed() || vh.value_ptr() == nullptr) {
    Raise(Status::InvalidArgument(std::string("this ") + type +
                                  " was never initialised (use vitrine.open or the constructor)"));
  }
  return *static_cast<T*>(vh.value_ptr());
}

// ------------------------------------------------------------------ Bundle

class Bundle {
 public:
  Bundle(const std::string& path, bool verify) : path_(path) {
    Result<std::unique_ptr<Engine>> e = [&] {
      py::gil_scoped_release release;
      return Engine::Open(path, verify ? VerifyMode::kFull : VerifyMode::kSizesOnly);
    }();
    engine_ = std::shared_ptr<const Engine>(Take(std::move(e)).release());
  }

  std::shared_ptr<const Engine> engine() const {
    if (!engine_) Raise(Status::InvalidArgument(path_ + ": the bundle is closed"));
    return engine_;
  }
  void Close() { engine_.reset(); }
  bool closed() const { return engine_ == nullptr; }
  const std::string& path() const { return path_; }

  py::tuple SimilarItems(const py::object& items, int n, const py::object& rules,
                         const py::object& weights, const py::object& diversity,
                         const py::object& params, const py::object& context, int pool, int ef) {
    auto engine = this->engine();
    bool single = false;
    const std::vector<std::string> ids = ItemIds(*engine, items, &single);
    auto query = MakeQuery(*engine, n, rules, weights, diversity, params, context, pool, ef, false);
    std::vector<std::vector<Hit>> hits(ids.size());
    ParallelQueries(ids.size(), ids, [&](size_t i) -> Status {
      auto r = engine->Similar(ids[i], query->q);
      if (!r.ok()) return r.status();
      hits[i] = std::move(*r);
      return Status::OK();
    });
    return IdsAndScores(*engine, hits, static_cast<size_t>(n), single);
  }

  // Who: a user id (str), a history (list of item ids), or a list of either.
  std::vector<RecommendRequest> Requests(const Engine& engine, const py::object& who,
                                         const QueryParams& q, bool filter, bool* single,
                                         std::vector<std::string>* labels) {
    auto one = [&](const py::handle& x) {
      RecommendRequest r;
      r.query = q;
      r.filter_already_seen = filter;
      if (py::isinstance<py::str>(x)) {
        r.user = x.cast<std::string>();
        labels->push_back(*r.user);
      } else {
        bool unused = false;
        r.history = ItemIds(engine, x, &unused);
        labels->push_back("history of " + std::to_string(r.history.size()) + " items");
      }
      return r;
    };
    std::vector<RecommendRequest> out;
    // A str is one user; a sequence of str is one history unless every
    // element is itself a str naming a user (then: many users). Histories
    // are lists of item ids, so a list of lists is a batch of histories.
    if (py::isinstance<py::str>(who)) {
      *single = true;
      out.push_back(one(who));
      return out;
    }
    *single = false;
    for (const py::handle x : who) out.push_back(one(x));
    return out;
  }

  // The retail settings of recommend (docs/retail.md), the same for every
  // request of a batch.
  struct Retail {
    std::string intent = "for-you";
    float exploration = 0;
    std::vector<std::string> not_interested, hide_brands, replenishable;
    std::string category_column = "category";  // buy-again categories, next-step transitions
  };

  py::tuple Recommend(const py::object& who, int n, bool filter, const py::object& rules,
                      const py::object& weights, const py::object& diversity,
                      const py::object& params, const py::object& context, int pool, int ef,
                      bool ranker, const Retail& retail) {
    auto engine = this->engine();
    auto query = MakeQuery(*engine, n, rules, weights, diversity, params, context, pool, ef, false);
    query->q.use_ranker = ranker;
    query->q.exploration = retail.exploration;
    const Intent intent = Take(ParseIntent(retail.intent));
    bool single = false;
    std::vector<std::string> labels;
    std::vector<RecommendRequest> requests = Requests(*engine, who, query->q, filter, &single, &labels);
    for (RecommendRequest& r : requests) {
      r.intent = intent;
      r.not_interested = retail.not_interested;
      r.hidden_brands = retail.hide_brands;
      r.replenishable_categories = retail.replenishable;
      r.category_column = retail.category_column;
    }
    std::vector<std::vector<Hit>> hits(requests.size());
    ParallelQueries(requests.size(), labels, [&](size_t i) -> Status {
      auto r = engine->Recommend(requests[i]);
      if (!r.ok()) return r.status();
      hits[i] = std::move(r->hits);
      return Status::OK();
    });
    return IdsAndScores(*engine, hits, static_cast<size_t>(n), single);
  }

  // One request with every explanation: the hits as dicts, plus what the
  // answer stands on.
  py::dict Explain(const py::object& user, const py::object& history, const py::object& item,
                   int n, const py::object& rules, const py::object& weights,
                   const py::object& diversity, const py::object& params,
                   const py::object& context, bool ranker) {
    auto engine = this->engine();
    auto query = MakeQuery(*engine, n, rules, weights, diversity, params, context, 0, 0, true);
    query->q.use_ranker = ranker;
    if ((user.is_none() && history.is_none()) == item.is_none()) {
      Raise(Status::InvalidArgument("explain: give item=..., or user=... and/or history=..."));
    }
    py::dict out;
    std::vector<Hit> hits;
    if (!item.is_none()) {
      bool single = false;
      const std::string id = ItemIds(*engine, item, &single).at(0);
      Result<std::vector<Hit>> r = [&] {
        py::gil_scoped_release release;
        return engine->Similar(id, query->q);
      }();
      hits = Take(std::move(r));
      out["source"] = "item";
      out["fallback"] = false;
    } else {
      RecommendRequest req;
      req.query = query->q;
      if (!user.is_none()) req.user = user.cast<std::string>();
      if (!history.is_none()) {
        bool single = false;
        req.history = ItemIds(*engine, history, &single);
      }
      Result<Recommendation> r = [&] {
        py::gil_scoped_release release;
        return engine->Recommend(req);
      }();
      Recommendation rec = Take(std::move(r));
      hits = std::move(rec.hits);
      out["source"] = Text(rec.source);
      out["fallback"] = rec.fallback;
    }
    py::list list;
    for (const Hit& h : hits) list.append(HitDict(*engine, h));
    out["hits"] = list;
    return out;
  }

  py::array_t<float> RecalculateUser(const py::object& history, const py::object& weights) {
    auto engine = this->engine();
    bool single = false;
    std::vector<int32_t> items;
    for (const std::string& id : ItemIds(*engine, history, &single)) {
      items.push_back(Take(engine->FindItem(id)));
    }
    std::vector<float> w;
    if (!weights.is_none()) w = weights.cast<std::vector<float>>();
    if (w.empty()) w.assign(items.size(), 1.0f);
    if (w.size() != items.size()) {
      Raise(Status::InvalidArgument("weights: " + std::to_string(w.size()) + " weights for " +
                                    std::to_string(items.size()) + " history items"));
    }
    Result<std::vector<float>> v = [&] {
      py::gil_scoped_release release;
      return engine->HistoryVector(items, w);
    }();
    std::vector<float> vec = Take(std::move(v));
    py::array_t<float> out(static_cast<py::ssize_t>(vec.size()));
    std::copy(vec.begin(), vec.end(), out.mutable_data());
    return out;
  }

  py::list Complete(const std::string& item, const std::string& category_column,
                    int max_categories, const py::object& rules) {
    auto engine = this->engine();
    auto query = MakeQuery(*engine, 1, rules, py::none(), py::none(), py::none(), py::none(), 0, 0,
                           false);
    CompleteRequest req;
    req.item = item;
    req.category_column = category_column;
    req.max_categories = max_categories;
    req.query = query->q;
    Result<std::vector<LookSlot>> r = [&] {
      py::gil_scoped_release release;
      return engine->CompleteTheLook(req);
    }();
    py::list out;
    for (const LookSlot& s : Take(std::move(r))) {
      py::dict d = HitDict(*engine, s.hit);
      d["category"] = Text(s.category);
      d["lift"] = s.lift;
      out.append(d);
    }
    return out;
  }

  py::list Audience(const std::string& item, int n, const py::object& rules,
                    const py::object& params, const py::object& context,
                    const std::vector<std::string>& opt_out, bool include_owners,
                    const std::string& search) {
    auto engine = this->engine();
    auto query = MakeQuery(*engine, n, rules, py::none(), py::none(), params, context, 0, 0,
                           false);
    AudienceRequest req;
    req.item = item;
    req.query = query->q;
    req.opt_out = opt_out;
    req.include_owners = include_owners;
    req.search = Take(ParseAudienceSearch(search));
    Result<vitrine::Audience> r = [&] {
      py::gil_scoped_release release;
      return engine->FindAudience(req);
    }();
    py::list out;
    for (const AudienceMember& m : Take(std::move(r)).members) {
      py::dict d;
      d["user"] = Text(engine->users().id(m.user));
      d["score"] = m.score;
      d["reason"] = Text(m.reason);
      out.append(d);
    }
    return out;
  }

  // Trending items, or with `by` a column's values by growth (engine/trend.h).
  py::list Trending(const std::string& window, int n, const py::object& by,
                    const py::object& rules, const py::object& params, const py::object& context,
                    const py::object& at) {
    auto engine = this->engine();
    TrendRequest req;
    req.window_hours = Take(ParseTrendWindow(window));
    if (!at.is_none()) {
      const std::string text = py::str(at);
      if (!ParseTimestamp(text, &req.at) || req.at <= 0) {
        Raise(Status::InvalidArgument("at '" + text.substr(0, 40) +
                                      "': expected unix seconds or an ISO-8601 time after 1970"));
      }
    }
    auto query = MakeQuery(*engine, std::max(n, 1), rules, py::none(), py::none(), params, context,
                           0, 0, false);
    req.query = query->q;
    req.query.k = n;  // N counts values with `by` (0 = all), else items (>= 1)
    py::list out;
    if (!by.is_none()) {
      req.by = py::str(by);
      Result<std::vector<GroupTrend>> r = [&] {
        py::gil_scoped_release release;
        return engine->GroupTrends(req);
      }();
      for (const GroupTrend& g : Take(std::move(r))) {
        py::dict d;
        d["value"] = Text(g.value);
        d["growth"] = g.ratio;
        d["growth_low95"] = g.ratio_low;
        d["growth_high95"] = g.ratio_high;
        d["direction"] = g.direction;
        d["events"] = g.counts.current_events;
        d["events_before"] = g.counts.previous_events;
        py::list top;
        for (int32_t i : g.top_items) top.append(Text(engine->catalog().ids.id(i)));
        d["top_items"] = top;
        out.append(d);
      }
      return out;
    }
    Result<vitrine::Trending> r = [&] {
      py::gil_scoped_release release;
      return engine->Trend(req);
    }();
    const vitrine::Trending t = Take(std::move(r));
    for (size_t j = 0; j < t.hits.size(); ++j) {
      py::dict d;
      d["item"] = Text(engine->catalog().ids.id(t.hits[j].item));
      d["growth"] = t.counts[j].growth();
      d["current"] = t.counts[j].current;
      d["previous"] = t.counts[j].previous;
      d["reason"] = Text(t.hits[j].reason);
      out.append(d);
    }
    return out;
  }

  py::tuple Popular(int n, const py::object& rules) {
    auto engine = this->engine();
    auto query = MakeQuery(*engine, n, rules, py::none(), py::none(), py::none(), py::none(), 0, 0,
                           false);
    Result<std::vector<Hit>> r = [&] {
      py::gil_scoped_release release;
      return engine->Popular(query->q);
    }();
    std::vector<std::vector<Hit>> hits = {Take(std::move(r))};
    return IdsAndScores(*engine, hits, static_cast<size_t>(n), true);
  }

  // The fused item vectors as a read-only numpy view of the bundle's own
  // memory (zero-copy); the view keeps the engine alive after close().
  py::array Vectors() {
    auto engine = this->engine();
    const Matrix& m = engine->vectors();
    auto* keep = new std::shared_ptr<const Engine>(engine);
    py::capsule owner(keep, [](void* p) { delete static_cast<std::shared_ptr<const Engine>*>(p); });
    py::array a(py::dtype::of<float>(),
                {static_cast<py::ssize_t>(m.rows), static_cast<py::ssize_t>(m.cols)},
                {static_cast<py::ssize_t>(m.cols * sizeof(float)), static_cast<py::ssize_t>(sizeof(float))},
                m.data.data(), owner);
    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return a;
  }

  py::array ItemIdsArray() {
    auto engine = this->engine();
    std::vector<std::vector<const std::string*>> rows(1);
    for (const std::string& id : engine->catalog().ids.ids()) rows[0].push_back(&id);
    return IdArray(rows, rows[0].size(), true);
  }

  std::string Manifest() { return engine()->bundle().manifest().dump(); }

  // The C++ side of the overhead benchmark (bench/python_bench.py): the mean
  // wall time of `reps` Engine::Similar calls for one item, in nanoseconds,
  // with the same query knobs as similar_items.
  double TimeSimilar(const std::string& item, int n, int reps) {
    auto engine = this->engine();
    auto query = MakeQuery(*engine, n, py::none(), py::none(), py::none(), py::none(), py::none(),
                           0, 0, false);
    py::gil_scoped_release release;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) {
      auto r = engine->Similar(item, query->q);
      if (!r.ok()) return -1;
    }
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / std::max(reps, 1);
  }

 private:
  std::string path_;
  std::shared_ptr<const Engine> engine_;
};

// ------------------------------------------------------------- build, eval

py::dict Build(const std::string& config_toml, const std::string& out, bool quiet) {
  BuildOptions o;
  Check(ApplyBuildConfigText(config_toml, "build options", &o));
  SetQuiet(quiet);
  Result<BuildSummary> r = [&] {
    py::gil_scoped_release release;
    return BuildBundle(o, out);
  }();
  SetQuiet(false);
  BuildSummary s = Take(std::move(r));
  py::dict d;
  d["items"] = s.items;
  d["users"] = s.users;
  d["interactions"] = s.interactions;
  d["cold_items"] = s.cold_items;
  d["dim"] = s.dim;
  d["seconds"] = s.seconds;
  return d;
}

// `vitrine tune` on the inputs that `config_toml` names: the chosen
// parameters, every trial, and the choice as build.toml text.
py::dict TuneConfig(const std::string& config_toml, double budget_seconds, int max_trials,
                    uint64_t seed, int64_t eval_users, bool quiet) {
  BuildOptions o;
  Check(ApplyBuildConfigText(config_toml, "build options", &o));
  TuneOptions t;
  t.budget_seconds = budget_seconds;
  t.max_trials = max_trials;
  t.seed = seed;
  t.eval_users = eval_users;
  t.scratch_dir = std::filesystem::temp_directory_path() /
                  ("vitrine-tune-" + std::to_string(::getpid()));
  SetQuiet(quiet);
  Result<TuneResult> r = [&]() -> Result<TuneResult> {
    py::gil_scoped_release release;
    VITRINE_ASSIGN_OR_RETURN(BuildInputs in, ReadBuildInputs(o));
    if (!in.has_interactions) {
      return Status::InvalidArgument(o.interactions.string() + ": no usable interactions to tune on");
    }
    return Tune(o, in.catalog, in.interactions, t,
                [](const TuneTrial& trial, int done, int planned, double eta) {
                  LogInfo("tune %d/%d %-9s ndcg@10 %.4f  %5.1f s  eta %.0f s  %s", done, planned,
                          trial.stage.c_str(), trial.ndcg, trial.seconds, eta,
                          trial.params.dump().c_str());
                });
  }();
  SetQuiet(false);
  TuneResult tuned = Take(std::move(r));
  const py::object loads = py::module_::import("json").attr("loads");
  py::list trials;
  for (const TuneTrial& trial : tuned.trials) {
    py::dict row;
    row["stage"] = trial.stage;
    row["index"] = trial.index;
    row["params"] = loads(trial.params.dump());
    row["ndcg"] = trial.ndcg;
    row["seconds"] = trial.seconds;
    trials.append(row);
  }
  py::dict d;
  d["chosen"] = loads(tuned.chosen.dump());
  d["trials"] = trials;
  d["toml"] = Take(tuned.ToToml());
  d["budget_reached"] = tuned.budget_reached;
  d["validation_users"] = tuned.validation_users;
  d["seconds"] = tuned.seconds;
  return d;
}

std::vector<std::string> BuildConfigKeyNames() { return BuildConfigKeys(); }

// Rows of the evaluation table as dicts (the pandas frame is made in
// Python), plus the pool recall and the random cold-start reference.
py::dict Evaluate(py::handle bundle_object, const std::string& test, int k, const py::object& weights,
                  const std::vector<std::string>& models, int64_t max_users,
                  const py::object& events, const py::object& rules, bool quiet) {
  auto engine = Self<Bundle>(bundle_object, "Bundle").engine();
  BundleEvalOptions o;
  o.test_path = test;
  o.k = k;
  if (!weights.is_none()) o.weights = Take(ParseBlockWeights(weights.cast<std::string>()));
  if (!models.empty()) o.models = models;
  o.max_users = max_users;
  if (!events.is_none()) o.read.events = Take(EventWeights::Parse(events.cast<std::string>()));
  if (!rules.is_none()) o.rules_path = py::str(rules);
  SetQuiet(quiet);
  Result<BundleEvaluation> r = [&] {
    py::gil_scoped_release release;
    return EvaluateBundle(*engine, o);
  }();
  SetQuiet(false);
  BundleEvaluation e = Take(std::move(r));
  py::list rows;
  for (const EvalReport& rep : e.reports) rows.append(py::module_::import("json").attr("loads")(rep.ToJson().dump()));
  py::dict d;
  d["rows"] = rows;
  d["k"] = e.k;
  d["random_cold_recall"] = e.random_cold_recall;
  d["dropped_users"] = e.dropped_users;
  if (e.pool) {
    d["pool_recall"] = e.pool->recall;
    d["pool_mean_size"] = e.pool->mean_pool;
    d["pool_users"] = e.pool->users;
  }
  if (e.next_step) {
    py::list ns;
    for (const NextStepHitRate& m : e.next_step->models) {
      py::dict row;
      row["model"] = m.model;
      row["hit_rate"] = m.hit_rate;
      row["low"] = m.low;
      row["high"] = m.high;
      row["hits"] = m.hits;
      row["users"] = e.next_step->users;
      ns.append(row);
    }
    d["next_step"] = ns;
  }
  return d;
}

// ------------------------------------------------------------- ImplicitALS

// A scipy.sparse CSR matrix's parts, checked: sorted unique in-range column
// indices per row, monotone indptr, finite non-negative weights.
CsrMatrix CsrFromArrays(int64_t rows, int64_t cols, py::array_t<int64_t, py::array::c_style | py::array::forcecast> indptr,
                        py::array_t<int32_t, py::array::c_style | py::array::forcecast> indices,
                        py::array_t<float, py::array::c_style | py::array::forcecast> data) {
  if (rows < 0 || cols < 0 || cols > INT32_MAX) {
    Raise(Status::InvalidArgument("user_items: bad shape (" + std::to_string(rows) + ", " +
                                  std::to_string(cols) + ")"));
  }
  if (indptr.size() != rows + 1 || indices.size() != data.size()) {
    Raise(Status::InvalidArgument("user_items: indptr must have rows + 1 entries and indices as many as data"));
  }
  CsrMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.indptr.assign(indptr.data(), indptr.data() + indptr.size());
  m.indices.assign(indices.data(), indices.data() + indices.size());
  m.values.assign(data.data(), data.data() + data.size());
  if (m.indptr[0] != 0 || m.indptr.back() != m.nnz()) {
    Raise(Status::InvalidArgument("user_items: indptr must start at 0 and end at nnz"));
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (m.indptr[r + 1] < m.indptr[r]) {
      Raise(Status::InvalidArgument("user_items: indptr decreases at row " + std::to_string(r)));
    }
    for (int64_t p = m.indptr[r]; p < m.indptr[r + 1]; ++p) {
      const int32_t c = m.indices[p];
      if (c < 0 || c >= cols || (p > m.indptr[r] && c <= m.indices[p - 1])) {
        Raise(Status::InvalidArgument("user_items: row " + std::to_string(r) +
                                      ": column indices must be sorted, unique and in [0, " +
                                      std::to_string(cols) + ") (call sum_duplicates())"));
      }
      if (!std::isfinite(m.values[p]) || m.values[p] < 0) {
        Raise(Status::InvalidArgument("user_items: row " + std::to_string(r) + ", column " +
                                      std::to_string(c) + ": weights must be finite and >= 0"));
      }
    }
  }
  return m;
}

py::array_t<float> MatrixCopy(const Matrix& m) {
  py::array_t<float> a({static_cast<py::ssize_t>(m.rows), static_cast<py::ssize_t>(m.cols)});
  std::copy(m.data.begin(), m.data.end(), a.mutable_data());
  return a;
}

class Als {
 public:
  Als(int factors, float regularization, float alpha, int iterations, float unobserved_weight,
      float reg_exponent, int cg_steps, const std::string& solver, uint64_t seed,
      int num_threads) {
    if (solver != "cg" && solver != "cholesky") {
      Raise(Status::InvalidArgument("solver: expected 'cg' or 'cholesky', got '" + solver + "'"));
    }
    o_.solver = solver == "cg" ? AlsSolver::kConjugateGradient : AlsSolver::kCholesky;
    o_.factors = factors;
    o_.regularization = regularization;
    o_.alpha = alpha;
    o_.iterations = iterations;
    o_.unobserved_weight = unobserved_weight;
    o_.reg_exponent = reg_exponent;
    o_.cg_steps = cg_steps;
    o_.seed = seed;
    o_.num_threads = num_threads;
  }
  void Fit(int64_t rows, int64_t cols, py::array indptr, py::array indices, py::array data) {
    CsrMatrix m = CsrFromArrays(rows, cols, indptr, indices, data);
    model_ = ImplicitALS(o_);
    Status st;
    {
      py::gil_scoped_release release;
      st = model_.Fit(m);
    }
    Check(st);
  }
  py::array_t<float> RecalculateUser(std::vector<int32_t> items, std::vector<float> weights) {
    if (weights.empty()) weights.assign(items.size(), 1.0f);
    Result<std::vector<float>> r = [&] {
      py::gil_scoped_release release;
      return model_.FoldIn(items, weights);
    }();
    std::vector<float> v = Take(std::move(r));
    py::array_t<float> out(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
  }
  py::array_t<float> UserFactors() const { return MatrixCopy(model_.user_factors()); }
  py::array_t<float> ItemFactors() const { return MatrixCopy(model_.item_factors()); }

 private:
  AlsOptions o_;
  ImplicitALS model_;
};

}  // namespace
}  // namespace vitrine::python

PYBIND11_MODULE(_core, m) {
  using namespace vitrine::python;
  m.doc() = "vitrine's C++ engine (use the `vitrine` package, not this module)";
  // A value of the wrong type that reached a C++ conversion is the caller's
  // mistake: TypeError, not pybind11's default RuntimeError.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const py::cast_error& e) {
      PyErr_SetString(PyExc_TypeError,
                      (std::string("an argument has the wrong type (") + e.what() + ")").c_str());
    }
  });
  // Every method goes through Self(): see there.
  py::class_<Bundle>(m, "Bundle")
      .def(py::init<const std::string&, bool>(), py::arg("path"), py::arg("verify") = false)
      .def("close", [](py::handle self) { Self<Bundle>(self, "Bundle").Close(); })
      .def_property_readonly("closed", [](py::handle self) { return Self<Bundle>(self, "Bundle").closed(); })
      .def_property_readonly("path", [](py::handle self) { return Self<Bundle>(self, "Bundle").path(); })
      .def("similar_items",
           [](py::handle self, const py::object& items, int n, const py::object& rules,
              const py::object& weights, const py::object& diversity, const py::object& params,
              const py::object& context, int pool, int ef) {
             return Self<Bundle>(self, "Bundle").SimilarItems(items, n, rules, weights, diversity, params,
                                                      context, pool, ef);
           },
           py::arg("items"), py::arg("N") = 10, py::arg("rules") = py::none(),
           py::arg("weights") = py::none(), py::arg("diversity") = py::none(),
           py::arg("params") = py::none(), py::arg("context") = py::none(), py::arg("pool") = 0,
           py::arg("ef") = 0)
      .def("recommend",
           [](py::handle self, const py::object& who, int n, bool filter, const py::object& rules,
              const py::object& weights, const py::object& diversity, const py::object& params,
              const py::object& context, int pool, int ef, bool ranker, const std::string& intent,
              float exploration, const std::vector<std::string>& not_interested,
              const std::vector<std::string>& hide_brands,
              const std::vector<std::string>& replenishable, const std::string& category_column) {
             return Self<Bundle>(self, "Bundle")
                 .Recommend(who, n, filter, rules, weights, diversity, params, context, pool, ef,
                            ranker,
                            {intent, exploration, not_interested, hide_brands, replenishable,
                             category_column});
           },
           py::arg("who"), py::arg("N") = 10, py::arg("filter_already_liked") = true,
           py::arg("rules") = py::none(), py::arg("weights") = py::none(),
           py::arg("diversity") = py::none(), py::arg("params") = py::none(),
           py::arg("context") = py::none(), py::arg("pool") = 0, py::arg("ef") = 0,
           py::arg("ranker") = true, py::arg("intent") = "for-you", py::arg("exploration") = 0.0f,
           py::arg("not_interested") = std::vector<std::string>{},
           py::arg("hide_brands") = std::vector<std::string>{},
           py::arg("replenishable") = std::vector<std::string>{},
           py::arg("category_column") = "category")
      .def("explain",
           [](py::handle self, const py::object& user, const py::object& history,
              const py::object& item, int n, const py::object& rules, const py::object& weights,
              const py::object& diversity, const py::object& params, const py::object& context,
              bool ranker) {
             return Self<Bundle>(self, "Bundle").Explain(user, history, item, n, rules, weights,
                                                 diversity, params, context, ranker);
           },
           py::arg("user") = py::none(), py::arg("history") = py::none(),
           py::arg("item") = py::none(), py::arg("N") = 10, py::arg("rules") = py::none(),
           py::arg("weights") = py::none(), py::arg("diversity") = py::none(),
           py::arg("params") = py::none(), py::arg("context") = py::none(),
           py::arg("ranker") = true)
      .def("recalculate_user",
           [](py::handle self, const py::object& history, const py::object& weights) {
             return Self<Bundle>(self, "Bundle").RecalculateUser(history, weights);
           },
           py::arg("history"), py::arg("weights") = py::none())
      .def("complete",
           [](py::handle self, const std::string& item, const std::string& column, int max,
              const py::object& rules) {
             return Self<Bundle>(self, "Bundle").Complete(item, column, max, rules);
           },
           py::arg("item"), py::arg("category_column") = "category",
           py::arg("max_categories") = 4, py::arg("rules") = py::none())
      .def("audience",
           [](py::handle self, const std::string& item, int n, const py::object& rules,
              const py::object& params, const py::object& context,
              const std::vector<std::string>& opt_out, bool include_owners,
              const std::string& search) {
             return Self<Bundle>(self, "Bundle")
                 .Audience(item, n, rules, params, context, opt_out, include_owners, search);
           },
           py::arg("item"), py::arg("N") = 100, py::arg("rules") = py::none(),
           py::arg("params") = py::none(), py::arg("context") = py::none(),
           py::arg("opt_out") = std::vector<std::string>{}, py::arg("include_owners") = false,
           py::arg("search") = "auto",
           "The users most likely to want `item`, best first: [{user, score, reason}] "
           "(docs/retail.md).")
      .def("trending",
           [](py::handle self, const std::string& window, int n, const py::object& by,
              const py::object& rules, const py::object& params, const py::object& context,
              const py::object& at) {
             return Self<Bundle>(self, "Bundle").Trending(window, n, by, rules, params, context, at);
           },
           py::arg("window") = "1d", py::arg("N") = 10, py::arg("by") = py::none(),
           py::arg("rules") = py::none(), py::arg("params") = py::none(),
           py::arg("context") = py::none(), py::arg("at") = py::none(),
           "Items gaining demand fastest: [{item, growth, current, previous, reason}]; with "
           "by=COLUMN that column's values by growth ratio (docs/retail.md, Trending).")
      .def("popular",
           [](py::handle self, int n, const py::object& rules) {
             return Self<Bundle>(self, "Bundle").Popular(n, rules);
           },
           py::arg("N") = 10, py::arg("rules") = py::none())
      .def_property_readonly("vectors", [](py::handle self) { return Self<Bundle>(self, "Bundle").Vectors(); })
      .def_property_readonly("item_ids",
                             [](py::handle self) { return Self<Bundle>(self, "Bundle").ItemIdsArray(); })
      .def("manifest_json", [](py::handle self) { return Self<Bundle>(self, "Bundle").Manifest(); })
      .def("_time_similar", [](py::handle self, const std::string& item, int n, int reps) {
        return Self<Bundle>(self, "Bundle").TimeSimilar(item, n, reps);
      })
      .def("__reduce__", [](py::handle) -> py::object {
        throw py::type_error("a vitrine.Bundle cannot be pickled or copied: open the bundle again");
      });
  m.def("build", &Build, py::arg("config_toml"), py::arg("out"), py::arg("quiet") = false);
  m.def("build_config_keys", &BuildConfigKeyNames);
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 0) Raise(vitrine::Status::InvalidArgument("num_threads must be >= 0 (0 = every core), got " +
                                                 std::to_string(n)));
        g_batch_threads = n;
      },
      py::arg("n"));
  m.def("get_num_threads", &BatchThreads);
  m.def("tune", &TuneConfig, py::arg("config_toml"), py::arg("budget_seconds") = 600.0,
        py::arg("max_trials") = 30, py::arg("seed") = 42, py::arg("eval_users") = 3000,
        py::arg("quiet") = false);
  m.def("evaluate", &Evaluate, py::arg("bundle"), py::arg("test"), py::arg("k") = 10,
        py::arg("weights") = py::none(), py::arg("models") = std::vector<std::string>{},
        py::arg("max_users") = 0, py::arg("events") = py::none(), py::arg("rules") = py::none(),
        py::arg("quiet") = false);
  py::class_<Als>(m, "ImplicitALS")
      .def(py::init<int, float, float, int, float, float, int, const std::string&, uint64_t, int>(),
           py::arg("factors"), py::arg("regularization"), py::arg("alpha"), py::arg("iterations"),
           py::arg("unobserved_weight"), py::arg("reg_exponent"), py::arg("cg_steps"),
           py::arg("solver"), py::arg("seed"), py::arg("num_threads"))
      .def("fit",
           [](py::handle self, int64_t rows, int64_t cols, py::array indptr, py::array indices,
              py::array data) { Self<Als>(self, "ImplicitALS").Fit(rows, cols, indptr, indices, data); })
      .def("recalculate_user",
           [](py::handle self, std::vector<int32_t> items, std::vector<float> weights) {
             return Self<Als>(self, "ImplicitALS").RecalculateUser(std::move(items), std::move(weights));
           })
      .def_property_readonly("user_factors",
                             [](py::handle self) { return Self<Als>(self, "ImplicitALS").UserFactors(); })
      .def_property_readonly("item_factors",
                             [](py::handle self) { return Self<Als>(self, "ImplicitALS").ItemFactors(); })
      .def("__reduce__", [](py::handle) -> py::object {
        throw py::type_error("vitrine._core.ImplicitALS cannot be pickled");
      });
}
