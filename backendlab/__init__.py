"""backendlab: backend interview topics taught by running them live.

Notebooks import this kit; everything worth testing lives here, not in the notebooks.
"""

__version__ = "0.1.0"
