"""ehrdebug: diagnose, explain and fix failures when training sequence models on medical data.

The core (this package) never imports ``probes``, ``recipes`` or a shell; heavy libraries are imported
inside the functions that need them so ``ehrdebug --help`` stays instant.
"""

__version__ = "0.1.0"
