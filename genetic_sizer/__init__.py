"""genetic_sizer: evolve normalized portfolio weight genomes and size Hyperliquid positions from the champion.

Heavy dependencies (vectorbt, ray, the Hyperliquid SDK) are imported lazily by the single module that owns
each of them, so importing the package and running ``genetic-sizer --help`` stays fast.
"""

__version__ = "0.1.0"
