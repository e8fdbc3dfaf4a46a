"""tvbench: benchmark and evaluation harness for text-vision co-instructed image editing."""

__version__ = "0.1.0"
