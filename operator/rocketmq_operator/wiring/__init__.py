"""Layer: wiring."""
