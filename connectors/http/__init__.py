"""Sources fetched over HTTP(S): files, OGC API - Features, ArcGIS FeatureServer layers."""
