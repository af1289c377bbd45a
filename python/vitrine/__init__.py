"""vitrine: recommendation retrieval for retail, from Python (docs/python.md).

    import vitrine
    b = vitrine.open("demo/bundle")
    ids, scores = b.similar_items("I000042", N=10)
    ids, scores = b.recommend(["U0000007", "U0000008"], N=10)   # a batch: (2, 10)

The engine is C++ (vitrine._core); this file adds only what is Python:
DataFrames and scipy.sparse matrices in, pandas tables out, and implicit's
names. Answers are the CLI's answers: the same engine code makes them.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from . import _core
from .errors import (CorruptionError, Error, InvalidArgumentError, IOError, NotFoundError,
                     UnsupportedError)

__all__ = [
    "open", "Bundle", "build", "tune", "evaluate", "ImplicitALS", "build_config_keys",
    "set_num_threads", "get_num_threads",
    "Error", "InvalidArgumentError", "NotFoundError", "CorruptionError", "IOError",
    "UnsupportedError",
]

PathLike = Union[str, os.PathLike]


class Bundle(_core.Bundle):
    """A loaded bundle (a directory made by ``vitrine build``).

    Thread-safe: any number of Python threads may query one bundle at once
    (the GIL is released while the engine works). ``close()`` releases the
    engine; arrays already returned stay valid.
    """

    def __enter__(self) -> "Bundle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def manifest(self) -> dict:
        """The bundle's manifest.json as a dict."""
        return json.loads(self.manifest_json())

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self.item_ids)} items"
        return f"<vitrine.Bundle {self.path!r} ({state})>"


def open(path: PathLike, verify: bool = False) -> Bundle:  # noqa: A001 - as faiss.read_index
    """Opens a bundle directory. Raises NotFoundError or CorruptionError.

    verify=True checks every file's checksum first (reads every byte once),
    as ``vitrine inspect`` does; the default checks presence and sizes, for
    a fast load of a bundle you built (``vitrine serve --verify`` likewise).
    """
    return Bundle(os.fspath(path), verify)


def build_config_keys() -> list:
    """Every build option, as "section.key" (``vitrine build --config-keys``)."""
    return list(_core.build_config_keys())


def set_num_threads(n: int) -> None:
    """Threads a batch call (many ids in one similar_items or recommend) uses.

    0, the default, means every core. Process-wide: it holds for batches
    started from any Python thread. One query always runs on the calling
    thread; two Python threads querying at once run in parallel either way.
    """
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads a batch call uses now (every core unless set_num_threads)."""
    return int(_core.get_num_threads())


# ----------------------------------------------------------------- build

def _option_key(name: str, keys: Sequence[str]) -> str:
    """``als_factors`` -> ``als.factors``; ``weights_cf`` -> ``weights.cf``."""
    if "." in name:
        return name
    exact = {k.replace(".", "_"): k for k in keys if not k.endswith((".NAME", ".BLOCK"))}
    if name in exact:
        return exact[name]
    for family in ("content.column_weights", "weights"):
        prefix = family.replace(".", "_") + "_"
        if name.startswith(prefix) and len(name) > len(prefix):
            return family + "." + name[len(prefix):]
    raise InvalidArgumentError(
        f"unknown build option '{name}' (expected one of: "
        + ", ".join(sorted(exact)) + ", weights_<block>, content_column_weights_<column>)")


def _toml_value(key: str, v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return "nan" if f != f else ("inf" if f == float("inf") else "-inf" if f == -float("inf") else repr(f))
    if isinstance(v, (str, os.PathLike)):
        # A JSON string is a TOML basic string; non-ASCII stays UTF-8 (TOML
        # refuses the surrogate pairs that \u escapes would make of emoji).
        return json.dumps(os.fspath(v), ensure_ascii=False)
    raise InvalidArgumentError(f"build option '{key}': expected a number, a bool or a string, "
                               f"got {type(v).__name__}")


def _config_toml(options: Mapping[str, Any]) -> str:
    sections: dict = {}
    for key, value in options.items():
        section, _, name = key.rpartition(".")
        if not section:
            raise InvalidArgumentError(f"build option '{key}': expected section.key")
        sections.setdefault(section, []).append(
            f"{json.dumps(name, ensure_ascii=False)} = {_toml_value(key, value)}")
    return "".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items())


def _write_csv(frame: Any, path: str) -> str:
    frame.to_csv(path, index=False)
    return path


def _interactions_frame(interactions: Any, user_ids: Optional[Sequence], item_ids: Optional[Sequence]):
    """A DataFrame of (user_id, item_id, weight) from a scipy.sparse matrix."""
    import pandas as pd
    import scipy.sparse as sp

    m = sp.csr_matrix(interactions)
    if user_ids is None or item_ids is None:
        raise InvalidArgumentError("interactions as a sparse matrix need user_ids= and item_ids= "
                                   "(one id per row and per column)")
    if len(user_ids) != m.shape[0] or len(item_ids) != m.shape[1]:
        raise InvalidArgumentError(f"interactions: a {m.shape[0]} x {m.shape[1]} matrix needs as many "
                                   f"user_ids and item_ids, got {len(user_ids)} and {len(item_ids)}")
    coo = m.tocoo()
    return pd.DataFrame({"user_id": np.asarray(user_ids)[coo.row],
                         "item_id": np.asarray(item_ids)[coo.col],
                         "weight": coo.data.astype(np.float64)})


def _write_idx(images: np.ndarray, path: str) -> str:
    """uint8 images (n x h x w) as an IDX file, the format --images reads."""
    a = np.ascontiguousarray(images)
    if a.dtype != np.uint8 or a.ndim != 3:
        raise InvalidArgumentError(f"images: expected a uint8 array of n x height x width, "
                                   f"got {a.dtype} with shape {a.shape}")
    with builtins_open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, 3]))
        f.write(np.asarray(a.shape, dtype=">u4").tobytes())
        f.write(a.tobytes())
    return path


builtins_open = __builtins__["open"] if isinstance(__builtins__, dict) else __builtins__.open


def _settings(config: Optional[Mapping[str, Any]], options: Mapping[str, Any]) -> dict:
    """Build options by their build.toml key, from ``config`` and ``**options``."""
    keys = _core.build_config_keys()
    settings: dict = {}
    for k, v in (config or {}).items():
        settings[_option_key(k, keys)] = v
    for k, v in options.items():
        settings[_option_key(k, keys)] = v
    return settings


def _stage_inputs(tmp: str, settings: dict, items: Any, interactions: Any, images: Any,
                  user_ids: Optional[Sequence], item_ids: Optional[Sequence]) -> None:
    """Writes in-memory inputs to files in ``tmp`` and names them in ``settings``."""
    if hasattr(items, "to_csv"):
        items = _write_csv(items, os.path.join(tmp, "items.csv"))
    settings["input.items"] = os.fspath(items)
    if interactions is not None:
        if hasattr(interactions, "tocsr") or hasattr(interactions, "tocoo"):
            interactions = _interactions_frame(interactions, user_ids, item_ids)
        if hasattr(interactions, "to_csv"):
            interactions = _write_csv(interactions, os.path.join(tmp, "interactions.csv"))
        settings["input.interactions"] = os.fspath(interactions)
    if images is not None:
        if isinstance(images, np.ndarray):
            images = _write_idx(images, os.path.join(tmp, "images.idx"))
        settings["input.images"] = os.fspath(images)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict:
    """{"als": {"factors": 64}} -> {"als.factors": 64}."""
    out: dict = {}
    for k, v in table.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def tune(items: Any, interactions: Any, images: Any = None, *,
         user_ids: Optional[Sequence] = None, item_ids: Optional[Sequence] = None,
         config: Optional[Mapping[str, Any]] = None, budget_seconds: float = 600.0,
         max_trials: int = 30, seed: int = 42, eval_users: int = 3000, quiet: bool = True,
         **options: Any) -> dict:
    """``vitrine tune``: chooses build parameters on a temporal validation split.

    The inputs and ``config`` / ``**options`` are those of ``build`` (the
    starting configuration). Returns a dict: ``config`` (the chosen build
    options by build.toml key, for ``build(..., config=...)``), ``toml``
    (the same as ``vitrine tune --save-config`` writes), ``chosen``,
    ``trials`` (a DataFrame: stage, index, params, ndcg, seconds),
    ``budget_reached``, ``validation_users`` and ``seconds``. The same seed
    and ``max_trials`` give the same choice as the CLI. The GIL is released
    while the trials run.
    """
    import pandas as pd
    import tomllib

    settings = _settings(config, options)
    with tempfile.TemporaryDirectory(prefix="vitrine-tune-") as tmp:
        _stage_inputs(tmp, settings, items, interactions, images, user_ids, item_ids)
        r = _core.tune(_config_toml(settings), float(budget_seconds), int(max_trials), int(seed),
                       int(eval_users), quiet)
    r["config"] = _flatten(tomllib.loads(r["toml"]))
    r["trials"] = pd.DataFrame(r["trials"])
    return r


def build(items: Any, out: PathLike, interactions: Any = None, images: Any = None, *,
          user_ids: Optional[Sequence] = None, item_ids: Optional[Sequence] = None,
          config: Optional[Mapping[str, Any]] = None, quiet: bool = True, **options: Any) -> dict:
    """Builds a bundle at ``out``; returns the build summary.

    items         a DataFrame (first column the item id) or a CSV path
    interactions  a DataFrame (user_id, item_id[, weight, event, timestamp]),
                  a CSV path, or a users x items scipy.sparse matrix with
                  ``user_ids`` and ``item_ids``
    images        a uint8 array (items x height x width, catalog order) or an
                  IDX file path
    config        build options by their build.toml key ({"als.factors": 64})
    **options     the same by name with "_" for ".": als_factors=64,
                  weights_cf=1.0, ranker_enabled=False

    Options are checked by the same table as ``vitrine build --config``
    (``build_config_keys()``); errors name the key. The GIL is released
    while the engine builds.
    """
    settings = _settings(config, options)
    with tempfile.TemporaryDirectory(prefix="vitrine-build-") as tmp:
        _stage_inputs(tmp, settings, items, interactions, images, user_ids, item_ids)
        return _core.build(_config_toml(settings), os.fspath(out), quiet)


# -------------------------------------------------------------- evaluate

def evaluate(bundle: Union[Bundle, PathLike], test: Any, k: int = 10,
             models: Optional[Iterable[str]] = None, max_users: int = 0,
             events: Optional[str] = None, rules: Optional[PathLike] = None,
             weights: Optional[str] = None, quiet: bool = True):
    """The ``vitrine evaluate`` table as a pandas DataFrame, one row per model.

    test     held-out interactions: a CSV path or a DataFrame (``vitrine split``)
    models   e.g. ["default", "hybrid", "ease"]; default: all of them
    The frame's ``attrs`` hold the candidate pool's recall and the random
    cold-start reference, as the CLI prints them under its table, and
    ``attrs["next_step"]`` the next-item hit rates (next-step, similar-to-last,
    toppop, for-you; dicts with hit_rate, low, high, hits, users) when the
    catalog has a ``category`` column and the data timestamps.
    """
    import pandas as pd

    b = bundle if isinstance(bundle, _core.Bundle) else open(bundle)
    with tempfile.TemporaryDirectory(prefix="vitrine-eval-") as tmp:
        if hasattr(test, "to_csv"):
            test = _write_csv(test, os.path.join(tmp, "test.csv"))
        r = _core.evaluate(b, os.fspath(test), k, weights, list(models or []), max_users, events,
                           None if rules is None else os.fspath(rules), quiet)
    frame = pd.DataFrame(r["rows"])
    if not frame.empty:
        frame = frame.set_index("model")
    for key in ("k", "random_cold_recall", "dropped_users", "pool_recall", "pool_mean_size",
                "pool_users", "next_step"):
        if key in r:
            frame.attrs[key] = r[key]
    return frame


# ----------------------------------------------------------- ImplicitALS

def _top_n(scores: np.ndarray, n: int, single: bool):
    """(indices, scores) of each row's n best columns, best first."""
    n = min(n, scores.shape[1])
    top = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    ids = np.take_along_axis(top, order, axis=1)
    out = np.take_along_axis(scores, ids, axis=1)
    return (ids[0], out[0]) if single else (ids, out)


class ImplicitALS:
    """Implicit-feedback ALS with implicit's names (``implicit.als.AlternatingLeastSquares``).

        model = vitrine.ImplicitALS(factors=64, regularization=0.05, iterations=15)
        model.fit(user_items)                     # users x items, scipy.sparse CSR
        ids, scores = model.recommend(0, user_items[0], N=10)

    One difference: the confidence of an observed pair is 1 + alpha * weight
    (Hu et al.), where implicit >= 0.5 uses alpha * weight. Pass
    ``unobserved_weight`` and ``reg_exponent`` for Rendle et al.'s iALS (docs/als.md), and
    ``solver="cholesky"`` for exact row solves instead of ``cg_steps`` of
    conjugate gradient. The GIL is released while fitting.
    """

    def __init__(self, factors: int = 100, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, *, unobserved_weight: float = 1.0,
                 reg_exponent: float = 0.0, cg_steps: int = 3, solver: str = "cg",
                 random_state: int = 42, num_threads: int = 0):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self._model = _core.ImplicitALS(factors, regularization, alpha, iterations,
                                        unobserved_weight, reg_exponent, cg_steps, solver,
                                        random_state, num_threads)
        self.user_factors: Optional[np.ndarray] = None
        self.item_factors: Optional[np.ndarray] = None

    def fit(self, user_items: Any, show_progress: bool = False) -> "ImplicitALS":
        """Fits on a users x items matrix of interaction weights (scipy.sparse)."""
        import scipy.sparse as sp

        m = sp.csr_matrix(user_items, dtype=np.float32)
        m.sum_duplicates()
        m.sort_indices()
        self._model.fit(m.shape[0], m.shape[1], m.indptr.astype(np.int64),
                        m.indices.astype(np.int32), m.data)
        self.user_factors = self._model.user_factors
        self.item_factors = self._model.item_factors
        return self

    def _check_fitted(self) -> None:
        if self.item_factors is None:
            raise InvalidArgumentError("ImplicitALS: call fit() first")

    def recalculate_user(self, userid: Any, user_items: Any) -> np.ndarray:
        """The fold-in user vector of one row of interactions (exact least squares)."""
        import scipy.sparse as sp

        self._check_fitted()
        row = sp.csr_matrix(user_items, dtype=np.float32)
        if row.shape[0] != 1:
            row = row[userid]
        row.sum_duplicates()
        return self._model.recalculate_user(row.indices.astype(np.int32).tolist(),
                                            row.data.tolist())

    def recommend(self, userid: Any, user_items: Any, N: int = 10,
                  filter_already_liked_items: bool = True):
        """(item indices, scores) for one user (``userid`` an int) or many (an array)."""
        import scipy.sparse as sp

        self._check_fitted()
        rows = sp.csr_matrix(user_items, dtype=np.float32)
        users = np.atleast_1d(np.asarray(userid))
        if rows.shape[0] != len(users):
            rows = rows[users]
        scores = self.user_factors[users] @ self.item_factors.T
        if filter_already_liked_items:
            r, c = rows.nonzero()
            scores[r, c] = -np.inf
        return _top_n(scores, N, single=np.ndim(userid) == 0)

    def similar_items(self, itemid: Any, N: int = 10):
        """(item indices, cosine scores) of the items nearest an item (itself first)."""
        self._check_fitted()
        norms = np.linalg.norm(self.item_factors, axis=1)
        norms[norms == 0] = 1
        unit = self.item_factors / norms[:, None]
        items = np.atleast_1d(np.asarray(itemid))
        return _top_n(unit[items] @ unit.T, N, single=np.ndim(itemid) == 0)
