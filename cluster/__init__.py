"""Parameter-server cluster descriptions and launchers."""
