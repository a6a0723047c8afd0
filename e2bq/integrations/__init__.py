"""Adapters that put the toolkit where agent frameworks and tool protocols expect it."""
