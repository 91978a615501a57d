"""Loading a published model and running it: loader (verify + load), precision, runtime."""
