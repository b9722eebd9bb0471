"""Anatomy table in a minute on a CPU: a linear probe on the network input after each transformation.

    python tools/anatomy_pixels.py --out out/anatomy data=toy            # all built-in transformations
    python tools/anatomy_pixels.py --out out/anat data=toy --transforms reference,grayscale,lpf
"""

from dsbias.anatomy.cli import pixel_probe_main

if __name__ == "__main__":
    pixel_probe_main()
