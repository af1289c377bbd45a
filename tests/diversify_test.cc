// Diversifier: MMR and DPP against naive brute-force references (MMR
// recomputing every similarity at every step, also on exactly representable
// inputs full of ties, where the lazy evaluation must pick the same items; DPP greedy by computing
// the log determinant of every candidate submatrix with Eigen), with and without caps; pins;
// intra-list diversity.
#include "rank/diversify.h"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <span>
#include <vector>

namespace vitrine {
namespace {

struct Pool {
  int dim = 0;
  std::vector<float> vecs;  // n x dim, unit rows
  std::vector<Candidate> cands;
  std::vector<int> group;  // one cap group per item (item = index here)
};

// Random unit vectors around `clusters` centres; random scores.
Pool MakePool(int n, int dim, int clusters, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> centres(static_cast<size_t>(clusters) * dim);
  for (float& x : centres) x = g(rng);
  Pool p;
  p.dim = dim;
  p.vecs.resize(static_cast<size_t>(n) * dim);
  for (int i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng() % clusters);
    double norm = 0;
    for (int d = 0; d < dim; ++d) {
      float& x = p.vecs[static_cast<size_t>(i) * dim + d];
      x = centres[static_cast<size_t>(c) * dim + d] + 0.5f * g(rng);
      norm += double(x) * x;
    }
    for (int d = 0; d < dim; ++d) p.vecs[static_cast<size_t>(i) * dim + d] /= std::sqrt(norm);
    p.group.push_back(c);
  }
  for (int i = 0; i < n; ++i) p.cands.push_back({i, u(rng), &p.vecs[static_cast<size_t>(i) * dim]});
  return p;
}

double Sim(const Pool& p, int a, int b) {
  double s = 0;
  for (int d = 0; d < p.dim; ++d) s += double(p.cands[a].vec[d]) * p.cands[b].vec[d];
  return s;
}

// Naive cap check: recount the selected items' groups from scratch.
bool FitsCap(const Pool& p, const std::vector<int>& selected, int i, int limit) {
  if (limit <= 0) return true;
  int count = 0;
  for (int s : selected) count += p.group[s] == p.group[i];
  return count < limit;
}

// Plain greedy MMR: each step scans every candidate and recomputes its
// similarity to every selected one (double dot products). `fits(sel, i)`:
// may candidate i join the selection `sel` (indices into `cands`)?
std::vector<int> ReferenceMMR(std::span<const Candidate> cands, int dim, int k, double lambda,
                              const std::function<bool(const std::vector<int>&, int)>& fits) {
  std::vector<int> sel;
  std::vector<bool> used(cands.size(), false);
  while (static_cast<int>(sel.size()) < k) {
    int best = -1;
    double best_v = 0;
    for (size_t i = 0; i < cands.size(); ++i) {
      if (used[i] || !fits(sel, static_cast<int>(i))) continue;
      double red = 0;
      if (!sel.empty()) {
        red = -std::numeric_limits<double>::infinity();
        for (int s : sel) {
          double dot = 0;
          for (int d = 0; d < dim; ++d) dot += double(cands[i].vec[d]) * cands[s].vec[d];
          red = std::max(red, dot);
        }
      }
      const double v = lambda * cands[i].score - (1 - lambda) * red;
      if (best < 0 || v > best_v) {
        best = static_cast<int>(i);
        best_v = v;
      }
    }
    if (best < 0) break;
    used[best] = true;
    sel.push_back(best);
  }
  return sel;
}

std::vector<int> BruteMMR(const Pool& p, int k, double lambda, int cap) {
  return ReferenceMMR(p.cands, p.dim, k, lambda,
                      [&](const std::vector<int>& sel, int i) { return FitsCap(p, sel, i, cap); });
}

std::vector<int> BruteDPP(const Pool& p, int k, double theta, int cap) {
  const int m = static_cast<int>(p.cands.size());
  const double alpha = theta / (2 * (1 - theta));
  Eigen::MatrixXd L(m, m);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < m; ++j) {
      L(i, j) =
          std::exp(alpha * p.cands[i].score) * std::exp(alpha * p.cands[j].score) * Sim(p, i, j);
    }
  }
  auto det = [&](const std::vector<int>& s) {
    Eigen::MatrixXd sub(s.size(), s.size());
    for (size_t a = 0; a < s.size(); ++a) {
      for (size_t b = 0; b < s.size(); ++b) sub(a, b) = L(s[a], s[b]);
    }
    return s.empty() ? 1.0 : sub.determinant();
  };
  std::vector<int> sel;
  std::vector<bool> used(m, false);
  while (static_cast<int>(sel.size()) < k) {
    const double base = det(sel);
    int best = -1;
    double best_logdet = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < m; ++i) {
      if (used[i] || !FitsCap(p, sel, i, cap)) continue;
      std::vector<int> s = sel;
      s.push_back(i);
      const double d = det(s);
      if (!(d / (base * L(i, i)) > 1e-9)) continue;  // in the span of the selection
      const double logdet = std::log(d);
      if (logdet > best_logdet) {
        best_logdet = logdet;
        best = i;
      }
    }
    if (best < 0) break;
    used[best] = true;
    sel.push_back(best);
  }
  // Fill by score (stable) under the cap.
  std::vector<int> order(m);
  for (int i = 0; i < m; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return p.cands[a].score > p.cands[b].score; });
  for (int i : order) {
    if (static_cast<int>(sel.size()) >= k) break;
    if (!used[i] && FitsCap(p, sel, i, cap)) {
      used[i] = true;
      sel.push_back(i);
    }
  }
  return sel;
}

std::vector<CapRule> GroupCap(const Pool& p, int limit) {
  if (limit <= 0) return {};
  const std::vector<int>* g = &p.group;
  return {
      CapRule{limit, [g](int32_t item, std::vector<int64_t>* out) { out->push_back((*g)[item]); }}};
}

TEST(Diversify, MMRMatchesBruteForce) {
  int trials = 0;
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    const Pool p = MakePool(40, 6, 4, seed);
    for (double lambda : {0.0, 0.3, 0.5, 0.7, 1.0}) {
      for (int cap : {0, 2}) {
        for (int k : {1, 5, 12}) {
          auto caps = GroupCap(p, cap);
          CapTracker tracker(caps);
          auto got = SelectMMR(p.cands, p.dim, k, static_cast<float>(lambda), &tracker);
          ASSERT_TRUE(got.ok());
          EXPECT_EQ(*got, BruteMMR(p, k, static_cast<float>(lambda), cap))
              << "seed " << seed << " lambda " << lambda << " cap " << cap << " k " << k;
          ++trials;
        }
      }
    }
  }
  EXPECT_EQ(trials, 360);
}

// A plain O(k M) MMR scan over exactly representable inputs (vector entries
// and scores are small multiples of 1/8, lambda a multiple of 1/4), so float
// and double arithmetic agree bit for bit and ties are real ties. Caps: one
// categorical group per item (-1 = missing) and a list of groups per item,
// checked by recounting the preloaded and selected items.
struct TieCase {
  int dim = 0;
  std::vector<float> vecs;
  std::vector<Candidate> cands;
  std::vector<int> cat;                // group of cap 0 per item, -1 missing
  std::vector<std::vector<int>> list;  // groups of cap 1 per item
  int limit0 = 0, limit1 = 0;          // 0: cap absent
  std::vector<int32_t> preloaded;      // items counted before selection (pins)
};

TieCase MakeTieCase(int n, int dim, std::mt19937& rng) {
  TieCase c;
  c.dim = dim;
  const int palette = 1 + static_cast<int>(rng() % 6);  // few distinct vectors: equal sims
  std::vector<float> pal(static_cast<size_t>(palette) * dim);
  for (float& x : pal) x = static_cast<float>(static_cast<int>(rng() % 5) - 2) / 8;
  c.vecs.resize(static_cast<size_t>(n + 4) * dim);
  for (int i = 0; i < n + 4; ++i) {
    const int p = static_cast<int>(rng() % palette);
    std::copy(pal.begin() + static_cast<size_t>(p) * dim,
              pal.begin() + static_cast<size_t>(p + 1) * dim,
              c.vecs.begin() + static_cast<size_t>(i) * dim);
  }
  // Items n .. n+3 exist only to be preloaded into the caps.
  for (int i = 0; i < n + 4; ++i) {
    c.cat.push_back(static_cast<int>(rng() % 5) - 1);
    std::vector<int> l;
    for (int g = 0; g < 3; ++g) {
      if (rng() % 3 == 0) l.push_back(g);
    }
    c.list.push_back(l);
  }
  for (int i = 0; i < n; ++i) {
    const float score = static_cast<float>(static_cast<int>(rng() % 9) - 4) / 8;  // many ties
    c.cands.push_back({i, score, &c.vecs[static_cast<size_t>(i) * dim]});
  }
  c.limit0 = static_cast<int>(rng() % 4);
  c.limit1 = static_cast<int>(rng() % 4);
  for (int i = n; i < n + 4; ++i) {
    if (rng() % 3 == 0) c.preloaded.push_back(i);
  }
  return c;
}

bool TieFits(const TieCase& c, const std::vector<int32_t>& taken, int32_t item) {
  if (c.limit0 > 0 && c.cat[item] >= 0) {
    int n = 0;
    for (int32_t t : taken) n += c.cat[t] == c.cat[item];
    if (n >= c.limit0) return false;
  }
  if (c.limit1 > 0) {
    for (int g : c.list[item]) {
      int n = 0;
      for (int32_t t : taken) n += std::count(c.list[t].begin(), c.list[t].end(), g) > 0;
      if (n >= c.limit1) return false;
    }
  }
  return true;
}

// The plain scan under the case's caps, counting the preloaded items too.
std::vector<int> PlainMMR(const TieCase& c, int k, double lambda) {
  return ReferenceMMR(c.cands, c.dim, k, lambda, [&](const std::vector<int>& sel, int i) {
    std::vector<int32_t> taken = c.preloaded;
    for (int s : sel) taken.push_back(c.cands[s].item);
    return TieFits(c, taken, c.cands[i].item);
  });
}

// The case's cap rules: a categorical one (limit0) and a list one (limit1),
// each only when its limit is set. They read `c`, which must outlive them.
std::vector<CapRule> CapsOf(const TieCase& c) {
  const std::vector<int>* cat = &c.cat;
  const std::vector<std::vector<int>>* list = &c.list;
  std::vector<CapRule> caps;
  if (c.limit0 > 0) {
    caps.push_back({c.limit0, [cat](int32_t item, std::vector<int64_t>* out) {
                      if ((*cat)[item] >= 0) out->push_back((*cat)[item]);
                    }});
  }
  if (c.limit1 > 0) {
    caps.push_back({c.limit1, [list](int32_t item, std::vector<int64_t>* out) {
                      for (int g : (*list)[item]) out->push_back(g);
                    }});
  }
  return caps;
}

TEST(Diversify, LazyMMRMatchesPlainScanWithTiesAndCaps) {
  std::mt19937 rng(2024);
  int trials = 0, capped = 0, short_lists = 0;
  for (int n : {1, 2, 7, 40, 120}) {
    for (int dim : {3, 8, 11, 193}) {
      for (int rep = 0; rep < 6; ++rep) {
        const TieCase c = MakeTieCase(n, dim, rng);
        const std::vector<CapRule> caps = CapsOf(c);
        capped += !caps.empty();
        for (double lambda : {0.0, 0.25, 0.5, 0.75, 1.0}) {
          for (int k : {0, 1, 3, 10, n + 2}) {
            CapTracker tracker(caps);
            for (int32_t p : c.preloaded) tracker.Add(p);
            auto got = SelectMMR(c.cands, dim, k, static_cast<float>(lambda), &tracker);
            ASSERT_TRUE(got.ok());
            const std::vector<int> want = PlainMMR(c, k, lambda);
            ASSERT_EQ(*got, want) << "n " << n << " dim " << dim << " rep " << rep << " lambda "
                                  << lambda << " k " << k;
            short_lists += static_cast<int>(want.size()) < std::min(k, n);
            ++trials;
          }
        }
      }
    }
  }
  EXPECT_EQ(trials, 5 * 4 * 6 * 5 * 5);
  EXPECT_GT(capped, 60);        // most cases have caps
  EXPECT_GT(short_lists, 100);  // and the caps cut many lists short
}

TEST(Diversify, TopKMatchesStableSortWithTiesAndCaps) {
  // SelectTopK sorts lazily in chunks; the oracle is a full stable sort
  // followed by a greedy pass under the caps. Many equal scores and pools
  // larger than the first chunk (2k, at least 16).
  std::mt19937 rng(77);
  int trials = 0;
  for (int n : {1, 5, 40, 120, 300}) {
    for (int rep = 0; rep < 6; ++rep) {
      const TieCase c = MakeTieCase(n, 3, rng);
      const std::vector<CapRule> caps = CapsOf(c);
      std::vector<int> order(c.cands.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int a, int b) { return c.cands[a].score > c.cands[b].score; });
      for (int k : {0, 1, 3, 10, 30, n + 2}) {
        CapTracker tracker(caps);
        for (int32_t p : c.preloaded) tracker.Add(p);
        auto got = SelectTopK(c.cands, k, &tracker);
        ASSERT_TRUE(got.ok());
        std::vector<int32_t> taken = c.preloaded;
        std::vector<int> want;
        for (int i : order) {
          if (static_cast<int>(want.size()) >= k) break;
          if (!TieFits(c, taken, c.cands[i].item)) continue;
          want.push_back(i);
          taken.push_back(c.cands[i].item);
        }
        ASSERT_EQ(*got, want) << "n " << n << " rep " << rep << " k " << k;
        ++trials;
      }
    }
  }
  EXPECT_EQ(trials, 5 * 6 * 6);
}

TEST(Diversify, CapTrackerArraysMatchCallback) {
  // Item i has the groups ids[offsets[i], offsets[i + 1]) (0 to 3 of 5);
  // items past the arrays have none, in both forms.
  std::mt19937 rng(11);
  const int n = 60;
  std::vector<int64_t> offsets = {0}, ids;
  for (int i = 0; i < n; ++i) {
    for (int64_t g = 0; g < 5; ++g) {
      if (rng() % 4 == 0) ids.push_back(g * 1000003);  // sparse group ids
    }
    offsets.push_back(static_cast<int64_t>(ids.size()));
  }
  for (int limit : {1, 2, 3}) {
    const std::vector<int64_t>* o = &offsets;
    const std::vector<int64_t>* g = &ids;
    const std::vector<CapRule> by_callback = {
        {limit, [o, g](int32_t item, std::vector<int64_t>* out) {
           if (item < 0 || item >= n) return;
           out->insert(out->end(), g->begin() + (*o)[item], g->begin() + (*o)[item + 1]);
         }}};
    std::vector<CapRule> by_arrays = by_callback;
    by_arrays[0].groups = nullptr;  // must not be called
    by_arrays[0].offsets = offsets;
    by_arrays[0].ids = ids;
    CapTracker a(by_callback), b(by_arrays);
    int added = 0;
    for (int step = 0; step < 200; ++step) {
      const int32_t item = static_cast<int32_t>(rng() % (n + 5)) - 2;  // some outside
      ASSERT_EQ(a.CanAdd(item), b.CanAdd(item)) << "limit " << limit << " step " << step;
      if (a.CanAdd(item)) {
        a.Add(item);
        b.Add(item);
        ++added;
      }
    }
    EXPECT_GT(added, 10);
    EXPECT_TRUE(b.CanAdd(-1));  // no groups: never capped
    EXPECT_TRUE(b.CanAdd(n + 3));
  }
}

TEST(Diversify, DPPMatchesBruteForce) {
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    for (int dim : {12, 4}) {  // dim 4 < k: DPP runs out of directions, fills by score
      const Pool p = MakePool(30, dim, 3, 100 + seed);
      for (double theta : {0.0, 0.5, 0.8, 0.95}) {
        for (int cap : {0, 3}) {
          const int k = 8;
          auto caps = GroupCap(p, cap);
          CapTracker tracker(caps);
          auto got = SelectDPP(p.cands, p.dim, k, static_cast<float>(theta), &tracker);
          ASSERT_TRUE(got.ok());
          const auto want = BruteDPP(p, k, static_cast<float>(theta), cap);
          EXPECT_EQ(*got, want) << "seed " << seed << " dim " << dim << " theta " << theta
                                << " cap " << cap;
          EXPECT_EQ(got->size(), static_cast<size_t>(k));
        }
      }
    }
  }
}

TEST(Diversify, TopKAndCapsAndMaximality) {
  const Pool p = MakePool(50, 5, 5, 9);
  auto all = SelectTopK(p.cands, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 10u);
  for (size_t i = 1; i < all->size(); ++i) {
    EXPECT_GE(p.cands[(*all)[i - 1]].score, p.cands[(*all)[i]].score);
  }
  // Cap 1 per group with 5 groups: exactly 5 come back whatever k is, one per group.
  for (int mode = 0; mode < 3; ++mode) {
    auto caps = GroupCap(p, 1);
    CapTracker tracker(caps);
    auto got = mode == 0   ? SelectTopK(p.cands, 20, &tracker)
               : mode == 1 ? SelectMMR(p.cands, p.dim, 20, 0.5f, &tracker)
                           : SelectDPP(p.cands, p.dim, 20, 0.5f, &tracker);
    ASSERT_TRUE(got.ok());
    std::map<int, int> per_group;
    for (int i : *got) ++per_group[p.group[i]];
    EXPECT_EQ(got->size(), per_group.size()) << mode;
    std::set<int> groups(p.group.begin(), p.group.end());
    EXPECT_EQ(per_group.size(), groups.size()) << mode;
  }
}

TEST(Diversify, MMRAndDPPDiversifyClusteredPools) {
  // Five tight clusters of 20; the best-scoring 20 are all in cluster 0.
  const int dim = 8, n = 100;
  std::vector<float> vecs(static_cast<size_t>(n) * dim, 0.f);
  std::vector<Candidate> cands;
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0, 0.05f);
  for (int i = 0; i < n; ++i) {
    float* v = &vecs[static_cast<size_t>(i) * dim];
    const int c = i / 20;
    double norm = 0;
    for (int d = 0; d < dim; ++d) {
      v[d] = (d == c ? 1.f : 0.f) + g(rng);
      norm += double(v[d]) * v[d];
    }
    for (int d = 0; d < dim; ++d) v[d] /= std::sqrt(norm);
    cands.push_back({i, 1.0f - 0.005f * i, v});
  }
  auto ild = [&](const std::vector<int>& sel) {
    std::vector<const float*> v;
    for (int i : sel) v.push_back(cands[i].vec);
    return IntraListDiversity(v, dim);
  };
  auto top = SelectTopK(cands, 10);
  auto mmr = SelectMMR(cands, dim, 10, 0.5f);
  auto dpp = SelectDPP(cands, dim, 10, 0.5f);
  ASSERT_TRUE(top.ok() && mmr.ok() && dpp.ok());
  auto clusters = [&](const std::vector<int>& sel) {
    std::set<int> c;
    for (int i : sel) c.insert(i / 20);
    return c.size();
  };
  EXPECT_LT(ild(*top), 0.1);
  EXPECT_EQ(clusters(*top), 1u);
  // Both reach every cluster. MMR penalises only the closest selected item, so
  // once every cluster is represented it falls back to score order (cluster
  // 0): ILD ~ 30/45. DPP spreads the rest as well: ILD ~ 40/45.
  EXPECT_EQ(clusters(*mmr), 5u);
  EXPECT_EQ(clusters(*dpp), 5u);
  EXPECT_GT(ild(*mmr), 0.6);
  EXPECT_GT(ild(*dpp), 0.8);
  EXPECT_EQ((*mmr)[0], 0);  // first pick is the best score
  EXPECT_EQ((*dpp)[0], 0);
  // lambda = 1 is plain score order.
  auto mmr1 = SelectMMR(cands, dim, 10, 1.0f);
  EXPECT_EQ(*mmr1, *top);
}

TEST(Diversify, Errors) {
  const Pool p = MakePool(5, 3, 1, 1);
  EXPECT_FALSE(SelectTopK(p.cands, -1).ok());
  EXPECT_FALSE(SelectMMR(p.cands, p.dim, 3, 1.5f).ok());
  EXPECT_FALSE(SelectDPP(p.cands, p.dim, 3, 1.0f).ok());
  EXPECT_FALSE(SelectMMR(p.cands, 0, 3, 0.5f).ok());
  std::vector<Candidate> no_vec = {{0, 1.f, nullptr}};
  auto r = SelectDPP(no_vec, 3, 1, 0.5f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "candidate item 0 has no vector; diversity needs one per candidate");
  EXPECT_TRUE(SelectTopK(no_vec, 1).ok());  // score order needs no vectors
  std::vector<Candidate> nan_score = {{7, NAN, p.cands[0].vec}};
  auto n = SelectTopK(nan_score, 1);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().message(), "candidate item 7 has a non-finite score");
  auto empty = SelectDPP({}, 3, 5, 0.5f);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(Diversify, ApplyPins) {
  using V = std::vector<int32_t>;
  const V ranked = {10, 11, 12, 13, 14};
  EXPECT_EQ(ApplyPins(ranked, {}, 3), V({10, 11, 12}));
  EXPECT_EQ(ApplyPins(ranked, std::vector<PinnedItem>{{99, 0}}, 3), V({99, 10, 11}));
  EXPECT_EQ(ApplyPins(ranked, std::vector<PinnedItem>{{99, 2}}, 4), V({10, 11, 99, 12}));
  // A pinned item that is also ranked appears once, at its pin.
  EXPECT_EQ(ApplyPins(ranked, std::vector<PinnedItem>{{12, 0}}, 4), V({12, 10, 11, 13}));
  // Pin beyond k: ignored.
  EXPECT_EQ(ApplyPins(ranked, std::vector<PinnedItem>{{99, 5}}, 3), V({10, 11, 12}));
  // Same position twice: first wins; same item twice: first wins.
  EXPECT_EQ(ApplyPins(ranked, std::vector<PinnedItem>{{98, 1}, {99, 1}}, 3), V({10, 98, 11}));
  EXPECT_EQ(ApplyPins(ranked, std::vector<PinnedItem>{{98, 1}, {98, 0}}, 3), V({10, 98, 11}));
  // Short list: the pin closes up behind it.
  EXPECT_EQ(ApplyPins(V{10}, std::vector<PinnedItem>{{99, 4}}, 6), V({10, 99}));
  EXPECT_EQ(ApplyPins(V{}, std::vector<PinnedItem>{{99, 3}, {98, 1}}, 6), V({98, 99}));
  EXPECT_EQ(ApplyPins(ranked, std::vector<PinnedItem>{{99, 0}}, 0), V());
}

TEST(Diversify, IntraListDiversity) {
  const float e0[] = {1, 0, 0}, e1[] = {0, 1, 0}, e2[] = {0, 0, 1};
  const float* orth[] = {e0, e1, e2};
  EXPECT_DOUBLE_EQ(IntraListDiversity(orth, 3), 1.0);
  const float* same[] = {e0, e0};
  EXPECT_DOUBLE_EQ(IntraListDiversity(same, 3), 0.0);
  const float* one[] = {e0};
  EXPECT_DOUBLE_EQ(IntraListDiversity(one, 3), 0.0);
  const float opp[] = {-1, 0, 0};
  const float* mixed[] = {e0, opp, e1};  // pairs: 2, 1, 1
  EXPECT_NEAR(IntraListDiversity(mixed, 3), 4.0 / 3.0, 1e-12);
}

TEST(Diversify, UnitVectorsAreAlignedUnitCopies) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0, 3);
  for (size_t dim : {1, 3, 16, 17, 193}) {
    const size_t n = 9;
    std::vector<float> src(n * dim);
    for (float& x : src) x = g(rng);
    std::fill(src.begin() + 4 * dim, src.begin() + 5 * dim, 0.0f);  // row 4: zero
    // Expected copies, by a double-precision reference.
    std::vector<double> want(n * dim, 0.0);
    for (size_t i = 0; i < n; ++i) {
      double norm = 0;
      for (size_t d = 0; d < dim; ++d) norm += double(src[i * dim + d]) * src[i * dim + d];
      for (size_t d = 0; d < dim && norm > 0; ++d) {
        want[i * dim + d] = src[i * dim + d] / std::sqrt(norm);
      }
    }
    std::vector<const float*> rows;
    auto check = [&](const char* when) {
      for (size_t i = 0; i < n; ++i) {
        for (size_t d = 0; d < dim; ++d) {
          EXPECT_NEAR(rows[i][d], want[i * dim + d], 1e-6)
              << when << ": row " << i << " dim " << dim;
        }
      }
    };
    UnitVectors u(n, dim);
    for (size_t i = 0; i < n; ++i) rows.push_back(u.Add(&src[i * dim]));
    EXPECT_EQ(u.size(), n);
    EXPECT_EQ(u.Add(src.data()), nullptr) << "past capacity";
    for (size_t i = 0; i < n; ++i) {
      ASSERT_NE(rows[i], nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(rows[i]) % 64, 0u) << "row " << i << " dim " << dim;
      if (i > 0) {
        EXPECT_GE(rows[i] - rows[i - 1], static_cast<std::ptrdiff_t>(dim));
      }
    }
    check("after Add");
    // Rows stay where they are when the object moves.
    UnitVectors moved = std::move(u);
    EXPECT_EQ(moved.size(), n);
    check("after a move");
    EXPECT_EQ(u.Add(src.data()), nullptr) << "moved-from";  // NOLINT(bugprone-use-after-move)
    check("after Add on the moved-from object");
  }
}

}  // namespace
}  // namespace vitrine
