"""The HTTP service, one job per module; indexer/service.py's create_app and run move here."""
