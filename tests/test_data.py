"""The Data stage on real bytes: detection, cleaning, the bundled samples, and every bad input of issue A."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.data import SAMPLES, CleanOptions, CsvOptions, check_upload_size, inspect_csv, load_dataset
from core.dataset import ROW_INDEX
from core.errors import StudioError


def hourly(n: int = 48, start: str = "2024-01-01", fmt: str = "%Y-%m-%d %H:%M:%S", freq: str = "h") -> list[str]:
    return list(pd.date_range(start, periods=n, freq=freq).strftime(fmt))


def csv_bytes(rows: list[list], header: list[str] | None = None, sep: str = ",", encoding: str = "utf-8") -> bytes:
    lines = ([sep.join(header)] if header else []) + [sep.join(str(v) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode(encoding)


def simple(n: int = 48, **kw) -> bytes:
    return csv_bytes([[t, i, 2 * i + 0.5] for i, t in enumerate(hourly(n))], ["time", "a", "b"], **kw)


def assert_contract(ds) -> None:
    """What every later stage relies on: sorted unique index, float64 columns only."""
    idx = ds.frame.index
    assert idx.is_monotonic_increasing and idx.is_unique
    assert all(dt == np.float64 for dt in ds.frame.dtypes)
    assert len(ds.fingerprint) == 64
    if ds.has_time:
        assert idx.name == ds.time_col and idx.tz is None
    else:
        assert idx.name == "step" and isinstance(idx, pd.RangeIndex)


def problem_text(ds) -> str:
    r = ds.report
    return " ".join(r["problems"] + r["notes"] + r["blocking"])


# ------------------------------------------------------------------------------------------- samples


def test_weather_sample_is_hourly_with_seven_features_and_text_summary_excluded():
    ds = load_dataset(SAMPLES["weather"])
    assert_contract(ds)
    assert ds.freq == "h" and ds.time_col == "time"
    assert ds.numeric_columns == ["temperature", "humidity", "pressure", "precipitation", "uv_index",
                                  "wind_speed", "wind_direction"]
    assert "summary" in ds.excluded and "text" in ds.excluded["summary"]
    assert len(ds.frame) >= 365 * 24 and not ds.frame.isna().any().any()
    # mixed +0100/+0200 offsets converted to UTC leave a perfectly regular series
    assert ds.report["timezone"] == "UTC"
    assert "+0100" in problem_text(ds) and "+0200" in problem_text(ds)
    assert ds.report["cleaning"]["filled"] > 0  # the generator's sensor dropouts


def test_co2_sample_weekly_with_real_gaps_filled():
    ds = load_dataset(SAMPLES["co2"])
    assert_contract(ds)
    assert ds.freq == "W-SAT"
    gaps = ds.report["gaps"]
    assert gaps["count"] > 5 and gaps["missing_steps"] > 20
    assert len(ds.frame) == ds.report["rows_read"] + gaps["missing_steps"]
    assert not ds.frame.isna().any().any()
    assert pd.infer_freq(ds.frame.index) == "W-SAT"


def test_inspect_json_shape():
    out = inspect_csv(SAMPLES["weather"])
    for key in ("time_column", "frequency", "delimiter", "decimal", "encoding", "columns", "gaps",
                "duplicates", "problems"):
        assert key in out
    assert out["time_column"] == "time" and out["frequency"] == "h"
    assert {c["name"]: c["type"] for c in out["columns"]}["summary"] == "text"
    import json

    json.dumps(out)  # JSON-safe throughout


# ------------------------------------------------------------------------------------------ detection


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiters(sep):
    ds = load_dataset(simple(sep=sep))
    assert ds.report["delimiter"] == sep
    assert ds.numeric_columns == ["a", "b"] and ds.freq == "h"


def test_semicolon_with_decimal_comma():
    rows = [[t, f"{i},5", f"-{i},25"] for i, t in enumerate(hourly(30))]
    ds = load_dataset(csv_bytes(rows, ["Zeit", "Temp", "Druck"], sep=";"))
    assert ds.report["decimal"] == "," and ds.report["delimiter"] == ";"
    assert ds.frame["Temp"].iloc[3] == pytest.approx(3.5)
    assert ds.frame["Druck"].iloc[2] == pytest.approx(-2.25)


@pytest.mark.parametrize("encoding,expected", [("utf-8-sig", "utf-8-sig"), ("cp1252", "cp1252"),
                                               ("utf-16", "utf-16")])
def test_encodings(encoding, expected):
    rows = [[t, i, "Zürich °C"] for i, t in enumerate(hourly(24))]
    ds = load_dataset(csv_bytes(rows, ["Zeit", "Température", "Ort"], encoding=encoding))
    assert ds.report["encoding"] == expected
    assert ds.numeric_columns == ["Température"]
    assert "Ort" in ds.excluded


def test_latin1_bytes_after_the_sampled_head_fall_back():
    rows = [[t, i, "plain"] for i, t in enumerate(hourly(20000))]
    rows[-5][2] = "Málaga"
    data = csv_bytes(rows, ["time", "v", "place"]).replace("Málaga".encode(), "Málaga".encode("cp1252"))
    ds = load_dataset(data)  # the byte sits in a text column, which is excluded without being decoded
    assert len(ds.frame) == 20000 and "place" in ds.excluded
    rows[-5][1] = "–"  # a Windows-1252 dash (0x96) in a numeric column: decoded, then treated as missing
    rows[-5][2] = "plain"
    data = csv_bytes(rows, ["time", "v", "place"]).replace("–".encode(), "–".encode("cp1252"))
    ds = load_dataset(data)
    assert ds.report["encoding"] == "cp1252" and len(ds.frame) == 20000
    assert ds.frame["v"].iloc[-5] == pytest.approx(19995.0)  # interpolated between its neighbours


def test_no_header_row_gets_column_names():
    rows = [[t, i, i * 2] for i, t in enumerate(hourly(30))]
    ds = load_dataset(csv_bytes(rows))
    assert ds.report["header"] is False
    assert ds.time_col == "column_1" and ds.numeric_columns == ["column_2", "column_3"]
    assert len(ds.frame) == 30


def test_header_override():
    rows = [[t, i] for i, t in enumerate(hourly(30))]
    ds = load_dataset(csv_bytes(rows), csv=CsvOptions(header=True))
    assert len(ds.frame) == 29  # the first data row became the names


def test_preamble_lines_are_skipped():
    body = simple(30).decode()
    ds = load_dataset(("Station: Szeged\nExported 2024-05-01\n" + body).encode())
    assert ds.report["skipped_lines"] == 2 and ds.numeric_columns == ["a", "b"]


def test_mixed_utc_offsets_convert_to_utc():
    utc = pd.date_range("2024-03-30 20:00", periods=12, freq="h", tz="UTC")
    local = utc.tz_convert("Europe/Berlin").strftime("%Y-%m-%d %H:%M:%S.000 %z")  # crosses the DST change
    rows = [[t, i] for i, t in enumerate(local)] * 1
    ds = load_dataset(csv_bytes(rows, ["Formatted Date", "v"]))
    assert ds.freq == "h" and len(ds.frame) == 12
    assert ds.frame.index[0] == pd.Timestamp("2024-03-30 20:00")


def test_iso_with_colon_offsets_and_z():
    times = ["2024-01-01T00:00:00Z", "2024-01-01T02:00:00+01:00", "2024-01-01T02:00:00Z"] + \
        [f"2024-01-01T{h:02d}:00:00Z" for h in range(3, 20)]
    ds = load_dataset(csv_bytes([[t, i] for i, t in enumerate(times)], ["ts", "v"]))
    assert ds.freq == "h" and ds.frame.index[1] == pd.Timestamp("2024-01-01 01:00")


@pytest.mark.parametrize("unit,scale", [("s", 1), ("ms", 1000)])
def test_epoch_times(unit, scale):
    start = 1_700_000_000
    rows = [[(start + 60 * i) * scale, i] for i in range(40)]
    ds = load_dataset(csv_bytes(rows, ["timestamp", "v"]))
    assert ds.report["time_format"] == f"epoch_{unit}"
    assert ds.freq == "min" and ds.frame.index[0] == pd.Timestamp(start, unit="s")


def test_day_first_when_unambiguous():
    rows = [[t, i] for i, t in enumerate(hourly(30, start="2024-01-10", fmt="%d/%m/%Y", freq="D"))]
    ds = load_dataset(csv_bytes(rows, ["date", "sales"]))
    assert ds.report["dayfirst"] is True
    assert ds.frame.index[0] == pd.Timestamp("2024-01-10") and ds.freq == "D"


def test_ambiguous_dates_take_the_regular_reading():
    # 01/02 .. 12/02: both readings parse; day-first gives daily steps, month-first monthly jumps
    rows = [[f"{d:02d}/02/2024", d] for d in range(1, 13)]
    ds = load_dataset(csv_bytes(rows, ["date", "v"]))
    assert ds.freq == "D" and ds.frame.index[0] == pd.Timestamp("2024-02-01")
    assert "day-first" in problem_text(ds)


def test_month_first_us_dates():
    rows = [[t, i] for i, t in enumerate(hourly(30, start="2024-01-13", fmt="%m/%d/%Y %H:%M", freq="h"))]
    ds = load_dataset(csv_bytes(rows, ["Date", "kWh"]))
    assert ds.frame.index[0] == pd.Timestamp("2024-01-13") and ds.freq == "h"


def test_monthly_and_custom_format():
    rows = [[t, i] for i, t in enumerate(hourly(36, start="2020-01-01", fmt="%Y-%m", freq="MS"))]
    ds = load_dataset(csv_bytes(rows, ["Month", "Passengers"]))
    assert ds.freq == "MS"
    rows = [[t, i] for i, t in enumerate(hourly(30, fmt="%d.%m.%Y %H:%M"))]
    ds = load_dataset(csv_bytes(rows, ["Zeitpunkt", "v"]), csv=CsvOptions(time_format="%d.%m.%Y %H:%M"))
    assert ds.freq == "h" and ds.frame.index[0] == pd.Timestamp("2024-01-01")


def test_no_time_column_uses_row_number_with_note():
    rows = [[i, i * 0.5] for i in range(30)]
    ds = load_dataset(csv_bytes(rows, ["x", "y"]))
    assert_contract(ds)
    assert ds.time_col is None and ds.report["time_column"] == ROW_INDEX
    assert "row number" in problem_text(ds)


def test_time_column_override_and_row_index_override():
    ds = load_dataset(simple(), csv=CsvOptions(time_col=ROW_INDEX))
    assert not ds.has_time and "time" in ds.excluded  # the unused time column is text now
    with pytest.raises(StudioError, match="does not hold dates"):
        load_dataset(simple(), csv=CsvOptions(time_col="a"))
    with pytest.raises(StudioError, match="no column 'nope'"):
        load_dataset(simple(), csv=CsvOptions(time_col="nope"))


# ------------------------------------------------------------------------------------------- cleaning


def test_unsorted_and_duplicated_timestamps():
    times = hourly(30)
    rows = [[t, i] for i, t in enumerate(times)]
    rows = rows[::-1] + [[times[5], 100.0], [times[6], 200.0]]
    first = load_dataset(csv_bytes(rows, ["time", "v"]))
    assert_contract(first)
    assert first.report["cleaning"]["sorted"] and first.report["cleaning"]["duplicates"] == 2
    # stable sort: the first occurrence in file order is kept
    assert first.frame["v"].iloc[5] == 5.0
    mean = load_dataset(csv_bytes(rows, ["time", "v"]), clean=CleanOptions(duplicates="mean"))
    assert mean.frame["v"].iloc[5] == pytest.approx(52.5) and len(mean.frame) == 30


def test_gaps_are_inserted_and_filled_by_each_method():
    times = hourly(40)
    rows = [[t, float(i)] for i, t in enumerate(times) if i not in (10, 11, 12, 30)]
    data = csv_bytes(rows, ["time", "v"])
    ds = load_dataset(data)
    assert ds.report["gaps"]["count"] == 2 and ds.report["gaps"]["missing_steps"] == 4
    assert ds.frame["v"].iloc[11] == pytest.approx(11.0)  # time interpolation restores the line
    ff = load_dataset(data, clean=CleanOptions(fill="ffill"))
    assert ff.frame["v"].iloc[11] == 9.0
    none = load_dataset(data, clean=CleanOptions(fill="none"))
    assert none.frame["v"].isna().sum() == 4 and none.report["blocking"]
    assert "4 missing values" in none.report["blocking"][0]


def test_irregular_timestamps_are_reported_not_forced():
    rng = np.random.default_rng(1)
    t = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 1e6, 50)), unit="s")
    ds = load_dataset(csv_bytes([[x, i] for i, x in enumerate(t.strftime("%Y-%m-%d %H:%M:%S"))], ["t", "v"]))
    assert ds.freq is None and ds.report["problems"]


@pytest.mark.parametrize("how,expected", [("mean", 1.5), ("sum", 6.0), ("last", 3.0), ("min", 0.0), ("max", 3.0)])
def test_resample(how, expected):
    rows = [[t, i % 4] for i, t in enumerate(hourly(48, freq="15min"))]
    ds = load_dataset(csv_bytes(rows, ["time", "v"]), clean=CleanOptions(resample="h", resample_how=how))
    assert ds.freq == "h" and len(ds.frame) == 12
    assert ds.frame["v"].iloc[0] == pytest.approx(expected)
    assert ds.report["cleaning"]["resampled"]["rows_before"] == 48


def test_resample_without_time_and_bad_options():
    with pytest.raises(StudioError, match="needs a time column"):
        load_dataset(csv_bytes([[i, i] for i in range(20)], ["x", "y"]), clean=CleanOptions(resample="h"))
    with pytest.raises(StudioError, match="not a frequency"):
        CleanOptions(resample="fortnightly-ish")
    with pytest.raises(StudioError):
        CleanOptions(fill="magic")
    with pytest.raises(StudioError):
        CsvOptions(delimiter=";;")
    with pytest.raises(StudioError):
        CsvOptions(decimal=",", delimiter=",")


# ------------------------------------------------------------------------------------ bad input (issue A)


def test_empty_file():
    for data in (b"", b"   \n\n", b"\xef\xbb\xbf"):
        with pytest.raises(StudioError, match="is empty") as err:
            load_dataset(data, name="x.csv")
        assert "Choose a CSV" in str(err.value)


def test_binary_and_excel_renamed_csv():
    for data, what in ((b"PK\x03\x04" + bytes(200), "Excel"), (b"\xd0\xcf\x11\xe0" + bytes(200), "Excel"),
                       (bytes(range(256)) * 4, "binary"), (b"\x1f\x8b\x08" + bytes(100), "gzip")):
        with pytest.raises(StudioError, match=what) as err:
            load_dataset(data, name="data.csv")
        assert "\n" not in str(err.value)


def test_header_only():
    with pytest.raises(StudioError, match="no data rows"):
        load_dataset(b"time,a,b\n")


def test_one_data_row():
    with pytest.raises(StudioError, match="only 1 row"):
        load_dataset(b"time,a\n2024-01-01,3\n")


def test_no_numeric_column():
    rows = [[t, "sunny", "north"] for t in hourly(20)]
    with pytest.raises(StudioError, match="No column .* holds numbers") as err:
        load_dataset(csv_bytes(rows, ["time", "sky", "wind"]))
    assert "delimiter" in str(err.value)


def test_mixed_values_coerced_with_counts():
    rows = [[t, ["12.3", "n/a", "—", "7", "ERR"][i % 5]] for i, t in enumerate(hourly(50))]
    ds = load_dataset(csv_bytes(rows, ["time", "v"]))
    col = {c["name"]: c for c in ds.report["columns"]}["v"]
    assert col["type"] == "numeric (coerced)"
    assert col["not_numbers"] == 10  # 'ERR' only: 'n/a' and '—' are known missing markers
    assert "'ERR'" in problem_text(ds)
    assert col["missing"] == 30 and not ds.frame["v"].isna().any()


def test_non_number_after_the_sample_is_coerced():
    rows = [[t, i] for i, t in enumerate(hourly(5000))]
    rows[4000][1] = "sensor fault"
    ds = load_dataset(csv_bytes(rows, ["time", "v"]))
    assert len(ds.frame) == 5000 and "sensor fault" in problem_text(ds)


def test_all_empty_column_excluded():
    rows = [[t, i, ""] for i, t in enumerate(hourly(20))]
    ds = load_dataset(csv_bytes(rows, ["time", "v", "blank"]))
    assert ds.excluded["blank"].startswith("empty") and ds.numeric_columns == ["v"]


def test_duplicate_and_missing_column_names_renamed():
    rows = [[t, i, i + 1, i + 2] for i, t in enumerate(hourly(20))]
    ds = load_dataset(csv_bytes(rows, ["time", "temp", "temp", ""]))
    assert ds.numeric_columns == ["temp", "temp_2", "column_4"]
    assert "renamed" in problem_text(ds)


def test_rows_with_wrong_field_count_are_skipped_and_reported():
    text = simple(30).decode().splitlines()
    text[5] += ",99,100"
    ds = load_dataset(("\n".join(text) + "\n").encode())
    assert len(ds.frame) == 30  # the skipped hour is a gap, refilled
    assert ds.report["skipped_bad_lines"] == 1


def test_unparseable_times_dropped_with_count():
    rows = [[t, i] for i, t in enumerate(hourly(30))]
    rows[7][0] = "not a time"
    ds = load_dataset(csv_bytes(rows, ["time", "v"]))
    assert ds.report["cleaning"]["dropped_bad_time"] == 1 and "not a time" in problem_text(ds)


def test_upload_limit():
    check_upload_size(10 * 1024 * 1024, limit_mb=200)
    with pytest.raises(StudioError, match="over the studio's upload limit of 200 MB") as err:
        check_upload_size(250 * 1024 * 1024, limit_mb=200)
    assert "FS_MAX_UPLOAD_MB" in str(err.value)


def test_missing_path():
    with pytest.raises(StudioError, match="no file"):
        load_dataset("/no/such/file.csv")


def test_constant_column_noted():
    rows = [[t, i, 5] for i, t in enumerate(hourly(20))]
    ds = load_dataset(csv_bytes(rows, ["time", "v", "const"]))
    assert "same value" in problem_text(ds)


def test_fingerprint_tracks_content_and_options():
    a, b = load_dataset(simple()), load_dataset(simple())
    assert a.fingerprint == b.fingerprint
    assert load_dataset(simple(49)).fingerprint != a.fingerprint
    assert load_dataset(simple(), clean=CleanOptions(fill="ffill")).fingerprint != a.fingerprint


def test_path_and_bytes_agree(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(simple())
    a, b = load_dataset(path), load_dataset(simple())
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.fingerprint == b.fingerprint


def test_content_digest_is_blake3_of_the_bytes_and_a_given_digest_is_used(tmp_path):
    from blake3 import blake3

    from core.data import content_digest

    data = simple()
    path = tmp_path / "a.csv"
    path.write_bytes(data)
    assert content_digest(data) == content_digest(path) == blake3(data).hexdigest()
    assert content_digest(memoryview(data)) == content_digest(data)
    # a caller that hashed the upload already (the Data page) passes the digest: same fingerprint, no second hash
    assert load_dataset(data, digest=content_digest(data)).fingerprint == load_dataset(data).fingerprint
    assert load_dataset(data, digest="0" * 64).fingerprint != load_dataset(data).fingerprint


def test_nan_spellings_arrow_reads_as_numbers_are_counted_and_filled():
    """'Nan' and '+nan' are not in the null list, so Arrow reads them as float NaN, not as missing: the fill
    must still find, count and fill them (it finds gappy columns from their statistics, not from nulls)."""
    times = hourly(20)
    rows = [[t, i + 0.5, {5: "Nan", 7: "+nan"}.get(i, i)] for i, t in enumerate(times)]
    data = csv_bytes(rows, ["time", "a", "b"])
    ds = load_dataset(data)
    assert_contract(ds)
    assert ds.report["cleaning"]["missing_before_fill"] == 2 and not ds.frame.isna().any().any()
    assert ds.frame["b"].iloc[5] == pytest.approx(5.0) and ds.frame["b"].iloc[7] == pytest.approx(7.0)
    cols = {c["name"]: c for c in ds.report["columns"]}
    assert cols["b"]["missing"] == 2 and cols["a"]["missing"] == 0
    assert (cols["b"]["min"], cols["b"]["max"], cols["b"]["mean"]) == (0.0, 19.0, 9.5)
    left = load_dataset(data, clean=CleanOptions(fill="none"))
    cols = {c["name"]: c for c in left.report["columns"]}
    assert left.report["blocking"] and cols["b"]["missing"] == 2
    assert cols["b"]["min"] == 0.0 and cols["b"]["max"] == 19.0  # statistics of the values that are there


def test_fill_handles_leading_trailing_and_adjacent_gap_runs():
    v = ["", "", 2.0, 3.0, "", "", "", 7.0, "", 9.0, "", ""]
    data = csv_bytes([[t, x] for t, x in zip(hourly(len(v)), v)], ["time", "v"])
    filled = load_dataset(data).frame["v"].to_numpy()
    np.testing.assert_allclose(filled, [2, 2, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9])
    ff = load_dataset(data, clean=CleanOptions(fill="ffill")).frame["v"].to_numpy()
    np.testing.assert_allclose(ff, [2, 2, 2, 3, 3, 3, 3, 7, 7, 9, 9, 9])


def test_a_time_column_arrow_cannot_parse_is_parsed_block_by_block(tmp_path):
    """Day-first times are parsed by pandas a chunk of Arrow's output at a time: across many chunks the
    stamps must land on their own rows."""
    n = 200_000
    times = pd.date_range("2001-01-01", periods=n, freq="h")
    rows = [f"{t},{i}" for t, i in zip(times.strftime("%d/%m/%Y %H:%M"), range(n))]
    path = tmp_path / "dayfirst.csv"
    path.write_text("when,v\n" + "\n".join(rows) + "\n")
    ds = load_dataset(path)
    assert ds.report["time_format"] != "ISO8601" and ds.freq == "h"
    assert_contract(ds)
    assert ds.frame.index[0] == times[0] and ds.frame.index[-1] == times[-1]
    np.testing.assert_array_equal(ds.frame["v"].to_numpy(), np.arange(n, dtype=float))


# ------------------------------------------------------------------------------------------- property


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.lists(st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 3)), min_size=2, max_size=2),
                    min_size=12, max_size=60),
    sep=st.sampled_from([",", ";", "\t", "|"]),
    comma=st.booleans(),
)
def test_roundtrip_any_delimiter_and_decimal(values, sep, comma):
    comma = comma and sep != ","
    times = hourly(len(values))

    def fmt(v):
        text = repr(float(v))
        return text.replace(".", ",") if comma else text

    data = csv_bytes([[t, fmt(a), fmt(b)] for t, (a, b) in zip(times, values)], ["time", "a", "b"], sep=sep)
    ds = load_dataset(data)
    assert_contract(ds)
    np.testing.assert_allclose(ds.frame.to_numpy(), np.array(values, dtype=float), rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_thirty_columns_a_million_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    n = 1_000_000
    rng = np.random.default_rng(0)
    cols = {"time": pa.array(pd.date_range("2000-01-01", periods=n, freq="min").strftime("%Y-%m-%d %H:%M"))}
    for j in range(29):
        cols[f"c{j}"] = pa.array(np.round(rng.normal(size=n), 2))
    path = tmp_path / "wide.csv"
    pacsv.write_csv(pa.table(cols), path)
    ds = load_dataset(path)
    assert ds.frame.shape == (n, 29) and ds.freq == "min"
    assert_contract(ds)


def test_empty_corner_over_an_index_is_a_header_row():
    # pandas' Series.to_csv: an empty corner above the index, the series' name "0" (a number) beside it
    # (sktime's Lynx.csv); the first row is names, not a row of values.
    text = ",0\n" + "".join(f"{1821 + i},{100 + 7 * i}\n" for i in range(30))
    ds = load_dataset(text.encode())
    assert ds.report["header"] is True and "0" in ds.numeric_columns and len(ds.frame) == 30
    # A headerless table whose first row merely misses a value stays a table of values.
    rows = [[t, "" if i == 0 else i] for i, t in enumerate(hourly(30))]
    assert load_dataset(csv_bytes(rows)).report["header"] is False
