"""Data preparation shared by studies: corpora, tokenizers, token shards."""
