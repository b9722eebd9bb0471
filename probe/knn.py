"""kNN probe of cached features (DINO protocol): python probe/knn.py --features out/"""

from dsbias.cli.knn import main

if __name__ == "__main__":
    raise SystemExit(main())
