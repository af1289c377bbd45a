#!/usr/bin/env python3
"""Overhead of the Python API (issue "Python API", docs/python.md).

    PYTHONPATH=build/python /usr/bin/python3 bench/python_bench.py BUNDLE [--cli build/cli/vitrine]

Prints, on one bundle and in one run:
  1. one similar_items query at N=10 from Python against the same
     Engine::Similar call timed inside C++ (Bundle._time_similar): the
     binding's overhead per call;
  2. a batch of queries: Python similar_items (all cores; one thread with
     vitrine.set_num_threads(1); and a Python loop of single calls) against
     `vitrine similar --items-file` (one thread; its load time measured
     separately with a one-query file and subtracted);
  3. two Python threads each running one-thread batches against one thread:
     close to 2x means the GIL is released while the engine searches;
  4. with python3-faiss installed: faiss.IndexFlatIP.search over the same
     fused vectors, 1,000 queries at k=10 (exact search, the vectors' own
     inner product; vitrine's answers add rules, weights and explanations).
Every figure is the median of --reps repetitions. OMP_WAIT_POLICY defaults
to passive here (set it to override).
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time

import numpy as np

# Idle OpenMP workers sleep rather than spin, as in the tests and the demo:
# on a 2-core machine a worker still spinning after the all-cores batch
# takes a core from the one-thread runs that follow (and from the CLI run
# beside them), which cost them 20-30% here.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import vitrine  # noqa: E402 - after the OpenMP setting, which libgomp reads on load


def median_time(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("bundle")
    ap.add_argument("--cli", default="build/cli/vitrine")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--queries", type=int, default=4000)
    args = ap.parse_args()

    b = vitrine.open(args.bundle)
    ids = b.item_ids
    rng = np.random.default_rng(7)
    queries = [str(ids[i]) for i in rng.choice(len(ids), args.queries, replace=False)]
    one = queries[0]

    # 1. One query: Python call vs the C++ call, same query, many repetitions.
    b.similar_items(one, N=10)  # warm
    loops = 2000
    py_ns = []
    cpp_ns = []
    for _ in range(args.reps):
        t0 = time.perf_counter_ns()
        for _ in range(loops):
            b.similar_items(one, N=10)
        py_ns.append((time.perf_counter_ns() - t0) / loops)
        cpp_ns.append(b._time_similar(one, 10, loops))
    py1, cpp1 = statistics.median(py_ns), statistics.median(cpp_ns)
    overhead = statistics.median(p / c - 1 for p, c in zip(py_ns, cpp_ns))
    print(f"one query, N=10: python {py1 / 1000:.1f} us, C++ {cpp1 / 1000:.1f} us, "
          f"overhead {100 * overhead:+.1f}% (median of the per-rep ratios)")

    # 2. A batch of queries. The one-thread batch and the CLI alternate, rep
    # by rep, and the ratio is the median of the per-rep ratios: this
    # machine drifts by +-20% over a minute, which would land on whichever
    # of the two ran later.
    n = len(queries)
    t_all = median_time(lambda: b.similar_items(queries, N=10), args.reps)
    t_loop = median_time(lambda: single_thread(b, queries), args.reps)
    with tempfile.TemporaryDirectory() as tmp:
        qfile = os.path.join(tmp, "q.txt")
        with open(qfile, "w") as f:
            f.write("\n".join(queries) + "\n")
        onefile = os.path.join(tmp, "one.txt")
        with open(onefile, "w") as f:
            f.write(one + "\n")
        cli = [args.cli, "similar", "--bundle", args.bundle, "-k", "10", "--format", "csv", "-q",
               "--output", os.path.join(tmp, "out.csv"), "--items-file"]
        one_qps, cli_qps, ratios = [], [], []
        for _ in range(args.reps):
            vitrine.set_num_threads(1)
            one_qps.append(n / median_time(lambda: b.similar_items(queries, N=10), 1))
            vitrine.set_num_threads(0)
            t_cli = median_time(lambda: subprocess.run(cli + [qfile], check=True), 1)
            t_load = median_time(lambda: subprocess.run(cli + [onefile], check=True), 1)
            cli_qps.append(n / max(t_cli - t_load, 1e-9))
            ratios.append(one_qps[-1] / cli_qps[-1])
    t_one = n / statistics.median(one_qps)
    print(f"batch of {n}: python {n / t_all:.0f} QPS (all cores), {n / t_one:.0f} QPS (one thread), "
          f"{n / t_loop:.0f} QPS (a loop of single calls); "
          f"CLI --items-file {statistics.median(cli_qps):.0f} QPS (one thread, its load subtracted); "
          f"one-thread ratio {statistics.median(ratios):.2f}x (median of "
          f"{', '.join(f'{r:.2f}' for r in ratios)})")

    # 3. Two Python threads, each a one-thread batch.
    half = queries[: n // 2]

    def two_threads():
        ts = [threading.Thread(target=single_thread, args=(b, half)) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    t_1 = median_time(lambda: single_thread(b, half), args.reps)
    t_2 = median_time(two_threads, args.reps)
    print(f"threads: one thread {len(half) / t_1:.0f} QPS, two threads {2 * len(half) / t_2:.0f} QPS "
          f"({(2 * len(half) / t_2) / (len(half) / t_1):.2f}x)")

    # 4. FAISS's own Python module on the same vectors.
    try:
        import faiss
    except ImportError:
        print("faiss: python3-faiss is not installed; skipped")
        return
    x = np.ascontiguousarray(b.vectors)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    rows = np.array([int(np.flatnonzero(ids == q)[0]) for q in queries])
    xq = x[rows]
    faiss.omp_set_num_threads(1)
    t_f1 = median_time(lambda: index.search(xq, 11), args.reps)
    faiss.omp_set_num_threads(os.cpu_count())
    t_fa = median_time(lambda: index.search(xq, 11), args.reps)
    print(f"faiss IndexFlatIP, {n} queries, k=11 over {x.shape[0]} x {x.shape[1]}: "
          f"{n / t_fa:.0f} QPS (all cores), {n / t_f1:.0f} QPS (one thread); "
          f"vitrine similar_items one thread {n / t_one:.0f} QPS")


def single_thread(b, queries):
    for q in queries:
        b.similar_items(q, N=10)


if __name__ == "__main__":
    main()
