"""Token stores (memory, SQLite, Redis) and the token manager over them."""
