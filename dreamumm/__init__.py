"""DreamUMM streaming features: the command line, configuration and Kafka helpers."""
