"""Layer: services."""
