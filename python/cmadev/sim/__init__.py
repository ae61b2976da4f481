"""The simulation floor: the only code that talks to the engine (``cmadev._core``). The
machine's memory (:mod:`~cmadev.sim.mm`), the dma-heap and devices built on it, the machine
(:mod:`~cmadev.sim.machine`) and the scenario runner, the ``"model"`` backend
(:mod:`~cmadev.sim.runner`)."""
