"""kNN probe of cached features (DINO protocol): python probe/knn.py --features out/"""

import sys

from dsbias.probes.run import main_knn

if __name__ == "__main__":
    sys.exit(main_knn(sys.argv[1:]))
