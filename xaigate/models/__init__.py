"""Model cards and the adapters that give the engine one view of every model."""
