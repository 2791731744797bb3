"""Property-dependent clusters of materials (random-forest leaf encoding): ``xtal cluster``."""
