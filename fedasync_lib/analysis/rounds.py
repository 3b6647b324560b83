"""How many clients a synchronous round must ask when some of them do not report.

Each asked client reports in time (before the round's deadline, and without dropping out)
with probability ``q``, independently of the others. Of ``n`` asked clients, the number
that report is then Binomial(n, q), and the round gets its K reports with probability

    P(X >= K) = sum_{j=K}^{n} C(n, j) q^j (1 - q)^(n - j).

It grows with ``n``; the fewest clients to ask for a round that fills with probability at
least ``confidence`` is the smallest ``n`` at which it reaches ``confidence``. Over-selection
in production FL (Bonawitz et al. 2019, as issue #31 describes it; the paper was not read
here) asks about 30 % more clients than it needs, which this sizes for a given ``q``.
"""

from __future__ import annotations

import math


def prob_at_least(k: int, n: int, q: float) -> float:
    """``P(X >= k)`` for X ~ Binomial(n, q), summed in log space (no overflow for large n)."""
    if k <= 0:
        return 1.0
    if k > n or q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0
    log_q, log_p = math.log(q), math.log1p(-q)
    terms = [math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
             + j * log_q + (n - j) * log_p for j in range(k, n + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def fewest_clients(k: int, q: float, confidence: float) -> int:
    """The smallest ``n`` with ``prob_at_least(k, n, q) >= confidence`` (0 < q, confidence < 1).

    Found by doubling, then bisection: ``P`` grows with ``n``."""
    if not 0.0 < q <= 1.0 or not 0.0 < confidence < 1.0 or k < 1:
        raise ValueError(f"k={k!r}, q={q!r}, confidence={confidence!r}: expected k >= 1, "
                         f"q in (0, 1] and confidence in (0, 1)")
    high = k
    while prob_at_least(k, high, q) < confidence:
        high *= 2
    low = max(k, high // 2)
    while low < high:
        mid = (low + high) // 2
        if prob_at_least(k, mid, q) >= confidence:
            high = mid
        else:
            low = mid + 1
    return low
