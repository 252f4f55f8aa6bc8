"""proxlab: imaging inverse problems ``y = A x + noise`` with learned priors.

Layers (nothing imports upward): ``operators`` and ``metrics`` (0), ``priors`` (1), ``solvers`` (2),
``data`` (4), ``cli``. Heavy optional libraries (matplotlib, scikit-image, scipy, mlxtend) are imported
only where used.
"""

__version__ = "0.1.0"

from . import data, metrics, operators, priors, solvers  # noqa: E402

__all__ = ["operators", "metrics", "priors", "solvers", "data", "__version__"]
