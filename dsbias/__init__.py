"""dsbias: measure dataset bias by naming the dataset an image came from (Liu & He, 2024)."""

__version__ = "0.1.0"
