"""regime: causal detection of 18 market regimes (volatility x trend x structure).

Batch detection takes a pyarrow Table, a pandas or polars DataFrame, a dict of numpy
arrays, closes alone (a pandas or polars Series, a 1-D numpy array), or a file's path
(CSV, Parquet, Arrow IPC, read as ``regime detect`` reads it), and returns a
pyarrow Table (or a polars DataFrame with ``as_polars=True``) whose columns are handed over
from Rust without a copy. The work runs with the GIL released.

>>> import regime
>>> bars = regime.generate(symbols=2, bars=500, seed=1)
>>> out = regime.detect(bars)
>>> out.column_names[:4]
['timestamp', 'symbol', 'regime_id', 'regime_name']
"""

from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any, Optional

import numpy as np
import pyarrow as pa


def _quiet_vulkan_display_probe() -> None:
    # As the `regime` binary does at start: on a machine with no display, keep Mesa's
    # device-select Vulkan layer from asking libwayland for one while a wgpu adapter is
    # looked for (``model=...``, ``select_backend``); it printed ``error: XDG_RUNTIME_DIR is
    # invalid or not set in the environment.`` twice per call — not ours, read as ours. The
    # Vulkan loader reads the variable when an instance is made, after this import. An
    # operator's own NODEVICE_SELECT or VK_LOADER_LAYERS_DISABLE is left alone.
    if not any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "NODEVICE_SELECT", "VK_LOADER_LAYERS_DISABLE")):
        os.environ["NODEVICE_SELECT"] = "1"


_quiet_vulkan_display_probe()

from ._regime import (
    BackendError,
    BadInputError,
    RegimeError,
    StoreError,
    __version__,
)
from . import _regime

__all__ = [
    "detect",
    "generate",
    "evaluate",
    "history",
    "select_backend",
    "Engine",
    "RegimeError",
    "BadInputError",
    "BackendError",
    "StoreError",
    "InputNote",
    "__version__",
]

_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")


_TIME_NAMES = {"timestamp", "date", "datetime", "time"}


def _tidy_pandas(df: Any) -> Any:
    """A pandas frame in the long form `detect` reads, from the shapes quants' tools give.

    - Two-level columns (field, ticker), as `yfinance.download` returns: one ticker drops
      the ticker level; several become a `symbol` column, one row per (date, ticker), rows
      with no data at all (a ticker not trading yet) left out.
    - Times in the index (a DatetimeIndex, or an index named like a time column) when no
      column holds them: the index becomes the `timestamp` column.
    - Rows indexed by (time, ticker) or (ticker, time), as panels are kept
      (``df.set_index(["date", "ticker"])``): the levels become columns, an unnamed one
      named by its values (times: `timestamp`, else `symbol`).
    """
    cols = df.columns
    if getattr(cols, "nlevels", 1) == 2 and "close" in {str(x).lower() for x in cols.get_level_values(0)}:
        tickers = cols.get_level_values(1).unique()
        if len(tickers) == 1:
            df = df.droplevel(1, axis=1)
        else:
            try:
                df = df.stack(level=1, future_stack=True)
            except TypeError:  # pandas before 2.1
                df = df.stack(level=1)
            df = df.dropna(how="all")
            df.index = df.index.set_names([df.index.names[0] or "timestamp", "symbol"])
            df = df.reset_index(level=1)
        df.columns = [str(c) for c in df.columns]
    names = {str(c).lower() for c in df.columns}
    idx = df.index
    if idx.nlevels == 2 and not names & _TIME_NAMES:
        import pandas as pd

        timed = [pd.api.types.is_datetime64_any_dtype(idx.get_level_values(k)) for k in range(2)]
        level_names = [
            n if n is not None else ("timestamp" if timed[k] else "symbol")
            for k, n in enumerate(idx.names)
        ]
        if len(set(level_names)) == 2 and not {str(n) for n in level_names} & {str(c) for c in df.columns}:
            return df.rename_axis(level_names).reset_index()
    in_index = type(idx).__name__ == "DatetimeIndex" or str(idx.name).lower() in _TIME_NAMES
    if not names & _TIME_NAMES and in_index:
        df = df.reset_index(names="timestamp")
    return df


def _wide_closes_hint(data: Any) -> Optional[str]:
    """What to say when `data` looks like closes with one column per symbol (a time index,
    numeric columns), as ``yfinance.download(tickers)["Close"]`` gives them: not read as
    such (a frame of other numbers would pass for symbols), but one call away."""
    if type(data).__module__.split(".")[0] != "pandas" or type(data).__name__ != "DataFrame":
        return None
    idx = data.index
    timed = type(idx).__name__ == "DatetimeIndex" or str(idx.name).lower() in _TIME_NAMES
    numeric = len(data.columns) > 0 and all(k in "fiu" for k in (d.kind for d in data.dtypes))
    if not (timed and numeric):
        return None
    return (
        "closes with one column per symbol? pass them stacked, one Series indexed by "
        "(time, symbol): regime.detect(df.stack())"
    )


def _to_arrow(data: Any) -> pa.Table:
    """Any supported input as a pyarrow Table (no copy where the source is Arrow already)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    series = type(data).__name__ == "Series"
    if module == "pandas" and series:
        # a column of closes (df["Close"], a price series): times from its index, as a
        # frame's (a (time, ticker) index: one series per ticker); none: bar numbers
        frame = data.rename("close").to_frame()
        frame = frame.reset_index() if frame.index.nlevels > 1 else _tidy_pandas(frame)
        if len(frame.columns) > 1:
            return pa.Table.from_pandas(frame, preserve_index=False)
        data = {"close": frame["close"].to_numpy()}
    elif module == "polars" and series:
        data = {"close": data.to_numpy()}
    elif module == "polars":
        # a LazyFrame is collected first
        return (data.collect() if not hasattr(data, "to_arrow") and hasattr(data, "collect") else data).to_arrow()
    elif module == "pandas":
        return pa.Table.from_pandas(_tidy_pandas(data), preserve_index=False)
    elif isinstance(data, np.ndarray) and data.ndim == 1:
        data = {"close": data}
    if isinstance(data, dict):
        cols = {k: np.asarray(v) if not isinstance(v, (pa.Array, pa.ChunkedArray)) else v for k, v in data.items()}
        if "close" not in cols:
            raise BadInputError("missing column `close` (dict input needs at least close)")
        n = len(cols["close"])
        for k, v in cols.items():
            if len(v) != n:
                raise BadInputError(f"column `{k}` has {len(v)} values, `close` has {n}")
        if not any(k in cols for k in ("timestamp", "date", "time", "datetime")):
            # numpy input without time: bar i is day i after the epoch (seconds), so that a
            # series with no clock is not taken for intraday bars (whose time-of-day shape
            # and overnight gaps the engine takes out)
            cols["timestamp"] = np.arange(n, dtype=np.int64) * 86_400
        return pa.table(cols)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise BadInputError(
        f"unsupported input {type(data).__name__}: pass a pyarrow Table, a pandas or polars "
        "DataFrame, a dict of numpy arrays, or closes alone (a pandas or polars Series, a 1-D "
        "numpy array)"
    )


def _source(data: Any) -> Any:
    """A file's path as it is (the engine reads it as ``regime detect`` does), a list of
    paths as a list of them (one panel), anything else as a pyarrow Table."""
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data)
    if isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, os.PathLike)) for p in data):
        return [os.fspath(p) for p in data]
    return _to_arrow(data)


class InputNote(UserWarning):
    """How a file was read where it was not plain: rows newest first read oldest first,
    dates such as 01/02/2024 read in the order the file shows."""


def _say(notes: list) -> None:
    for n in notes:
        warnings.warn(n, InputNote, stacklevel=3)


def _out(table: pa.Table, as_polars: bool):
    if as_polars:
        import polars as pl

        return pl.from_arrow(table)
    return table


def detect(
    data: Any,
    *,
    mode: str = "causal",
    model: Optional[str] = None,
    backend: Optional[str] = None,
    skip_bad_rows: bool = False,
    confidence_threshold: float = 0.7,
    switch_margin: float = 0.05,
    as_polars: bool = False,
):
    """Regime of every bar: the same result as ``regime detect`` on the same rows.

    data: columns ``timestamp`` (or date/time), ``close`` and optionally ``symbol``,
    ``open``, ``high``, ``low``, ``volume`` (times or (time, ticker) in a pandas index are
    read too); or closes alone, a Series (times from its index; indexed by (time, ticker):
    one series per ticker, as ``df.stack()`` gives closes kept one column per ticker) or a
    1-D array (bar numbers as times, a day apart); or a file's path (str or
    os.PathLike: CSV, Parquet or Arrow IPC, read as ``regime detect`` reads it — web pages'
    downloads newest first, dates such as 01/13/2024 —, how it was read said by an
    :class:`InputNote` warning), or a list of paths detected as one panel (a file without a
    symbol column named by its file name: ``AAPL.csv`` is AAPL). mode: ``causal`` (bar t sees bars <= t) or
    ``ex-post`` (smoothed). model: a model file or directory (``<symbol>.v<N>.json``) to
    score with fixed models on ``backend`` (auto|cpu|cuda|wgpu; default ``REGIME_DEVICE``
    or auto) instead of running the adaptive pipeline.
    confidence_threshold, switch_margin: the transition manager's settings (as
    ``regime.*`` in the service's config): a new state wins at once at the threshold's
    probability, below it when it leads the current state by the margin (a larger margin:
    fewer switches, each later).
    Raises BadInputError naming row, symbol and reason for rejected rows (unless
    ``skip_bad_rows``) or the setting out of range, BackendError when a requested backend
    is unavailable.
    """
    try:
        table, notes = _regime.detect(
            _source(data), mode, model, backend, skip_bad_rows, confidence_threshold, switch_margin
        )
    except BadInputError as e:
        hint = _wide_closes_hint(data) if "missing required column `close`" in str(e) else None
        if hint is None:
            raise
        raise BadInputError(f"{e}; {hint}") from None
    _say(notes)
    return _out(table, as_polars)


def generate(
    symbols: int = 1,
    bars: int = 2000,
    seed: int = 42,
    *,
    step_secs: int = 86_400,
    start_ms: Optional[int] = None,
    tick: Optional[float] = None,
    as_polars: bool = False,
):
    """A seeded synthetic OHLCV panel with true per-bar labels (``true_regime_id``...);
    bars ``step_secs`` apart (a day by default) from ``start_ms`` (2000-01-03 by default).
    With ``tick``, every price is rounded to a multiple of it, as a market quotes it (the
    labels are the unrounded series')."""
    return _out(_regime.generate(symbols, bars, seed, step_secs, start_ms, tick), as_polars)


def evaluate(
    data: Any,
    label_column: str = "true_regime_id",
    score_last: float = 1.0,
    *,
    confidence_threshold: float = 0.7,
    switch_margin: float = 0.05,
) -> dict:
    """Accuracy of causal detection against a label column: per dimension, all 18, per
    method, confusion matrix, calibration of the reported probabilities (per bin: mean
    probability against the share right), durations and switches (as ``regime evaluate
    --json``); the transition manager's settings as in :func:`detect`."""
    report, notes = _regime.evaluate(
        _source(data), label_column, score_last, confidence_threshold, switch_margin
    )
    _say(notes)
    return json.loads(report)


def history(
    store: str = "data/regime.sqlite",
    *,
    symbol: Optional[str] = None,
    start_ms: Optional[int] = None,
    end_ms: Optional[int] = None,
    limit: int = 100_000,
    as_polars: bool = False,
):
    """Rows of ``regime_history`` from the service's store: the newest ``limit`` rows between
    ``start_ms`` and ``end_ms`` (inclusive), oldest first. ``store``: the embedded file's
    path, or a PostgreSQL connection string (``postgresql://...`` or ``host=...``).
    Raises StoreError when the store is absent or unreachable."""
    return _out(_regime.history(store, symbol, start_ms, end_ms, limit), as_polars)


def select_backend(backend: Optional[str] = None) -> tuple:
    """``(name, device, reason)`` of the backend ``backend`` (or REGIME_DEVICE / auto) selects."""
    return _regime.select_backend(backend)


def _time_of_label(label: Any) -> Any:
    """A row's index label as its time: of a (time, ticker) or (ticker, time) label, as rows
    indexed so give it, the part that is a time."""
    if isinstance(label, tuple):
        from datetime import date

        times = [x for x in label if isinstance(x, (date, np.datetime64))]
        if len(times) == 1:
            return times[0]
    return label


def _time_text(t: Any) -> str:
    """A time-of-day field as the readers' text: a ``datetime.time`` as HH:MM:SS.ffffff,
    anything else (``"09:30"``, ``930``) as its text; None as empty (a missing time)."""
    from datetime import time

    if t is None:
        return ""
    if isinstance(t, time):
        return t.strftime("%H:%M:%S.%f")
    return str(t)


def _to_ms(ts: Any, unit_ms: bool = False) -> int:
    """A bar time as ms since the epoch (UTC): a number of seconds, ms, µs or ns (told by
    its size, as the file readers tell them; ms as given when ``unit_ms``: a
    ``timestamp_ms`` key), a datetime, numpy datetime64, pandas Timestamp or an ISO string."""
    from datetime import datetime, timezone

    if isinstance(ts, (int, np.integer, float, np.floating)) and not isinstance(ts, bool):
        if unit_ms:
            ms = math.floor(ts) if math.isfinite(ts) else None
        else:
            ms = _regime.epoch_ms(ts)
        if ms is None:
            raise BadInputError(f"timestamp {ts!r}: not a time")
        return int(ms)
    if isinstance(ts, np.datetime64):
        return int(ts.astype("datetime64[ms]").astype(np.int64))
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            raise BadInputError(f"timestamp {ts!r}: not an ISO date/time") from None
    if hasattr(ts, "to_pydatetime"):
        ts = ts.to_pydatetime()
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=timezone.utc)
        return int(ts.timestamp() * 1000)
    raise BadInputError(f"timestamp {ts!r}: expected an epoch number, a datetime or an ISO string")


class Engine:
    """Streaming detection: one causal pipeline per symbol, fed bar by bar.

    >>> e = regime.Engine()
    >>> r = e.update("SPX", {"timestamp": "2024-01-02", "open": 1.0, "high": 2.0,
    ...                      "low": 0.5, "close": 1.5, "volume": 10.0})
    >>> r["regime"]  # doctest: +SKIP

    ``bar`` is a dict (``timestamp`` or ``timestamp_ms``, ``close``, optionally ``open``,
    ``high``, ``low``, ``volume``; names read as ``detect`` reads columns: any case, ``Date``,
    ``Adj Close``, ``PX_LAST``...), a pandas row (``DataFrame.iterrows()``: the time from the
    index when no column holds it — of a (date, ticker) index, the date) or named tuple
    (``itertuples()``), a tuple
    ``(timestamp, open, high, low, close, volume)``, or given as keywords. A number as the
    time is read by its size, as ``detect`` reads it: epoch seconds (``time.time()``), ms,
    µs or ns; ``timestamp_ms`` is always ms. Returns a dict
    with the regime, its dimensions, confidence and per-dimension probabilities, and
    ``duplicate``: True when the bar is the symbol's last one again (same time and values: a
    feed polled twice, a retry), answered with what it gave and learned from once. A bad bar
    raises BadInputError and changes nothing; so does another bar not after the symbol's
    last one (a forming bar updated in place, an older one: it would be learned twice).
    """

    def __init__(self, *, confidence_threshold: float = 0.7, switch_margin: float = 0.05) -> None:
        """``confidence_threshold``, ``switch_margin``: the transition manager's settings,
        as in :func:`detect`."""
        self._engine = _regime.Engine(confidence_threshold, switch_margin)
        self._fields: dict = {}

    def update(self, symbol: str, bar: Any = None, **fields: Any) -> dict:
        if bar is None:
            bar = fields
        nan = float("nan")
        names = ("open", "high", "low", "close", "volume")
        if hasattr(bar, "_asdict"):  # a named tuple, as DataFrame.itertuples() gives
            bar = bar._asdict()
        if hasattr(bar, "keys") and not isinstance(bar, (tuple, list)):
            # a dict or a pandas Series (DataFrame.iterrows()): its keys read as the file
            # readers read column names (any case, `Date`, `Adj Close`, `PX_LAST`, ...)
            keys = list(bar.keys())
            shape = tuple(str(k) for k in keys)
            where = self._fields.get(shape)
            if where is None:
                where = _regime.bar_fields(list(shape))
                if len(self._fields) < 64:
                    self._fields[shape] = where
            t_at, v_at, time_at = where
            unit_ms = "timestamp_ms" in shape
            if unit_ms:
                ts = bar["timestamp_ms"]
            elif t_at is not None:
                ts = bar[keys[t_at]]
            elif "Index" in shape:  # itertuples(): the frame's index
                ts = _time_of_label(bar["Index"])
            elif getattr(bar, "name", None) is not None and hasattr(bar, "index"):
                ts = _time_of_label(bar.name)  # iterrows(): the row's index label
            else:
                raise BadInputError(f"bar has no timestamp (or timestamp_ms); its keys: {', '.join(shape)}")
            if v_at[3] is None:
                raise BadInputError(f"bar has no close; its keys: {', '.join(shape)}")
            vals = [nan if i is None else bar[keys[i]] for i in v_at]
            names = tuple("?" if i is None else shape[i] for i in v_at)
            if time_at is not None and not unit_ms:
                # a time of day beside a date (`Date`, `Time`), as the file readers add them
                ts = _regime.date_and_time(_to_ms(ts), _time_text(bar[keys[time_at]]))
                unit_ms = True
        elif isinstance(bar, (tuple, list)) and len(bar) == 6:
            ts, *vals = bar
            unit_ms = False
        else:
            raise BadInputError(
                "bar: expected a dict, a pandas row, a named tuple or a "
                "(timestamp, open, high, low, close, volume) tuple"
            )
        nums = []
        for name, x in zip(names, vals):
            try:
                nums.append(nan if x is None else float(x))
            except (TypeError, ValueError):
                raise BadInputError(f"bar field {name!r}: {x!r} is not a number") from None
        o, h, l, c, v = nums
        return self._engine.update(symbol, _to_ms(ts, unit_ms), c, o, h, l, v)

    def symbols(self) -> list:
        """Symbols seen so far."""
        return self._engine.symbols()

    # Pickling (``pickle``, ``copy.deepcopy``, ``multiprocessing``): every symbol's whole
    # pipeline, so an unpickled engine goes on exactly where this one is. Only an
    # installation whose detection computes alike reads it back (the state's layout is not
    # self-describing): any copy or rebuild of the same code, on any machine.
    def __getstate__(self) -> dict:
        return {"build": _build_id(), "engine": self._engine.dump()}

    def __setstate__(self, state: dict) -> None:
        why = _regime.identity_mismatch(str(state.get("build")))
        if why is not None:
            raise BadInputError(
                f"an Engine pickled by another build of regime: {why}; feed the bars again instead"
            )
        self._engine = _regime.Engine.load(state["engine"])
        self._fields = {}


def _build_id() -> str:
    """The identity a pickled Engine carries: the state's format and layout and what the
    detection computes (not the installed file's: a reinstall of the same code keeps it)."""
    return _regime.state_identity()
