"""E2B's volumes on this host: the store (records and images), mounts into jails, and content."""
