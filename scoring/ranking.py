"""Rank statistics of Monte Carlo utilities: how sure a ranking of bids is (SMAA-2 style).

``utilities`` is a (samples, bids) matrix, higher is better. In each sample a bid's rank is 1 + the
number of bids with a strictly greater utility, so tied bids share the better rank.

Ranks per sample: up to ``_COUNT_MAX`` bids by counting the strictly greater values (N² compares,
but branch-free and SIMD: at 50 bids 7x faster than Numba's argsort, which random keys make
branch-misprediction bound); above it by a radix sort on float32-rounded keys whose runs of
equal keys are then put in exact float64 order (``_rank_by_radix``): linear in N, ties included.

Parallelism: samples are split into one chunk per thread (jobs under a few milliseconds run as one
chunk in the caller's thread, see ``_chunks``); each chunk counts into its own buffer (N x N int64
for the matrices) and the buffers are summed afterwards, so the counts, and the fractions, do not
depend on the thread count.
Pairwise counts are taken over blocks of samples whose ranks are stored bid-major in 16 bits, so
the inner loop over samples compares 16 pairs per AVX2 instruction into 16-bit lane counters.

Exactness: ranks follow the float64 order exactly (float32 keys only pre-sort). Integers of
magnitude above 2**53 and long doubles that float64 cannot hold exactly are first replaced by their
index among the distinct values of the whole array (an order-preserving map), so they are ranked
exactly rather than rounded into ties.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from scoring.config import NUMBA_OPTIONS, parallel_section, register_warmer

__all__ = ["MAX_PAIRWISE_BIDS", "first_rank_probability", "pairwise_winning", "rank_acceptability"]

# Counting beats the radix sort up to about here on this machine (benchmarks/ranking.py --crossover).
_COUNT_MAX = 320
# Ranks are stored in int16 for the pairwise counts; the N x N float64 answer would be 8.6 GB anyway.
MAX_PAIRWISE_BIDS = 32768
# Samples per pairwise block (int16 lane counters need < 32768; 2048 keeps a block of 1000 bids in
# L3), and padding so that rows of the block do not alias to the same L1 sets.
_PAIR_BLOCK = 2048
_PAD = 32
# Below this many compare-equivalents (about 3 ms of one core) a job runs serially, see ``_chunks``.
_PARALLEL_WORK = 30_000_000
_EXACT_INT = 2**53
_SIGN_BIT = -(2**63)  # IEEE double bits as int64: the sign, the exponent, the rest
_EXPONENT = 0x7FF0000000000000
_LOW_BITS = 0x7FFFFFFFFFFFFFFF
_LOW_31 = 0x7FFFFFFF  # the same for float32 bits
_LOW_32 = 0xFFFFFFFF


# --- input -----------------------------------------------------------------------------------------


def _matrix(utilities: object) -> np.ndarray:
    """A C-contiguous float64 copy (or view) of ``utilities`` that orders every sample exactly."""
    try:
        arr = np.asarray(utilities)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"utilities must be a 2-D array of real numbers: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"utilities must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"utilities must be a 2-D array (samples x bids), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"utilities needs at least one sample and one bid, got shape {arr.shape}")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:  # long double: float64 may round or overflow
        _check_finite(arr)
        with np.errstate(over="ignore"):
            as_float = arr.astype(np.float64)
        if np.array_equal(as_float, arr):
            return as_float
        return _dense_ranks(arr)
    wide_int = arr.dtype.kind in "iu" and arr.dtype.itemsize == 8
    if wide_int and (arr.min() < -_EXACT_INT or arr.max() > _EXACT_INT):
        return _dense_ranks(arr)
    return np.ascontiguousarray(arr, dtype=np.float64)


def _dense_ranks(arr: np.ndarray) -> np.ndarray:
    _, inverse = np.unique(arr, return_inverse=True)
    return np.ascontiguousarray(inverse.reshape(arr.shape), dtype=np.float64)


def _check_finite(arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        s, i = (int(x) for x in np.argwhere(bad)[0])
        raise ValueError(f"utilities must be finite, got {arr[s, i]} at sample {s}, bid {i}")


# --- kernels ---------------------------------------------------------------------------------------


@njit(**NUMBA_OPTIONS)
def _nonfinite(row):
    """How many entries of ``row`` are NaN or infinite (x - x is NaN exactly for those)."""
    bad = 0
    for i in range(row.shape[0]):
        x = row[i]
        bad += (x - x) != 0.0
    return bad


@njit(**NUMBA_OPTIONS)
def _rank_by_counting(row, rank):
    n = row.shape[0]
    for i in range(n):
        x = row[i]
        greater = 0
        for k in range(n):
            greater += row[k] > x
        rank[i] = greater


@njit(**NUMBA_OPTIONS)
def _digit_counts(words, hist, n, first, last):
    hist[first:last + 1, :] = 0
    for i in range(n):
        w = words[i]
        for p in range(first, last + 1):
            hist[p, (w >> (8 * p)) & 255] += 1


@njit(**NUMBA_OPTIONS)
def _place(src, dst, h, n, shift):
    """One stable counting pass by the byte at ``shift``: ``h`` holds that byte's digit counts and
    becomes the running offsets. False (nothing moved) when every word has the same digit."""
    if h[(src[0] >> shift) & 255] == n:
        return False
    total = 0
    for d in range(256):
        c = h[d]
        h[d] = total
        total += c
    for i in range(n):
        w = src[i]
        d = (w >> shift) & 255
        dst[h[d]] = w
        h[d] += 1
    return True


@njit(**NUMBA_OPTIONS)
def _sort_words(words, spare, hist, n, first, last):
    """Stable LSD radix sort of ``words[:n]`` (bits read as unsigned) by bytes first..last; returns
    the buffer that holds the result."""
    _digit_counts(words, hist, n, first, last)
    for p in range(first, last + 1):
        if _place(words, spare, hist[p], n, 8 * p):
            words, spare = spare, words
    return words


@njit(**NUMBA_OPTIONS)
def _sort_run(row, words, start, stop, fkey, key, key2, pay, pay2, hist):
    """Orders ``words[start:stop]`` (index in the low 32 bits) by the float64 value ``row[index]``:
    an 8-pass radix sort of exact 64-bit keys, carrying the words along."""
    m = stop - start
    for a in range(m):
        fkey[a] = row[words[start + a] & _LOW_32] + 0.0
    for a in range(m):
        k = key[a]
        key[a] = (k ^ ((k >> 63) & _LOW_BITS)) ^ _SIGN_BIT
        pay[a] = words[start + a]
    _digit_counts(key, hist, m, 0, 7)
    for p in range(8):
        shift = 8 * p
        h = hist[p]
        if h[(key[0] >> shift) & 255] == m:
            continue
        total = 0
        for d in range(256):
            c = h[d]
            h[d] = total
            total += c
        for a in range(m):
            k = key[a]
            d = (k >> shift) & 255
            key2[h[d]] = k
            pay2[h[d]] = pay[a]
            h[d] += 1
        key, key2 = key2, key
        pay, pay2 = pay2, pay
    for a in range(m):
        words[start + a] = pay[a]


@njit(**NUMBA_OPTIONS)
def _rank_by_radix(row, rank, scratch):
    """``rank[i]`` = how many entries of ``row`` are strictly greater than ``row[i]``.

    Words pack an order-preserving key of the value rounded to float32 (rounding is monotonic) above
    the index, and are radix sorted on those 4 bytes. Runs of equal float32 keys (ties, or values
    within a float32 rounding) are then put in float64 order: usually they already are; short ones
    by insertion, long ones by an exact 64-bit radix sort. So the work stays linear in the bids.
    Keys: +0.0 replaces -0.0 (they are equal), the IEEE bits of negatives are flipped below the sign,
    and the sign bit is flipped, which orders the bits (read as unsigned) like the numbers.
    """
    f32, k32, words, spare, fkey, key, key2, pay, pay2, hist = scratch
    n = row.shape[0]
    for i in range(n):
        f32[i] = np.float32(row[i]) + np.float32(0.0)
    for i in range(n):
        k = np.int64(k32[i])
        k ^= (k >> 31) & _LOW_31
        words[i] = ((k << 32) ^ _SIGN_BIT) | i
    words = _sort_words(words, spare, hist, n, 4, 7)
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and (words[stop] >> 32) == (words[start] >> 32):
            stop += 1
        ordered = True
        for a in range(start + 1, stop):
            if row[words[a] & _LOW_32] < row[words[a - 1] & _LOW_32]:
                ordered = False
                break
        if not ordered and stop - start <= 32:
            for a in range(start + 1, stop):
                w = words[a]
                v = row[w & _LOW_32]
                j = a
                while j > start and row[words[j - 1] & _LOW_32] > v:
                    words[j] = words[j - 1]
                    j -= 1
                words[j] = w
        elif not ordered:
            _sort_run(row, words, start, stop, fkey, key, key2, pay, pay2, hist)
        start = stop
    p = n - 1  # ascending: walk the tie groups down from the top
    while p >= 0:
        v = row[words[p] & _LOW_32]
        q = p
        while q > 0 and row[words[q - 1] & _LOW_32] == v:
            q -= 1
        for j in range(q, p + 1):
            rank[words[j] & _LOW_32] = n - 1 - p
        p = q - 1


@njit(**NUMBA_OPTIONS)
def _rank_row(row, rank, scratch):
    if row.shape[0] <= _COUNT_MAX:
        _rank_by_counting(row, rank)
    else:
        _rank_by_radix(row, rank, scratch)


@njit(**NUMBA_OPTIONS)
def _scratch(n):
    """Per-thread buffers for ``_rank_by_radix``; k32 and key are integer views of f32 and fkey."""
    f32 = np.empty(n, np.float32)
    fkey = np.empty(n, np.float64)
    return (f32, f32.view(np.int32), np.empty(n, np.int64), np.empty(n, np.int64), fkey, fkey.view(np.int64),
            np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64), np.empty((8, 256), np.int64))


# Each job is a serial ``_chunk_*`` function over a range of samples, counting into its own buffer and
# returning how many entries were not finite; ``_kernel_*`` runs one chunk per thread.


@njit(**NUMBA_OPTIONS)
def _chunk_acceptability(u, start, stop, counts):
    """counts[i, r] += 1 for each sample where bid i has 0-based rank r."""
    n = u.shape[1]
    rank = np.empty(n, np.int64)
    scratch = _scratch(n)
    nonfinite = 0
    for s in range(start, stop):
        row = u[s]
        nonfinite += _nonfinite(row)
        _rank_row(row, rank, scratch)
        for i in range(n):
            counts[i, rank[i]] += 1
    return nonfinite


@njit(**NUMBA_OPTIONS)
def _count_pairs(block, m, counts):
    """counts[i, k] += #(block[i, :m] < block[k, :m]), i.e. bid i ranked better than bid k."""
    n = block.shape[0]
    for i in range(n):
        a = block[i]
        for k in range(i + 1, n):
            b = block[k]
            better = np.int16(0)  # 16-bit counters keep 16 lanes per AVX2 vector; m < 32768
            worse = np.int16(0)
            for j in range(m):
                better = np.int16(better + (a[j] < b[j]))
                worse = np.int16(worse + (a[j] > b[j]))
            counts[i, k] += better
            counts[k, i] += worse


@njit(**NUMBA_OPTIONS)
def _chunk_pairwise(u, start, stop, counts):
    """counts[i, k] += the samples in which bid i has a strictly greater utility than bid k."""
    n = u.shape[1]
    rank = np.empty(n, np.int64)
    scratch = _scratch(n)
    width = min(_PAIR_BLOCK, stop - start)
    block = np.empty((n, width + _PAD), np.int16)  # bid-major: a bid's ranks are contiguous
    nonfinite = 0
    for first in range(start, stop, width):
        m = min(width, stop - first)
        for j in range(m):
            row = u[first + j]
            nonfinite += _nonfinite(row)
            _rank_row(row, rank, scratch)
            for i in range(n):
                block[i, j] = rank[i]
        _count_pairs(block, m, counts)
    return nonfinite


@njit(**NUMBA_OPTIONS)
def _chunk_first(u, start, stop, counts):
    """counts[i] += 1 for each sample where bid i attains the maximum. The maximum is taken over
    order-preserving integer keys, as LLVM vectorises an integer max but not a float one (NaN rules)."""
    n = u.shape[1]
    bits = u.view(np.int64)
    top_float = np.empty(1, np.float64)
    top_bits = top_float.view(np.int64)
    nonfinite = 0
    for s in range(start, stop):
        b = bits[s]
        top = b[0] ^ ((b[0] >> 63) & _LOW_BITS)
        for i in range(n):
            x = b[i]
            nonfinite += (x & _EXPONENT) == _EXPONENT
            k = x ^ ((x >> 63) & _LOW_BITS)
            top = k if k > top else top
        top_bits[0] = top ^ ((top >> 63) & _LOW_BITS)  # the map is its own inverse
        best = top_float[0]
        row = u[s]
        for i in range(n):
            counts[i] += row[i] == best  # as floats, so -0.0 ties with a top of +0.0
    return nonfinite


@njit(parallel=True, **NUMBA_OPTIONS)
def _kernel_acceptability(u, counts, bad):
    per = -(-u.shape[0] // counts.shape[0])
    for c in prange(counts.shape[0]):
        bad[c] = _chunk_acceptability(u, c * per, min(u.shape[0], (c + 1) * per), counts[c])


@njit(parallel=True, **NUMBA_OPTIONS)
def _kernel_pairwise(u, counts, bad):
    per = -(-u.shape[0] // counts.shape[0])
    for c in prange(counts.shape[0]):
        bad[c] = _chunk_pairwise(u, c * per, min(u.shape[0], (c + 1) * per), counts[c])


@njit(parallel=True, **NUMBA_OPTIONS)
def _kernel_first(u, counts, bad):
    per = -(-u.shape[0] // counts.shape[0])
    for c in prange(counts.shape[0]):
        bad[c] = _chunk_first(u, c * per, min(u.shape[0], (c + 1) * per), counts[c])


_ACCEPTABILITY = (_chunk_acceptability, _kernel_acceptability)
_PAIRWISE = (_chunk_pairwise, _kernel_pairwise)
_FIRST = (_chunk_first, _kernel_first)


# --- public functions ------------------------------------------------------------------------------


def _chunks(samples: int, work: int) -> int:
    """One chunk per thread, or a single chunk run serially in the caller's thread when the job is
    small. A parallel launch ends when the slowest thread does: with the cores busy (other requests,
    other processes) a worker can wait a scheduler tick or two (4-12 ms measured here) before it
    starts, so halving a few milliseconds of work is not worth the risk (on idle cores a launch
    costs only microseconds)."""
    if work < _PARALLEL_WORK:
        return 1
    return max(1, min(numba.get_num_threads(), samples))


def _ranking_work(samples: int, bids: int) -> int:
    # Counting costs ~bids compares per entry; past the crossover the radix sort costs about as much.
    return samples * bids * min(bids, _COUNT_MAX)


def _count(kernels, u: np.ndarray, shape: tuple[int, ...], chunks: int) -> np.ndarray:
    chunk, kernel = kernels
    counts = np.zeros((chunks, *shape), np.int64)
    bad = np.zeros(chunks, np.int64)
    with np.errstate(invalid="ignore", over="ignore"):  # interpreted, inf - inf and float32 overflow warn
        if chunks == 1:
            bad[0] = chunk(u, 0, u.shape[0], counts[0])
        else:
            with parallel_section():
                kernel(u, counts, bad)
    if bad.any():
        _check_finite(u)
    return counts.sum(axis=0) / u.shape[0]


def rank_acceptability(utilities: object) -> np.ndarray:
    """(bids, bids) float64: ``[i, r]`` is the fraction of samples in which bid i has rank r + 1."""
    u = _matrix(utilities)
    s, n = u.shape
    return _count(_ACCEPTABILITY, u, (n, n), _chunks(s, _ranking_work(s, n)))


def pairwise_winning(utilities: object) -> np.ndarray:
    """(bids, bids) float64: ``[i, k]`` is the fraction of samples with u_i > u_k strictly (diagonal 0)."""
    u = _matrix(utilities)
    s, n = u.shape
    if n > MAX_PAIRWISE_BIDS:
        raise ValueError(f"pairwise_winning takes at most {MAX_PAIRWISE_BIDS} bids, got {n}")
    return _count(_PAIRWISE, u, (n, n), _chunks(s, _ranking_work(s, n) + s * n * n // 4))


def first_rank_probability(utilities: object) -> np.ndarray:
    """(bids,) float64: the fraction of samples in which bid i has rank 1 (no bid strictly ahead)."""
    u = _matrix(utilities)
    s, n = u.shape
    return _count(_FIRST, u, (n,), _chunks(s, 4 * s * n))


@register_warmer
def _warm() -> None:
    u = np.array([[1.0, 2.0, 2.0], [3.0, 1.0, 2.0]])
    for kernels, shape in ((_ACCEPTABILITY, (3, 3)), (_PAIRWISE, (3, 3)), (_FIRST, (3,))):
        for chunks in (1, 2):  # the serial path and the parallel kernel
            _count(kernels, u, shape, chunks)
