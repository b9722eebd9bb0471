"""Linear probe of cached features (MAE protocol): python probe/linear.py --features out/"""

import sys

from dsbias.probes.run import main_linear

if __name__ == "__main__":
    sys.exit(main_linear(sys.argv[1:]))
