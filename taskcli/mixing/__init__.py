"""Mixture specs and the plans made from them."""
