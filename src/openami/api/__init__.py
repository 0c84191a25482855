"""Route C: the open interfaces for customers, retailers and service providers."""
