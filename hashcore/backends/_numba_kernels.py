"""Numba kernels of the numba backend (private: imported when that backend opens).

Two scan kernels share one layout of per-Work data (:func:`prepare`):

* ``lanes``: ``N`` nonces side by side in a vector of ``N`` uint32 lanes (``<N x i32>``
  in LLVM), so each SHA-256 step is one SIMD instruction on any x86-64 (AVX2 on Zen 3).
  ``N`` comes from the type of the ``lane_offsets`` argument, so the disk cache keeps
  one build per lane count.
* ``shani``: three nonces in flight through the SHA extensions (``sha256rnds2`` has a
  4-cycle latency and starts about once a cycle, so one stream leaves it idle). Only
  called, and so only compiled, where the CPU has SHA-NI.

Both get uint32 arithmetic by construction: the vector types below have no wider
element type to promote to, and scalar words enter them only through ``vsplat``/``v4``,
which truncate to 32 bits. Numba's own integer typing would widen ``uint32 + uint32`` to
64 bits; no hash arithmetic here goes through it.

Precomputed once per Work (``prepare``, layout in ``_precompute``): the midstate, the
state after the first three rounds of the header's second block (lanes) or the first
two (shani; rounds go in pairs there), and the message words 16 and 17, which do not
depend on the nonce.
Skipped per nonce: rounds 61-63 of the second hash in ``lanes`` (the top hash word is
already known after round 60); each nonce passing the top-word test is then hashed in
full and compared on all 256 bits, so both kernels return exact results.

One module of some 700 lines on purpose: it is one job (the scan kernels), both kernels
are built from the vector types and LLVM intrinsics defined here, and Numba's disk cache
is invalidated by any change to the file a kernel lives in, so nothing else lives here.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

from hashcore.backends._precompute import P_MID, P_STATE2, P_STATE3, P_TAIL, P_TARGET, P_W16, precompute
from hashcore.sha256 import IV, K
from hashcore.work import Work

# Calls in compiled code pass values, not the Numba types the typer's signature names;
# to mypy an intrinsic is just a callable.
_intrinsic: Any = intrinsic

_I32 = ir.IntType(32)

# --- a uint32 vector type -------------------------------------------------------------


class Lanes(types.Type):
    """``count`` uint32 lanes held in one LLVM vector (``<count x i32>``)."""

    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__(name=f"u32x{count}")


_LANE_TYPES: dict[int, Lanes] = {}


def lanes_type(count: int) -> Lanes:
    if count not in _LANE_TYPES:
        _LANE_TYPES[count] = Lanes(count)
    return _LANE_TYPES[count]


@register_model(Lanes)
class _LanesModel(models.PrimitiveModel):
    def __init__(self, dmm: Any, fe_type: Lanes) -> None:
        super().__init__(dmm, fe_type, ir.VectorType(_I32, fe_type.count))


def _vty(t: Lanes) -> ir.VectorType:
    return ir.VectorType(_I32, t.count)


def _const_splat(t: Lanes, value: int) -> ir.Constant:
    return ir.Constant(_vty(t), [value & 0xFFFFFFFF] * t.count)


def _splat(builder: ir.IRBuilder, t: Lanes, scalar: ir.Value) -> ir.Value:
    vec = builder.insert_element(ir.Constant(_vty(t), ir.Undefined), scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(vec, vec, ir.Constant(_vty(t), [0] * t.count))


def _to_i32(context: Any, builder: ir.IRBuilder, value: ir.Value, fromty: types.Type) -> ir.Value:
    return context.cast(builder, value, fromty, types.uint32)


def _call(builder: ir.IRBuilder, name: str, ret: ir.Type, args: list[ir.Value]) -> ir.Value:
    fnty = ir.FunctionType(ret, [a.type for a in args])
    return builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), args)


def _binary(op: str) -> Any:
    @_intrinsic
    def vop(typingctx: Any, a: types.Type, b: types.Type) -> Any:
        if isinstance(a, Lanes) and a == b:

            def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
                return getattr(builder, op)(args[0], args[1])

            return a(a, b), codegen
        return None

    return vop


vadd = _binary("add")
vxor = _binary("xor")
vand = _binary("and_")
vor = _binary("or_")


@_intrinsic
def vnot(typingctx: Any, a: types.Type) -> Any:
    if isinstance(a, Lanes):

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            return builder.xor(args[0], _const_splat(a, 0xFFFFFFFF))

        return a(a), codegen
    return None


for _op, _impl in ((operator.add, vadd), (operator.xor, vxor), (operator.and_, vand), (operator.or_, vor)):

    def _make(impl: Any) -> Any:
        def overload_op(a, b):  # numba matches the lambda's signature: no annotations
            if isinstance(a, Lanes) and a == b:
                return lambda a, b: impl(a, b)
            return None

        return overload_op

    overload(_op)(_make(_impl))


@overload(operator.invert)
def _ov_invert(a):  # numba matches the lambda's signature: no annotations
    if isinstance(a, Lanes):
        return lambda a: vnot(a)
    return None


@_intrinsic
def vrotr(typingctx: Any, a: types.Type, n: types.Type) -> Any:
    """Rotate each lane right by a constant."""
    if isinstance(a, Lanes) and isinstance(n, types.IntegerLiteral):
        amount = n.literal_value % 32

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            shift = _const_splat(a, amount)
            return _call(builder, f"llvm.fshr.v{a.count}i32", _vty(a), [args[0], args[0], shift])

        return a(a, n), codegen
    return None


@_intrinsic
def vshr(typingctx: Any, a: types.Type, n: types.Type) -> Any:
    """Shift each lane right (logical) by a constant."""
    if isinstance(a, Lanes) and isinstance(n, types.IntegerLiteral):
        amount = n.literal_value

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            return builder.lshr(args[0], _const_splat(a, amount))

        return a(a, n), codegen
    return None


@_intrinsic
def vbswap(typingctx: Any, a: types.Type) -> Any:
    if isinstance(a, Lanes):

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            return _call(builder, f"llvm.bswap.v{a.count}i32", _vty(a), [args[0]])

        return a(a), codegen
    return None


@_intrinsic
def bswap32(typingctx: Any, x: types.Type) -> Any:
    """A 32-bit word with its bytes reversed (``x`` truncated to 32 bits first)."""
    if isinstance(x, types.Integer):

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            return _call(builder, "llvm.bswap.i32", _I32, [_to_i32(context, builder, args[0], sig.args[0])])

        return types.uint32(x), codegen
    return None


@_intrinsic
def width(typingctx: Any, a: types.Type) -> Any:
    """The lane count of a vector, as a compile-time constant."""
    if isinstance(a, Lanes):

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            return context.get_constant(types.intp, a.count)

        return types.intp(a), codegen
    return None


@_intrinsic
def vsplat(typingctx: Any, like: types.Type, x: types.Type) -> Any:
    """Every lane of a vector shaped like ``like`` set to ``x`` (truncated to 32 bits)."""
    if isinstance(like, Lanes) and isinstance(x, types.Integer):

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            return _splat(builder, like, _to_i32(context, builder, args[1], sig.args[1]))

        return like(like, x), codegen
    return None


@_intrinsic
def vfrom_tuple(typingctx: Any, tup: types.Type) -> Any:
    """A vector from a tuple of integers, lane i from element i."""
    if isinstance(tup, types.UniTuple) and isinstance(tup.dtype, types.Integer):
        t = lanes_type(tup.count)

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            vec = ir.Constant(_vty(t), ir.Undefined)
            for i in range(t.count):
                item = _to_i32(context, builder, builder.extract_value(args[0], i), tup.dtype)
                vec = builder.insert_element(vec, item, ir.Constant(_I32, i))
            return vec

        return t(tup), codegen
    return None


@_intrinsic
def v4(typingctx: Any, a: types.Type, b: types.Type, c: types.Type, d: types.Type) -> Any:
    """A 4-lane vector ``[a, b, c, d]`` (lane 0 first) from integers."""
    if all(isinstance(x, types.Integer) for x in (a, b, c, d)):
        t = lanes_type(4)

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            vec = ir.Constant(_vty(t), ir.Undefined)
            for i, (value, ty) in enumerate(zip(args, sig.args, strict=True)):
                vec = builder.insert_element(vec, _to_i32(context, builder, value, ty), ir.Constant(_I32, i))
            return vec

        return t(a, b, c, d), codegen
    return None


@_intrinsic
def vlane(typingctx: Any, a: types.Type, i: types.Type) -> Any:
    """Lane ``i`` of a vector, as a uint32."""
    if isinstance(a, Lanes) and isinstance(i, types.Integer):

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            index = context.cast(builder, args[1], sig.args[1], types.uint32)
            return builder.extract_element(args[0], index)

        return types.uint32(a, i), codegen
    return None


@_intrinsic
def vle_mask(typingctx: Any, a: types.Type, b: types.Type) -> Any:
    """Bit i set where lane i of ``a`` <= lane i of ``b`` (unsigned), as an int64."""
    if isinstance(a, Lanes) and a == b and a.count <= 63:

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            bits = builder.icmp_unsigned("<=", args[0], args[1])
            return builder.zext(builder.bitcast(bits, ir.IntType(a.count)), ir.IntType(64))

        return types.int64(a, b), codegen
    return None


@_intrinsic
def vload(typingctx: Any, arr: types.Type, index: types.Type, like: types.Type) -> Any:
    """``like.count`` consecutive uint32 of a C-contiguous array from element ``index``."""
    if (
        isinstance(arr, types.Array)
        and arr.dtype == types.uint32
        and arr.layout == "C"
        and isinstance(index, types.Integer)
        and isinstance(like, Lanes)
    ):

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            data = context.make_array(arr)(context, builder, args[0]).data
            ptr = builder.bitcast(builder.gep(data, [args[1]]), _vty(like).as_pointer())
            return builder.load(ptr, align=4)

        return like(arr, index, like), codegen
    return None


@_intrinsic
def vstore(typingctx: Any, arr: types.Type, index: types.Type, value: types.Type) -> Any:
    """Store a vector's lanes into consecutive uint32 of a C-contiguous array."""
    if (
        isinstance(arr, types.Array)
        and arr.dtype == types.uint32
        and arr.layout == "C"
        and isinstance(index, types.Integer)
        and isinstance(value, Lanes)
    ):

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            data = context.make_array(arr)(context, builder, args[0]).data
            ptr = builder.bitcast(builder.gep(data, [args[1]]), _vty(value).as_pointer())
            builder.store(args[2], ptr, align=4)
            return context.get_dummy_value()

        return types.none(arr, index, value), codegen
    return None


@_intrinsic
def vshuffle(typingctx: Any, a: types.Type, b: types.Type, i0: Any, i1: Any, i2: Any, i3: Any) -> Any:
    """``[x[i0], x[i1], x[i2], x[i3]]`` of the 8 lanes ``x = a ++ b`` (4-lane vectors)."""
    four = lanes_type(4)
    picks = (i0, i1, i2, i3)
    if a == four and b == four and all(isinstance(i, types.IntegerLiteral) for i in picks):
        mask = [i.literal_value for i in picks]

        def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> ir.Value:
            return builder.shuffle_vector(args[0], args[1], ir.Constant(_vty(four), mask))

        return four(a, b, i0, i1, i2, i3), codegen
    return None


def _sha_intrinsic(llvm_name: str, arity: int) -> Any:
    four = lanes_type(4)

    def typer(typingctx: Any, *args: types.Type) -> Any:
        if len(args) == arity and all(a == four for a in args):

            def codegen(context: Any, builder: ir.IRBuilder, sig: Any, llargs: Any) -> ir.Value:
                return _call(builder, llvm_name, _vty(four), list(llargs))

            return four(*args), codegen
        return None

    return typer


@_intrinsic
def sha_rnds2(typingctx: Any, cdgh: types.Type, abef: types.Type, wk: types.Type) -> Any:
    """Two SHA-256 rounds (``sha256rnds2``): the new ABEF from CDGH, ABEF and W+K lanes 0-1."""
    return _sha_intrinsic("llvm.x86.sha256rnds2", 3)(typingctx, cdgh, abef, wk)


@_intrinsic
def sha_msg1(typingctx: Any, a: types.Type, b: types.Type) -> Any:
    return _sha_intrinsic("llvm.x86.sha256msg1", 2)(typingctx, a, b)


@_intrinsic
def sha_msg2(typingctx: Any, a: types.Type, b: types.Type) -> Any:
    return _sha_intrinsic("llvm.x86.sha256msg2", 2)(typingctx, a, b)


# --- per-Work data --------------------------------------------------------------------

_K = np.array(K, dtype=np.uint32)
_IV = np.array(IV, dtype=np.uint32)

# Numba's disk cache is keyed by this file's time stamp alone, and the offsets are baked
# into the compiled code: a new layout in _precompute must come with an edit here.
if (P_MID, P_TAIL, P_STATE3, P_W16, P_STATE2, P_TARGET) != (0, 8, 11, 19, 21, 29):
    raise ImportError("the _precompute layout changed: update this check so that Numba recompiles")


def prepare(work: Work) -> np.ndarray:
    """The nonce-independent words of ``work`` (layout in ``_precompute``)."""
    return np.array(precompute(work), dtype=np.uint32)


# --- shared pieces ----------------------------------------------------------------------


@njit(inline="always")
def _bsig0(x: Any) -> Any:
    return vrotr(x, 2) ^ vrotr(x, 13) ^ vrotr(x, 22)


@njit(inline="always")
def _bsig1(x: Any) -> Any:
    return vrotr(x, 6) ^ vrotr(x, 11) ^ vrotr(x, 25)


@njit(inline="always")
def _ssig0(x: Any) -> Any:
    return vrotr(x, 7) ^ vrotr(x, 18) ^ vshr(x, 3)


@njit(inline="always")
def _ssig1(x: Any) -> Any:
    return vrotr(x, 17) ^ vrotr(x, 19) ^ vshr(x, 10)


@njit(inline="always")
def _meets(words: Any, prep: np.ndarray) -> bool:
    """Whether hash words H0..H7 (a tuple of 8 uint32), as a number, are <= the target."""
    for i in range(7, -1, -1):
        value = bswap32(words[i])
        limit = prep[P_TARGET + i]
        if value != limit:
            return value < limit
    return True


# --- the portable lane-wise kernel ------------------------------------------------------


@njit
def _rounds(s: Any, w: np.ndarray, first: int, last: int) -> Any:
    """Rounds ``first``..``last - 1`` on the state tuple ``s`` (vectors), schedule in ``w``."""
    a, b, c, d, e, f, g, h = s
    n = width(a)
    for i in range(first, last):
        t1 = h + _bsig1(e) + (g ^ (e & (f ^ g))) + vload(w, i * n, a) + vsplat(a, _K[i])
        t2 = _bsig0(a) + ((a & b) | (c & (a | b)))
        h = g
        g = f
        f = e
        e = d + t1
        d = c
        c = b
        b = a
        a = t1 + t2
    return (a, b, c, d, e, f, g, h)


@njit
def _schedule(w: np.ndarray, first: int, last: int, like: Any) -> None:
    """Message words ``first``..``last - 1`` of the schedule in ``w`` (one vector a word)."""
    n = width(like)
    for i in range(first, last):
        x = _ssig1(vload(w, (i - 2) * n, like)) + vload(w, (i - 7) * n, like)
        vstore(w, i * n, x + _ssig0(vload(w, (i - 15) * n, like)) + vload(w, (i - 16) * n, like))


@njit(inline="always")
def _splat8(like: Any, prep: np.ndarray, at: int) -> Any:
    return (
        vsplat(like, prep[at]), vsplat(like, prep[at + 1]), vsplat(like, prep[at + 2]), vsplat(like, prep[at + 3]),
        vsplat(like, prep[at + 4]), vsplat(like, prep[at + 5]), vsplat(like, prep[at + 6]), vsplat(like, prep[at + 7]),
    )  # fmt: skip


@njit(nogil=True)
def _scan_lanes(prep: np.ndarray, start: int, count: int, out: np.ndarray, lane_offsets: Any) -> tuple[int, int]:
    offsets = vfrom_tuple(lane_offsets)
    n = width(offsets)
    full = (1 << n) - 1
    w1 = np.zeros(64 * n, dtype=np.uint32)  # schedule of the header's second block
    w2 = np.zeros(64 * n, dtype=np.uint32)  # schedule of the second hash
    for i in range(3):
        vstore(w1, i * n, vsplat(offsets, prep[P_TAIL + i]))
    vstore(w1, 4 * n, vsplat(offsets, 0x80000000))
    vstore(w1, 15 * n, vsplat(offsets, 640))
    vstore(w1, 16 * n, vsplat(offsets, prep[P_W16]))
    vstore(w1, 17 * n, vsplat(offsets, prep[P_W16 + 1]))
    vstore(w2, 8 * n, vsplat(offsets, 0x80000000))
    vstore(w2, 15 * n, vsplat(offsets, 256))
    mid = _splat8(offsets, prep, P_MID)
    state3 = _splat8(offsets, prep, P_STATE3)
    iv = _splat8(offsets, _IV, 0)
    top_limit = vsplat(offsets, prep[P_TARGET + 7])
    found = 0
    end = start + count
    base = start
    while base < end:
        nonces = vsplat(offsets, base) + offsets
        vstore(w1, 3 * n, vbswap(nonces))
        _schedule(w1, 18, 64, offsets)
        s = _rounds(state3, w1, 3, 64)
        for i in range(8):
            vstore(w2, i * n, s[i] + mid[i])
        _schedule(w2, 16, 61, offsets)
        s = _rounds(iv, w2, 0, 61)
        # After round 60, e is the final h: H7 (the hash's top word) needs no more rounds.
        hits = vle_mask(vbswap(s[4] + iv[7]), top_limit) & (full if end - base >= n else (1 << (end - base)) - 1)
        if hits:
            _schedule(w2, 61, 64, offsets)
            s = _rounds(s, w2, 61, 64)
            h = (s[0] + iv[0], s[1] + iv[1], s[2] + iv[2], s[3] + iv[3],
                 s[4] + iv[4], s[5] + iv[5], s[6] + iv[6], s[7] + iv[7])  # fmt: skip
            for lane in range(n):
                if (hits >> lane) & 1:
                    words = (vlane(h[0], lane), vlane(h[1], lane), vlane(h[2], lane), vlane(h[3], lane),
                             vlane(h[4], lane), vlane(h[5], lane), vlane(h[6], lane), vlane(h[7], lane))  # fmt: skip
                    if _meets(words, prep):
                        out[found] = base + lane
                        found += 1
                        if found == len(out):
                            return found, base + lane + 1 - start
        base += n
    return found, count


@njit(nogil=True, cache=True)
def scan_lanes(prep: np.ndarray, start: int, count: int, out: np.ndarray, lane_offsets: Any) -> tuple[int, int]:
    """Scan ``[start, start + count)``; fills ``out`` in nonce order; (found, hashes done)."""
    return _scan_lanes(prep, start, count, out, lane_offsets)


# --- the SHA-NI kernel -------------------------------------------------------------------


@njit(inline="always")
def _pair_high(wk: Any) -> Any:
    """W+K of the second round pair of a quad moved to lanes 0-1, where rnds2 reads them."""
    return vshuffle(wk, wk, 2, 3, 2, 3)


@njit(inline="always")
def _quad(abef: Any, cdgh: Any, wk: Any) -> tuple[Any, Any]:
    """Four rounds; rnds2 returns the new ABEF and the old ABEF becomes the new CDGH."""
    x = sha_rnds2(cdgh, abef, wk)
    return sha_rnds2(abef, x, _pair_high(wk)), x


@njit(inline="always")
def _next_words(m0: Any, m1: Any, m2: Any, m3: Any) -> Any:
    """W[i..i+3] from W[i-16..i-1]: msg1 (sigma0 part), + W[i-7..i-4], msg2 (sigma1 part)."""
    return sha_msg2(sha_msg1(m0, m1) + vshuffle(m2, m3, 1, 2, 3, 4), m3)


@njit(inline="always")
def _abef(prep: np.ndarray, at: int) -> Any:
    return v4(prep[at + 5], prep[at + 4], prep[at + 1], prep[at])


@njit(inline="always")
def _cdgh(prep: np.ndarray, at: int) -> Any:
    return v4(prep[at + 7], prep[at + 6], prep[at + 3], prep[at + 2])


@njit(inline="always")
def _digest_words(abef: Any, cdgh: Any) -> tuple[Any, Any]:
    """(H0..H3, H4..H7) from the ABEF/CDGH layout."""
    return vshuffle(abef, cdgh, 3, 2, 7, 6), vshuffle(abef, cdgh, 1, 0, 5, 4)


@njit
def _second_hash3(
    a0: Any, c0: Any, a1: Any, c1: Any, a2: Any, c2: Any, m2: Any, m3: Any, iv_abef: Any, iv_cdgh: Any
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """SHA-256 of three 32-byte digests (given as ABEF/CDGH), three streams side by side."""
    p0, q0 = _digest_words(a0, c0)
    p1, q1 = _digest_words(a1, c1)
    p2, q2 = _digest_words(a2, c2)
    x0, y0, x1, y1, x2, y2 = iv_abef, iv_cdgh, iv_abef, iv_cdgh, iv_abef, iv_cdgh
    r0, r1, r2, r3 = m2, m3, m2, m3  # stream-independent words 8-15
    for g in range(4):
        k = vload(_K, 4 * g, m2)
        if g < 2:
            x0, y0 = _quad(x0, y0, (p0 if g == 0 else q0) + k)
            x1, y1 = _quad(x1, y1, (p1 if g == 0 else q1) + k)
            x2, y2 = _quad(x2, y2, (p2 if g == 0 else q2) + k)
        else:
            wk = (r0 if g == 2 else r1) + k
            x0, y0 = _quad(x0, y0, wk)
            x1, y1 = _quad(x1, y1, wk)
            x2, y2 = _quad(x2, y2, wk)
    # Schedules: stream s holds W as (s_w0, s_w1, s_w2, s_w3) = W[i-16..i-1] in quads.
    u0, u1, u2, u3 = p0, q0, r2, r3
    v0, v1, v2, v3 = p1, q1, r2, r3
    z0, z1, z2, z3 = p2, q2, r2, r3
    for g in range(4, 16):
        k = vload(_K, 4 * g, m2)
        nu = _next_words(u0, u1, u2, u3)
        x0, y0 = _quad(x0, y0, nu + k)
        nv = _next_words(v0, v1, v2, v3)
        x1, y1 = _quad(x1, y1, nv + k)
        nz = _next_words(z0, z1, z2, z3)
        x2, y2 = _quad(x2, y2, nz + k)
        u0, u1, u2, u3 = u1, u2, u3, nu
        v0, v1, v2, v3 = v1, v2, v3, nv
        z0, z1, z2, z3 = z1, z2, z3, nz
    return x0 + iv_abef, y0 + iv_cdgh, x1 + iv_abef, y1 + iv_cdgh, x2 + iv_abef, y2 + iv_cdgh


@njit
def _first_hash3(
    prep: np.ndarray, nonces: Any, tail: Any, m1: Any, m2: Any, m3: Any
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """The header's second block for three nonces (lanes 0-2 of ``nonces``, byte-swapped)."""
    # Words 0-3: the tail and each stream's nonce; 4-15: padding, the same for all.
    w0 = vshuffle(tail, nonces, 0, 1, 2, 4)
    w1 = vshuffle(tail, nonces, 0, 1, 2, 5)
    w2 = vshuffle(tail, nonces, 0, 1, 2, 6)
    # Rounds 0-1 were done once per Work: start from their state, at rounds 2-3.
    abef2, cdgh2 = _abef(prep, P_STATE2), _cdgh(prep, P_STATE2)
    k = vload(_K, 0, m1)
    x0 = sha_rnds2(cdgh2, abef2, _pair_high(w0 + k))
    x1 = sha_rnds2(cdgh2, abef2, _pair_high(w1 + k))
    x2 = sha_rnds2(cdgh2, abef2, _pair_high(w2 + k))
    y0 = y1 = y2 = abef2
    for g in range(1, 4):
        wk = (m1 if g == 1 else m2 if g == 2 else m3) + vload(_K, 4 * g, m1)
        x0, y0 = _quad(x0, y0, wk)
        x1, y1 = _quad(x1, y1, wk)
        x2, y2 = _quad(x2, y2, wk)
    u0, u1, u2, u3 = w0, m1, m2, m3
    v0, v1, v2, v3 = w1, m1, m2, m3
    z0, z1, z2, z3 = w2, m1, m2, m3
    for g in range(4, 16):
        k = vload(_K, 4 * g, m1)
        nu = _next_words(u0, u1, u2, u3)
        x0, y0 = _quad(x0, y0, nu + k)
        nv = _next_words(v0, v1, v2, v3)
        x1, y1 = _quad(x1, y1, nv + k)
        nz = _next_words(z0, z1, z2, z3)
        x2, y2 = _quad(x2, y2, nz + k)
        u0, u1, u2, u3 = u1, u2, u3, nu
        v0, v1, v2, v3 = v1, v2, v3, nv
        z0, z1, z2, z3 = z1, z2, z3, nz
    mid_abef, mid_cdgh = _abef(prep, P_MID), _cdgh(prep, P_MID)
    return x0 + mid_abef, y0 + mid_cdgh, x1 + mid_abef, y1 + mid_cdgh, x2 + mid_abef, y2 + mid_cdgh


@njit(inline="always")
def _check(abef: Any, cdgh: Any, prep: np.ndarray) -> bool:
    if bswap32(vlane(cdgh, 0)) > prep[P_TARGET + 7]:  # H7, the top word: almost always out
        return False
    lo, hi = _digest_words(abef, cdgh)
    words = (vlane(lo, 0), vlane(lo, 1), vlane(lo, 2), vlane(lo, 3),
             vlane(hi, 0), vlane(hi, 1), vlane(hi, 2), vlane(hi, 3))  # fmt: skip
    return _meets(words, prep)


@njit(nogil=True)
def _scan_shani(prep: np.ndarray, start: int, count: int, out: np.ndarray) -> tuple[int, int]:
    tail = v4(prep[P_TAIL], prep[P_TAIL + 1], prep[P_TAIL + 2], 0)
    m1 = v4(0x80000000, 0, 0, 0)
    m2 = v4(0, 0, 0, 0)
    m3 = v4(0, 0, 0, 640)
    d2 = v4(0x80000000, 0, 0, 0)
    d3 = v4(0, 0, 0, 256)
    iv_abef, iv_cdgh = _abef(_IV, 0), _cdgh(_IV, 0)
    found = 0
    end = start + count
    base = start
    while base < end:
        nonces = vbswap(v4(base, base + 1, base + 2, 0))
        a0, c0, a1, c1, a2, c2 = _first_hash3(prep, nonces, tail, m1, m2, m3)
        a0, c0, a1, c1, a2, c2 = _second_hash3(a0, c0, a1, c1, a2, c2, d2, d3, iv_abef, iv_cdgh)
        for j in range(3):
            if base + j >= end:
                break
            a, c = (a0, c0) if j == 0 else (a1, c1) if j == 1 else (a2, c2)
            if _check(a, c, prep):
                out[found] = base + j
                found += 1
                if found == len(out):
                    return found, base + j + 1 - start
        base += 3
    return found, count


@njit(nogil=True, cache=True)
def scan_shani(prep: np.ndarray, start: int, count: int, out: np.ndarray) -> tuple[int, int]:
    """As :func:`scan_lanes`, with SHA-NI; call only where the CPU has it."""
    return _scan_shani(prep, start, count, out)


# --- parallel variants (prange), for comparison with one engine thread per core ----------


def parallel_parts() -> int:
    """How many parts a parallel scan is split into: one per Numba thread."""
    return int(get_num_threads())


@njit(nogil=True, cache=True, parallel=True)
def scan_lanes_parallel(
    prep: np.ndarray, start: int, count: int, out: np.ndarray, found: np.ndarray, done: np.ndarray, lane_offsets: Any
) -> None:
    """Split the range into ``len(found)`` parts scanned in parallel; part i uses row i of
    ``out`` and slots ``found[i]``/``done[i]`` (no atomics; the caller merges in order)."""
    parts = len(found)
    step = (count + parts - 1) // parts
    for i in prange(parts):
        lo = start + min(count, i * step)
        hi = start + min(count, (i + 1) * step)
        found[i], done[i] = _scan_lanes(prep, lo, hi - lo, out[i], lane_offsets)


@njit(nogil=True, cache=True, parallel=True)
def scan_shani_parallel(
    prep: np.ndarray, start: int, count: int, out: np.ndarray, found: np.ndarray, done: np.ndarray
) -> None:
    """As :func:`scan_lanes_parallel`, with SHA-NI."""
    parts = len(found)
    step = (count + parts - 1) // parts
    for i in prange(parts):
        lo = start + min(count, i * step)
        hi = start + min(count, (i + 1) * step)
        found[i], done[i] = _scan_shani(prep, lo, hi - lo, out[i])
