"""The Braze app: REST API, partner cohorts, segments, campaigns and Currents."""
