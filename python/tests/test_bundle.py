"""Bundle queries from Python: equal to the CLI's answers, batches equal to
single calls, errors as exceptions with the CLI's messages, and lifetimes
that survive close()."""

import csv
import gc
import io
import threading

import numpy as np
import pytest

import vitrine
from conftest import run_cli


def cli_csv(*args):
    return list(csv.DictReader(io.StringIO(run_cli(*args, "--format", "csv", "--quiet"))))


def some_items(bundle, n=5):
    ids = bundle.item_ids
    return [str(ids[i]) for i in np.linspace(0, len(ids) - 1, n).astype(int)]


def some_users(data_dir, n=5):
    with open(data_dir / "train.csv") as f:
        users = sorted({row["user_id"] for row in csv.DictReader(f)})
    return users[:: max(1, len(users) // n)][:n]


# ------------------------------------------------------- equal to the CLI

def test_similar_items_equal_the_cli(bundle, bundle_dir):
    for item in some_items(bundle):
        ids, scores = bundle.similar_items(item, N=8)
        rows = cli_csv("similar", "--bundle", str(bundle_dir), "--item", item, "-k", "8")
        assert list(ids) == [r["item_id"] for r in rows]
        np.testing.assert_allclose(scores, [float(r["score"]) for r in rows], atol=1e-4)


def test_recommend_equals_the_cli_for_users_and_histories(bundle, bundle_dir, data_dir):
    for user in some_users(data_dir):
        ids, scores = bundle.recommend(user, N=8)
        rows = cli_csv("recommend", "--bundle", str(bundle_dir), "--user", user, "-k", "8")
        assert list(ids) == [r["item_id"] for r in rows], user
        np.testing.assert_allclose(scores, [float(r["score"]) for r in rows], atol=1e-4)
    history = some_items(bundle, 3)
    ids, _ = bundle.recommend([history], N=8)
    rows = cli_csv("recommend", "--bundle", str(bundle_dir), "--history", ",".join(history),
                   "-k", "8")
    assert list(ids[0]) == [r["item_id"] for r in rows]


def test_rules_and_weights_mean_what_they_mean_in_the_cli(bundle, bundle_dir, tmp_path):
    item = some_items(bundle)[1]
    rules = tmp_path / "rules.txt"
    rules.write_text('EXCLUDE WHERE category = "bag"\n')
    ids, _ = bundle.similar_items(item, N=10, rules=rules, weights={"cf": 0.2, "content": 1})
    rows = cli_csv("similar", "--bundle", str(bundle_dir), "--item", item, "-k", "10", "--rules",
                   str(rules), "--weights", "cf=0.2,content=1")
    assert list(ids) == [r["item_id"] for r in rows]
    assert all(r["category"] != "bag" for r in rows)
    # Rule text works as well as a path.
    ids2, _ = bundle.similar_items(item, N=10, rules=rules.read_text(),
                                   weights="cf=0.2,content=1")
    assert list(ids2) == list(ids)


# ------------------------------------------------------ batch == single

def test_audience_equals_the_cli(bundle, bundle_dir):
    for item in some_items(bundle, 3):
        members = bundle.audience(item, N=6)
        rows = cli_csv("audience", "--bundle", str(bundle_dir), "--item", item, "-k", "6")
        assert [m["user"] for m in members] == [r["user_id"] for r in rows]
        np.testing.assert_allclose([m["score"] for m in members],
                                   [float(r["score"]) for r in rows], atol=1e-4)
        assert [m["reason"] for m in members] == [r["reason"] for r in rows]
    first = members[0]["user"]
    assert first not in [m["user"] for m in bundle.audience(item, N=6, opt_out=[first])]
    with pytest.raises(vitrine.InvalidArgumentError, match="expected auto, exact or hnsw"):
        bundle.audience(item, search="fast")


def test_trending_equals_the_cli(bundle, bundle_dir):
    items = bundle.trending(window="7d", N=5)
    rows = cli_csv("trending", "--bundle", str(bundle_dir), "--window", "7d", "-k", "5")
    assert [t["item"] for t in items] == [r["item_id"] for r in rows]
    np.testing.assert_allclose([t["growth"] for t in items],
                               [float(r["growth"]) for r in rows], atol=1e-2)
    assert all(t["growth"] > 0 for t in items)
    groups = bundle.trending(window="7d", N=0, by="category")
    rows = cli_csv("trending", "--bundle", str(bundle_dir), "--window", "7d", "--by", "category",
                   "-k", "1000")
    assert [g["value"] for g in groups] == [r["category"] for r in rows]
    assert all(g["growth_low95"] <= g["growth"] <= g["growth_high95"] for g in groups)
    with pytest.raises(vitrine.InvalidArgumentError, match="1h to 7d"):
        bundle.trending(window="2w")
    with pytest.raises(vitrine.InvalidArgumentError, match="no such catalog column"):
        bundle.trending(by="nope")
    with pytest.raises(vitrine.InvalidArgumentError, match="k must be >= 1"):
        bundle.trending(N=0)


def test_retail_settings_of_recommend_equal_the_cli(bundle, bundle_dir, data_dir):
    user = some_users(data_dir, 1)[0]
    cases = [
        (dict(intent="recently-viewed"), ["--intent", "recently-viewed"]),
        (dict(exploration=0.3), ["--exploration", "0.3"]),
        (dict(not_interested=["I000010"], hide_brands=["Streetform"]),
         ["--not-interested", "I000010", "--hide-brand", "Streetform"]),
        (dict(intent="buy-again", replenishable=["tshirt", "dress"]),
         ["--intent", "buy-again", "--replenishable", "tshirt,dress"]),
        (dict(intent="next-step"), ["--intent", "next-step"]),
        (dict(intent="next-step", category_column="tier"),
         ["--intent", "next-step", "--category-column", "tier"]),
    ]
    for kwargs, flags in cases:
        ids, scores = bundle.recommend(user, N=6, **kwargs)
        rows = cli_csv("recommend", "--bundle", str(bundle_dir), "--user", user, "-k", "6", *flags)
        assert list(ids) == [r["item_id"] for r in rows], kwargs
        np.testing.assert_allclose(scores, [float(r["score"]) for r in rows], atol=1e-4)
    with pytest.raises(vitrine.InvalidArgumentError, match="expected for-you"):
        bundle.recommend(user, intent="next")
    with pytest.raises(vitrine.InvalidArgumentError, match="no such catalog column"):
        bundle.recommend(user, intent="next-step", category_column="nope")


def test_batch_similar_items_equal_single_calls(bundle):
    items = some_items(bundle, 40)
    ids, scores = bundle.similar_items(items, N=7)
    assert ids.shape == (40, 7) and scores.shape == (40, 7) and scores.dtype == np.float32
    for row, item in enumerate(items):
        one_ids, one_scores = bundle.similar_items(item, N=7)
        assert list(ids[row]) == list(one_ids)
        np.testing.assert_array_equal(scores[row], one_scores)
    # Item indices are accepted too (implicit's convention).
    index_ids, _ = bundle.similar_items(np.arange(3), N=7)
    assert list(index_ids[0]) == list(bundle.similar_items(str(bundle.item_ids[0]), N=7)[0])


def test_a_batch_on_one_thread_equals_a_batch_on_every_core(bundle):
    items = some_items(bundle, 60)
    default = vitrine.get_num_threads()
    assert default >= 1
    everywhere = bundle.similar_items(items, N=5)
    try:
        vitrine.set_num_threads(1)
        assert vitrine.get_num_threads() == 1
        one = bundle.similar_items(items, N=5)
    finally:
        vitrine.set_num_threads(0)
    assert vitrine.get_num_threads() == default
    np.testing.assert_array_equal(one[0], everywhere[0])
    np.testing.assert_array_equal(one[1], everywhere[1])
    with pytest.raises(vitrine.InvalidArgumentError, match="num_threads must be >= 0"):
        vitrine.set_num_threads(-1)


def test_batch_recommend_equals_single_calls(bundle, data_dir):
    users = some_users(data_dir, 20) + ["someone-new"]
    ids, scores = bundle.recommend(users, N=6)
    assert ids.shape == (len(users), 6)
    for row, user in enumerate(users):
        one_ids, one_scores = bundle.recommend(user, N=6)
        assert list(ids[row]) == list(one_ids)
        np.testing.assert_array_equal(scores[row], one_scores)


def test_two_threads_get_the_same_answers_as_one(bundle):
    items = some_items(bundle, 200)
    expected = bundle.similar_items(items, N=5)[0]
    results = [None, None]

    def work(slot):
        results[slot] = bundle.similar_items(items, N=5)[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, expected)


# -------------------------------------------------------- explanations

def test_explain_names_blocks_reasons_and_the_source(bundle, data_dir):
    user = some_users(data_dir)[0]
    e = bundle.explain(user=user, N=5)
    assert e["source"] == "user" and not e["fallback"]
    assert len(e["hits"]) == 5
    first = e["hits"][0]
    assert first["item"] == bundle.recommend(user, N=5)[0][0]
    assert first["reason"]
    assert set(first["blocks"]) <= {"cf", "content", "visual", "pop", "new", "trend"}
    unknown = bundle.explain(user="nobody-at-all", N=3)
    assert unknown["fallback"] and unknown["source"] == "popular"


def test_recalculate_user_is_the_history_query(bundle):
    history = some_items(bundle, 3)
    v = bundle.recalculate_user(history)
    assert v.shape == (bundle.vectors.shape[1],) and v.dtype == np.float32
    assert np.isfinite(v).all() and np.linalg.norm(v) > 0
    np.testing.assert_array_equal(v, bundle.recalculate_user(history, weights=[1, 1, 1]))


# ------------------------------------------------------------- errors

def test_errors_are_exceptions_with_the_cli_message(bundle, bundle_dir, tmp_path):
    with pytest.raises(vitrine.NotFoundError) as e:
        bundle.similar_items("NO-SUCH-ITEM")
    assert "NO-SUCH-ITEM" in str(e.value) and e.value.code == "NotFound"
    assert isinstance(e.value, KeyError) and isinstance(e.value, vitrine.Error)
    r = run_cli_failure("similar", "--bundle", str(bundle_dir), "--item", "NO-SUCH-ITEM")
    assert str(e.value) in r

    with pytest.raises(vitrine.InvalidArgumentError) as e:
        bundle.similar_items(some_items(bundle)[0], rules='EXCLUDE WHERE brand = ')
    assert isinstance(e.value, ValueError)
    assert str(e.value).startswith("rules:1:")

    with pytest.raises(ValueError, match="N must be at least 1"):
        bundle.similar_items(some_items(bundle)[0], N=0)
    with pytest.raises(ValueError, match="diversity"):
        bundle.similar_items(some_items(bundle)[0], diversity="sideways")
    with pytest.raises(vitrine.NotFoundError, match="out of range"):
        bundle.similar_items(10**9)
    with pytest.raises(FileNotFoundError) as e:
        vitrine.open(tmp_path / "missing-bundle")
    assert "missing-bundle" in str(e.value)
    with pytest.raises(vitrine.NotFoundError, match="query 1"):
        bundle.similar_items([some_items(bundle)[0], "NOPE"])


def test_wrong_types_get_clear_errors(bundle):
    item = some_items(bundle)[0]
    with pytest.raises(vitrine.NotFoundError, match="out of range"):
        bundle.similar_items(2**63)
    with pytest.raises(vitrine.NotFoundError, match="out of range"):
        bundle.similar_items(-2**70)
    with pytest.raises(vitrine.InvalidArgumentError, match="'cf': expected a number, got"):
        bundle.similar_items(item, weights={"cf": "abc"})
    with pytest.raises(TypeError):
        bundle.similar_items(item, diversity=3.5)


def run_cli_failure(*args):
    import subprocess

    from conftest import cli
    r = subprocess.run([cli(), *args], capture_output=True, text=True)
    assert r.returncode != 0
    return r.stderr


# ---------------------------------------------------------- lifetimes

def test_results_and_views_outlive_close(bundle_dir):
    b = vitrine.open(bundle_dir)
    ids, scores = b.similar_items(str(b.item_ids[0]), N=5)
    vectors = b.vectors
    assert not vectors.flags.writeable
    first_row = vectors[0].copy()
    b.close()
    assert b.closed
    with pytest.raises(vitrine.Error, match="closed"):
        b.similar_items(str(ids[0]))
    del b
    gc.collect()
    # The view still reads the engine's memory, kept alive by the view.
    np.testing.assert_array_equal(vectors[0], first_row)
    assert len(ids) == 5 and np.isfinite(scores).all()


def test_a_view_holds_the_engine_not_the_python_object(bundle_dir):
    import sys

    b = vitrine.open(bundle_dir)
    before = sys.getrefcount(b)
    views = [b.vectors for _ in range(10)]
    assert sys.getrefcount(b) == before  # views do not pin the Python object
    b.close()
    del b
    gc.collect()
    assert all(v.shape == views[0].shape for v in views)
    assert float(np.abs(views[-1]).sum()) > 0


# ------------------------------------------------------ hostile inputs

def test_an_uninitialised_or_copied_bundle_is_an_error_not_a_crash(bundle):
    import copy
    import pickle

    raw = vitrine.Bundle.__new__(vitrine.Bundle)  # __init__ never ran
    for call in (raw.close, lambda: raw.similar_items("x"), lambda: raw.vectors,
                 lambda: raw.recommend("u")):
        with pytest.raises(vitrine.Error, match="never initialised"):
            call()
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(bundle)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.copy(bundle)
    raw_als = vitrine._core.ImplicitALS.__new__(vitrine._core.ImplicitALS)
    with pytest.raises(vitrine.Error, match="never initialised"):
        raw_als.item_factors  # noqa: B018


def test_a_huge_n_or_pool_means_every_item(bundle, data_dir):
    n_items = len(bundle.item_ids)
    user = some_users(data_dir, 1)[0]
    ids, scores = bundle.recommend([user, user], N=2**31 - 1, pool=2**31 - 1, diversity="mmr")
    assert ids.shape[0] == 2 and ids.shape[1] <= n_items
    all_ids, _ = bundle.recommend([user], N=n_items, pool=n_items, diversity="mmr")
    assert list(ids[0]) == list(all_ids[0])
    with pytest.raises((OverflowError, TypeError)):
        bundle.similar_items(some_items(bundle)[0], N=2**40)


def test_open_with_verify_checks_every_checksum(bundle_dir, tmp_path):
    import shutil

    copy_dir = tmp_path / "b"
    shutil.copytree(bundle_dir, copy_dir)
    vectors = copy_dir / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-1] ^= 0xFF  # same size, different bytes
    vectors.write_bytes(bytes(data))
    vitrine.open(copy_dir).close()  # sizes only: a trusted bundle loads fast
    with pytest.raises(vitrine.CorruptionError, match="vectors.npy"):
        vitrine.open(copy_dir, verify=True)


def test_invalid_utf8_from_a_damaged_bundle_is_replaced_not_raised(bundle_dir, tmp_path):
    """A bundle opened without verify=True may be damaged in place (same
    size): the error quotes the bad bytes, and they reach Python as U+FFFD
    instead of a UnicodeDecodeError hiding the real error."""
    import shutil

    copy_dir = tmp_path / "b"
    shutil.copytree(bundle_dir, copy_dir)
    items = copy_dir / "items.csv"
    data = bytearray(items.read_bytes())
    end = data.index(b"\n", data.index(b"\n") + 1)  # end of the first data row
    data[end - 2:end] = b'\xff"'  # same size: only the checksum would tell
    items.write_bytes(bytes(data))
    with pytest.raises(vitrine.InvalidArgumentError) as e:
        vitrine.open(copy_dir)
    assert "items.csv:2" in str(e.value) and "\ufffd" in str(e.value)


def test_weight_dicts_keep_their_exact_values(bundle):
    item = some_items(bundle)[2]
    a = bundle.similar_items(item, N=5, weights={"cf": 1e-7, "content": 1.0})
    b = bundle.similar_items(item, N=5, weights="cf=1e-7,content=1")
    assert list(a[0]) == list(b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for bad in ({"cf=1,content": 1.0}, {"cf": float("nan")}, {"": 1.0}):
        with pytest.raises(ValueError, match="expected block=number"):
            bundle.similar_items(item, weights=bad)
