"""HTTP only: parse input, make one domain call, render. Split by audience."""
