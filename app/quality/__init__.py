"""Model quality in production: prediction metrics and drift, feedback, the canary gate, shadow scoring."""
