"""Layer: adapters."""
