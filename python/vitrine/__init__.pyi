"""Type stubs of the vitrine package (docs/python.md)."""
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt
import pandas as pd

from .errors import (CorruptionError as CorruptionError, Error as Error,
                     InvalidArgumentError as InvalidArgumentError, IOError as IOError,
                     NotFoundError as NotFoundError, UnsupportedError as UnsupportedError)

PathLike = Union[str, os.PathLike]
ItemRef = Union[str, int]
Rules = Union[str, os.PathLike, None]
Weights = Union[Mapping[str, float], str, None]
IdsAndScores = Tuple[npt.NDArray[np.str_], npt.NDArray[np.float32]]

class Bundle:
    """A loaded bundle. Thread-safe; the GIL is released while the engine works."""
    def __init__(self, path: str, verify: bool = False) -> None: ...
    def __enter__(self) -> "Bundle": ...
    def __exit__(self, *exc: Any) -> None: ...
    @property
    def path(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def manifest(self) -> dict: ...
    @property
    def vectors(self) -> npt.NDArray[np.float32]:
        """The fused item vectors (items x dim), a read-only zero-copy view."""
    @property
    def item_ids(self) -> npt.NDArray[np.str_]:
        """Item ids in catalog (row) order."""
    def close(self) -> None:
        """Releases the engine; arrays already returned stay valid."""
    def similar_items(self, items: Union[ItemRef, Sequence[ItemRef]], N: int = 10,
                      rules: Rules = None, weights: Weights = None,
                      diversity: Optional[str] = None, params: Optional[Mapping[str, str]] = None,
                      context: Optional[Mapping[str, str]] = None, pool: int = 0,
                      ef: int = 0) -> IdsAndScores:
        """Items nearest to an item: (ids, scores) of shape (N,); for a sequence of
        items, (len(items), N), padded with "" and NaN. Batches run on every core.
        rules: rule text or a path (docs/rules.md); weights: {"cf": 0.6, ...} or
        "cf=0.6,content=0.3"; diversity: "none", "mmr[:lambda]" or "dpp[:theta]"."""
    def recommend(self, who: Union[str, Sequence[Any]], N: int = 10,
                  filter_already_liked: bool = True, rules: Rules = None,
                  weights: Weights = None, diversity: Optional[str] = None,
                  params: Optional[Mapping[str, str]] = None,
                  context: Optional[Mapping[str, str]] = None, pool: int = 0, ef: int = 0,
                  ranker: bool = True, intent: str = "for-you", exploration: float = 0.0,
                  not_interested: Sequence[str] = (), hide_brands: Sequence[str] = (),
                  replenishable: Sequence[str] = (),
                  category_column: str = "category") -> IdsAndScores:
        """Recommendations for a user id (str: shape (N,)), or a batch: a list whose
        elements are user ids or histories (lists of item ids, most recent last):
        shape (len(who), N). An unknown user gets the popular fallback. The retail
        settings are `recommend`'s flags (docs/retail.md): intent is for-you,
        recently-viewed, buy-again, gift or next-step."""
    def explain(self, user: Optional[str] = None, history: Optional[Sequence[ItemRef]] = None,
                item: Optional[ItemRef] = None, N: int = 10, rules: Rules = None,
                weights: Weights = None, diversity: Optional[str] = None,
                params: Optional[Mapping[str, str]] = None,
                context: Optional[Mapping[str, str]] = None, ranker: bool = True) -> dict:
        """One answer with its explanations: {"source", "fallback", "hits": [{"item",
        "score", "blocks", "reason", "pinned", "boost", "rule_lines",
        "ranker_features"}]}."""
    def recalculate_user(self, history: Sequence[ItemRef],
                         weights: Optional[Sequence[float]] = None) -> npt.NDArray[np.float32]:
        """The query vector of a history (ALS fold-in and block means), unscaled."""
    def complete(self, item: str, category_column: str = "category", max_categories: int = 4,
                 rules: Rules = None) -> list:
        """Complete the look: one item per complementary category, as dicts."""
    def popular(self, N: int = 10, rules: Rules = None) -> IdsAndScores:
        """The most popular items that pass the rules."""
    def trending(self, window: str = "1d", N: int = 10, by: Optional[str] = None,
                 rules: Rules = None, params: Optional[Mapping[str, Any]] = None,
                 context: Optional[Mapping[str, Any]] = None,
                 at: Union[int, str, None] = None) -> List[Dict[str, Any]]:
        """Items gaining demand fastest, [{item, growth, current, previous, reason}];
        with by=COLUMN, that column's values by growth ratio with a 95% interval,
        [{value, growth, growth_low95, growth_high95, direction, events,
        events_before, top_items}]. N=0 with by lists every value."""

def open(path: PathLike, verify: bool = False) -> Bundle:
    """Opens a bundle directory. Raises NotFoundError or CorruptionError.
    verify=True checks every file's checksum first (vitrine inspect's check)."""

def set_num_threads(n: int) -> None:
    """Threads of a batch call; 0 (the default) = every core. Process-wide."""

def get_num_threads() -> int:
    """Threads a batch call uses now."""

def build_config_keys() -> list[str]:
    """Every build option as "section.key" (vitrine build --config-keys)."""

def build(items: Union[pd.DataFrame, PathLike], out: PathLike,
          interactions: Any = None, images: Union[npt.NDArray[np.uint8], PathLike, None] = None, *,
          user_ids: Optional[Sequence] = None, item_ids: Optional[Sequence] = None,
          config: Optional[Mapping[str, Any]] = None, quiet: bool = True,
          **options: Any) -> dict:
    """Builds a bundle at `out` from a DataFrame or CSV of items and interactions
    (a DataFrame, a CSV, or a scipy.sparse matrix with user_ids and item_ids);
    options by build.toml key (config={"als.factors": 64}) or by name
    (als_factors=64). Returns the build summary."""

def tune(items: Union[pd.DataFrame, PathLike], interactions: Any,
         images: Union[npt.NDArray[np.uint8], PathLike, None] = None, *,
         user_ids: Optional[Sequence] = None, item_ids: Optional[Sequence] = None,
         config: Optional[Mapping[str, Any]] = None, budget_seconds: float = 600.0,
         max_trials: int = 30, seed: int = 42, eval_users: int = 3000, quiet: bool = True,
         **options: Any) -> dict:
    """`vitrine tune` from Python: the inputs and starting options of `build`;
    returns {"config": chosen options by build.toml key (for build(config=)),
    "toml", "chosen", "trials" (DataFrame), "budget_reached",
    "validation_users", "seconds"}."""

def evaluate(bundle: Union[Bundle, PathLike], test: Union[pd.DataFrame, PathLike], k: int = 10,
             models: Optional[Iterable[str]] = None, max_users: int = 0,
             events: Optional[str] = None, rules: Optional[PathLike] = None,
             weights: Optional[str] = None, quiet: bool = True) -> pd.DataFrame:
    """The `vitrine evaluate` table, one row per model; attrs hold the pool recall
    and attrs["next_step"] the next-item hit rates."""

class ImplicitALS:
    """implicit.als.AlternatingLeastSquares's API over vitrine's ALS."""
    factors: int
    regularization: float
    alpha: float
    iterations: int
    user_factors: Optional[npt.NDArray[np.float32]]
    item_factors: Optional[npt.NDArray[np.float32]]
    def __init__(self, factors: int = 100, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, *, unobserved_weight: float = 1.0,
                 reg_exponent: float = 0.0, cg_steps: int = 3, solver: str = "cg",
                 random_state: int = 42, num_threads: int = 0) -> None: ...
    def fit(self, user_items: Any, show_progress: bool = False) -> "ImplicitALS": ...
    def recalculate_user(self, userid: Any, user_items: Any) -> npt.NDArray[np.float32]: ...
    def recommend(self, userid: Any, user_items: Any, N: int = 10,
                  filter_already_liked_items: bool = True) -> Tuple[np.ndarray, np.ndarray]: ...
    def similar_items(self, itemid: Any, N: int = 10) -> Tuple[np.ndarray, np.ndarray]: ...
