"""Spiking networks in plain torch with snnTorch's surrogate gradients: LIF neurons (``neurons``),
encoders (``encoders``), a spiking MLP that SB3 can use in place of its MLPs with spike and energy
accounting (``network``), a spiking CNN and its ANN twin for images (``conv``), and the ``agent.snn``
settings (``config``, importable without torch)."""
