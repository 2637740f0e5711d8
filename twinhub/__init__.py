"""twinhub: a city's cross-department data integration and standards hub."""

__version__ = "0.1.0"
