"""Customer analytics: statistics, RFM segments, lifetime value, churn, baskets, clusters."""
