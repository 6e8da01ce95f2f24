"""keyturn's pytest plugin (registered under ``pytest11``)."""
