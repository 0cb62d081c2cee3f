"""Fieldbook: the field journal for immersive customer research."""
