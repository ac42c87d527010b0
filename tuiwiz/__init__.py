"""tuiwiz: configure and run LoRA / QLoRA fine-tunes from the terminal."""

__version__ = "0.1.0"
