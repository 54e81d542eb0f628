"""assetflow's version, in a leaf module so that caches keyed by it need not import the package face."""

__version__ = "0.1.0"
