"""Signals: a constant, and a live source read from a file or over HTTP on a schedule."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from hashcore.app.sources import LiveSource, parse_reading
from hashcore.errors import ConfigError
from hashcore.throttle.clock import VirtualClock
from hashcore.throttle.signals import ConstantSignal, SignalPoint


def test_a_constant_is_the_same_at_every_time():
    signal = ConstantSignal(350.0, 120.0)
    assert signal.at(0) == signal.at(1e9) == SignalPoint(350.0, 120.0, None)
    with pytest.raises(ConfigError):
        ConstantSignal(-1.0)


@pytest.mark.parametrize(
    ("text", "point"),
    [
        ("420\n", SignalPoint(420.0)),
        ('{"watts": 300, "gco2_per_kwh": 180, "price": 0.11}', SignalPoint(300.0, 180.0, 0.11)),
        ("timestamp,watts,price\n0,100,0.2\n60,250,0.3\n", SignalPoint(250.0, None, 0.3)),
    ],
)
def test_a_reading_is_a_number_a_json_object_or_the_last_row_of_a_trace(text, point):
    assert parse_reading(text, "src") == point


@pytest.mark.parametrize("text", ["", '{"power": 3}', '{"watts": "lots"}', "0,1\n0,2\n"])
def test_a_bad_reading_is_a_config_error(text):
    with pytest.raises(ConfigError):
        parse_reading(text, "src")


def test_a_file_is_read_on_its_schedule_and_a_stale_reading_falls_to_zero(tmp_path):
    path = tmp_path / "surplus"
    path.write_text("500")
    clock = VirtualClock(1000.0)
    source = LiveSource(str(path), interval_s=10.0, max_age_s=25.0)
    assert source.at(clock.now()).watts == 0.0  # nothing read yet: no surplus known
    source.refresh(clock.now())
    assert source.at(clock.now()).watts == 500.0
    path.write_text("800")
    clock.advance(5)
    source.refresh(clock.now())  # not due yet
    assert source.at(clock.now()).watts == 500.0 and source.reads == 1
    clock.advance(5)
    source.refresh(clock.now())
    assert source.at(clock.now()).watts == 800.0
    path.unlink()
    clock.advance(10)
    source.refresh(clock.now())  # fails: the last good value holds ...
    assert source.error is not None and "cannot read" in source.error
    assert source.at(clock.now()).watts == 800.0
    clock.advance(20)
    assert source.at(clock.now()).watts == 0.0  # ... until it is older than max_age


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b'{"watts": 640, "gco2_per_kwh": 95}'

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_url() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/surplus"
    finally:
        server.shutdown()
        server.server_close()


def test_a_url_is_read_over_http(http_url):
    source = LiveSource(http_url, interval_s=5.0, has_carbon=True)
    source.refresh(0.0)
    assert source.at(0.0) == SignalPoint(640.0, 95.0, None)
    assert source.describe().startswith("live URL")


def test_an_unreachable_url_is_reported_not_raised():
    source = LiveSource("http://127.0.0.1:9/nothing", interval_s=1.0, timeout_s=0.5)
    source.refresh(0.0)
    assert source.error is not None and source.at(0.0).watts == 0.0
