"""The Segment app: Tracking API, debugger, Engage profiles, audiences and computed traits, destinations."""
