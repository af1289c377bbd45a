"""Building and evaluating from Python objects, and ImplicitALS checked
against a dense least-squares solve."""

import csv
import io

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import vitrine
from conftest import run_cli


def test_build_from_dataframes_equals_build_from_files(data_dir, bundle_dir, tmp_path):
    items = pd.read_csv(data_dir / "items.csv", dtype=str, keep_default_na=False)
    train = pd.read_csv(data_dir / "train.csv", dtype=str, keep_default_na=False)
    summary = vitrine.build(items, tmp_path / "b", train, data_dir / "images.idx.gz")
    assert summary["items"] == len(items)
    with vitrine.open(tmp_path / "b") as from_frames, vitrine.open(bundle_dir) as from_files:
        item = str(from_files.item_ids[7])
        a = from_frames.similar_items(item, N=10)
        b = from_files.similar_items(item, N=10)
        assert list(a[0]) == list(b[0])
        np.testing.assert_allclose(a[1], b[1], atol=1e-6)


def test_build_from_a_sparse_matrix_and_options(tmp_path):
    rng = np.random.default_rng(3)
    n_users, n_items = 300, 80
    items = pd.DataFrame({"item_id": [f"P{i:03d}" for i in range(n_items)],
                          "category": [["shoe", "bag", "coat"][i % 3] for i in range(n_items)]})
    m = sp.random(n_users, n_items, density=0.08, format="csr", random_state=rng,
                  data_rvs=lambda k: np.ones(k))
    summary = vitrine.build(items, tmp_path / "b", m, user_ids=[f"U{u}" for u in range(n_users)],
                            item_ids=items["item_id"], als_factors=8, als_iterations=3,
                            ranker_enabled=False, config={"index.spec": "Flat"})
    assert summary["users"] > 0 and summary["interactions"] == m.nnz
    with vitrine.open(tmp_path / "b") as b:
        assert b.manifest["params"] is not None
        ids, _ = b.recommend("U1", N=5)
        assert len(ids) == 5


def test_build_errors_name_the_key(tmp_path):
    items = pd.DataFrame({"item_id": ["a", "b"]})
    with pytest.raises(vitrine.InvalidArgumentError, match="als.factors"):
        vitrine.build(items, tmp_path / "b", als_factors=0)
    with pytest.raises(ValueError, match="unknown build option 'als_factorz'"):
        vitrine.build(items, tmp_path / "b", als_factorz=8)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        vitrine.build(tmp_path / "nope.csv", tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_evaluate_returns_the_cli_table(bundle_dir, data_dir):
    frame = vitrine.evaluate(bundle_dir, data_dir / "test.csv", models=["hybrid", "toppop"],
                             max_users=300)
    assert list(frame.index) == ["hybrid", "toppop"]
    out = run_cli("evaluate", "--bundle", str(bundle_dir), "--test", str(data_dir / "test.csv"),
                  "--models", "hybrid,toppop", "--max-users", "300", "--format", "csv",
                  "--quiet")
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(out))}
    for model in ("hybrid", "toppop"):
        assert frame.loc[model, "ndcg"] == pytest.approx(float(rows[model]["ndcg@10"]), abs=1e-4)
        assert frame.loc[model, "recall"] == pytest.approx(float(rows[model]["recall@10"]),
                                                           abs=1e-4)
    # The next-step hit rates, as the CLI's second table prints them.
    table = run_cli("evaluate", "--bundle", str(bundle_dir), "--test", str(data_dir / "test.csv"),
                    "--models", "toppop", "--max-users", "300", "--quiet")
    printed = {line.split()[0]: float(line.split()[1]) for line in
               table.split("next-item hit rate@10")[1].splitlines()[3:] if line.strip()}
    rates = {r["model"]: r["hit_rate"] for r in frame.attrs["next_step"]}
    assert list(rates) == ["next-step", "similar-to-last", "toppop", "for-you"]
    assert rates == pytest.approx(printed, abs=1e-4)
    test = pd.read_csv(data_dir / "test.csv", dtype=str, keep_default_na=False)
    again = vitrine.evaluate(bundle_dir, test, models=["toppop"], max_users=300)
    assert again.loc["toppop", "ndcg"] == frame.loc["toppop", "ndcg"]
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        vitrine.evaluate(bundle_dir, data_dir / "test.csv", models=["nope"])


# ------------------------------------------------------------ ImplicitALS

def planted_matrix(seed=5, users=120, items=60):
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, 4, users)
    kind = np.arange(items) % 4
    dense = (rng.random((users, items)) < np.where(taste[:, None] == kind[None, :], 0.35, 0.03))
    weights = dense * rng.integers(1, 4, (users, items))
    return sp.csr_matrix(weights.astype(np.float32)), taste, kind


def test_als_item_factors_solve_their_normal_equations():
    """With exact solves the last half-step leaves each item vector the
    minimiser of its weighted ridge problem given the user factors: checked
    with a dense solve of (X^T C_i X + lambda I) y = X^T C_i p_i."""
    m, _, _ = planted_matrix()
    reg, alpha = 0.1, 2.0
    model = vitrine.ImplicitALS(factors=6, regularization=reg, alpha=alpha, iterations=4,
                                solver="cholesky", num_threads=1).fit(m)
    x, y = model.user_factors.astype(np.float64), model.item_factors.astype(np.float64)
    dense = m.toarray()
    for i in range(0, m.shape[1], 7):
        c = 1 + alpha * dense[:, i]
        p = (dense[:, i] > 0).astype(np.float64)
        a = x.T @ (c[:, None] * x) + reg * np.eye(x.shape[1])
        expected = np.linalg.solve(a, x.T @ (c * p))
        np.testing.assert_allclose(y[i], expected, rtol=2e-3, atol=2e-4)


def test_als_recommends_the_planted_taste_and_folds_in_exactly():
    m, taste, kind = planted_matrix()
    model = vitrine.ImplicitALS(factors=8, regularization=0.05, iterations=10,
                                solver="cholesky").fit(m)
    ids, scores = model.recommend(np.arange(40), m[:40], N=5)
    assert ids.shape == (40, 5) and np.all(np.diff(scores, axis=1) <= 0)
    hit = np.mean([np.mean(kind[ids[u]] == taste[u]) for u in range(40)])
    assert hit > 0.8, hit
    assert not any(m[u, ids[u]].nnz for u in range(40))  # already liked are filtered
    # Fold-in of a stored user's row equals the dense solve against Y.
    y = model.item_factors.astype(np.float64)
    row = m[3].toarray()[0]
    c = 1 + 1.0 * row
    a = y.T @ y + y.T @ ((c - 1)[:, None] * y) + 0.05 * np.eye(y.shape[1])
    expected = np.linalg.solve(a, y.T @ (c * (row > 0)))
    np.testing.assert_allclose(model.recalculate_user(3, m[3]), expected, rtol=2e-3, atol=2e-4)
    sim_ids, sim = model.similar_items(0, N=4)
    assert sim_ids[0] == 0 and sim[0] == pytest.approx(1.0, abs=1e-5)


def test_als_refuses_bad_input():
    with pytest.raises(ValueError, match="solver"):
        vitrine.ImplicitALS(solver="magic")
    m = sp.csr_matrix(np.array([[1.0, -2.0]], dtype=np.float32))
    with pytest.raises(ValueError, match="finite and >= 0"):
        vitrine.ImplicitALS(factors=2).fit(m)
    with pytest.raises(ValueError, match="fit"):
        vitrine.ImplicitALS().recommend(0, m)


def test_more_hostile_inputs_are_errors(tmp_path, bundle_dir, data_dir):
    import os

    m, _, _ = planted_matrix()
    for kwargs, needle in (({"num_threads": 100000}, "num_threads"),
                           ({"iterations": 10**6}, "iterations"),
                           ({"factors": 5000}, "factors")):
        with pytest.raises(ValueError, match=needle):
            vitrine.ImplicitALS(**kwargs).fit(m)
    items = pd.DataFrame({"item_id": [f"P{i}" for i in range(20)],
                          "category": [["shoe", "bag"][i % 2] for i in range(20)]})
    with pytest.raises(ValueError, match="images of 0 x 28 pixels"):
        vitrine.build(items, tmp_path / "b", images=np.zeros((20, 0, 28), np.uint8))
    with pytest.raises(ValueError, match=r"k must be in \[1, 1000\]"):
        vitrine.evaluate(bundle_dir, data_dir / "test.csv", k=5000, models=["toppop"])
    with pytest.raises(vitrine.Error, match="never initialised"):
        vitrine.evaluate(vitrine.Bundle.__new__(vitrine.Bundle), data_dir / "test.csv")
    fifo = tmp_path / "rules.fifo"
    os.mkfifo(fifo)
    with vitrine.open(bundle_dir) as b:
        with pytest.raises(ValueError, match="not a regular file"):
            b.similar_items(str(b.item_ids[0]), rules=fifo)
    # Non-ASCII (emoji) paths reach the build as the same path.
    odd = tmp_path / "caf\u00e9 \U0001F600"
    odd.mkdir()
    items.to_csv(odd / "items.csv", index=False)
    summary = vitrine.build(odd / "items.csv", tmp_path / "emoji", ranker_enabled=False)
    assert summary["items"] == 20


# ------------------------------------------------------------------ tune

def test_tune_chooses_what_the_cli_chooses(data_dir, tmp_path):
    # Two retrieval trials, no ranker stage: the same seed gives the CLI's choice.
    r = vitrine.tune(data_dir / "items.csv", data_dir / "train.csv", max_trials=2, seed=5,
                     ranker_enabled=False)
    saved = tmp_path / "tuned.toml"
    run_cli("tune", "--items", str(data_dir / "items.csv"), "--interactions",
            str(data_dir / "train.csv"), "--trials", "2", "--seed", "5", "--ranker", "off",
            "--save-config", str(saved), "--quiet")
    assert r["toml"] == saved.read_text()
    assert set(r["trials"].columns) >= {"stage", "index", "params", "ndcg", "seconds"}
    assert (r["trials"]["stage"] == "retrieval").sum() == 2
    assert r["config"]["als.factors"] == r["chosen"]["factors"]
    assert r["config"]["ranker.enabled"] is False
    # The choice builds: config= takes it as it comes.
    summary = vitrine.build(data_dir / "items.csv", tmp_path / "tuned", data_dir / "train.csv",
                            config=r["config"], ranker_enabled=False)
    assert summary["items"] == 1200
    with pytest.raises(vitrine.InvalidArgumentError, match="trials must be at least 1"):
        vitrine.tune(data_dir / "items.csv", data_dir / "train.csv", max_trials=0)
