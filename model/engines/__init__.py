"""Where the row sums of the objective are computed: the training loop asks an engine, not X.

The registry maps an engine's name to its class; the solver, the estimator and the run layer
use only what :class:`~softreg.model.engines.base.Engine` declares (``objective``,
``lipschitz``, ``column_moments``, ``set_standardization``, ``probabilities``, ``map_blocks``,
``sibling`` and the ``with`` lifetime), so a new engine is its own module plus one line here.

- ``memory``: X in memory (dense or CSR), row blocks on a thread pool.
- ``stream``: row blocks read from a prepared ``.npy`` or a block source pass by pass (out of core).
- ``dask``: row blocks kept on the workers of a Dask cluster.
"""

from __future__ import annotations

from importlib import import_module

# name -> (module, class): the registry. Engines are imported when asked for, so reading the
# names (the config's choices, the CLI's help) loads no numpy.
ENGINES: dict[str, tuple[str, str]] = {
    "memory": ("softreg.model.engines.memory", "MemoryEngine"),
    "stream": ("softreg.model.engines.stream", "StreamEngine"),
    "dask": ("softreg.model.engines.dask", "DaskEngine"),
}
_SHARED = {name: "softreg.model.engines.base" for name in
           ("BlockSource", "Engine", "EngineError", "EngineLost", "FixedBias", "ObjectiveValue", "WeightedView")}
_CLASSES = {class_name: module for module, class_name in ENGINES.values()}

__all__ = ["ENGINES", "engine_class", *_SHARED, *_CLASSES]


def engine_class(name: str):
    """The engine class registered under ``name``."""
    module, class_name = ENGINES[name]
    return getattr(import_module(module), class_name)


def __getattr__(name: str):
    module = _SHARED.get(name) or _CLASSES.get(name)
    if module is None:
        raise AttributeError(f"module 'softreg.model.engines' has no attribute {name!r}")
    return getattr(import_module(module), name)
