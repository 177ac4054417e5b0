"""Users and sessions: password hashing, the authentication step, oneadmin's bootstrap."""
