"""The simulated world: meters, their consumption and their networks."""
