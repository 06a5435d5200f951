"""The real model on a lent GPU machine (docs/gpu.md): how the base weights and prepared data travel there.

A tool, like the bench: only ``scripts/gpu_transport.py`` uses it and no stage imports it. transport (the
base rounded to fp16 and cut into pieces that each fill one device call, checked, joined and expanded there).
"""
