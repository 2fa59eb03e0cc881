"""The PyFlink feature job: Kafka watch events in, DreamUMM user vectors out."""
