"""Confidence calibration: turn a classifier's raw top score into the probability that it is right.

A flow acts at one confidence and confirms at a lower one; those numbers only mean something if a
confidence of 0.8 is right about 80% of the time. Platt scaling (Platt 1999): fit
`P(right | s) = sigmoid(a * logit(s) + b)` on scores the classifier gave to examples it was *not*
trained on (cross-validation folds), with their right/wrong outcome. Two parameters, fitted by
Newton's method in a few microseconds, monotone in `s` (a > 0), so it never changes a ranking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PlattCalibrator"]

_EPS = 1e-4
_PRIOR = 1.0
"""Pseudo-counts of one right and one wrong outcome (Platt's smoothed targets), so a fold with no
miss does not promise certainty."""


_Z_MAX = 30.0
_RIDGE = 1e-2
"""A weak pull of (slope, offset) toward the identity, so a fold set the score separates perfectly still
has a finite fit."""


def _logit(s: float) -> float:
    s = min(1.0 - _EPS, max(_EPS, s))
    return math.log(s / (1.0 - s))


@dataclass(slots=True, frozen=True)
class PlattCalibrator:
    """`P(right | raw score)`; `PlattCalibrator()` is the identity."""

    slope: float = 1.0
    offset: float = 0.0

    @classmethod
    def fit(cls, scores: Sequence[float], right: Sequence[bool]) -> PlattCalibrator:
        """Fit on held-out `scores` (0..1) and whether each was right; the identity when the outcomes
        cannot carry a fit (too few, all right, all wrong, or a score that falls as accuracy rises)."""
        if len(scores) != len(right):
            raise ValueError(f"{len(scores)} scores but {len(right)} outcomes")
        n_right = sum(right)
        if len(scores) < 10 or n_right in (0, len(right)):
            return cls()
        x = np.array([_logit(s) for s in scores])
        # Platt's targets: (N+ + 1)/(N+ + 2) and 1/(N- + 2) instead of 1 and 0.
        hi = (n_right + _PRIOR) / (n_right + 2 * _PRIOR)
        lo = _PRIOR / (len(right) - n_right + 2 * _PRIOR)
        t = np.where(np.asarray(right, dtype=bool), hi, lo)
        params = np.array([1.0, 0.0])
        for _ in range(100):
            grad, hess = _gradient(params, x, t)
            step = np.linalg.solve(hess, grad)
            # Damped Newton: halve the step until the (smoothed-target) log loss falls.
            rate, loss = 1.0, _loss(params, x, t)
            while rate > 1e-6 and _loss(params - rate * step, x, t) > loss:
                rate /= 2
            params = params - rate * step
            if float(np.abs(rate * step).sum()) < 1e-9:
                break
        a, b = float(params[0]), float(params[1])
        if not (a > 0.0 and math.isfinite(a) and math.isfinite(b)):
            return cls()
        return cls(a, b)

    def __call__(self, score: float) -> float:
        if score <= 0.0:
            return 0.0
        z = min(_Z_MAX, max(-_Z_MAX, self.slope * _logit(score) + self.offset))
        return 1.0 / (1.0 + math.exp(-z))


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -_Z_MAX, _Z_MAX))), dtype=np.float64)


def _loss(params: npt.NDArray[np.float64], x: npt.NDArray[np.float64], t: npt.NDArray[np.float64]) -> float:
    p = np.clip(_sigmoid(params[0] * x + params[1]), 1e-12, 1 - 1e-12)
    ridge = _RIDGE * ((params[0] - 1.0) ** 2 + params[1] ** 2)
    return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).sum() + ridge)


def _gradient(
    params: npt.NDArray[np.float64], x: npt.NDArray[np.float64], t: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    p = _sigmoid(params[0] * x + params[1])
    w = np.maximum(p * (1.0 - p), 1e-12)
    grad = np.array([np.dot(p - t, x) + 2 * _RIDGE * (params[0] - 1.0), np.sum(p - t) + 2 * _RIDGE * params[1]])
    hess = np.array([[np.dot(w, x * x) + 2 * _RIDGE, np.dot(w, x)], [np.dot(w, x), np.sum(w) + 2 * _RIDGE]])
    return grad, hess
