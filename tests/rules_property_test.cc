// Property test for the Rank stage: random catalogs x random rule sets x
// random requests (fixed seeds). The rules are generated as a small syntax
// tree in this file, rendered to text, and evaluated by a naive oracle written
// here from the documented semantics (docs/rules.md). Checked:
//   * AllowedItems (one bitmap, and static + dynamic parts) and per-item
//     Allowed() equal the oracle's allowed set;
//   * Rerank never returns an excluded item, never repeats an item, returns
//     at most k items, keeps every active CAP, places every pin that can hold
//     (allowed, position < k, first for its item/position, within caps);
//   * the result is maximal: fewer than k items only when every allowed
//     candidate left out would break a cap (so exactly min(k, allowed) items
//     without caps);
//   * scores are scaled by the oracle's boost factors; without diversity the
//     unpinned items come in descending boosted score.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "rank/rules.h"
#include "tests/test_util.h"

namespace vitrine {
namespace {

const std::vector<std::string> kBrands = {"a", "b", "c", "d", "e"};
const std::vector<std::string> kTags = {"red", "blue", "green", "black"};
const std::vector<std::string> kTitles = {"x", "y", "z"};

// Raw test data; the Catalog is built from it.
struct Data {
  int n = 0;
  std::vector<int> brand;              // -1 missing
  std::vector<double> price;           // NaN missing
  std::vector<int> flag;               // -1 missing
  std::vector<std::vector<int>> tags;  // may repeat a tag
  std::vector<std::string> title;      // "" missing
  Catalog catalog;
};

Data MakeData(std::mt19937& rng) {
  Data d;
  d.n = 20 + static_cast<int>(rng() % 41);
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  Column brand = MakeColumn("brand", ColumnType::kCategorical);
  brand.dictionary = kBrands;
  Column price = MakeColumn("price", ColumnType::kNumeric);
  Column flag = MakeColumn("flag", ColumnType::kBool);
  Column tags = MakeColumn("tags", ColumnType::kList);
  tags.dictionary = kTags;
  tags.list_offsets.push_back(0);
  Column title = MakeColumn("title", ColumnType::kText);
  for (int i = 0; i < d.n; ++i) {
    d.catalog.ids.Add("item" + std::to_string(i));
    d.brand.push_back(chance(0.1) ? -1 : static_cast<int>(rng() % kBrands.size()));
    d.price.push_back(chance(0.1) ? NAN : static_cast<double>(rng() % 100));
    d.flag.push_back(static_cast<int>(rng() % 3) - 1);
    std::vector<int> t;
    for (int k = 0; k < 4; ++k) {
      if (chance(0.3)) t.push_back(k);
    }
    if (!t.empty() && chance(0.1)) t.push_back(t[0]);  // a repeated value
    d.tags.push_back(t);
    d.title.push_back(chance(0.1) ? "" : kTitles[rng() % kTitles.size()]);
    brand.codes.push_back(d.brand.back());
    price.numbers.push_back(d.price.back());
    flag.bools.push_back(static_cast<int8_t>(d.flag.back()));
    tags.list_codes.insert(tags.list_codes.end(), t.begin(), t.end());
    tags.list_offsets.push_back(static_cast<int64_t>(tags.list_codes.size()));
    title.texts.push_back(d.title.back());
  }
  d.catalog.columns = {brand, price, flag, tags, title};
  return d;
}

// ------------------------------------------------------------ rule trees

struct Val {
  enum Kind { kStr, kNum, kBool, kParam, kCtx, kCur } kind = kStr;
  std::string s;  // string, param name, context key, CurrentItem column
  double x = 0;
  bool b = false;
};

struct Pred {
  enum Kind { kCmp, kAnd, kOr, kNot } kind = kCmp;
  std::unique_ptr<Pred> a, b;
  std::string col;  // catalog column, or context key when on_ctx
  bool on_ctx = false;
  std::string op;  // = != < <= > >= IN NOT IN BETWEEN NOT BETWEEN
  std::vector<Val> vals;
};

struct TRule {
  enum Kind { kInclude, kExclude, kBoost, kBury, kPin, kCap } kind = kInclude;
  std::unique_ptr<Pred> when, where;
  double factor = 1;
  int pin_item = 0, pin_pos = 1;
  int cap_n = 1;
  std::string cap_col;
};

bool UsesCur(const Pred* p) {
  if (p == nullptr) return false;
  for (const Val& v : p->vals) {
    if (v.kind == Val::kCur) return true;
  }
  return UsesCur(p->a.get()) || UsesCur(p->b.get());
}

std::string Render(const Val& v) {
  switch (v.kind) {
    case Val::kStr:
      return "\"" + v.s + "\"";
    case Val::kNum:
      return std::to_string(static_cast<int>(v.x));
    case Val::kBool:
      return v.b ? "TRUE" : "false";
    case Val::kParam:
      return "$" + v.s;
    case Val::kCtx:
      return "context." + v.s;
    case Val::kCur:
      return "CurrentItem." + v.s;
  }
  return "";
}

std::string Render(const Pred& p) {
  switch (p.kind) {
    case Pred::kAnd:
      return "(" + Render(*p.a) + " AND " + Render(*p.b) + ")";
    case Pred::kOr:
      return "(" + Render(*p.a) + " or " + Render(*p.b) + ")";
    case Pred::kNot:
      return "NOT " + Render(*p.a);
    case Pred::kCmp:
      break;
  }
  std::string s = (p.on_ctx ? "context." : "") + p.col + " " + p.op + " ";
  if (p.op == "IN" || p.op == "NOT IN") {
    if (p.vals.size() == 1 && p.vals[0].kind != Val::kStr && p.vals[0].kind != Val::kNum) {
      return s + Render(p.vals[0]);
    }
    s += "(";
    for (size_t i = 0; i < p.vals.size(); ++i) s += (i ? ", " : "") + Render(p.vals[i]);
    return s + ")";
  }
  if (p.op == "BETWEEN" || p.op == "NOT BETWEEN") {
    return s + Render(p.vals[0]) + " AND " + Render(p.vals[1]);
  }
  return s + Render(p.vals[0]);
}

std::string Render(const TRule& r) {
  std::string s = r.when ? "WHEN " + Render(*r.when) + " " : "";
  switch (r.kind) {
    case TRule::kInclude:
      return s + "INCLUDE WHERE " + Render(*r.where);
    case TRule::kExclude:
      return s + "EXCLUDE WHERE " + Render(*r.where);
    case TRule::kBoost:
      return s + "BOOST " + std::to_string(r.factor) + " WHERE " + Render(*r.where);
    case TRule::kBury:
      return s + "bury " + std::to_string(r.factor) + " WHERE " + Render(*r.where);
    case TRule::kPin:
      return s + "PIN \"item" + std::to_string(r.pin_item) + "\" AT " + std::to_string(r.pin_pos);
    case TRule::kCap:
      return s + "CAP " + std::to_string(r.cap_n) + " PER " + r.cap_col;
  }
  return "";
}

class Gen {
 public:
  Gen(std::mt19937& rng, int n) : rng_(rng), n_(n) {}
  int Int(int lo, int hi) { return lo + static_cast<int>(rng_() % (hi - lo + 1)); }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[rng_() % v.size()];
  }

  std::unique_ptr<Pred> ItemPred(int depth) {
    auto p = std::make_unique<Pred>();
    if (depth > 0 && Chance(0.4)) {
      const int k = Int(0, 2);
      p->kind = k == 0 ? Pred::kAnd : k == 1 ? Pred::kOr : Pred::kNot;
      p->a = ItemPred(depth - 1);
      if (p->kind != Pred::kNot) p->b = ItemPred(depth - 1);
      return p;
    }
    p->col = Pick(std::vector<std::string>{"brand", "price", "flag", "tags", "title"});
    if (p->col == "brand") {
      p->op = Pick(std::vector<std::string>{"=", "!=", "IN", "NOT IN"});
      const int form = Int(0, 9);
      if (form == 0) {
        p->vals = {Val{Val::kCur, "brand"}};
      } else if (form == 1 && p->op.find("IN") == std::string::npos) {
        p->vals = {Val{Val::kCtx, "pref"}};
      } else if (form == 2 && p->op.find("IN") != std::string::npos) {
        p->vals = {Val{Val::kParam, "B"}};
      } else {
        const int count = p->op.find("IN") != std::string::npos ? Int(1, 3) : 1;
        for (int i = 0; i < count; ++i) {
          p->vals.push_back(Val{Val::kStr, Chance(0.1) ? "zzz" : Pick(kBrands)});
        }
      }
    } else if (p->col == "price") {
      p->op = Pick(std::vector<std::string>{"=", "!=", "<", "<=", ">", ">=", "BETWEEN",
                                            "NOT BETWEEN", "IN"});
      auto num = [&]() {
        const int form = Int(0, 9);
        if (form == 0) return Val{Val::kCur, "price"};
        if (form == 1) return Val{Val::kParam, "P"};
        return Val{Val::kNum, "", static_cast<double>(Int(0, 99))};
      };
      if (p->op == "IN") {
        for (int i = Int(1, 3); i > 0; --i)
          p->vals.push_back(Val{Val::kNum, "", double(Int(0, 99))});
      } else if (p->op.find("BETWEEN") != std::string::npos) {
        p->vals = {num(), num()};
      } else {
        p->vals = {num()};
      }
    } else if (p->col == "flag") {
      p->op = Pick(std::vector<std::string>{"=", "!="});
      p->vals = {Chance(0.2) ? Val{Val::kParam, "F"} : Val{Val::kBool, "", 0, Chance(0.5)}};
    } else if (p->col == "tags") {
      p->op = Pick(std::vector<std::string>{"=", "!=", "IN", "NOT IN"});
      if (Chance(0.15)) {
        p->vals = {Val{Val::kCur, "tags"}};
      } else {
        const int count = p->op.find("IN") != std::string::npos ? Int(1, 3) : 1;
        for (int i = 0; i < count; ++i) p->vals.push_back(Val{Val::kStr, Pick(kTags)});
      }
    } else {
      p->op = Pick(std::vector<std::string>{"=", "!=", "IN"});
      const int count = p->op == "IN" ? Int(1, 2) : 1;
      for (int i = 0; i < count; ++i) p->vals.push_back(Val{Val::kStr, Pick(kTitles)});
    }
    return p;
  }

  std::unique_ptr<Pred> WhenPred() {
    auto p = std::make_unique<Pred>();
    p->on_ctx = true;
    if (Chance(0.5)) {
      p->col = "climate";
      p->op = Pick(std::vector<std::string>{"=", "!=", "IN"});
      p->vals = {Val{Val::kStr, Pick(std::vector<std::string>{"warm", "cold"})}};
    } else {
      p->col = "temp";
      p->op = Pick(std::vector<std::string>{">", "<=", "BETWEEN"});
      p->vals = {Val{Val::kNum, "", double(Int(0, 40))}};
      if (p->op == "BETWEEN") p->vals.push_back(Val{Val::kNum, "", double(Int(0, 40))});
    }
    if (Chance(0.2)) {
      auto n = std::make_unique<Pred>();
      n->kind = Pred::kNot;
      n->a = std::move(p);
      return n;
    }
    return p;
  }

  TRule Rule() {
    TRule r;
    const int k = Int(0, 11);
    r.kind = k < 2    ? TRule::kInclude
             : k < 5  ? TRule::kExclude
             : k < 7  ? TRule::kBoost
             : k < 8  ? TRule::kBury
             : k < 10 ? TRule::kPin
                      : TRule::kCap;
    if (Chance(0.2)) r.when = WhenPred();
    switch (r.kind) {
      case TRule::kInclude:
      case TRule::kExclude:
        r.where = ItemPred(2);
        break;
      case TRule::kBoost:
      case TRule::kBury:
        r.factor = Pick(std::vector<double>{0.5, 1.5, 2, 3});
        r.where = ItemPred(1);
        break;
      case TRule::kPin:
        r.pin_item = Int(0, 4);  // few distinct items: pins collide and meet caps
        r.pin_pos = Int(1, 8);
        break;
      case TRule::kCap:
        r.cap_n = Int(1, 2);
        r.cap_col = Pick(std::vector<std::string>{"brand", "tags", "flag", "title", "price"});
        break;
    }
    return r;
  }

  RequestContext Request() {
    RequestContext ctx;
    if (Chance(0.5)) ctx.current_item = Int(0, n_ - 1);
    if (Chance(0.7)) ctx.context["climate"] = Pick(std::vector<std::string>{"warm", "cold"});
    if (Chance(0.7)) ctx.context["temp"] = std::to_string(Int(0, 40));
    if (Chance(0.7)) ctx.context["pref"] = Pick(kBrands);
    ctx.params["P"] = std::to_string(Int(0, 99));
    ctx.params["B"] = Pick(kBrands) + ", " + Pick(kBrands);
    ctx.params["F"] = Pick(std::vector<std::string>{"true", "false", "yes", "0"});
    return ctx;
  }

 private:
  std::mt19937& rng_;
  int n_;
};

// ------------------------------------------------------------ oracle

struct Oracle {
  const Data& d;
  const RequestContext& ctx;

  // Resolved value: strings or numbers; `absent` for a missing context key or
  // current-item value.
  struct R {
    bool absent = false;
    std::vector<std::string> strs;
    std::vector<double> nums;
  };

  R Resolve(const Val& v, const std::string& col, bool in_list) const {
    R r;
    const bool numeric = col == "price", boolean = col == "flag";
    auto add_text = [&](const std::string& s) {
      if (numeric) {
        r.nums.push_back(std::stod(s));
      } else if (boolean) {
        r.nums.push_back(s == "true" || s == "yes" || s == "1" ? 1 : 0);
      } else {
        r.strs.push_back(s);
      }
    };
    switch (v.kind) {
      case Val::kStr:
        r.strs.push_back(v.s);
        break;
      case Val::kNum:
        r.nums.push_back(v.x);
        break;
      case Val::kBool:
        r.nums.push_back(v.b ? 1 : 0);
        break;
      case Val::kParam: {
        const std::string& raw = ctx.params.at(v.s);
        if (in_list) {
          size_t c = raw.find(',');
          add_text(raw.substr(0, c));
          add_text(raw.substr(c + 2));  // "x, y"
        } else {
          add_text(raw);
        }
        break;
      }
      case Val::kCtx: {
        auto it = ctx.context.find(v.s);
        if (it == ctx.context.end()) {
          r.absent = true;
        } else {
          add_text(it->second);
        }
        break;
      }
      case Val::kCur: {
        const int i = *ctx.current_item;
        if (v.s == "brand" && d.brand[i] >= 0) r.strs.push_back(kBrands[d.brand[i]]);
        if (v.s == "tags") {
          for (int t : d.tags[i]) r.strs.push_back(kTags[t]);
        }
        if (v.s == "price" && !std::isnan(d.price[i])) r.nums.push_back(d.price[i]);
        r.absent = r.strs.empty() && r.nums.empty();
        break;
      }
    }
    return r;
  }

  bool ItemEq(const Pred& p, int i) const {
    const bool in_list = p.op == "IN" || p.op == "NOT IN";
    for (const Val& v : p.vals) {
      const R r = Resolve(v, p.col, in_list);
      if (r.absent) continue;
      auto has = [&](const std::string& s) {
        return std::find(r.strs.begin(), r.strs.end(), s) != r.strs.end();
      };
      auto has_num = [&](double x) {
        return std::find(r.nums.begin(), r.nums.end(), x) != r.nums.end();
      };
      if (p.col == "brand" && d.brand[i] >= 0 && has(kBrands[d.brand[i]])) return true;
      if (p.col == "price" && !std::isnan(d.price[i]) && has_num(d.price[i])) return true;
      if (p.col == "flag" && d.flag[i] >= 0 && has_num(d.flag[i])) return true;
      if (p.col == "title" && has(d.title[i])) return true;
      if (p.col == "tags") {
        for (int t : d.tags[i]) {
          if (has(kTags[t])) return true;
        }
      }
    }
    return false;
  }

  bool Item(const Pred& p, int i) const {
    switch (p.kind) {
      case Pred::kAnd:
        return Item(*p.a, i) && Item(*p.b, i);
      case Pred::kOr:
        return Item(*p.a, i) || Item(*p.b, i);
      case Pred::kNot:
        return !Item(*p.a, i);
      case Pred::kCmp:
        break;
    }
    if (p.op == "=" || p.op == "IN") return ItemEq(p, i);
    if (p.op == "!=" || p.op == "NOT IN") return !ItemEq(p, i);
    // Numeric comparisons on price.
    const double x = d.price[i];
    std::vector<double> bounds;
    for (const Val& v : p.vals) {
      const R r = Resolve(v, "price", false);
      if (r.absent) return p.op == "NOT BETWEEN";
      bounds.push_back(r.nums[0]);
    }
    bool in = false;
    if (!std::isnan(x)) {
      if (p.op == "<") in = x < bounds[0];
      if (p.op == "<=") in = x <= bounds[0];
      if (p.op == ">") in = x > bounds[0];
      if (p.op == ">=") in = x >= bounds[0];
      if (p.op == "BETWEEN" || p.op == "NOT BETWEEN") in = bounds[0] <= x && x <= bounds[1];
    }
    return p.op == "NOT BETWEEN" ? !in : in;
  }

  bool When(const Pred& p) const {
    if (p.kind == Pred::kNot) return !When(*p.a);
    auto it = ctx.context.find(p.col);
    const bool negated = p.op == "!=";
    if (it == ctx.context.end()) return negated;
    if (p.col == "climate") return (it->second == p.vals[0].s) != negated;
    const double t = std::stod(it->second);
    if (p.op == ">") return t > p.vals[0].x;
    if (p.op == "<=") return t <= p.vals[0].x;
    return p.vals[0].x <= t && t <= p.vals[1].x;
  }

  bool Active(const TRule& r) const {
    if (UsesCur(r.where.get()) && !ctx.current_item) return false;
    return !r.when || When(*r.when);
  }

  bool Allowed(const std::vector<TRule>& rules, int i) const {
    for (const TRule& r : rules) {
      if (!Active(r)) continue;
      if (r.kind == TRule::kInclude && !Item(*r.where, i)) return false;
      if (r.kind == TRule::kExclude && Item(*r.where, i)) return false;
    }
    return true;
  }

  double Boost(const std::vector<TRule>& rules, int i) const {
    double f = 1;
    for (const TRule& r : rules) {
      if (!Active(r) || (r.kind != TRule::kBoost && r.kind != TRule::kBury)) continue;
      if (Item(*r.where, i)) f = r.kind == TRule::kBoost ? f * r.factor : f / r.factor;
    }
    return f;
  }

  // Group ids of item i under CAP column `col` (strings; none when missing).
  std::set<std::string> Groups(const std::string& col, int i) const {
    std::set<std::string> g;
    if (col == "brand" && d.brand[i] >= 0) g.insert(kBrands[d.brand[i]]);
    if (col == "price" && !std::isnan(d.price[i])) g.insert(std::to_string(d.price[i]));
    if (col == "flag" && d.flag[i] >= 0) g.insert(std::to_string(d.flag[i]));
    if (col == "title" && !d.title[i].empty()) g.insert(d.title[i]);
    if (col == "tags") {
      for (int t : d.tags[i]) g.insert(kTags[t]);
    }
    return g;
  }
};

// Would adding `item` to `items` break any of `caps`?
bool BreaksCap(const Oracle& o, const std::vector<const TRule*>& caps,
               const std::vector<int>& items, int item) {
  for (const TRule* c : caps) {
    for (const std::string& g : o.Groups(c->cap_col, item)) {
      int count = 0;
      for (int s : items) count += o.Groups(c->cap_col, s).count(g) ? 1 : 0;
      if (count + 1 > c->cap_n) return true;
    }
  }
  return false;
}

TEST(RulesProperty, RandomRuleSetsAndRequests) {
  std::mt19937 rng(20261129);
  int checked = 0, nonempty_caps = 0, pins_seen = 0, short_lists = 0, pins_capped = 0;
  for (int trial = 0; trial < 300; ++trial) {
    Data d = MakeData(rng);
    Gen gen(rng, d.n);
    std::vector<TRule> trules;
    std::string text = "# random rule set " + std::to_string(trial) + "\n";
    for (int r = gen.Int(1, 8); r > 0; --r) {
      trules.push_back(gen.Rule());
      text += Render(trules.back()) + "\n";
    }
    if (trial % 3 == 0) {  // pins that compete with a cap and with each other
      for (int pos = 1; pos <= 3; ++pos) {
        TRule pin;
        pin.kind = TRule::kPin;
        pin.pin_item = gen.Int(0, 4);
        pin.pin_pos = pos;
        trules.push_back(std::move(pin));
        text += Render(trules.back()) + "\n";
      }
      TRule cap;
      cap.kind = TRule::kCap;
      cap.cap_n = 1;
      cap.cap_col = "flag";
      trules.push_back(std::move(cap));
      text += Render(trules.back()) + "\n";
    }
    auto rules = RuleSet::Parse(text, "random.rules");
    ASSERT_TRUE(rules.ok()) << rules.status().ToString() << "\n" << text;
    ASSERT_TRUE(rules->Bind(d.catalog).ok()) << text;
    auto index = AttributeIndex::Build(d.catalog);
    ASSERT_TRUE(index.ok());
    auto static_allowed = rules->StaticAllowedItems(*index);
    ASSERT_TRUE(static_allowed.ok());

    // Random unit vectors for diversity.
    const int dim = 4;
    std::vector<float> vecs(static_cast<size_t>(d.n) * dim);
    std::normal_distribution<float> g(0, 1);
    for (int i = 0; i < d.n; ++i) {
      double norm = 0;
      for (int k = 0; k < dim; ++k) {
        vecs[i * dim + k] = g(rng);
        norm += double(vecs[i * dim + k]) * vecs[i * dim + k];
      }
      for (int k = 0; k < dim; ++k) vecs[i * dim + k] /= std::sqrt(norm);
    }

    for (int q = 0; q < 4; ++q) {
      const RequestContext ctx = gen.Request();
      const Oracle o{d, ctx};
      SCOPED_TRACE(text + "request " + std::to_string(q) + " current " +
                   (ctx.current_item ? std::to_string(*ctx.current_item) : "-"));

      // 1. Filters: bitmap, split bitmap and per-item agree with the oracle.
      auto allowed = rules->AllowedItems(*index, ctx);
      ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
      auto split = rules->AllowedItems(*index, ctx, &*static_allowed);
      ASSERT_TRUE(split.ok());
      EXPECT_TRUE(*split == *allowed);
      auto rr = rules->ForRequest(ctx);
      ASSERT_TRUE(rr.ok());
      for (int i = 0; i < d.n; ++i) {
        const bool want = o.Allowed(trules, i);
        ASSERT_EQ(allowed->contains(static_cast<uint32_t>(i)), want) << "item " << i;
        ASSERT_EQ(rr->Allowed(i), want) << "item " << i;
        ASSERT_DOUBLE_EQ(rr->BoostFactor(i), o.Boost(trules, i)) << "item " << i;
      }
      // The batch form gives the same answers, bit for bit, in any order and
      // for items outside the catalog too.
      std::vector<int32_t> batch = {-1, d.n, d.n + 7};
      for (int i = 0; i < d.n; ++i) batch.push_back(i);
      std::shuffle(batch.begin(), batch.end(), rng);
      std::vector<uint8_t> batch_allowed(batch.size());
      std::vector<double> batch_factor(batch.size());
      rr->Evaluate(batch, batch_allowed, batch_factor);
      for (size_t j = 0; j < batch.size(); ++j) {
        ASSERT_EQ(batch_allowed[j] != 0, rr->Allowed(batch[j])) << "item " << batch[j];
        ASSERT_EQ(batch_factor[j], rr->BoostFactor(batch[j])) << "item " << batch[j];
      }

      // 2. Rerank a random candidate pool (some items repeated).
      std::vector<Candidate> cands;
      std::uniform_real_distribution<float> u(-1, 1);
      for (int i = 0; i < d.n; ++i) {
        if (gen.Chance(0.8)) cands.push_back({i, u(rng), &vecs[i * dim]});
        if (gen.Chance(0.05)) cands.push_back({i, u(rng), &vecs[i * dim]});
      }
      RerankOptions opt;
      opt.k = gen.Int(1, 12);
      opt.dim = dim;
      opt.diversity = static_cast<Diversity>(gen.Int(0, 2));
      opt.lambda = 0.6f;
      opt.theta = 0.6f;
      auto out = Rerank(cands, *rr, opt, gen.Chance(0.5) ? &*allowed : nullptr);
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      const int k = opt.k;
      std::vector<int> items;
      for (const RankedItem& r : *out) items.push_back(r.item);
      ASSERT_LE(static_cast<int>(items.size()), k);
      ASSERT_EQ(std::set<int>(items.begin(), items.end()).size(), items.size()) << "repeat";
      for (int i : items) ASSERT_TRUE(o.Allowed(trules, i)) << "excluded item " << i << " returned";

      std::vector<const TRule*> caps;
      for (const TRule& r : trules) {
        if (r.kind == TRule::kCap && o.Active(r)) caps.push_back(&r);
      }
      nonempty_caps += !caps.empty();
      for (const TRule* c : caps) {
        std::map<std::string, int> count;
        for (int i : items) {
          for (const std::string& gr : o.Groups(c->cap_col, i)) {
            ASSERT_LE(++count[gr], c->cap_n) << "cap " << c->cap_col << " broken by " << gr;
          }
        }
      }

      // Pins that must hold, simulated from the documented order of checks.
      std::vector<int> pinned_items, pin_positions;
      std::set<int> taken_pos;
      for (const TRule& r : trules) {
        if (r.kind != TRule::kPin || !o.Active(r)) continue;
        const int pos = r.pin_pos - 1;
        if (pos >= k || taken_pos.count(pos) ||
            std::count(pinned_items.begin(), pinned_items.end(), r.pin_item) ||
            !o.Allowed(trules, r.pin_item)) {
          continue;
        }
        if (BreaksCap(o, caps, pinned_items, r.pin_item)) {
          ++pins_capped;
          continue;
        }
        taken_pos.insert(pos);
        pinned_items.push_back(r.pin_item);
        pin_positions.push_back(pos);
        ++pins_seen;
      }
      // A pin sits at its position unless the ranked items run out before
      // it; then it closes up behind them: index = min(pos, R + pins before).
      const int ranked_count = static_cast<int>(items.size() - pinned_items.size());
      ASSERT_GE(ranked_count, 0);
      for (size_t p = 0; p < pinned_items.size(); ++p) {
        int before = 0;
        for (int q : pin_positions) before += q < pin_positions[p];
        const int at = std::min(pin_positions[p], ranked_count + before);
        ASSERT_LT(at, static_cast<int>(items.size()));
        EXPECT_EQ(items[at], pinned_items[p]) << "pin at " << pin_positions[p] + 1;
        EXPECT_TRUE((*out)[at].pinned);
      }
      int flagged = 0;
      for (const RankedItem& r : *out) flagged += r.pinned;
      EXPECT_EQ(flagged, static_cast<int>(pinned_items.size()));

      // Maximality: a short list means every allowed candidate left out breaks a cap.
      std::set<int> pool(pinned_items.begin(), pinned_items.end());
      for (const Candidate& c : cands) {
        if (o.Allowed(trules, c.item)) pool.insert(c.item);
      }
      if (static_cast<int>(items.size()) < k) {
        ++short_lists;
        if (caps.empty()) {
          EXPECT_EQ(items.size(), pool.size());
        }
        for (int i : pool) {
          if (std::count(items.begin(), items.end(), i)) continue;
          EXPECT_TRUE(BreaksCap(o, caps, items, i)) << "item " << i << " fits but was left out";
        }
      }
      if (caps.empty()) {
        EXPECT_EQ(static_cast<int>(items.size()), std::min<int>(k, pool.size()));
      }

      // Boosted scores; descending without diversity.
      std::map<int, float> first_score;
      for (const Candidate& c : cands) first_score.emplace(c.item, c.score);
      float prev = INFINITY;
      for (const RankedItem& r : *out) {
        if (r.pinned) continue;
        EXPECT_FLOAT_EQ(r.score,
                        RequestRules::ApplyFactor(first_score.at(r.item), o.Boost(trules, r.item)));
        if (opt.diversity == Diversity::kNone) {
          EXPECT_LE(r.score, prev);
          prev = r.score;
        }
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 1200);
  // The generator exercises what it should.
  EXPECT_GT(nonempty_caps, 100);
  EXPECT_GT(pins_seen, 100);
  EXPECT_GT(short_lists, 50);
  EXPECT_GT(pins_capped, 10);
  std::printf(
      "checked %d requests: %d with caps, %d pins placed, %d pins refused by a cap, %d short "
      "lists\n",
      checked, nonempty_caps, pins_seen, pins_capped, short_lists);
}

}  // namespace
}  // namespace vitrine
