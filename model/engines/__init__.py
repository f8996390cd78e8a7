"""Where the row sums of the objective are computed: the training loop asks an engine, not X.

The registry maps an engine's name to its class; the solver, the estimator and the run layer
use only what :class:`~softreg.model.engines.base.Engine` declares (``evaluate``,
``lipschitz``, ``column_moments``, ``set_standardization``, ``probabilities``, ``sibling``
and the ``with`` lifetime), so a new engine is its own module plus one line here.

- ``memory``: X in memory (dense or CSR), row blocks on a thread pool.
- ``stream``: row blocks read from a prepared ``.npy`` or a block source pass by pass (out of core).
- ``dask``: row blocks kept on the workers of a Dask cluster.
"""

from __future__ import annotations

from softreg.model.engines.base import BlockSource, Engine, EngineError, EngineLost, Evaluation, WeightedView
from softreg.model.engines.dask import DaskEngine
from softreg.model.engines.memory import MemoryEngine
from softreg.model.engines.stream import StreamEngine

ENGINES: dict[str, type[Engine]] = {"memory": MemoryEngine, "stream": StreamEngine, "dask": DaskEngine}

__all__ = ["ENGINES", "BlockSource", "DaskEngine", "Engine", "EngineError", "EngineLost", "Evaluation",
           "MemoryEngine", "StreamEngine", "WeightedView"]
