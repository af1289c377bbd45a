#!/usr/bin/env python3
# The planted-structure ceiling of a generated catalog: NDCG@10 of an oracle
# that knows each user's hidden taste clusters (truth.json from `vitrine
# generate`) and ranks items by the generator's own view probability,
# history items excluded, scored like `vitrine evaluate` (binary relevance
# against the test file). Usage: planted-oracle.py DATA_DIR SPLIT_DIR, where
# SPLIT_DIR holds train.csv and test.csv from `vitrine split`.
import json, csv, sys, numpy as np
d, split = sys.argv[1], sys.argv[2]
t = json.load(open(f'{d}/truth.json'))
cats, tiers = t['categories'], t['tiers']
items = list(csv.DictReader(open(f'{d}/items.csv')))
idx = {r['item_id']: i for i, r in enumerate(items)}
n = len(items)
cat = np.array([cats.index(r['category']) for r in items])
tier = np.array([tiers.index(r['tier']) for r in items])
vs = np.array(t['items']['visual_style']); sty = vs % t['styles_per_category']
band = np.array(t['items']['price_band']); pop = np.array(t['items']['popularity'])
cl = t['clusters']
P = np.zeros((len(cl), n))
for c, x in enumerate(cl):
    sw = np.array(x['style_weights'])
    a = np.array(x['tier_weights'])[tier] * np.array(x['category_weights'])[cat] * sw[cat, sty] * np.array(x['price_band_weights'])[band]
    p = a * pop
    P[c] = p / p.sum()
ucl = t['users']['cluster']; usec = t['users']['secondary_cluster']
sec_share = t['params']['secondary_cluster_events']
def uidx(u): return int(u[1:])
train = {}
for r in csv.DictReader(open(f'{split}/train.csv')):
    train.setdefault(uidx(r['user_id']), set()).add(idx[r['item_id']])
test = {}
for r in csv.DictReader(open(f'{split}/test.csv')):
    test.setdefault(uidx(r['user_id']), set()).add(idx[r['item_id']])
disc = 1 / np.log2(np.arange(2, 12))
nd = []
for u, T in test.items():
    if u not in train: continue
    s = ucl[u]; q = usec[u]
    sc = P[s].copy() if q < 0 else (1 - sec_share) * P[s] + sec_share * P[q]
    sc[list(train[u])] = -1
    top = np.argpartition(-sc, 10)[:10]; top = top[np.argsort(-sc[top])]
    dcg = sum(disc[i] for i, it in enumerate(top) if it in T)
    idcg = disc[:min(10, len(T))].sum()
    nd.append(dcg / idcg)
print(f'oracle users={len(nd)} ndcg@10={np.mean(nd):.4f}')
