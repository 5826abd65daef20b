"""iotpipe: stand up, exercise and tear down an IoT telemetry pipeline on AWS or on an embedded AWS."""

__version__ = "0.1.0"
