"""The CSV trace format: what parses, what each interpolation gives, and the errors."""

from __future__ import annotations

import pytest

from hashcore.app.inputs import load_trace, read_series, write_trace
from hashcore.errors import ConfigError
from hashcore.throttle.signals import Trace
from hashcore.throttle.traces import parse_trace, trace_text


def test_iso_timestamps_with_header_notes_and_optional_columns():
    trace = parse_trace([
        "# made by hand",
        "",
        "timestamp,watts,gco2_per_kwh,price",
        "2024-06-21T12:00:00+02:00,100,300,0.25",
        "2024-06-21T12:01:00+02:00,200,310,0.30",
    ])
    assert trace.times == [1718964000.0, 1718964060.0]
    assert trace.utc_offset_s == 7200
    assert trace.notes == ["made by hand"]
    assert trace.has_carbon and trace.has_price
    assert trace.at(trace.start + 30) == pytest.approx((150.0, 305.0, 0.275))


def test_epoch_timestamps_without_header_are_positional():
    trace = parse_trace(["0,10", "60,20", "120,30"])
    assert trace.watts == [10, 20, 30] and not trace.has_carbon and not trace.has_price


def test_naive_iso_timestamps_are_utc():
    trace = parse_trace(["2024-01-01T00:00:00,1", "2024-01-01T00:00:10,2"])
    assert trace.start == 1704067200.0


def test_step_holds_each_row_and_linear_draws_lines():
    lines = ["0,0", "100,100"]
    assert parse_trace(lines, interpolation="step").at(99).watts == 0
    assert parse_trace(lines, interpolation="linear").at(25).watts == 25


def test_the_file_comment_sets_interpolation_and_a_flag_overrides_it():
    lines = ["# interpolation: step", "0,0", "100,100"]
    assert parse_trace(lines).interpolation == "step"
    assert parse_trace(lines, interpolation="linear").interpolation == "linear"


def test_outside_the_rows_the_ends_are_held():
    trace = parse_trace(["10,5", "20,7"])
    assert trace.at(0).watts == 5 and trace.at(1e9).watts == 7


def test_negative_prices_are_allowed():
    trace = parse_trace(["timestamp,watts,price", "0,10,-0.02"])
    assert trace.at(0).price == -0.02


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["0,1", "yesterday,2"], "line 2: 'yesterday' is neither an ISO-8601 timestamp nor epoch seconds"),
        (["0,1", "60,2", "60,3"], "line 3: timestamp 60 is not after the previous row's"),
        (["0,1", "60,2,3,4,5"], "line 2: expected 2 fields"),
        (["# c", "0,1", "60,-2"], "line 3: watts must not be negative"),
        (["0,1", "60,lots"], "line 2: watts 'lots' is not a number"),
        (["0,1", "60,nan"], "line 2: watts 'nan' is not a finite number"),
        (["timestamp,watts,volts", "0,1,2"], "line 1: unknown column 'volts'"),
        (["timestamp,gco2_per_kwh", "0,1"], "line 1: the header has no 'watts' column"),
        (["when,watts", "0,1"], "line 1: the header must start with 'timestamp'"),
        (["# interpolation: cubic", "0,1"], "line 1: interpolation must be step or linear"),
        (["0"], "line 1: expected timestamp,watts[,gco2_per_kwh][,price], got 1 field(s)"),
        (["# only a comment"], "no data rows"),
    ],
)
def test_malformed_traces_name_the_line(lines, message):
    with pytest.raises(ConfigError) as caught:
        parse_trace(lines, name="day.csv")
    assert message in str(caught.value)
    assert str(caught.value).startswith("day.csv")


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read trace"):
        load_trace(tmp_path / "nope.csv")


def test_write_then_read_gives_the_same_trace(tmp_path):
    trace = Trace([0.0, 60.0, 120.0], [1.0, 2.5, 0.0], [300.0, 250.0, 200.0], [0.1, 0.2, 0.3],
                  interpolation="step", utc_offset_s=3600, notes=["how it was made"])
    path = tmp_path / "t.csv"
    write_trace(path, trace)
    again = load_trace(path)
    assert again.times == trace.times and again.watts == trace.watts
    assert again.gco2_per_kwh == trace.gco2_per_kwh and again.price == trace.price
    assert again.interpolation == "step" and again.utc_offset_s == 3600 and again.notes == ["how it was made"]
    header = "# how it was made\n# interpolation: step\ntimestamp,watts,gco2_per_kwh,price\n"
    assert trace_text(trace).startswith(header)


def test_side_series_use_the_same_reader_and_errors(tmp_path):
    path = tmp_path / "clouds.csv"
    path.write_text("timestamp,cloud_cover\n0,0.5\n60,x\n")
    with pytest.raises(ConfigError, match="line 3: cloud_cover 'x' is not a number"):
        read_series(path, ("cloud_cover",))
