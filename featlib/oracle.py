"""Sign-only access to an agent, with every comparison counted.

A :class:`ComparisonOracle` wraps a :class:`featlib.Agent` and exposes only
``compare(x, y, z) = sign(d(x, y) - d(x, z))`` (with the agent's noise model, e.g.
:class:`featlib.noise.Flip`): no distances, no rescaling.  It counts every answer it gives
(``queries``; a batch of k triplets costs k) and refuses, with :class:`BudgetExceededError`, a
request that would go past its ``budget``.  This is the currency of "which is closer?" feedback from
people or an LLM judge; :mod:`featlib.active` learns from it.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .feedback import Agent

__all__ = ["ComparisonOracle", "BudgetExceededError"]


class BudgetExceededError(_checks.FeatlibError, RuntimeError):
    """A comparison request would exceed the oracle's budget."""


class ComparisonOracle:
    """Sign answers of an agent, counted, within an optional budget.

    Parameters
    ----------
    agent : Agent
        Answers the comparisons (its noise model applies).
    budget : int, optional
        Most comparisons this oracle answers in total; None: unlimited.
    """

    def __init__(self, agent: Agent, *, budget: int | None = None):
        if not isinstance(agent, Agent):
            raise _checks.ArgumentTypeError(f"ComparisonOracle expects a featlib.Agent; got {type(agent).__name__}.")
        if budget is not None:
            budget = _checks.check_positive_int(budget, "budget", minimum=0)
        self._agent = agent
        self.budget = budget
        self.queries = 0

    @property
    def p(self) -> int:
        """Dimension of the activations."""
        return self._agent.p

    @property
    def tie_rtol(self) -> float:
        """The agent's tie tolerance: an answer 0 means ``|d(x,y) - d(x,z)| <= tie_rtol (d(x,y) + d(x,z))``."""
        return self._agent.tie_rtol

    @property
    def remaining(self):
        """Comparisons left in the budget (None when unlimited)."""
        return None if self.budget is None else self.budget - self.queries

    def compare(self, x, y, z):
        """``sign(d(x, y) - d(x, z))`` in {+1, 0, -1}, batched over leading axes like
        :meth:`featlib.Agent.compare`; each triplet counts as one comparison."""
        shape = np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z))
        k = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        if self.budget is not None and self.queries + k > self.budget:
            raise BudgetExceededError(
                f"this request needs {k} comparison(s) but only {self.budget - self.queries} of the budget "
                f"{self.budget} are left; raise the budget or ask for less precision.")
        out = self._agent.compare(x, y, z)
        self.queries += k
        return out

    def __repr__(self) -> str:
        return f"ComparisonOracle(p={self.p}, queries={self.queries}, budget={self.budget})"
