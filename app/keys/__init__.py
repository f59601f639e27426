"""API keys: hashed secrets with scopes, optionally bound to a unit subtree."""
