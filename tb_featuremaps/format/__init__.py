"""The on-disk format, shared by every producer and by the plugin: metadata, event files and the reader (``docs/format.md``)."""
