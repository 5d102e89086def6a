"""One connection's deadlines, worked out from what it has seen, with no sockets."""

from __future__ import annotations

import asyncio
from typing import cast

from hashcore.stratum.connection import JOB_SILENCE_FACTOR, ActiveConnection
from hashcore.stratum.options import ClientOptions, Link
from hashcore.stratum.protocol import ClientConnection

OPTIONS = ClientOptions("u", handshake_timeout=10.0, idle_timeout=180.0, job_silence_min=15.0, submit_timeout=5.0)


def connection(connected_at: float = 100.0) -> ActiveConnection:
    writer = cast(asyncio.StreamWriter, object())  # never written to here
    protocol = ClientConnection()
    protocol.subscribe()  # the transport writes the handshake as soon as it connects
    return ActiveConnection(Link(0, "stratum+tcp://pool:3333", 1), protocol, writer, connected_at)


def ready(active: ActiveConnection) -> ActiveConnection:
    active.authorized = True
    active.note_job(active.connected_at + 1.0)
    return active


def test_the_handshake_deadline_names_what_the_pool_has_not_answered():
    active = connection()
    assert active.deadline(OPTIONS, last_data=100.0) == (
        110.0, "no an answer to mining.subscribe within 10 s of connecting")
    active.protocol.receive_data(b'{"id":1,"result":[[],"00000001",4],"error":null}\n')
    while active.protocol.next_event() is not None:
        pass
    assert active.deadline(OPTIONS, 100.0)[1] == "no an answer to mining.authorize within 10 s of connecting"
    active.authorized = True
    assert active.deadline(OPTIONS, 100.0)[1] == "no a first job within 10 s of connecting"


def test_once_ready_only_the_watchdog_is_left():
    active = ready(connection())
    assert active.deadline(OPTIONS, last_data=150.0) == (330.0, "watchdog: nothing from the pool for 180 s")


def test_a_pool_that_stops_sending_jobs_at_its_usual_rhythm_has_hung():
    active = ready(connection())
    for t in (110.0, 120.0, 130.0):  # a job every 10 s (the first gap is not counted)
        active.note_job(t)
    assert active.longest_job_gap == 10.0
    deadline, why = active.deadline(OPTIONS, last_data=130.0)
    assert deadline == 130.0 + JOB_SILENCE_FACTOR * 10.0
    assert why == "no new job for 30 s (jobs came at least every 10.0 s)"


def test_job_silence_is_at_least_the_minimum():
    active = ready(connection())
    for t in (102.0, 103.0, 104.0):  # jobs a second apart
        active.note_job(t)
    assert active.deadline(OPTIONS, last_data=104.0)[0] == 104.0 + OPTIONS.job_silence_min


def test_an_unanswered_share_sets_the_nearest_deadline():
    active = ready(connection())
    active.sent_at[7] = 140.0
    active.sent_at[8] = 142.0
    assert active.deadline(OPTIONS, last_data=141.0) == (145.0, "the pool has not answered a share for 5 s")
