"""One package per paper; each composes the shared floors below it and never imports another study."""
