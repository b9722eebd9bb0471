"""Clustering probe of cached features (k-means; NMI, ARI, purity): python probe/cluster.py --features out/"""

from dsbias.cli.cluster import main

if __name__ == "__main__":
    raise SystemExit(main())
