"""keyturn.web, module by module, and the Starlette adapter keyturn.starlette."""
