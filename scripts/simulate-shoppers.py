#!/usr/bin/env python3
"""Simulated shoppers against a running `vitrine serve`, with a planted truth.

    scripts/simulate-shoppers.py --server http://127.0.0.1:8080 \\
        --items data/items.csv --shoppers 2000 --seed 1

Each shopper likes one category (drawn by the seed). They ask /recommend with
a session of three items of that category, then click each shown item with
probability --p-liked (an item of their category) or --p-other, buy a click
with probability 0.25 and return a purchase with probability 0.2. Clicks,
purchases and returns go to /events with the answer's request_id and the
item's position, so `vitrine report` can attribute them.

The truth is planted, so the script knows each answer's expected CTR: the
mean click probability of the items it showed. It prints that per variant
(the variant each answer named) to stderr, for comparing with the report's
estimate. Only the Python standard library is used.
"""

import argparse
import csv
import json
import random
import sys
import urllib.request
from collections import defaultdict


def post(server, path, body, token):
    req = urllib.request.Request(server + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--server", default="http://127.0.0.1:8080")
    ap.add_argument("--items", required=True, help="the catalog CSV the bundle was built from")
    ap.add_argument("--id-column", default="item_id")
    ap.add_argument("--category-column", default="category")
    ap.add_argument("--shoppers", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--p-liked", type=float, default=0.30)
    ap.add_argument("--p-other", type=float, default=0.03)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--token", default="", help="admin token for /events, if the server has one")
    args = ap.parse_args()

    by_category = defaultdict(list)
    category_of = {}
    with open(args.items, newline="") as f:
        for row in csv.DictReader(f):
            item, cat = row[args.id_column], row[args.category_column]
            by_category[cat].append(item)
            category_of[item] = cat
    categories = sorted(c for c, items in by_category.items() if len(items) >= 3)
    rng = random.Random(args.seed)
    expected = defaultdict(lambda: [0.0, 0])  # variant -> [sum of click probabilities, impressions]
    for s in range(args.shoppers):
        user = f"shopper-{args.seed}-{s:06d}"
        liked = rng.choice(categories)
        history = rng.sample(by_category[liked], 3)
        answer = post(args.server, "/recommend", {"user": user, "history": history, "k": args.k},
                      args.token)
        variant = answer.get("variant", "")
        events = []
        for pos, hit in enumerate(answer["results"], start=1):
            item = hit["item"]
            p = args.p_liked if category_of.get(item) == liked else args.p_other
            expected[variant][0] += p
            expected[variant][1] += 1
            if rng.random() >= p:
                continue
            shown = {"user": user, "item": item, "request_id": answer["request_id"], "position": pos}
            events.append(dict(shown, event="view"))
            if rng.random() < 0.25:
                events.append(dict(shown, event="purchase"))
                if rng.random() < 0.2:
                    events.append(dict(shown, event="return"))
        if events:
            post(args.server, "/events", events, args.token)
    for variant, (p, n) in sorted(expected.items()):
        print(f"planted truth: variant {variant or '(none)'}: {n} impressions, expected CTR "
              f"{100 * p / n:.2f}%", file=sys.stderr)


if __name__ == "__main__":
    main()
