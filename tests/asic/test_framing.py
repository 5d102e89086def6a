"""Frames and CRCs: ASIC.md's known answers, the real capture, round trips, the stream decoder."""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections import Counter
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hashcore.backends.asic.chips import BM1366, BM1397, REG_PLL0, REG_TICKET_MASK, encode_ticket_mask
from hashcore.backends.asic.crc import crc5, crc16_ccitt_false
from hashcore.backends.asic.framing import (
    BM1366_REPLY_LENGTH,
    BM1397_REPLY_LENGTH,
    Bm1366Job,
    Bm1397Job,
    Command,
    CommandKind,
    FrameError,
    HostFrameDecoder,
    NonceReply,
    RegisterReply,
    Reply,
    ReplyDecoder,
    chain_inactive,
    decode_host_frame,
    decode_reply,
    encode_command,
    encode_job,
    encode_reply,
    read_register,
    reply_crc_ok,
    reverse_words,
    set_address,
    write_register,
)

# --- CRC known answers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "crc"),
    [
        ("52 05 00 00", 0x0A),
        ("53 05 00 00", 0x03),
        ("40 05 00 00", 0x1C),
        ("51 09 00 A4 90 00 FF FF", 0x1C),
    ],
)
def test_crc5_matches_the_known_answers_of_asic_md(body: str, crc: int) -> None:
    assert crc5(bytes.fromhex(body)) == crc


def test_crc16_is_ccitt_false() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1  # the catalogue's check value


def test_crc16_of_the_captured_job_frame_is_its_last_two_bytes(capture: dict[str, Any]) -> None:
    frame = bytes.fromhex(capture["job_frame_hex"])
    assert crc16_ccitt_false(frame[2:-2]) == struct.unpack(">H", frame[-2:])[0]


# --- host frames: every frame ASIC.md spells out ---------------------------------------


@pytest.mark.parametrize(
    ("command", "frame"),
    [
        (read_register(0x00), "55 AA 52 05 00 00 0A"),
        (chain_inactive(), "55 AA 53 05 00 00 03"),
        (set_address(0x00), "55 AA 40 05 00 00 1C"),
        (write_register(0xA4, 0x9000FFFF), "55 AA 51 09 00 A4 90 00 FF FF 1C"),
        # As the open Bitaxe firmware sends them to a BM1366 chain:
        (write_register(0xA8, 0x00070000), "55 AA 51 09 00 A8 00 07 00 00 03"),
        (write_register(0x18, 0xFF0FC100), "55 AA 51 09 00 18 FF 0F C1 00 00"),
        (write_register(0x3C, 0x80008540), "55 AA 51 09 00 3C 80 00 85 40 0C"),
        (write_register(REG_TICKET_MASK, encode_ticket_mask(256)), "55 AA 51 09 00 14 00 00 00 FF 08"),
        (write_register(0x10, 0x0000151C), "55 AA 51 09 00 10 00 00 15 1C 02"),
        (write_register(0x28, 0x11300200), "55 AA 51 09 00 28 11 30 02 00 03"),
        (write_register(REG_PLL0, 0x40A00241), "55 AA 51 09 00 08 40 A0 02 41 14"),
        (write_register(0x2C, 0x007C0003, chip_addr=0), "55 AA 41 09 00 2C 00 7C 00 03 03"),
    ],
)
def test_commands_encode_byte_for_byte_and_decode_back(command: Command, frame: str) -> None:
    wire = bytes.fromhex(frame)
    assert encode_command(command) == wire
    assert decode_host_frame(wire) == command


def test_the_captured_job_frame_decodes_to_the_captured_fields(capture: dict[str, Any]) -> None:
    frame = bytes.fromhex(capture["job_frame_hex"])
    job = decode_host_frame(frame)
    fields = capture["job"]
    assert isinstance(job, Bm1366Job)
    assert len(frame) == 88 and frame[2:4] == b"\x21\x56"
    assert job.job_id == fields["job_id"] == 40
    assert job.num_midstates == 1 and job.starting_nonce == 0
    assert job.nbits == int(fields["nbits"], 16)
    assert job.ntime == int(fields["ntime"], 16)
    assert job.version == int(fields["version"], 16)
    assert job.merkle_root.hex() == fields["merkle_root_internal_hex"]
    assert job.prev_hash.hex() == fields["prev_hash_internal_hex"]
    assert encode_job(job) == frame


def test_job_hashes_travel_with_their_words_reversed() -> None:
    data = bytes(range(32))
    assert reverse_words(data)[:4] == data[28:32]
    assert reverse_words(reverse_words(data)) == data


def test_a_bm1397_job_is_152_bytes_with_len_0x96() -> None:
    state = tuple(range(8))
    frame = encode_job(Bm1397Job(4, 4, 1, 2, b"abcd", (state,) * 4))
    assert len(frame) == 152 and frame[2:4] == b"\x21\x96"


@pytest.mark.parametrize(
    "frame",
    [
        "55 AA 52 05 00 00 0B",  # bad CRC5
        "55 AA 52 09 00 00 0A",  # a read is never 9 long
        "55 AA 21 56",  # a job cut short
        "AA 55 52 05 00 00 0A",  # the reply preamble
    ],
)
def test_bad_host_frames_raise_frame_error(frame: str) -> None:
    with pytest.raises(FrameError):
        decode_host_frame(bytes.fromhex(frame))


def test_a_job_with_a_bad_crc16_is_refused(capture: dict[str, Any]) -> None:
    frame = bytearray(bytes.fromhex(capture["job_frame_hex"]))
    frame[20] ^= 0x01
    with pytest.raises(FrameError):
        decode_host_frame(bytes(frame))


# --- replies: the capture and the chip ids ---------------------------------------------


@pytest.mark.parametrize("index", range(5))
def test_every_captured_reply_decodes_to_its_nonce_slot_core_and_version(capture: dict[str, Any], index: int) -> None:
    entry = capture["replies"][index]
    job = decode_host_frame(bytes.fromhex(capture["job_frame_hex"]))
    assert isinstance(job, Bm1366Job)
    reply = decode_reply(bytes.fromhex(entry["reply_hex"]))
    assert isinstance(reply, NonceReply)
    assert struct.pack("<I", reply.nonce).hex() == entry["nonce_header_bytes"]
    assert BM1366.job_slot(reply.job_id) == entry["job_id"]
    assert BM1366.lane(reply.job_id) == entry["small_core"]
    rolled_bits = reply.version_field << 13
    assert rolled_bits == int(entry["version_bits"], 16)
    version = job.version | rolled_bits
    assert version == int(entry["rolled_version"], 16)
    # The header rebuilt from the job frame and the reply is the captured one, and it hashes
    # to the captured block hash.
    header = (
        struct.pack("<I", version)
        + job.prev_hash
        + job.merkle_root
        + struct.pack("<II", job.ntime, job.nbits)
        + struct.pack("<I", reply.nonce)
    )
    assert header.hex() == entry["header_hex"]
    digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
    assert digest[::-1].hex() == entry["block_hash"]
    assert encode_reply(reply, BM1366_REPLY_LENGTH).hex() == entry["reply_hex"]


def test_the_bm1366_chip_id_reply_decodes(capture: dict[str, Any]) -> None:
    frame = bytes.fromhex(capture["chip_id_reply_hex"])
    reply = decode_reply(frame)
    assert reply == RegisterReply(0x13660000, 0, 0)
    assert reply.value >> 16 == BM1366.chip_id
    assert encode_reply(reply, BM1366_REPLY_LENGTH) == frame


def test_the_bm1397_chip_id_reply_decodes() -> None:
    frame = bytes.fromhex("AA 55 13 97 18 00 00 00 06")
    reply = decode_reply(frame)
    assert reply == RegisterReply(0x13971800, 0, 0)
    assert reply.value >> 16 == BM1397.chip_id
    assert encode_reply(reply, BM1397_REPLY_LENGTH) == frame


def test_a_reply_with_a_flipped_bit_fails_its_crc(capture: dict[str, Any]) -> None:
    frame = bytes.fromhex(capture["replies"][0]["reply_hex"])
    for bit in range(16, 8 * len(frame)):
        damaged = bytearray(frame)
        damaged[bit // 8] ^= 0x80 >> (bit % 8)
        assert not reply_crc_ok(bytes(damaged))
        with pytest.raises(FrameError):
            decode_reply(bytes(damaged))


# --- round trips -----------------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
states = st.tuples(*[u32] * 8)


@st.composite
def commands(draw: st.DrawFn) -> Command:
    kind = draw(st.sampled_from(CommandKind))
    value = draw(u32) if kind is CommandKind.WRITE else None
    return Command(kind, draw(st.booleans()), draw(u8), draw(u8), value)


bm1366_jobs = st.builds(
    Bm1366Job, u8, u32, u32, st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32), u32, u32
)
bm1397_jobs = st.builds(
    Bm1397Job,
    u8,
    st.sampled_from([1, 4]),
    u32,
    u32,
    st.binary(min_size=4, max_size=4),
    st.tuples(states, states, states, states),
    u32,
)


def replies_for(length: int) -> st.SearchStrategy[Reply]:
    field = u16 if length == BM1366_REPLY_LENGTH else st.just(0)
    return st.one_of(st.builds(NonceReply, u32, u8, u8, field), st.builds(RegisterReply, u32, u8, u8))


@given(commands())
def test_commands_round_trip(command: Command) -> None:
    assert decode_host_frame(encode_command(command)) == command


@given(st.one_of(bm1366_jobs, bm1397_jobs))
def test_jobs_round_trip(job: Bm1366Job | Bm1397Job) -> None:
    assert decode_host_frame(encode_job(job)) == job


@given(
    st.sampled_from([BM1366_REPLY_LENGTH, BM1397_REPLY_LENGTH]).flatmap(lambda n: st.tuples(st.just(n), replies_for(n)))
)
def test_replies_round_trip(case: tuple[int, Reply]) -> None:
    length, reply = case
    frame = encode_reply(reply, length)
    assert len(frame) == length and reply_crc_ok(frame)
    assert decode_reply(frame) == reply


# --- the streaming decoders ------------------------------------------------------------


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def _feed(decoder: ReplyDecoder, data: bytes, cuts: list[int]) -> list[Reply]:
    out: list[Reply] = []
    for piece in _splits(data, cuts):
        out += decoder.feed(piece)
    return out


reply_streams = st.sampled_from([BM1366_REPLY_LENGTH, BM1397_REPLY_LENGTH]).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(replies_for(n), max_size=12))
)
garbage = st.binary(max_size=24).map(lambda b: b.replace(b"\xaa", b"\x00"))


@given(reply_streams, st.lists(st.integers(0, 10_000), max_size=20))
def test_split_frames_come_out_whole(stream: tuple[int, list[Reply]], cuts: list[int]) -> None:
    length, replies = stream
    decoder = ReplyDecoder(length)
    data = b"".join(encode_reply(r, length) for r in replies)
    assert _feed(decoder, data, cuts) == replies
    assert decoder.stats.dropped_bytes == 0 and decoder.pending == 0


@given(reply_streams, st.data())
def test_garbage_between_frames_is_dropped_and_counted(stream: tuple[int, list[Reply]], data: st.DataObject) -> None:
    length, replies = stream
    junk = [data.draw(garbage) for _ in range(len(replies) + 1)]
    wire = junk[0] + b"".join(encode_reply(r, length) + j for r, j in zip(replies, junk[1:], strict=True))
    decoder = ReplyDecoder(length)
    cuts = data.draw(st.lists(st.integers(0, 10_000), max_size=10))
    assert _feed(decoder, wire, cuts) == replies
    assert decoder.stats.dropped_bytes == sum(len(j) for j in junk)


@given(reply_streams, st.data())
def test_a_damaged_frame_is_dropped_and_the_next_one_kept(stream: tuple[int, list[Reply]], data: st.DataObject) -> None:
    length, replies = stream
    frames = [encode_reply(r, length) for r in replies]
    assume(all(b"\xaa" not in f[2:] for f in frames))
    damaged = set(data.draw(st.sets(st.integers(0, max(0, len(frames) - 1)))) if frames else set())
    wire = b""
    for i, frame in enumerate(frames):
        sent = bytearray(frame)
        if i in damaged:
            bit = data.draw(st.integers(16, 8 * length - 1))
            sent[bit // 8] ^= 0x80 >> (bit % 8)
        wire += sent
    assume(wire.count(b"\xaa\x55") == len(frames))
    decoder = ReplyDecoder(length)
    out = _feed(decoder, wire, data.draw(st.lists(st.integers(0, 10_000), max_size=10)))
    assert out == [r for i, r in enumerate(replies) if i not in damaged]
    assert decoder.stats.bad_frames == len(damaged)


def _good_windows(wire: bytes, length: int) -> Counter[Reply]:
    """Every reply a CRC-valid frame anywhere in ``wire`` decodes to."""
    found: Counter[Reply] = Counter()
    for i in range(len(wire) - length + 1):
        window = wire[i : i + length]
        if window[:2] == b"\xaa\x55" and reply_crc_ok(window):
            found[decode_reply(window)] += 1
    return found


@given(reply_streams, st.data())
def test_any_mangling_never_crashes_or_invents_a_frame(stream: tuple[int, list[Reply]], data: st.DataObject) -> None:
    length, replies = stream
    wire = bytearray()
    for reply in replies:
        frame = bytearray(encode_reply(reply, length))
        action = data.draw(st.sampled_from(["keep", "drop", "flip", "junk", "cut"]))
        if action == "drop":
            del frame[data.draw(st.integers(0, length - 1))]
        elif action == "flip":
            frame[data.draw(st.integers(0, length - 1))] ^= data.draw(st.integers(1, 255))
        elif action == "junk":
            frame[:0] = data.draw(st.binary(max_size=20))
        elif action == "cut":
            del frame[data.draw(st.integers(1, length - 1)) :]
        wire += frame
    wire += data.draw(st.binary(max_size=30))
    decoder = ReplyDecoder(length)
    out = _feed(decoder, bytes(wire), data.draw(st.lists(st.integers(0, 10_000), max_size=10)))
    assert not Counter(out) - _good_windows(bytes(wire), length)
    stats = decoder.stats
    assert stats.frames * length + stats.dropped_bytes + decoder.pending == len(wire)


@given(st.binary(max_size=400), st.lists(st.integers(0, 10_000), max_size=10))
def test_random_bytes_never_crash_the_decoders(wire: bytes, cuts: list[int]) -> None:
    for length in (BM1366_REPLY_LENGTH, BM1397_REPLY_LENGTH):
        decoder = ReplyDecoder(length)
        out = _feed(decoder, wire, cuts)
        assert not Counter(out) - _good_windows(wire, length)
    host = HostFrameDecoder()
    for piece in _splits(wire, cuts):
        host.feed(piece)


@given(st.lists(st.one_of(commands(), bm1366_jobs, bm1397_jobs), max_size=6), st.data())
def test_host_frames_survive_splits_and_garbage(frames: list[Any], data: st.DataObject) -> None:
    wire = b""
    for frame in frames:
        encoded = encode_command(frame) if isinstance(frame, Command) else encode_job(frame)
        wire += data.draw(st.binary(max_size=8).map(lambda b: b.replace(b"\x55", b"\x00"))) + encoded
    decoder = HostFrameDecoder()
    out: list[Any] = []
    for piece in _splits(wire, data.draw(st.lists(st.integers(0, 10_000), max_size=10))):
        out += decoder.feed(piece)
    assert out == frames
