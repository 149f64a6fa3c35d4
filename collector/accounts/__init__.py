"""People who sign in to the collector's pages: accounts, roles, sessions (issue 10)."""
