//! Unit tests of the ARC module: parsing, structure, sealing round trips.
