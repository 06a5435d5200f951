"""medenc: fine-tune all-mpnet-base-v2 into MPNet-medical, evaluate it and release it on the Hub."""

__version__ = "0.1.0"
