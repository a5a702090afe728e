"""pytest suite of the Python bindings (run by scripts/test.sh after `pip install ./regime-py`).

The `regime` binary is found through REGIME_BIN, else $CARGO_TARGET_DIR/release/regime,
else target/release/regime; tests that need it skip with the reason when it is absent.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute
import pyarrow.csv as pacsv
import pytest

import regime
from conftest import ROOT, regime_bin


@pytest.fixture(scope="module")
def panel() -> pa.Table:
    return regime.generate(symbols=4, bars=1500, seed=21)


def cli_detect(tmp_path: Path, bars: pa.Table, *args: str) -> tuple[Path, pa.Table]:
    """`regime detect` on `bars` written as CSV (skips when the binary is not built): the
    input file and the labels."""
    b = regime_bin()
    if b is None:
        pytest.skip("regime binary not built (cargo build --release -p regime-server)")
    src = tmp_path / "bars.csv"
    pacsv.write_csv(bars, src)
    out = tmp_path / "cli.csv"
    subprocess.run([b, "detect", "--input", src, "--output", out, *args], check=True, capture_output=True)
    return src, pacsv.read_csv(out)


def test_detect_equals_the_cli_on_the_same_file(tmp_path, panel):
    src, cli = cli_detect(tmp_path, panel)
    py = regime.detect(pacsv.read_csv(src))
    assert py.num_rows == cli.num_rows == panel.num_rows
    assert py.column("regime_id").to_pylist() == cli.column("regime_id").to_pylist()
    assert py.column("symbol").to_pylist() == cli.column("symbol").to_pylist()
    # the CSV holds 6 decimals
    for c in ["confidence", "p_vol_low", "p_trend_up", "p_trending"]:
        a = np.asarray(py.column(c))
        e = np.asarray(cli.column(c))
        assert np.max(np.abs(a - e)) <= 5e-7, c


def test_ex_post_equals_the_cli_and_reads_the_truth_better(tmp_path, panel):
    _, cli = cli_detect(tmp_path, panel, "--mode", "ex-post")
    smooth = regime.detect(panel, mode="ex-post")
    assert smooth.column("regime_id").to_pylist() == cli.column("regime_id").to_pylist()
    assert smooth.column("symbol").to_pylist() == panel.column("symbol").to_pylist()
    # hindsight reads the generator's volatility states at least as well as the causal pass
    causal = regime.detect(panel)
    truth = panel.column("true_volatility").to_pylist()
    code = {"low": 0, "medium": 1, "high": 2}
    right = lambda t: np.mean([code[a] == b for a, b in zip(t.column("volatility").to_pylist(), truth)])
    assert right(smooth) >= right(causal) > 0.8, (right(smooth), right(causal))


def test_a_files_path_is_read_as_the_cli_reads_it(tmp_path, panel):
    import pyarrow.parquet as pq

    # Parquet and CSV by path: the table's labels, evaluate's report too
    base = regime.detect(panel)
    pq.write_table(panel, tmp_path / "bars.parquet")
    for p in [str(tmp_path / "bars.parquet"), tmp_path / "bars.parquet"]:
        assert regime.detect(p).column("regime_id").to_pylist() == base.column("regime_id").to_pylist()
    assert regime.evaluate(tmp_path / "bars.parquet", score_last=0.3) == regime.evaluate(panel, score_last=0.3)
    # a web page's download (newest first, month-first dates, $ prices): read, and how is said
    one = regime.generate(symbols=1, bars=300, seed=5).to_pandas()
    lines = ["Date,Close/Last,Volume,Open,High,Low"]
    for r in one.iloc[::-1].itertuples():
        lines.append(
            f"{r.timestamp:%m/%d/%Y},${r.close:.4f},{int(r.volume)},${r.open:.4f},${r.high:.4f},${r.low:.4f}"
        )
    (tmp_path / "nasdaq.csv").write_text("\n".join(lines) + "\n")
    plain = one[["timestamp", "open", "high", "low", "close", "volume"]].copy()
    plain[["open", "high", "low", "close"]] = plain[["open", "high", "low", "close"]].round(4)
    plain["volume"] = plain["volume"].astype("int64")
    with pytest.warns(regime.InputNote) as notes:
        got = regime.detect(tmp_path / "nasdaq.csv")
    said = " | ".join(str(n.message) for n in notes)
    assert "newest first" in said and "month first" in said, said
    assert got.column("regime_id").to_pylist() == regime.detect(plain).column("regime_id").to_pylist()
    # a bad row: the file and the row named
    (tmp_path / "bad.csv").write_text("timestamp,close\n2024-01-02,1\n2024-01-03,abc\n")
    with pytest.raises(regime.BadInputError, match=r"bad.csv: 1 bad row.*row 2: cannot parse close"):
        regime.detect(tmp_path / "bad.csv")
    with pytest.raises(regime.BadInputError, match="nope.csv"):
        regime.detect(tmp_path / "nope.csv")
    # damaged Parquet / Arrow files that arrow-rs panics or aborts on: a BadInputError (a
    # PanicException is a BaseException, past a quant's `except Exception`; an abort ends
    # the interpreter)
    for bad in sorted((ROOT / "regime-server" / "tests" / "data" / "corrupt").iterdir()):
        with pytest.raises(regime.BadInputError, match=f"{bad.name}: corrupt"):
            regime.detect(bad)
    # a list of per-ticker files: one panel, each file's bars named by its file name
    paths = []
    for sym in ["SYN000", "SYN001"]:
        part = panel.filter(pa.compute.equal(panel.column("symbol"), sym)).drop_columns(["symbol"])
        pq.write_table(part, tmp_path / f"{sym}.parquet")
        paths.append(tmp_path / f"{sym}.parquet")
    two = panel.filter(pa.compute.is_in(panel.column("symbol"), pa.array(["SYN000", "SYN001"])))
    got = regime.detect(paths)
    want = regime.detect(two)
    assert got.column("symbol").to_pylist() == want.column("symbol").to_pylist()
    assert got.column("regime_id").to_pylist() == want.column("regime_id").to_pylist()
    with pytest.raises(regime.BadInputError, match="symbol `SYN000` is in both"):
        regime.detect([paths[0], str(paths[0])])


def test_every_input_kind_gives_the_same_labels(panel):
    import pandas as pd
    import polars as pl

    base = regime.detect(panel).column("regime_id").to_pylist()
    assert regime.detect(panel.to_pandas()).column("regime_id").to_pylist() == base
    assert regime.detect(pl.from_arrow(panel)).column("regime_id").to_pylist() == base
    assert regime.detect(panel.to_batches()[0] if panel.num_rows == len(panel.to_batches()[0]) else panel).column(
        "regime_id"
    ).to_pylist() == base
    out = regime.detect(panel, as_polars=True)
    assert isinstance(out, pl.DataFrame) and out["regime_id"].to_list() == base
    assert isinstance(panel.to_pandas(), pd.DataFrame)


def test_pandas_shapes_from_quant_tools(panel):
    """A DatetimeIndex, and yfinance's (field, ticker) columns for one and for several
    tickers, give the labels of the same bars in long form."""
    import pandas as pd

    long = panel.to_pandas()
    base = regime.detect(panel)  # a panel: the instruments pool what they learn

    def ids(table, s):
        return table.filter(pa.compute.equal(table.column("symbol"), s)).column("regime_id").to_pylist()

    alone = regime.detect(long[long.symbol == "SYN000"]).column("regime_id").to_pylist()
    one = long[long.symbol == "SYN000"].drop(columns="symbol").set_index("timestamp")
    one.index = pd.DatetimeIndex(one.index)
    got = regime.detect(one)
    assert got.column("regime_id").to_pylist() == alone
    ts = regime.detect(one.rename_axis(None)).column("timestamp")
    assert ts.to_pylist() == got.column("timestamp").to_pylist()

    fields = ["open", "high", "low", "close", "volume"]
    wide = long.pivot(index="timestamp", columns="symbol", values=fields)
    wide.columns = wide.columns.set_names(["Price", "Ticker"])
    wide = wide.rename(columns=str.capitalize, level=0)
    got = regime.detect(wide)
    for s in long.symbol.unique():
        assert ids(got, s) == ids(base, s), s
    single = wide.loc[:, (slice(None), ["SYN001"])]
    alone = regime.detect(long[long.symbol == "SYN001"]).column("regime_id").to_pylist()
    assert regime.detect(single).column("regime_id").to_pylist() == alone
    # a ticker that starts later: its first rows are absent, not bad rows
    late = wide.columns.get_level_values(1)[-1]
    wide.loc[wide.index[:100], (slice(None), late)] = float("nan")
    got = regime.detect(wide)
    assert len(ids(got, late)) == len(ids(base, late)) - 100


def test_panels_indexed_by_time_and_ticker_and_lazy_frames(panel):
    """Rows indexed by (ticker, time) or (time, ticker), named or not, and a polars LazyFrame
    give the labels of the same bars in long form; closes with one column per ticker are not
    guessed at, and the error says how to pass them."""
    import pandas as pd

    long = panel.to_pandas()
    long["timestamp"] = pd.DatetimeIndex(long["timestamp"])
    base = regime.detect(panel)
    fields = ["open", "high", "low", "close", "volume"]
    for order in (["symbol", "timestamp"], ["timestamp", "symbol"]):
        got = regime.detect(long.set_index(order)[fields])
        assert got.equals(base), order
        unnamed = long.set_index(order)[fields].rename_axis([None, None])
        assert regime.detect(unnamed).equals(base), order
    pl = pytest.importorskip("polars")
    assert regime.detect(pl.from_arrow(panel).lazy()).equals(base)
    wide = long.pivot(index="timestamp", columns="symbol", values="close")
    with pytest.raises(regime.BadInputError, match=r"missing required column `close`.*df\.stack\(\)"):
        regime.detect(wide)
    closes = regime.detect(long[["timestamp", "symbol", "close"]])
    stacked = regime.detect(wide.stack())
    assert stacked.sort_by([("symbol", "ascending"), ("timestamp", "ascending")]).equals(closes)


def test_numpy_arrays_without_timestamps():
    t = regime.generate(symbols=1, bars=800, seed=5)
    arrays = {c: t.column(c).to_numpy() for c in ["open", "high", "low", "close", "volume"]}
    out = regime.detect(arrays)
    assert out.num_rows == 800
    ref = regime.detect(t)
    assert out.column("regime_id").to_pylist() == ref.column("regime_id").to_pylist()


def test_closes_alone_as_a_series_or_array():
    """A column of closes (``df["Close"]``, a polars Series, a 1-D array) is a close-only
    series: times from a DatetimeIndex, else bar numbers as a dict of arrays gets."""
    import pandas as pd

    t = regime.generate(symbols=1, bars=700, seed=98304)
    closes = t.column("close").to_numpy()
    times = pd.DatetimeIndex(t.column("timestamp").to_pandas(), name="Date")
    ref = regime.detect({"timestamp": t.column("timestamp"), "close": closes})
    ref_ids = ref.column("regime_id").to_pylist()
    s = pd.Series(closes, index=times, name="Close")
    got = regime.detect(s)
    assert got.column("regime_id").to_pylist() == ref_ids
    assert got.column("timestamp").to_pylist() == ref.column("timestamp").to_pylist()
    # an unnamed DatetimeIndex too
    got = regime.detect(pd.Series(closes, index=times.rename(None)))
    assert got.column("timestamp").to_pylist() == ref.column("timestamp").to_pylist()
    # no times: the bars in order, as for a dict of numpy arrays
    by_number = regime.detect({"close": closes}).column("regime_id").to_pylist()
    assert regime.detect(pd.Series(closes)).column("regime_id").to_pylist() == by_number
    assert regime.detect(closes).column("regime_id").to_pylist() == by_number
    import polars as pl

    assert regime.detect(pl.Series("close", closes)).column("regime_id").to_pylist() == by_number
    # a (time, ticker) index, as df.stack() gives: one series per ticker
    two = regime.generate(symbols=2, bars=300, seed=98305).to_pandas()
    stacked = two.set_index(["timestamp", "symbol"])["close"]
    got = regime.detect(stacked)
    assert sorted(set(got.column("symbol").to_pylist())) == ["SYN000", "SYN001"]
    assert got.num_rows == 600
    with pytest.raises(regime.BadInputError, match="1-D numpy array"):
        regime.detect(closes.reshape(-1, 1))


def test_bad_rows_name_row_and_reason():
    t = pa.table(
        {
            "timestamp": pa.array([1, 2, 3, 4], pa.int64()),
            "close": [100.0, -1.0, 101.0, 102.0],
            "high": [101.0, 101.0, 100.0, 103.0],
            "low": [99.0, 99.0, 102.0, 101.0],
            "open": [100.0, 100.0, 101.0, 102.0],
            "volume": [1.0, 1.0, 1.0, 1.0],
        }
    )
    with pytest.raises(regime.BadInputError) as e:
        regime.detect(t)
    msg = str(e.value)
    assert "2 bad rows" in msg and "row 2" in msg and "row 3" in msg, msg
    assert regime.detect(t, skip_bad_rows=True).num_rows == 2
    with pytest.raises(regime.BadInputError, match="close"):
        regime.detect(pa.table({"timestamp": [1, 2], "price_typo": [1.0, 2.0]}))
    with pytest.raises(regime.BadInputError, match="mode"):
        regime.detect(t, mode="sideways", skip_bad_rows=True)
    assert issubclass(regime.BadInputError, regime.RegimeError)
    # rows newest first, as many vendors' downloads come: a hint says so
    desc = regime.generate(symbols=1, bars=50, seed=3).to_pandas().iloc[::-1]
    with pytest.raises(regime.BadInputError, match="SYN000 run newest first") as e:
        regime.detect(desc)
    # times as dates, not milliseconds
    assert "is not after the previous bar's 20" in str(e.value), str(e.value)
    with pytest.raises(regime.BadInputError, match="the rows of the table run newest first"):
        regime.detect(desc.drop(columns=["symbol"]))
    # a spreadsheet's month-first dates: the forms that are read; no "()" for a table with
    # no symbol column
    us = pa.table({"date": ["01/02/2020", "01/03/2020"], "close": [1.0, 2.0]})
    with pytest.raises(regime.BadInputError, match="2 timestamps were not read; timestamps are read as YYYY-MM-DD") as e:
        regime.detect(us)
    assert "row 1: cannot parse timestamp" in str(e.value), str(e.value)
    # two columns read as one (a frame joined with its own lower-cased copy): both named
    both = pa.Table.from_arrays(
        [pa.array(["2020-01-02", "2020-01-03"]), pa.array([1.0, 2.0]), pa.array([3.0, 4.0])],
        names=["date", "Close", "close"],
    )
    with pytest.raises(regime.BadInputError, match=r"column `Close` appears twice \(columns 2 and 3\)"):
        regime.detect(both)
    # prices kept as text (a pandas object column, as a scraped table gives them) are read as
    # CSV fields are; a field that is no number is its row's error
    g = regime.generate(symbols=1, bars=40, seed=5).to_pandas()
    as_text = g.assign(close=g["close"].map(lambda x: f"{x:,}"), volume=g["volume"].astype(str))
    assert regime.detect(as_text).equals(regime.detect(g))
    as_text.loc[7, "close"] = "1O2.5"
    with pytest.raises(regime.BadInputError, match=r'row 8 \(SYN000\): cannot parse close from "1O2.5"'):
        regime.detect(as_text)
    assert regime.detect(as_text, skip_bad_rows=True).num_rows == 39
    # generated bars past the year 9999 (ten million days from 2000) are refused up front
    with pytest.raises(regime.BadInputError, match="run outside the years 1-9999"):
        regime.generate(symbols=1, bars=10_000_000)
    with pytest.raises(regime.BadInputError, match="step must be >= 1 second"):
        regime.generate(step_secs=0)


def test_streaming_engine_equals_batch(panel):
    one = panel.filter(pa.compute.equal(panel.column("symbol"), "SYN000"))
    batch = regime.detect(one).column("regime_id").to_pylist()
    e = regime.Engine()
    ts = one.column("timestamp").cast(pa.int64()).to_pylist()
    cols = {c: one.column(c).to_pylist() for c in ["open", "high", "low", "close", "volume"]}
    got = []
    for i in range(one.num_rows):
        bar = {k: cols[k][i] for k in cols}
        bar["timestamp_ms"] = ts[i]
        # the three spellings of a bar give the same answer
        if i % 3 == 0:
            r = e.update("SYN000", bar)
        elif i % 3 == 1:
            r = e.update("SYN000", (ts[i], cols["open"][i], cols["high"][i], cols["low"][i], cols["close"][i], cols["volume"][i]))
        else:
            r = e.update("SYN000", **bar)
        got.append(r["regime_id"])
        if i == 700:
            # the same bar again (a feed polled twice, a retry): what it gave, flagged, and
            # nothing learned — as the service answers a resend
            again = e.update("SYN000", bar)
            assert again["duplicate"] and not r["duplicate"]
            assert {k: v for k, v in again.items() if k != "duplicate"} == {
                k: v for k, v in r.items() if k != "duplicate"
            }
            # a forming bar updated in place (same time, other values) and an older one are
            # refused, as detect and the service refuse them, and change nothing
            other = bar["low"] if bar["close"] != bar["low"] else bar["high"]
            with pytest.raises(regime.BadInputError, match="not after the previous bar's"):
                e.update("SYN000", dict(bar, close=other))
            with pytest.raises(regime.BadInputError, match="timestamp_not_increasing|not after"):
                e.update("SYN000", (ts[i] - 86_400_000, 1.0, 1.0, 1.0, 1.0, 1.0))
    assert got == batch
    assert e.symbols() == ["SYN000"]
    with pytest.raises(regime.BadInputError, match="close"):
        e.update("SYN000", {"timestamp_ms": ts[-1] + 1, "close": -5.0})
    with pytest.raises(regime.BadInputError, match="timestamp"):
        e.update("SYN000", {"close": 5.0})
    # a symbol the service would not take starts no series (an empty one was a series "")
    with pytest.raises(regime.BadInputError, match="symbol is empty"):
        e.update("", {"timestamp_ms": ts[-1] + 1, "close": 5.0})
    with pytest.raises(regime.BadInputError, match="symbol"):
        e.update("A\nB", {"timestamp_ms": ts[-1] + 1, "close": 5.0})
    assert e.symbols() == ["SYN000"]
    r = regime.Engine().update("X", {"timestamp": "2024-01-02T00:00:00Z", "close": 10.0})
    assert r["timestamp_ms"] == 1704153600000 and r["warming_up"]
    # a number as the time: by its size (time.time()'s seconds, ms, µs, ns), as detect reads
    # it; timestamp_ms is ms whatever its size
    e = regime.Engine()
    got = [
        e.update("N", (t, 1.0, 1.0, 1.0, 1.0, 1.0))["timestamp_ms"]
        for t in (1704153600.25, 1704153601000, 1704153602000000, 1704153603000000000)
    ]
    assert got == [1704153600250, 1704153601000, 1704153602000, 1704153603000]
    assert e.update("N", {"timestamp_ms": 1704153604000.5, "close": 1.0})["timestamp_ms"] == 1704153604000
    with pytest.raises(regime.BadInputError, match="not a time"):
        e.update("N", (float("nan"), 1.0, 1.0, 1.0, 1.0, 1.0))


def test_streaming_takes_pandas_rows_as_quants_iterate_them(panel):
    pd = pytest.importorskip("pandas")
    one = panel.filter(pa.compute.equal(panel.column("symbol"), "SYN000")).slice(0, 400)
    batch = regime.detect(one).column("regime_id").to_pylist()
    # a yfinance-shaped frame: capitalised columns, `Adj Close`, the dates in the index
    df = one.select(["timestamp", "open", "high", "low", "close", "volume"]).to_pandas()
    df = df.rename(columns={"open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"})
    df["Adj Close"] = df["Close"] * np.linspace(1.0, 3.0, len(df))  # read only without a Close
    df = df.set_index("timestamp").rename_axis("Date")
    kinds = {
        "iterrows": [r for _, r in df.iterrows()],
        "itertuples": list(df.itertuples()),
        "records": df.reset_index().to_dict("records"),
    }
    for kind, rows in kinds.items():
        e = regime.Engine()
        got = [e.update("SYN000", r)["regime_id"] for r in rows]
        assert got == batch, kind
    # rows of a frame indexed by (date, ticker) or (ticker, date): the label's time part
    for order in (["Date", "Ticker"], ["Ticker", "Date"]):
        panel_rows = df.assign(Ticker="SYN000").reset_index().set_index(order)
        for kind, rows in {"iterrows": [r for _, r in panel_rows.iterrows()], "itertuples": list(panel_rows.itertuples())}.items():
            e = regime.Engine()
            assert [e.update("SYN000", r)["regime_id"] for r in rows] == batch, (order, kind)
    with pytest.raises(regime.BadInputError, match="no close; its keys: Date, Open"):
        regime.Engine().update("X", {"Date": "2024-01-02", "Open": 1.0})
    with pytest.raises(regime.BadInputError, match="'Close': 'n/a' is not a number"):
        regime.Engine().update("X", {"Date": "2024-01-02", "Close": "n/a"})
    with pytest.raises(regime.BadInputError, match="two fields of one name: 'Close' and 'close'"):
        regime.Engine().update("X", {"Date": "2024-01-02", "Close": 1.0, "close": 2.0})
    # a time of day beside the date (an intraday export's Date, Time), as the files read it:
    # text, a datetime.time or HHMM digits; the same minutes again are the same bars
    import datetime

    e = regime.Engine()
    for t in ["09:30", datetime.time(9, 31), 932]:
        assert not e.update("X", {"Date": "2024-01-02", "Time": t, "Close": 1.0})["duplicate"]
    assert e.update("X", {"Date": "2024-01-02", "Time": "09:32", "Close": 1.0})["duplicate"]
    with pytest.raises(regime.BadInputError, match='bar field time: cannot parse time from "9h33"'):
        e.update("X", {"Date": "2024-01-02", "Time": "9h33", "Close": 1.0})
    table = pa.table({"Date": ["2024-01-02", "2024-01-02"], "Time": ["09:30", "09:31"], "Close": [1.0, 1.1]})
    got = regime.detect(table).column("timestamp").to_pylist()
    assert [t.strftime("%H:%M") for t in got] == ["09:30", "09:31"], got


def test_a_pickled_engine_goes_on_where_it_stopped(panel):
    import copy
    import pickle

    one = panel.filter(pa.compute.equal(panel.column("symbol"), "SYN001"))
    ts = one.column("timestamp").cast(pa.int64()).to_pylist()
    cols = {c: one.column(c).to_pylist() for c in ["open", "high", "low", "close", "volume"]}
    bars = [dict({k: cols[k][i] for k in cols}, timestamp_ms=ts[i]) for i in range(one.num_rows)]
    whole = regime.Engine()
    expected = [whole.update("A", b) for b in bars]
    e = regime.Engine()
    for b in bars[:1000]:
        e.update("A", b)
    blob = pickle.dumps(e)
    for restored in (pickle.loads(blob), copy.deepcopy(e)):
        got = [restored.update("A", b) for b in bars[1000:]]
        assert got == expected[1000:], "labels, confidences and probabilities as without the pickle"
        assert restored.symbols() == ["A"]
    # a fresh engine on the same bars differs: the pickle carried the learned state
    fresh = regime.Engine()
    assert [fresh.update("A", b)["confidence"] for b in bars[1000:1010]] != [r["confidence"] for r in expected[1000:1010]]
    state = e.__getstate__()
    with pytest.raises(regime.BadInputError, match="another build"):
        regime.Engine.__new__(regime.Engine).__setstate__(dict(state, build="0.0.0 1 2"))
    # the identity is what the detection computes, not the installed file's: a reinstall of
    # the same code (a new modification time) still reads the pickle
    so = regime._regime.__file__
    st = os.stat(so)
    os.utime(so, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        restored = pickle.loads(blob)
        got = [restored.update("A", b) for b in bars[1000:1010]]
        assert got == expected[1000:1010]
    finally:
        os.utime(so, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert state["build"].startswith("state-v1 layout "), state["build"]
    with pytest.raises(regime.BadInputError, match="engine state"):
        regime.Engine.__new__(regime.Engine).__setstate__(dict(state, engine=state["engine"][:-7]))
    # one bit of one learned number changed (a pickle kept on disk): refused, not loaded as
    # a silently different engine
    flipped = bytearray(state["engine"])
    flipped[len(flipped) // 2] ^= 0x10
    with pytest.raises(regime.BadInputError, match="checksum does not match"):
        regime.Engine.__new__(regime.Engine).__setstate__(dict(state, engine=bytes(flipped)))


def _changes(ids: list) -> int:
    return sum(a != b for a, b in zip(ids, ids[1:]))


def test_the_transition_managers_settings(tmp_path, panel):
    one = panel.filter(pa.compute.equal(panel.column("symbol"), "SYN001"))
    default = regime.detect(one).column("regime_id").to_pylist()
    calm = regime.detect(one, switch_margin=0.3).column("regime_id").to_pylist()
    assert _changes(calm) < _changes(default)
    # the CLI with the same `regime` settings in a config file gives the same labels
    b = regime_bin()
    if b is not None:
        src, out, cfg = tmp_path / "bars.csv", tmp_path / "out.csv", tmp_path / "c.yaml"
        pacsv.write_csv(one, src)
        cfg.write_text("regime: {switch_margin: 0.3}\n")
        subprocess.run([b, "detect", "--input", src, "--output", out, "--config", cfg], check=True, capture_output=True)
        assert pacsv.read_csv(out).column("regime_id").to_pylist() == calm
    # streaming with the same settings equals batch
    e = regime.Engine(switch_margin=0.3)
    ts = one.column("timestamp").cast(pa.int64()).to_pylist()
    cols = {c: one.column(c).to_pylist() for c in ["open", "high", "low", "close", "volume"]}
    got = [e.update("SYN001", timestamp_ms=ts[i], **{k: cols[k][i] for k in cols})["regime_id"] for i in range(one.num_rows)]
    assert got == calm
    with pytest.raises(regime.BadInputError, match="regime.switch_margin"):
        regime.detect(one, switch_margin=1.5)
    with pytest.raises(regime.BadInputError, match="regime.confidence_threshold"):
        regime.Engine(confidence_threshold=0.2)
    # evaluate counts the switches of the labels it scores
    assert regime.evaluate(one, switch_margin=0.3)["switches"]["detected"] < regime.evaluate(one)["switches"]["detected"]


def test_model_scoring_on_cpu_and_wgpu_agree(tmp_path, panel):
    b = regime_bin()
    if b is None:
        pytest.skip("regime binary not built")
    src = tmp_path / "bars.csv"
    pacsv.write_csv(panel, src)
    models = tmp_path / "models"
    subprocess.run(
        [b, "detect", "--input", src, "--output", tmp_path / "o.csv", "--models-dir", models],
        check=True,
        capture_output=True,
    )
    cpu = regime.detect(panel, model=str(models), backend="cpu")
    assert cpu.num_rows == panel.num_rows
    try:
        gpu = regime.detect(panel, model=str(models), backend="wgpu")
    except regime.BackendError as e:
        if os.environ.get("REGIME_REQUIRE_WGPU") == "1":
            raise
        pytest.skip(f"wgpu unavailable: {e}")
    same = np.mean(np.asarray(gpu.column("regime_id")) == np.asarray(cpu.column("regime_id")))
    assert same >= 0.999
    for c in ["p_vol_low", "p_vol_medium", "p_vol_high", "p_trend_down", "p_trend_up", "p_trending"]:
        assert np.max(np.abs(np.asarray(gpu.column(c)) - np.asarray(cpu.column(c)))) < 1e-4
    with pytest.raises(regime.BackendError, match="adaptive pipeline runs on the CPU"):
        regime.detect(panel, backend="cuda")
    with pytest.raises(regime.BadInputError, match="no model for symbol"):
        one_model_dir = tmp_path / "few"
        one_model_dir.mkdir()
        first = sorted(models.iterdir())[0]
        (one_model_dir / first.name).write_text(first.read_text())
        regime.detect(panel, model=str(one_model_dir), backend="cpu")


def test_a_headless_gpu_probe_prints_no_foreign_errors():
    """On a machine with no display, looking for a wgpu adapter from Python prints nothing
    that is not ours (as the `regime` binary: Mesa's device-select layer asked libwayland for
    a display, which printed ``error: XDG_RUNTIME_DIR is invalid or not set in the
    environment.`` twice per call)."""
    import sys

    gone = ("DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "NODEVICE_SELECT", "VK_LOADER_LAYERS_DISABLE")
    env = {k: v for k, v in os.environ.items() if k not in gone}
    code = (
        "import regime\n"
        "try:\n"
        "    print(regime.select_backend('wgpu')[0])\n"
        "except regime.BackendError as e:\n"
        "    print('unavailable:', e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    if r.stdout.startswith("unavailable"):
        if os.environ.get("REGIME_REQUIRE_WGPU") == "1":
            raise AssertionError(f"REGIME_REQUIRE_WGPU=1 but wgpu is unavailable: {r.stdout}")
        pytest.skip(f"no wgpu adapter to probe: {r.stdout.strip()}")
    assert r.stdout.strip() == "wgpu"
    assert r.stderr == "", r.stderr


def test_evaluate_reports_accuracy(panel):
    r = regime.evaluate(panel, score_last=0.3)
    for dim in ["volatility", "trend", "structure", "regime"]:
        assert 0.0 <= r["accuracy"]["final"][dim] <= 1.0
    assert r["accuracy"]["final"]["volatility"] > 0.6
    # the reported probabilities, binned: every scored bar counted once per dimension
    for dim in ["volatility", "trend", "structure", "regime"]:
        bins = r["calibration"][dim]
        assert sum(b["bars"] for b in bins) == r["bars_scored"]
        assert all(b["from"] <= b["mean_probability"] <= b["to"] for b in bins)
        assert all(0.0 <= b["share_right"] <= 1.0 for b in bins)


def test_gil_is_released_during_detection():
    t = regime.generate(symbols=8, bars=20000, seed=9)
    ticks = 0
    stop = False

    def count():
        nonlocal ticks
        while not stop:
            ticks += 1
            time.sleep(0)

    th = threading.Thread(target=count)
    th.start()
    time.sleep(0.05)
    before = ticks
    t0 = time.perf_counter()
    regime.detect(t)
    dt = time.perf_counter() - t0
    during = ticks - before
    stop = True
    th.join()
    # with the GIL held for the whole call the counter would barely move
    assert during > 1000, (during, dt)


def test_history_reads_the_services_embedded_store(tmp_path, served_store):
    with pytest.raises(regime.StoreError, match="no such store"):
        regime.history(str(tmp_path / "absent.sqlite"))
    _, store, _, n = served_store
    h = regime.history(str(store), limit=10_000_000)
    assert h.num_rows == n, (h.num_rows, n)
    one = regime.history(str(store), symbol="SYN001", limit=50, as_polars=True)
    assert one.height == 50 and set(one["symbol"].to_list()) == {"SYN001"}
    ts = one["timestamp"].to_list()
    assert ts == sorted(ts)


def test_history_reads_postgresql(served_pg):
    url, n = served_pg
    h = regime.history(url, limit=10_000_000)
    assert h.num_rows == n
    one = regime.history(url, symbol="SYN000", limit=10, as_polars=True)
    assert one.height == 10 and set(one["symbol"].to_list()) == {"SYN000"}
    with pytest.raises(regime.StoreError):
        regime.history("host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=2")


def test_generate_rounds_to_a_tick_and_keeps_the_labels():
    exact = regime.generate(symbols=1, bars=400, seed=9).to_pandas()
    tick = regime.generate(symbols=1, bars=400, seed=9, tick=0.25).to_pandas()
    prices = ["open", "high", "low", "close"]
    assert ((tick[prices] * 4 - (tick[prices] * 4).round()).abs() < 1e-9).all().all()
    assert ((tick[prices] - exact[prices]).abs() <= 0.125 + 1e-9).all().all()
    assert (tick["true_regime_id"] == exact["true_regime_id"]).all()
    with pytest.raises(regime.BadInputError, match="tick must be a finite price > 0"):
        regime.generate(bars=10, tick=0.0)


def test_an_unadjusted_split_is_read_and_said():
    # a 4:1 split as unadjusted data gives it (prices a quarter, volume four times, from one
    # bar on): the note says what was read, and the labels are the adjusted series'
    one = regime.generate(symbols=1, bars=2500, seed=41).to_pandas()
    bars = one[["timestamp", "open", "high", "low", "close", "volume"]]
    split = bars.copy()
    split.loc[2000:, ["open", "high", "low", "close"]] /= 4
    split.loc[2000:, "volume"] *= 4
    with pytest.warns(regime.InputNote, match="an unadjusted 4:1 split read"):
        got = regime.detect(split)
    assert got.column("regime_id").to_pylist() == regime.detect(bars).column("regime_id").to_pylist()
