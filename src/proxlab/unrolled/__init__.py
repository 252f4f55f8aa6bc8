"""Learned unrolled networks built from the classic solvers' steps (layer 3)."""

from .base import STEPS, Unrolled
from .istanet import BlockUnrolled, ISTANet, ISTANetProx, ResNetProx, istanet_loss, resnet_unrolled
from .lista import LISTA, ista_parameters

__all__ = ["Unrolled", "STEPS", "LISTA", "ista_parameters", "BlockUnrolled", "ISTANet", "ISTANetProx", "ResNetProx",
           "istanet_loss", "resnet_unrolled"]
