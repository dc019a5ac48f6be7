import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The solutions live next to the notebooks, as `tutorials/solutions/<set>.py`.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tutorials"))
