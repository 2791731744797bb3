"""Composition and structure descriptors (matminer) of many structures: ``xtal describe``."""
