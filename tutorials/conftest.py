"""Settings for running the tutorials with nbval: `pytest --nbval-lax tutorials/`.

The kernel inherits this process's environment, so the variables below reach the notebooks.
"""

import os

os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # no debugger warning from ipykernel
