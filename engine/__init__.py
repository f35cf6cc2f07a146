"""The engine: the stages that run models between `tempo.models` and the service."""
