"""Shared measurements that several checks read: computed lazily, once per run."""
