"""Layer: ports."""
