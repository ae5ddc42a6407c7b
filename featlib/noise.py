"""How an agent errs: noise models for :class:`featlib.Agent`.

The paper's agent is an oracle: it answers every triplet exactly and hands over the exact rescaling
``lambda`` of Lemma 2.  Feedback people and models give is noisier.  Each model here is a small
frozen object passed as ``Agent(phi, noise=..., seed=...)``:

* :class:`Exact` (the default): the oracle.
* :class:`Flip` ``(eps)``: each answer ``sign(d(x,y) - d(x,z))`` is replaced by its opposite with
  probability ``eps`` (a tie stays a tie).
* :class:`Logistic` ``(temperature)``: a Bradley-Terry answer, ``+1`` with probability
  ``sigmoid(gap / temperature)`` where ``gap = (d(x,y) - d(x,z)) / (d(x,y) + d(x,z))`` is the
  relative distance gap, else ``-1``: near-ties are coin flips, clear cases are answered right.
* :class:`LambdaNoise` ``(sigma)``: answers are exact, but the rescaling that ``equalize`` applies
  is off by a log-normal factor, ``(1 + lambda) * exp(sigma * N(0, 1))``, so the pairs are only
  approximately equalities.

Every model is vectorised (one draw per triplet) and reproducible from the agent's seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import _checks

__all__ = ["NoiseModel", "Exact", "Flip", "Logistic", "LambdaNoise"]


class NoiseModel:
    """Base class: ``answers(exact, gap, rng)`` perturbs sign answers, ``rescale(factor, rng)`` the
    squared rescaling ``1 + lambda`` of Lemma 2."""

    def answers(self, exact, gap, rng):  # noqa: D102 - documented in the class docstring
        return exact

    def rescale(self, factor, rng):  # noqa: D102
        return factor


@dataclasses.dataclass(frozen=True)
class Exact(NoiseModel):
    """The paper's oracle: exact answers and exact rescalings."""


@dataclasses.dataclass(frozen=True)
class Flip(NoiseModel):
    """Each non-tie answer is flipped with probability ``eps`` (in [0, 0.5))."""

    eps: float

    def __post_init__(self):
        v = _checks.check_real(self.eps, "eps", low=0)
        if v >= 0.5:
            raise _checks.ArgumentError(f"eps must lie in [0, 0.5) (0.5 is a coin; above it answers are "
                                        f"anti-correlated); got {self.eps!r}.")

    def answers(self, exact, gap, rng):
        flip = rng.random(np.shape(exact)) < self.eps
        return np.where(flip, -exact, exact)


@dataclasses.dataclass(frozen=True)
class Logistic(NoiseModel):
    """Bradley-Terry answers: ``P(+1) = sigmoid(gap / temperature)`` on the relative gap in [-1, 1]."""

    temperature: float

    def __post_init__(self):
        _checks.check_real(self.temperature, "temperature", low=0, low_open=True)

    def answers(self, exact, gap, rng):
        p_plus = 1.0 / (1.0 + np.exp(-np.asarray(gap, dtype=float) / self.temperature))
        return np.where(rng.random(np.shape(exact)) < p_plus, 1, -1)


@dataclasses.dataclass(frozen=True)
class LambdaNoise(NoiseModel):
    """Exact answers; the rescaling ``1 + lambda`` of ``equalize`` is multiplied by ``exp(sigma N(0,1))``."""

    sigma: float

    def __post_init__(self):
        _checks.check_real(self.sigma, "sigma", low=0)

    def rescale(self, factor, rng):
        return factor * np.exp(self.sigma * rng.standard_normal(np.shape(factor)))


def as_noise(noise) -> NoiseModel:
    if noise is None:
        return Exact()
    if not isinstance(noise, NoiseModel):
        raise _checks.ArgumentTypeError(
            f"noise must be None or a featlib.noise model (Exact(), Flip(eps), Logistic(temperature), "
            f"LambdaNoise(sigma)); got {type(noise).__name__}.")
    return noise
