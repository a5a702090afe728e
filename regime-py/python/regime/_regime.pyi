"""Typed stub of the compiled module ``regime._regime``."""

from typing import List, Optional, Tuple, Union

import pyarrow as pa

__version__: str

class RegimeError(Exception): ...
class BadInputError(RegimeError): ...
class BackendError(RegimeError): ...
class StoreError(RegimeError): ...

def detect(
    table: Union[pa.Table, str, List[str]],
    mode: str = "causal",
    model: Optional[str] = None,
    backend: Optional[str] = None,
    skip_bad_rows: bool = False,
    confidence_threshold: float = 0.7,
    switch_margin: float = 0.05,
) -> Tuple[pa.Table, List[str]]: ...
def generate(
    symbols: int = 1,
    bars: int = 2000,
    seed: int = 42,
    step_secs: int = 86400,
    start_ms: Optional[int] = None,
) -> pa.Table: ...
def evaluate(
    table: Union[pa.Table, str, List[str]],
    label_column: str = "true_regime_id",
    score_last: float = 1.0,
    confidence_threshold: float = 0.7,
    switch_margin: float = 0.05,
) -> Tuple[str, List[str]]: ...
def history(
    store: str,
    symbol: Optional[str] = None,
    start_ms: Optional[int] = None,
    end_ms: Optional[int] = None,
    limit: int = 100000,
) -> pa.Table: ...
def last_compute_seconds() -> float: ...
def bar_fields(keys: list[str]) -> tuple[Optional[int], list[Optional[int]], Optional[int]]: ...
def date_and_time(date_ms: int, time: str) -> int: ...
def select_backend(backend: Optional[str] = None) -> tuple[str, str, str]: ...

class Engine:
    """One causal pipeline per symbol, fed bar by bar (the Python class ``regime.Engine``
    wraps this one and accepts a bar as a dict, a tuple or keywords)."""

    def __init__(self, confidence_threshold: float = 0.7, switch_margin: float = 0.05) -> None: ...
    def update(
        self,
        symbol: str,
        timestamp_ms: int,
        close: float,
        open: float = ...,
        high: float = ...,
        low: float = ...,
        volume: float = ...,
    ) -> dict: ...
    def symbols(self) -> list[str]: ...
    def dump(self) -> bytes: ...
    @staticmethod
    def load(bytes: bytes) -> "Engine": ...
