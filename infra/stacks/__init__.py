"""One stack per concern; each only composes constructs from `infra.components`."""
