"""The training view: tokenizers, conversations rendered into ids and loss mask, packing."""
