"""Hugging Face datasets: local copies, the Hub, offline mode."""
