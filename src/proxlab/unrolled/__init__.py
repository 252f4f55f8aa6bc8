"""Learned unrolled networks built from the classic solvers' steps (layer 3).

:class:`Unrolled` runs any step of the table :data:`proxlab.solvers.STEP_TABLE` for K stages;
:class:`BlockUnrolled`, :class:`ISTANet` and :func:`resnet_unrolled` are PGD networks of it for block
compressed sensing. :class:`LISTA` is the one exception, documented in :mod:`proxlab.unrolled.lista`: it
learns the gradient map itself (matrices, not scalars around a fixed operator), so it is not a table entry.
:class:`FlowPGD` (deep unfolding with GLOW priors) is built from the table's ``gradient_step`` and the flow's
latent shrinkage; its start :math:`g(0)` and its last fold (a gradient step without shrinkage) are its own.
:class:`FISTANet` (sparse-view CT) shares one learned block across its phases and learns six scalars.
:class:`ADMMNet` (Deep ADMM-Net, CS-MRI) has its own layers (exact Fourier solve, DCT-basis filters, learned
piecewise-linear shrinkage) and loads the authors' released MATLAB nets; :class:`ADMMCSNet` is its generic
successor (a learned conv-PLF-conv denoising block in the z-step). :func:`istanet_from_pytorch` reads the ISTA-Net(+)
weights the authors released with ISTA-Net-PyTorch (block CS and CS-MRI).
"""

from .base import STEPS, AuxProx, Unrolled, UnrolledOutput
from .istanet import BlockUnrolled, ISTANet, ISTANetProx, ResNetProx, resnet_unrolled
from .flow_pgd import FlowPGD
from .fistanet import FISTANet
from .lista import LISTA, ista_parameters
from .admmnet import ADMMNet
from .admmcsnet import ADMMCSNet
from ._istanet_io import istanet_from_pytorch

__all__ = ["Unrolled", "UnrolledOutput", "AuxProx", "STEPS", "LISTA", "ista_parameters", "BlockUnrolled", "ISTANet",
           "ISTANetProx", "ResNetProx", "resnet_unrolled", "FlowPGD", "FISTANet", "ADMMNet",
           "ADMMCSNet", "istanet_from_pytorch"]
