"""Write features to disk for the probes.

    python ssl/extract.py --run out/                          # a finished pretraining/classification run
    python ssl/extract.py --out out/vitb data=toy model.name=vit_base_patch16_224 model.weights=/path/w.safetensors
"""

from dsbias.cli_extract import main

if __name__ == "__main__":
    main()
