"""IVR and call-routing engine for the 12345 government service hotline."""
